/* cri_service.c: kubelet's image calls, served. A PullImage joins the watched pull of its image (or
 * starts one); when that pull has its result, each caller gets what containerd answered the pull's
 * last attempt: its image_ref, or the status code and message of a permanent failure with pullwatch's
 * diagnosis added. Only a result without such an answer sends the caller's own request to containerd
 * once more. Every other image call, and a PullImage pullwatch cannot watch, is forwarded unchanged. */
#include "daemon/imageservice/cri_service.h"

#include <assert.h>
#include <ctype.h>

#include "basic/macro.h"
#include "probes/cri/cri_client.h"
#include "probes/transport/grpc_server.h"

#define IMAGE_SERVICE "runtime.v1.ImageService"

static inline void protobuf_c_message_free_unpackedp(ProtobufCMessage **m) {
        if (*m)
                protobuf_c_message_free_unpacked(*m, NULL);
}

typedef struct CriPull CriPull;

/* One caller: a call the server holds until its answer. */
typedef struct CriServiceCall {
        CriService *service;
        GrpcServerCall *call;
        char *path;
        CriMethod method;
        uint8_t *request;         /* as the caller sent it, passed on unchanged */
        size_t request_len;
        usec_t timeout;           /* the caller's grpc-timeout, passed on; 0 = none (PullImage) */
        CriPull *pull;            /* the watched pull it waits for, NULL when forwarded */
        CriCall *forward;
        char *note;               /* appended to a non-OK answer's message: pullwatch's diagnosis */
        struct CriServiceCall *next; /* in its pull's callers */
} CriServiceCall;

struct CriPull {
        CriService *service;
        char *image;
        WatchedPull *pull;
        CriServiceCall *callers;
        unsigned n_callers;
        bool done;
        CriPull *next;
};

struct CriService {
        sd_event *event;
        CurlGlue *glue;
        SharedConfig *config;
        const RuntimeDriver *driver;
        GrpcServer *server;
        CriPull *pulls;
        sd_event_source *reap;
        pull_job_event_t cb;
        void *userdata;
        CriServiceStats stats;
};

usec_t cri_grpc_timeout(const char *v) {
        char *end;
        unsigned long long n;

        if (!v || !isdigit((unsigned char) *v))
                return 0;
        errno = 0;
        n = strtoull(v, &end, 10);
        if (errno || end == v || end[0] == 0 || end[1] != 0 || end - v > 8)
                return 0;
        switch (*end) {
        case 'H': return n * 3600 * USEC_PER_SEC;
        case 'M': return n * 60 * USEC_PER_SEC;
        case 'S': return n * USEC_PER_SEC;
        case 'm': return n * USEC_PER_MSEC;
        case 'u': return n;
        case 'n': return (n + 999) / 1000;
        default: return 0;
        }
}

char *cri_unimplemented_message(const char *path) {
        const char *p = path && path[0] == '/' ? path + 1 : path ?: "";
        const char *slash = strrchr(p, '/');
        char *s = NULL;

        if (!slash || slash == p || !slash[1])
                return asprintf(&s, "malformed method name: \"%s\"", path ?: "") < 0 ? NULL : s;
        if ((size_t) (slash - p) == strlen(IMAGE_SERVICE) && startswith(p, IMAGE_SERVICE))
                return asprintf(&s, "unknown method %s for service %.*s", slash + 1, (int) (slash - p), p) < 0 ? NULL : s;
        return asprintf(&s, "unknown service %.*s", (int) (slash - p), p) < 0 ? NULL : s;
}

static void call_free(CriServiceCall *c) {
        if (!c)
                return;
        cri_call_free(c->forward);
        free(c->path);
        free(c->request);
        free(c->note);
        free(c);
}

/* The answer went (or the caller left): the caller's record is done. */
static void call_finish(CriServiceCall *c) {
        c->service->stats.calls++;
        call_free(c);
}

static void on_forwarded(CriCall *fc, CriReply *reply, void *userdata) {
        CriServiceCall *c = userdata;
        GrpcServerCall *call = c->call;

        if (reply->transport_error)
                /* containerd did not answer: what kubelet would see from a dead socket */
                (void) grpc_server_call_fail(call, GRPC_UNAVAILABLE, reply->grpc_message ?: "containerd did not answer");
        else if (reply->status == GRPC_OK)
                (void) grpc_server_call_reply(call, reply->raw, reply->raw_len);
        else {
                _cleanup_free_ char *m = NULL;
                if (c->note && asprintf(&m, "%s (pullwatch: %s)", reply->grpc_message ?: "", c->note) < 0)
                        m = NULL;
                (void) grpc_server_call_fail(call, reply->status, m ?: reply->grpc_message ?: "");
        }
        call_finish(c);
}

/* Pass the caller's request to containerd unchanged; its answer goes back unchanged (with c->note on a
 * failure). 0, or -errno with the caller answered already. */
static int forward(CriServiceCall *c) {
        const Config *cfg = c->service->config->config;
        GrpcTarget t = {
                .socket = cfg->containerd_socket ?: "/run/containerd/containerd.sock",
                .timeout = c->timeout,
        };
        int r = cri_call_forward(c->service->glue, &t, c->method, c->request, c->request_len, on_forwarded, c,
                                 &c->forward);
        if (r < 0) {
                (void) grpc_server_call_fail(c->call, GRPC_UNAVAILABLE, "pullwatch could not reach containerd");
                call_finish(c);
                return r;
        }
        return 0; /* c->forward is freed with c, in on_forwarded or when the caller leaves */
}

static void pull_free(CriPull *p) {
        if (!p)
                return;
        watched_pull_free(p->pull);
        free(p->image);
        free(p);
}

static int on_reap(sd_event_source *s, void *userdata) {
        CriService *svc = userdata;
        for (CriPull **p = &svc->pulls; *p;) {
                CriPull *cp = *p;
                if (cp->done && !cp->callers) {
                        *p = cp->next;
                        pull_free(cp);
                } else
                        p = &cp->next;
        }
        return 0;
}

/* containerd's own answer to the watched pull's PullImage, to this caller: 0, or -errno when the result
 * carries none (the caller is then asked of containerd once more). */
static int answer(CriServiceCall *c, const PullEvent *e) {
        if (e->ok && e->answer_ref) {
                Runtime__V1__PullImageResponse resp = RUNTIME__V1__PULL_IMAGE_RESPONSE__INIT;
                _cleanup_free_ uint8_t *buf = NULL;
                size_t n;

                resp.image_ref = (char *) e->answer_ref;
                n = runtime__v1__pull_image_response__get_packed_size(&resp);
                buf = malloc(n ?: 1);
                if (!buf)
                        return -ENOMEM;
                (void) runtime__v1__pull_image_response__pack(&resp, buf);
                (void) grpc_server_call_reply(c->call, buf, n);
        } else if (!e->ok && e->error == ERROR_PERMANENT && e->answer_status > 0) {
                _cleanup_free_ char *m = NULL;
                if (asprintf(&m, "%s (pullwatch: %s)", e->answer_message ?: "", c->note ?: "") < 0)
                        return -ENOMEM;
                (void) grpc_server_call_fail(c->call, (GrpcStatus) e->answer_status, m);
        } else
                return -ENODATA;
        call_finish(c);
        return 0;
}

static void pull_done(CriPull *p, const PullEvent *e) {
        CriService *svc = p->service;
        bool answer_from_containerd = e->ok || e->error == ERROR_PERMANENT;

        p->done = true;
        while (p->callers) {
                CriServiceCall *c = p->callers;
                p->callers = c->next;
                p->n_callers--;
                c->pull = NULL;
                /* what pullwatch makes of it: its diagnosis, or at least that it was not tried again */
                if (asprintf(&c->note, "%s", e->diagnosis ?: e->ok ? "" : "a permanent error, not retried") < 0)
                        c->note = NULL;
                if (answer_from_containerd) {
                        if (answer(c, e) >= 0)
                                svc->stats.answered++;
                        else
                                (void) forward(c);
                }
                else {
                        /* pullwatch gave up (every attempt stalled or failed transiently): asking
                         * containerd again would hang as the attempts did */
                        _cleanup_free_ char *m = NULL;
                        if (asprintf(&m, "pullwatch: pull of %s failed after %u attempts: %s%s%s", p->image, e->attempt,
                                     e->reason ?: error_class_to_string(e->error), e->diagnosis ? "; diagnosis: " : "",
                                     e->diagnosis ?: "") < 0)
                                m = NULL;
                        (void) grpc_server_call_fail(c->call, GRPC_UNKNOWN, m ?: "pullwatch: pull failed");
                        call_finish(c);
                }
        }
        (void) sd_event_source_set_enabled(svc->reap, SD_EVENT_ONESHOT);
}

static void on_pull_event(PullJob *j, const PullEvent *e, void *userdata) {
        CriPull *p = userdata;
        CriService *svc = p->service;

        if (svc->cb)
                svc->cb(j, e, svc->userdata);
        if (e->kind == PULL_EVENT_RESULT)
                pull_done(p, e);
}

static CriPull *pull_find(CriService *svc, const char *image) {
        for (CriPull *p = svc->pulls; p; p = p->next)
                if (!p->done && streq(p->image, image))
                        return p;
        return NULL;
}

/* The caller's credentials as the watched pull takes them; NULL when anonymous or unreadable (then
 * the config's files are asked, as for any pull). */
static Credential *request_credential(const Runtime__V1__PullImageRequest *req) {
        const Runtime__V1__AuthConfig *a = req->auth;
        Credential *c = NULL;
        if (!a || credential_from_fields(a->username, a->password, a->auth, a->identity_token, a->server_address, &c) < 0)
                return NULL;
        return c;
}

/* 0 when the caller now waits for a watched pull; -errno when pullwatch cannot watch it (the caller
 * is then forwarded unchanged: a failure inside pullwatch must not leave kubelet unable to pull). */
static int pull_join(CriServiceCall *c) {
        CriService *svc = c->service;
        _cleanup_(protobuf_c_message_free_unpackedp) ProtobufCMessage *m = NULL;
        _cleanup_credential_ Credential *cred = NULL;
        Runtime__V1__PullImageRequest *req;
        CriPull *p;
        int r;

        m = protobuf_c_message_unpack(&runtime__v1__pull_image_request__descriptor, NULL, c->request_len, c->request);
        req = (Runtime__V1__PullImageRequest *) m;
        if (!req || !req->image || !req->image->image || !*req->image->image)
                return -EBADMSG;
        p = pull_find(svc, req->image->image);
        if (p) {
                svc->stats.joined++;
        } else {
                p = calloc(1, sizeof(*p));
                if (!p)
                        return -ENOMEM;
                p->service = svc;
                p->image = strdup(req->image->image);
                cred = request_credential(req);
                r = p->image ? watched_pull_new(svc->event, svc->glue, svc->config, svc->driver,
                                                &(WatchedPullSpec) { .image = p->image, .credential = cred,
                                                                     /* kubelet waits: the gate goes beside */
                                                                     .start_at_once = true },
                                                on_pull_event, p, &p->pull)
                             : -ENOMEM;
                if (r >= 0)
                        r = watched_pull_start(p->pull);
                if (r < 0) {
                        pull_free(p);
                        return r;
                }
                p->next = svc->pulls;
                svc->pulls = p;
                svc->stats.pulls++;
        }
        c->pull = p;
        c->next = p->callers;
        p->callers = c;
        p->n_callers++;
        return 0;
}

static void on_call(GrpcServerCall *call, const char *path, const uint8_t *message, size_t len, void *userdata) {
        CriService *svc = userdata;
        CriServiceCall *c;
        CriMethod m = cri_method_from_path(path);

        /* the image service only: kubelet sends its runtime calls to containerd's own socket */
        if (m < 0 || !startswith(path, "/" IMAGE_SERVICE "/")) {
                _cleanup_free_ char *text = cri_unimplemented_message(path);
                svc->stats.unimplemented++;
                svc->stats.calls++;
                (void) grpc_server_call_fail(call, GRPC_UNIMPLEMENTED, text ?: "unknown method");
                return;
        }
        c = calloc(1, sizeof(*c));
        if (!c || !(c->path = strdup(path)) || !(c->request = malloc(len ?: 1))) {
                call_free(c);
                (void) grpc_server_call_fail(call, GRPC_RESOURCE_EXHAUSTED, "pullwatch: out of memory");
                return;
        }
        memcpy(c->request, message, len);
        c->request_len = len;
        c->method = m;
        c->service = svc;
        c->call = call;
        c->timeout = cri_grpc_timeout(grpc_server_call_header(call, "grpc-timeout"));
        grpc_server_call_set_userdata(call, c);
        if (m == CRI_PULL_IMAGE) {
                if (pull_join(c) >= 0)
                        return;
                svc->stats.fallbacks++;
        }
        svc->stats.forwarded++;
        (void) forward(c);
}

static void on_cancelled(GrpcServerCall *call, void *userdata) {
        CriService *svc = userdata;
        CriServiceCall *c = grpc_server_call_get_userdata(call);

        if (!c)
                return;
        svc->stats.cancelled++;
        if (c->pull) {
                CriPull *p = c->pull;
                for (CriServiceCall **i = &p->callers; *i; i = &(*i)->next)
                        if (*i == c) {
                                *i = c->next;
                                p->n_callers--;
                                break;
                        }
                /* the last caller left: nobody waits for this pull any more (the pod was deleted) */
                if (!p->callers && !p->done)
                        watched_pull_abort(p->pull, "every CRI caller went away");
        }
        call_finish(c); /* a forward in flight is cut with it */
}

int cri_service_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *driver,
                    int listen_fd, pull_job_event_t cb, void *userdata, CriService **ret) {
        _cleanup_(cri_service_freep) CriService *s = NULL;
        int r;

        assert(event);
        assert(glue);
        assert(config);
        assert(driver);
        assert(listen_fd >= 0);
        assert(ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->glue = glue;
        s->config = shared_config_ref(config);
        s->driver = driver;
        s->cb = cb;
        s->userdata = userdata;
        r = sd_event_add_defer(event, &s->reap, on_reap, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(s->reap, SD_EVENT_OFF);
        (void) sd_event_source_set_description(s->reap, "cri-service-reap");
        r = grpc_server_new(event, listen_fd, 0, &(GrpcServerHandlers) { on_call, on_cancelled }, s, &s->server);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

CriService *cri_service_free(CriService *s) {
        if (!s)
                return NULL;
        /* callers first (their cancel aborts the pulls), then the pulls themselves */
        s->server = grpc_server_free(s->server);
        while (s->pulls) {
                CriPull *p = s->pulls;
                s->pulls = p->next;
                pull_free(p);
        }
        sd_event_source_disable_unref(s->reap);
        shared_config_unref(s->config);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void cri_service_set_config(CriService *s, SharedConfig *config) {
        SharedConfig *old = s->config;
        s->config = shared_config_ref(config);
        shared_config_unref(old);
}

void cri_service_stats(const CriService *s, CriServiceStats *ret) {
        *ret = s ? s->stats : (CriServiceStats) {};
}

json_t *cri_service_status_json(const CriService *s) {
        json_t *o = json_pack("{s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:I, s:[]}", "calls", (json_int_t) s->stats.calls,
                              "pulls_started", (json_int_t) s->stats.pulls, "joined", (json_int_t) s->stats.joined,
                              "answered", (json_int_t) s->stats.answered, "forwarded",
                              (json_int_t) s->stats.forwarded, "fallbacks", (json_int_t) s->stats.fallbacks, "cancelled",
                              (json_int_t) s->stats.cancelled, "unimplemented", (json_int_t) s->stats.unimplemented,
                              "pulls");
        if (!o)
                return NULL;
        json_t *a = json_object_get(o, "pulls");
        for (const CriPull *p = s->pulls; p; p = p->next) {
                if (p->done)
                        continue;
                json_t *e = json_pack("{s:s, s:i, s:o*}", "image", p->image, "callers", (int) p->n_callers, "pull",
                                      watched_pull_status_json(p->pull));
                if (!e || json_array_append_new(a, e) < 0) {
                        json_decref(o);
                        return NULL;
                }
        }
        return o;
}
