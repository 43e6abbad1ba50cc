/* containerd_pull.c: the CRI driver. PullImage runs as one gRPC stream (resetting it cancels the pull's
 * context in containerd); the tracker polls progress beside it. A lease of pullwatch's own holds the
 * pull's ingests and blobs, so after a cancel or a transient failure the next attempt resumes them with
 * Range requests: containerd 1.6 otherwise deletes its pull lease and collects the partial ingest. */
#include "probes/containerd/containerd_track.h"

#include "containerd_version.pb-c.h"
#include "basic/reference.h"
#include "probes/containerd/containerd_content.h"
#include "probes/containerd/containerd_lease.h"
#include "probes/cri/cri_client.h"
#include "probes/registry/registry.h"
#include "probes/runtime/runtime_op.h"

struct RuntimePull {
        CurlGlue *glue;
        char *socket;
        PullCallbacks cb;
        void *userdata;
        CriCall *pull;
        CdLease *lease;
        CdTracker *tracker;
        bool ended, finished;
        bool foreign_platform;    /* asked for another platform than CRI pulls (the host's) */
        char *image_ref;          /* CRI's answer (the config digest), kept for a deferred success */
        ContainerdPollStats stats;
        ErrorClass error;
        char *message;
        char *digest;
        int answer_status;        /* containerd's gRPC status of a failed PullImage (0: none) */
        char *answer_message;     /* and its grpc-message, verbatim */
};

static bool platform_is_host(const char *platform) {
        _cleanup_free_ char *want = NULL, *host = NULL;
        if (!platform)
                return true;
        return registry_platform_normalize(platform, &want) >= 0 && registry_host_platform(&host) >= 0 &&
               streq(want, host);
}

static void pull_finish(RuntimePull *p) {
        PullOutcome o = { .error = p->error, .message = p->message, .digest = p->digest,
                          .answer_ref = p->error == ERROR_NONE ? p->image_ref : NULL,
                          .answer_status = p->answer_status, .answer_message = p->answer_message,
                          .stored = p->error == ERROR_NONE && p->image_ref };
        if (p->finished)
                return;
        p->finished = true;
        p->cb.finished(p->userdata, &o); /* may free p */
}

static void on_resource(void *userdata, const char *type, const char *id) {
        RuntimePull *p = userdata;
        if (!p->ended)
                cd_lease_add(p->lease, type, id);
}

/* The manifest's layers, from the registry probe before the attempt starts: held in the pull's lease
 * before containerd has written a byte of them (a lease may name what does not exist yet), so a
 * layer committed just before the attempt fails, or an ingest cut before the first poll saw it, is
 * not collected before the retry. The poll still adds what it finds under other names. */
void cd_expect_layers(RuntimePull *p, const char *const *digests, size_t n) {
        for (size_t i = 0; p && !p->ended && i < n; i++) {
                _cleanup_free_ char *ref = NULL;
                if (asprintf(&ref, "layer-%s", digests[i]) >= 0)
                        cd_lease_add(p->lease, "ingests", ref);
                cd_lease_add(p->lease, "content", digests[i]);
        }
}

static void on_lease_failed(void *userdata, const char *message) {
        RuntimePull *p = userdata;
        if (p->cb.activity)
                p->cb.activity(p->userdata, message, cd_now(CLOCK_MONOTONIC));
}

static void on_lease_released(void *userdata) {
        pull_finish(userdata);
}

/* The pull is over: drop the lease unless a retry could use it, then report. finished follows the
 * delete, so no lease of ours outlives a reported end. */
static void pull_end(RuntimePull *p, bool release) {
        p->ended = true;
        cd_tracker_stats(p->tracker, &p->stats);
        p->tracker = cd_tracker_free(p->tracker);
        if (release && cd_lease_release(p->lease) > 0)
                return;
        pull_finish(p);
}

static void succeed(RuntimePull *p) {
        p->error = ERROR_NONE;
        cd_tracker_all_done(p->tracker);
        /* the manifest digest (what docker reports too); CRI's image_ref is the config digest */
        const char *d = cd_tracker_manifest(p->tracker) ?: p->image_ref;
        p->digest = d && *d ? strdup(d) : NULL;
        pull_end(p, true);
}

static void on_final_round(void *userdata) {
        succeed(userdata);
}

static void on_pull_done(CriCall *call, CriReply *reply, void *userdata) {
        RuntimePull *p = userdata;
        const Runtime__V1__PullImageResponse *ok = cri_reply_pull_image(reply);

        if (ok) {
                free(p->image_ref);
                p->image_ref = ok->image_ref ? strdup(ok->image_ref) : NULL;
                if (p->tracker && !cd_tracker_manifest(p->tracker)) {
                        /* over before a poll was sure of it: one last look, for the manifest of the
                         * config CRI named, so its layers (not another tag's) are reported */
                        if (p->image_ref)
                                (void) cd_tracker_expect_config(p->tracker, p->image_ref);
                        cd_tracker_final_round(p->tracker, on_final_round, p);
                        return;
                }
                succeed(p);
                return;
        }
        p->error = containerd_classify(reply->transport_error, reply->status, reply->grpc_message);
        if (!reply->transport_error && reply->status != GRPC_OK) {
                p->answer_status = reply->status;
                p->answer_message = strdup(reply->grpc_message ?: "");
        }
        /* the pull's words name the call, also when the transport failed it (that line names the socket) */
        if (reply->transport_error < 0)
                (void) error_detail_wrap(&reply->detail, reply->error, "PullImage");
        p->message = error_detail_format(&reply->detail);
        /* a transient failure is retried: keep what was downloaded for the next attempt */
        pull_end(p, p->error == ERROR_PERMANENT);
}

static void forward_layer(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                          uint64_t total, usec_t at) {
        RuntimePull *p = userdata;
        if (p->cb.layer)
                p->cb.layer(p->userdata, layer, phase, current, total, at);
        if (p->cb.activity)
                p->cb.activity(p->userdata, phase_to_string(phase), at);
}

static void forward_activity(void *userdata, const char *what, usec_t at) {
        RuntimePull *p = userdata;
        if (p->cb.activity)
                p->cb.activity(p->userdata, what, at);
}

RuntimePull *cd_pull_free(RuntimePull *p) {
        if (!p)
                return NULL;
        cd_tracker_free(p->tracker);
        cri_call_free(p->pull);
        cd_lease_free(p->lease);
        free(p->socket);
        free(p->message);
        free(p->digest);
        free(p->image_ref);
        free(p->answer_message);
        free(p);
        return NULL;
}

static void cd_pull_freep(RuntimePull **p) { cd_pull_free(*p); }

void cd_cancel(RuntimePull *p) {
        if (!p || p->ended)
                return;
        p->ended = true;
        p->finished = true; /* no callback follows a cancel */
        /* resetting the stream cancels the pull's context in containerd; the lease stays for the retry
         * and AddResource calls in flight are let finish for the same reason */
        p->pull = cri_call_free(p->pull);
        cd_tracker_stats(p->tracker, &p->stats);
        p->tracker = cd_tracker_free(p->tracker);
        cd_lease_stop(p->lease);
}

int cd_start(CurlGlue *glue, const Config *config, const PullRequest *req, const PullCallbacks *cb,
                    void *userdata, RuntimePull **ret) {
        _cleanup_(cd_pull_freep) RuntimePull *p = NULL;
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *host = NULL;
        CriRequest preq;
        CriTarget t = { .namespace = CONTAINERD_CRI_NAMESPACE }; /* no deadline: big pulls take long */
        CdTrackerCallbacks tcb = { .layer = forward_layer, .resource = on_resource, .activity = forward_activity };
        int r;

        if (!glue || !req || !req->image || !cb || !cb->finished)
                return -EINVAL;
        r = reference_parse(req->image, &ref);
        if (r < 0)
                return r;
        r = cd_source_host(ref->domain, &host);
        if (r < 0)
                return r;
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->glue = glue;
        p->cb = *cb;
        p->userdata = userdata;
        p->foreign_platform = !platform_is_host(req->platform);
        p->socket = strdup(config && config->containerd_socket ? config->containerd_socket : CONTAINERD_DEFAULT_SOCKET);
        if (!p->socket)
                return -ENOMEM;
        r = cd_lease_new(glue, p->socket, CONTAINERD_CRI_NAMESPACE, req->image,
                         &(CdLeaseCallbacks) { .failed = on_lease_failed, .released = on_lease_released }, p,
                         &p->lease);
        if (r < 0)
                return r;

        /* server_address stays empty: CRI compares it with url.Parse(...).Host of the registry it
         * dials, which a config.json key ("https://index.docker.io/v1/", "host:port") never matches */
        cri_request_pull_image(&preq, req->image,
                               req->auth_user || req->identity_token
                                       ? &(CriAuth) { .username = req->auth_user,
                                                      .password = req->auth_password,
                                                      .identity_token = req->identity_token }
                                       : NULL);
        t.socket = p->socket;
        r = cri_call_start(glue, &t, &preq, on_pull_done, p, &p->pull);
        if (r < 0)
                return r;
        r = cd_tracker_new(glue,
                           &(CdTrackerOptions) { .socket = p->socket,
                                                 .namespace = CONTAINERD_CRI_NAMESPACE,
                                                 .source_host = host,
                                                 .source_repo = ref->path,
                                                 .since = cd_now(CLOCK_REALTIME) },
                           &tcb, p, &p->tracker);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

void cd_process(const Config *config, RuntimeProcess *ret) {
        *ret = (RuntimeProcess) {
                .socket = config && config->containerd_socket ? config->containerd_socket : CONTAINERD_DEFAULT_SOCKET,
                .pidfile = config ? config->containerd_pidfile : NULL,
                .exe_names = runtime_exe_names_containerd,
                .inprocess_extract = true,
        };
}

static const char *config_socket(const Config *config) {
        return config && config->containerd_socket ? config->containerd_socket : CONTAINERD_DEFAULT_SOCKET;
}

static int confirm_parse(const char *image, GrpcReply *g, char **ret_text) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        const Runtime__V1__Image *img = NULL;
        CriReply reply;
        int r;

        r = cri_reply_read(CRI_IMAGE_STATUS, g, &reply);
        if (r < 0)
                return r;
        r = reply.error;
        if (r < 0)
                error_detail_move(&e, &reply.detail);
        else
                r = cri_image_status_image(cri_reply_image_status(&reply), image, CONTAINERD_CRI_NAMESPACE, &img, NULL);
        if (reply.transport_error == -ENOENT)
                r = -ENXIO; /* no socket: that says nothing about the image */
        *ret_text = r >= 0 ? strdup(cri_image_digest(img)) : r == -ENOENT ? NULL : error_detail_format(&e);
        cri_reply_done(&reply);
        return r >= 0 && !*ret_text ? -ENOMEM : r;
}

int cd_confirm(CurlGlue *glue, const Config *config, const PullRequest *req, runtime_op_done_t done,
                      void *userdata, RuntimeOp **ret) {
        CriRequest r;

        if (!req || !req->image)
                return -EINVAL;
        cri_request_image_status(&r, req->image, false);
        return runtime_op_grpc(glue,
                               &(GrpcTarget) { .socket = config_socket(config), .namespace = CONTAINERD_CRI_NAMESPACE },
                               cri_method_path(r.method), &r.base, cri_method_reply_type(r.method), confirm_parse,
                               req->image, done, userdata, ret);
}

static int ping_parse(const char *socket, GrpcReply *reply, char **ret_text) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        int r = containerd_version_error(socket, reply, &e);
        if (r < 0) {
                (void) error_detail_wrap(&e, r, "cannot reach containerd");
                *ret_text = error_detail_format(&e);
        }
        return r;
}

int cd_ping_async(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                         RuntimeOp **ret) {
        Containerd__Services__Version__V1__Empty req = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        return runtime_op_grpc(glue, &(GrpcTarget) { .socket = config_socket(config) },
                               "/containerd.services.version.v1.Version/Version", &req.base,
                               &containerd__services__version__v1__version_response__descriptor, ping_parse,
                               config_socket(config), done, userdata, ret);
}

int cd_ping(const Config *config, ErrorDetail *ret_error) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        _cleanup_free_ char *why = NULL;
        int r = containerd_version(config_socket(config), NULL, ret_error ? &e : NULL);

        if (r >= 0)
                return r;
        /* one message, not a wrapped detail: the CLI prints a ping's error.message as the whole line */
        why = error_detail_format(&e);
        return error_detail_setf(ret_error, r, "cannot reach containerd: %s", why ?: strerror(-r));
}

void containerd_pull_stats(const RuntimePull *p, ContainerdPollStats *ret) {
        if (p && !p->tracker)
                *ret = p->stats;
        else
                cd_tracker_stats(p ? p->tracker : NULL, ret);
}

int cd_abandon(CurlGlue *glue, const Config *config, const PullRequest *req) {
        /* Partial ingests are only worth keeping for a retry that will come; none will. */
        return cd_lease_abandon(glue, config_socket(config), CONTAINERD_CRI_NAMESPACE, req->image);
}

void cd_expect(RuntimePull *p, const char *manifest_digest) {
        /* the registry resolved the platform asked for, which CRI does not pull: not this pull's manifest */
        if (p && p->tracker && !p->foreign_platform)
                (void) cd_tracker_expect(p->tracker, manifest_digest);
}

