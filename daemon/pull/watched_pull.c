/* watched_pull.c: the request's strings live here for the job's lifetime (PullJob copies only the
 * image), and so does a reference on the config the job and its detector point into. */
#include "daemon/pull/watched_pull.h"

#include <assert.h>
#include "daemon/pull/liveness.h"
#include "probes/registry/credentials.h"
#include "basic/reference.h"

#include <math.h>

struct WatchedPull {
        SharedConfig *config;
        const RuntimeDriver *driver;
        PullJob *job;
        RuntimeLiveness *liveness;
        RuntimeOp *disk_op;       /* asking dockerd where it extracts, until it answers */
        char *platform, *namespace;
        Credential *cred;
        char *auth_header;
        char *cred_warning;
        usec_t started;
};

int shared_config_new(Config *c, SharedConfig **ret) {
        SharedConfig *s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = c;
        s->n_ref = 1;
        *ret = s;
        return 0;
}

SharedConfig *shared_config_ref(SharedConfig *s) {
        if (s)
                s->n_ref++;
        return s;
}

SharedConfig *shared_config_unref(SharedConfig *s) {
        if (!s || --s->n_ref > 0)
                return NULL;
        config_free(s->config);
        free(s);
        return NULL;
}

/* The driver's extraction target (dockerd: <DockerRootDir>/overlay2/<layer>/diff): watch it grow,
 * besides the helpers. Asked on the loop, never blocking it (a hung runtime must not stall the daemon):
 * the probe joins the pull's liveness when the runtime answers, a few milliseconds into the pull. */
static void on_extraction_dir(RuntimeOp *op, int r, const char *text, void *userdata) {
        WatchedPull *p = userdata;

        p->disk_op = NULL;
        if (r >= 0 && text && p->liveness)
                (void) runtime_liveness_watch_disk(p->liveness, text, p->driver->extract_subdir);
}

static void watch_disk(WatchedPull *p, CurlGlue *glue, const RuntimeDriver *driver, const Config *c) {
        if (!driver->extraction_dir || !glue)
                return;
        (void) driver->extraction_dir(glue, c, on_extraction_dir, p, &p->disk_op);
}

/* Credentials from the config.json files, the first entry for the registry wins; a problem with them
 * is kept for the caller to say, and the pull goes anonymous. */
static void lookup_credentials(WatchedPull *p, const char *image, const Credential *given, PullRequest *req) {
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_(error_detail_done) ErrorDetail e = {};
        int r;

        if (given) {
                r = credential_copy(given, &p->cred);
                if (r < 0)
                        p->cred_warning = strdup(strerror(-r));
        } else {
                if (!p->config->config->credentials || reference_parse(image, &ref) < 0)
                        return;
                r = credentials_lookup_full(p->config->config->credentials, reference_registry_host(ref), &p->cred, &e);
                if (r < 0)
                        p->cred_warning = e.message ? error_detail_format(&e) : strdup(strerror(-r));
        }
        if (r < 0 || !p->cred)
                return;
        req->auth_user = p->cred->username;
        req->auth_password = p->cred->password;
        req->identity_token = p->cred->identity_token;
        req->auth_server = p->cred->server;
        if (p->driver->auth_header && credential_to_docker_auth_header(p->cred, &p->auth_header) >= 0)
                req->auth_header = p->auth_header;
}

int watched_pull_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *driver,
                     const WatchedPullSpec *spec, pull_job_event_t cb, void *userdata, WatchedPull **ret) {
        _cleanup_(watched_pull_freep) WatchedPull *p = NULL;
        const Config *c;
        PullRequest req = {};
        int r;

        assert(config);
        assert(spec);
        assert(ret);
        c = config->config;
        if (!spec->image || !driver)
                return -EINVAL;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->config = shared_config_ref(config);
        p->driver = driver;
        p->platform = spec->platform ? strdup(spec->platform) : c->platform ? strdup(c->platform) : NULL;
        p->namespace = spec->namespace ? strdup(spec->namespace) : strdup(c->containerd_namespace);
        if ((!p->platform && (spec->platform || c->platform)) || !p->namespace)
                return -ENOMEM;
        req.image = spec->image;
        req.platform = p->platform;
        req.namespace = p->namespace;
        lookup_credentials(p, spec->image, spec->credential, &req);
        r = pull_job_new(event, glue, c, driver, &req, cb, userdata, &p->job);
        if (r < 0)
                return r;
        pull_job_set_registry_seen(p->job, spec->seen);
        pull_job_set_start_at_once(p->job, spec->start_at_once);
        if (runtime_liveness_new_for(driver, c, &p->liveness) >= 0) {
                LivenessSource src = runtime_liveness_source(p->liveness);
                watch_disk(p, glue, driver, c);
                pull_job_set_liveness(p->job, &src);
        }
        *ret = TAKE_PTR(p);
        return 0;
}

WatchedPull *watched_pull_free(WatchedPull *p) {
        if (!p)
                return NULL;
        runtime_op_free(p->disk_op);
        pull_job_free(p->job);
        runtime_liveness_free(p->liveness);
        credential_free(p->cred);
        credential_secret_free(p->auth_header);
        free(p->cred_warning);
        free(p->platform);
        free(p->namespace);
        shared_config_unref(p->config);
        free(p);
        return NULL;
}

int watched_pull_start(WatchedPull *p) {
        p->started = now_monotonic();
        return pull_job_start(p->job);
}

void watched_pull_abort(WatchedPull *p, const char *why) { pull_job_abort(p->job, why); }
bool watched_pull_finished(const WatchedPull *p) { return pull_job_finished(p->job); }
PullJob *watched_pull_job(const WatchedPull *p) { return p->job; }
const RuntimeDriver *watched_pull_driver(const WatchedPull *p) { return p->driver; }
const char *watched_pull_credential_warning(const WatchedPull *p) { return p->cred_warning; }

/* The extraction target's probe: {"dir","grew_samples","grew_s_ago"}, or null when it has none. */
static json_t *disk_json(const WatchedPull *p) {
        usec_t at = 0;
        unsigned n = 0;
        const char *dir = p->liveness ? runtime_liveness_disk(p->liveness, &at, &n) : NULL;
        json_t *o;

        if (!dir)
                return json_null();
        o = json_pack("{s:s, s:I}", "dir", dir, "grew_samples", (json_int_t) n);
        if (o)
                json_object_set_new(o, "grew_s_ago",
                                    at ? json_real(round((double) (now_monotonic() - at) / USEC_PER_SEC * 10.0) / 10.0)
                                       : json_null());
        return o ?: json_null();
}

json_t *watched_pull_status_json(const WatchedPull *p) {
        const Detector *d = pull_job_detector(p->job);
        json_t *o, *layers = json_array();
        double elapsed = p->started ? (double) (now_monotonic() - p->started) / USEC_PER_SEC : 0.0;

        o = json_pack("{s:s, s:s, s:I, s:f}", "image", pull_job_image(p->job), "runtime", p->driver->name,
                      "attempt", (json_int_t) pull_job_attempt(p->job), "elapsed_s", round(elapsed * 10.0) / 10.0);
        if (!o || !layers) {
                json_decref(o);
                json_decref(layers);
                return NULL;
        }
        for (size_t i = 0; d && i < detector_n_layers(d); i++) {
                const LayerTrack *t = detector_layer_at(d, i);
                json_t *l = json_pack("{s:s, s:s?, s:I, s:I, s:s?, s:s?}", "id", t->id, "phase", phase_to_string(t->phase),
                                      "current", (json_int_t) t->current, "total", (json_int_t) t->total, "verdict",
                                      verdict_to_string(t->verdict), "evidence", t->evidence[0] ? t->evidence : NULL);
                if (l)
                        json_array_append_new(layers, l);
        }
        json_object_set_new(o, "layers", layers);
        json_object_set_new(o, "disk", disk_json(p));
        return o;
}
