/* registry_sync.c: the registry probe's result types (destructors, error text) and the synchronous
 * wrappers the CLI uses: a private sd_event loop around the async calls until done or timeout. */
#include "probes/registry.h"

#include <inttypes.h>

void registry_target_init(RegistryTarget *t, const ImageRef *ref, const Credential *cred, const Config *c,
                          const char *platform) {
        *t = (RegistryTarget) {
                .domain = ref->domain,
                .repository = ref->path,
                .reference = ref->digest ?: ref->tag, /* the digest pins it when both are given */
                .platform = platform ?: c ? c->platform : NULL,
                .username = cred ? cred->username : NULL,
                .password = cred ? cred->password : NULL,
                .identity_token = cred ? cred->identity_token : NULL,
                .config = c ? &c->registry : NULL,
        };
}

RegistryManifest *registry_manifest_free(RegistryManifest *m) {
        if (!m)
                return NULL;
        free(m->digest);
        free(m->media_type);
        free(m->manifest_digest);
        free(m->manifest_media_type);
        free(m->config_media_type);
        free(m->config_digest);
        for (size_t i = 0; i < m->n_layers; i++) {
                free(m->layers[i].digest);
                free(m->layers[i].media_type);
        }
        free(m->layers);
        free(m->chosen_platform);
        strv_free(m->platforms);
        free(m->host);
        free(m);
        return NULL;
}

void registry_range_probe_done(RegistryRangeProbe *p) {
        if (!p)
                return;
        free(p->url);
        free(p->host);
        free(p->via);
        *p = (RegistryRangeProbe) {};
}

void registry_error_done(RegistryError *e) {
        if (!e)
                return;
        free(e->code);
        free(e->message);
        free(e->url);
        free(e->realm);
        *e = (RegistryError) {};
}

char *registry_error_format(const RegistryError *e) {
        char *s = NULL, status[32] = "";

        if (!e)
                return NULL;
        if (e->http_status > 0)
                snprintf(status, sizeof(status), "HTTP %d", e->http_status);
        if (asprintf(&s, "%s%s%s%s%s%s%s%s%s%s", e->url ?: "", e->url ? ": " : "", status,
                     *status && e->code ? " " : "", e->code ?: "", (*status || e->code) && e->message ? ": " : "",
                     e->message ?: "", e->realm ? " (auth realm " : "", e->realm ?: "", e->realm ? ")" : "") < 0)
                return NULL;
        if (e->retry_after > 0) {
                char *t = NULL;
                if (asprintf(&t, "%s (retry after %" PRIu64 "s)", s, e->retry_after) < 0)
                        t = NULL;
                free(s);
                s = t;
        }
        return s;
}

int registry_error_copy(const RegistryError *from, RegistryError *to) {
        *to = (RegistryError) { .http_status = from->http_status, .retry_after = from->retry_after };
        if ((from->code && !(to->code = strdup(from->code))) ||
            (from->message && !(to->message = strdup(from->message))) ||
            (from->url && !(to->url = strdup(from->url))) ||
            (from->realm && !(to->realm = strdup(from->realm)))) {
                registry_error_done(to);
                return -ENOMEM;
        }
        return 0;
}

/* ---- synchronous wrappers: a private loop until done ---- */

typedef struct SyncState {
        sd_event *event;
        bool done;
        int r;
        RegistryManifest *m;
        RegistryRangeProbe probe;
        RegistryError error;
} SyncState;

static void sync_finish(SyncState *s, int r, const RegistryError *e) {
        s->done = true;
        s->r = r;
        if (e && registry_error_copy(e, &s->error) < 0 && r >= 0)
                s->r = -ENOMEM;
        (void) sd_event_exit(s->event, 0);
}

static void sync_manifest_done(RegistryOp *op, int r, RegistryManifest *m, const RegistryError *e, void *userdata) {
        SyncState *s = userdata;
        s->m = m;
        sync_finish(s, r, e);
}

static void sync_range_done(RegistryOp *op, int r, RegistryRangeProbe *p, const RegistryError *e, void *userdata) {
        SyncState *s = userdata;
        if (p) {
                s->probe = *p;
                *p = (RegistryRangeProbe) {};
        }
        sync_finish(s, r, e);
}

static int on_sync_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        SyncState *s = userdata;
        s->r = -ETIMEDOUT;
        free(s->error.message);
        s->error.message = strdup("registry probe timed out");
        return sd_event_exit(s->event, 0);
}

static int sync_run(const RegistryTarget *t, const char *blob, usec_t timeout, SyncState *s) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *timer = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *glue = NULL;
        _cleanup_(registry_op_freep) RegistryOp *op = NULL;
        int r;

        r = sd_event_new(&event);
        if (r < 0)
                return r;
        s->event = event;
        r = curl_glue_new(event, &glue);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &timer, CLOCK_MONOTONIC, timeout ?: 120 * USEC_PER_SEC, 0,
                                       on_sync_timeout, s);
        if (r < 0)
                return r;
        r = blob ? registry_probe_range(glue, t, blob, sync_range_done, s, &op) :
                   registry_resolve(glue, t, sync_manifest_done, s, &op);
        if (r < 0)
                return r;
        r = sd_event_loop(event);
        if (r < 0)
                return r;
        return s->r;
}

int registry_resolve_sync(const RegistryTarget *t, usec_t timeout, RegistryManifest **ret, RegistryError *ret_error) {
        SyncState s = { .r = -ECANCELED };
        int r = sync_run(t, NULL, timeout, &s);

        if (r >= 0 && s.m)
                *ret = TAKE_PTR(s.m);
        else if (r >= 0)
                r = -EIO;
        registry_manifest_free(s.m);
        if (r < 0 && ret_error)
                *ret_error = s.error;
        else
                registry_error_done(&s.error);
        return r;
}

int registry_probe_range_sync(const RegistryTarget *t, const char *blob_digest, usec_t timeout,
                              RegistryRangeProbe *ret, RegistryError *ret_error) {
        SyncState s = { .r = -ECANCELED };
        int r;

        if (!blob_digest)
                return -EINVAL;
        r = sync_run(t, blob_digest, timeout, &s);
        if (r >= 0)
                *ret = s.probe;
        else
                registry_range_probe_done(&s.probe);
        if (r < 0 && ret_error)
                *ret_error = s.error;
        else
                registry_error_done(&s.error);
        return r;
}
