/* registry_runtime.c: the runtime's registry settings and version, fetched without blocking the
 * loop: two Engine API GETs for dockerd, two gRPC calls for containerd, one after the other. When
 * containerd's CRI Status names no registry config_path (2.x reports its runtime config only), the
 * config file of the proven containerd process (its --config, else /etc/containerd/config.toml, read
 * through /proc/PID/root) names it; failing both, containerd.hosts_dir. */
#include "probes/drivers/registry_runtime.h"

#include <assert.h>
#include "probes/drivers/runtime_drivers.h"

#include <jansson.h>

#include "containerd_version.pb-c.h"
#include "probes/containerd/containerd_config.h"
#include "probes/cri/cri_client.h"
#include "probes/transport/grpc.h"
#include "probes/runtime/runtime_identity.h"
#include "probes/runtime/runtime_op.h"

#define FETCH_TIMEOUT (3 * USEC_PER_SEC)

struct RuntimeRegistryFetch {
        CurlGlue *glue;
        RuntimeRegistry rt;
        char *socket;
        char *pidfile;            /* containerd.pidfile, to prove which process is containerd */
        unsigned step;
        RuntimeOp *op;            /* dockerd's /version or /info, shared with the pull's other probes */
        GrpcCall *call;
        CriCall *cri_call;
        sd_event_source *defer;
        runtime_registry_done_t done;
        void *userdata;
};

RuntimeRegistryFetch *runtime_registry_fetch_free(RuntimeRegistryFetch *f) {
        if (!f)
                return NULL;
        runtime_op_free(f->op);
        grpc_call_free(f->call);
        cri_call_free(f->cri_call);
        sd_event_source_disable_unref(f->defer);
        runtime_registry_done(&f->rt);
        free(f->socket);
        free(f->pidfile);
        free(f);
        return NULL;
}

static void finish(RuntimeRegistryFetch *f) {
        f->done(f, &f->rt, f->userdata);
}

/* The answer's body as the op's text: read below, where the fetch is at hand. */
static int body_parse(const char *arg, int r, long status, const char *body, char **ret_text) {
        if (r < 0 || status != 200 || !body)
                return r < 0 ? r : -EIO;
        *ret_text = strdup(body);
        return *ret_text ? 0 : -ENOMEM;
}

static int docker_next(RuntimeRegistryFetch *f);

static void on_docker_done(RuntimeOp *op, int r, const char *text, void *userdata) {
        RuntimeRegistryFetch *f = userdata;

        f->op = NULL; /* it frees itself */
        if (r >= 0 && text) {
                if (f->step == 0) {
                        json_error_t err;
                        json_t *v = json_loads(text, 0, &err);
                        const char *s = json_string_value(json_object_get(v, "Version"));
                        if (s && !f->rt.version)
                                f->rt.version = strdup(s);
                        json_decref(v);
                } else
                        (void) runtime_registry_parse_docker_info(&f->rt, text);
        }
        f->step++;
        if (f->step < 2 && docker_next(f) >= 0)
                return;
        finish(f);
}

/* Both GETs are dockerd's settings, the same for every pull a few seconds apart: shared (runtime_op.h). */
static int docker_next(RuntimeRegistryFetch *f) {
        return runtime_op_http_shared(f->glue, f->socket, f->step == 0 ? "/version" : "/info", RUNTIME_OP_SETTINGS_TTL,
                                      body_parse, NULL, on_docker_done, f, &f->op);
}

static int containerd_next(RuntimeRegistryFetch *f);

/* containerd did not say where its hosts.toml live: ask its config file. Only the proven
 * containerd's file counts: a socket forwarded from elsewhere keeps containerd.hosts_dir. */
static void containerd_config_path(RuntimeRegistryFetch *f) {
        RuntimeIdentitySpec spec = { .pidfile = f->pidfile, .socket = f->socket,
                                     .exe_names = runtime_exe_names_containerd };
        _cleanup_free_ char *why = NULL, *path = NULL, *root = NULL;
        RuntimeIdentity id;

        if (f->rt.certs_dir_from || runtime_identity_resolve(&spec, &id, &why) < 0)
                return;
        if (containerd_config_file_of(NULL, id.pid, &path) < 0 || asprintf(&root, "/proc/%d/root", (int) id.pid) < 0)
                return;
        (void) runtime_registry_read_containerd_config(&f->rt, root, path);
}

static void containerd_step_done(RuntimeRegistryFetch *f) {
        f->step++;
        if (f->step < 2 && containerd_next(f) >= 0)
                return;
        containerd_config_path(f);
        finish(f);
}

static void on_grpc_done(GrpcCall *call, GrpcReply *reply, void *userdata) {
        RuntimeRegistryFetch *f = userdata;

        if (reply->error == 0 && reply->status == GRPC_OK && reply->n_messages == 1) {
                Containerd__Services__Version__V1__VersionResponse *v = (void *) reply->messages[0];
                if (v->version && *v->version && !f->rt.version)
                        f->rt.version = strdup(v->version);
        }
        f->call = grpc_call_free(call);
        containerd_step_done(f);
}

static void on_cri_status(CriCall *call, CriReply *reply, void *userdata) {
        RuntimeRegistryFetch *f = userdata;
        const char *config = cri_status_info(cri_reply_status(reply), "config");

        if (config)
                (void) runtime_registry_parse_cri_config(&f->rt, config);
        f->cri_call = cri_call_free(call);
        containerd_step_done(f);
}

static int containerd_next(RuntimeRegistryFetch *f) {
        GrpcTarget t = { .socket = f->socket, .timeout = FETCH_TIMEOUT };
        if (f->step == 0) {
                Containerd__Services__Version__V1__Empty req = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
                return grpc_call_start(f->glue, &t, "/containerd.services.version.v1.Version/Version", &req.base,
                                       &containerd__services__version__v1__version_response__descriptor, false,
                                       on_grpc_done, f, &f->call);
        }
        CriRequest req;
        cri_request_status(&req, true);
        return cri_call_start(f->glue, &t, &req, on_cri_status, f, &f->cri_call);
}

static int on_defer(sd_event_source *s, void *userdata) {
        RuntimeRegistryFetch *f = userdata;
        f->defer = sd_event_source_disable_unref(f->defer);
        finish(f);
        return 0;
}

int runtime_registry_fetch(CurlGlue *g, RuntimeKind kind, const Config *c, runtime_registry_done_t done,
                           void *userdata, RuntimeRegistryFetch **ret) {
        const RuntimeDriver *d = runtime_driver_get(kind);
        RuntimeRegistryFetch *f;
        /* how each runtime is asked is this file's business: the Engine API or containerd's gRPC */
        const char *socket = kind == RUNTIME_CONTAINERD ? c->containerd_socket : c->docker_socket;
        int r;

        assert(c);
        if (!g || !done || !ret || !d || !d->registry_defaults)
                return -EINVAL;
        if (!(f = calloc(1, sizeof(*f))))
                return -ENOMEM;
        f->glue = g;
        f->done = done;
        f->userdata = userdata;
        r = d->registry_defaults(&f->rt, c);
        if (r >= 0 && socket && !(f->socket = strdup(socket)))
                r = -ENOMEM;
        if (r >= 0 && kind == RUNTIME_CONTAINERD && c->containerd_pidfile && !(f->pidfile = strdup(c->containerd_pidfile)))
                r = -ENOMEM;
        if (r >= 0)
                r = !f->socket ? -ENOENT : kind == RUNTIME_DOCKER ? docker_next(f) : containerd_next(f);
        if (r == -ENOMEM) {
                runtime_registry_fetch_free(f);
                return r;
        }
        /* a runtime we cannot ask keeps its defaults; say so from the loop, never from here */
        if (r < 0 && sd_event_add_defer(curl_glue_event(g), &f->defer, on_defer, f) < 0) {
                runtime_registry_fetch_free(f);
                return -ENOMEM;
        }
        if (f->defer)
                (void) sd_event_source_set_description(f->defer, "runtime-registry-defaults");
        *ret = f;
        return 0;
}
