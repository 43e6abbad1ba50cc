/* preflight.c: registry look-ups for one pull, on the pull's own event loop. A registry that does not
 * answer is not news: the runtime may reach it through mirrors we do not know, so transport failures
 * are kept quiet and only the registry's own words (429, a refused Range) are reported. */
#include "daemon/pull/preflight.h"

#include <assert.h>

#include "daemon/pull/registry_seen.h"
#include "basic/reference.h"
#include "probes/registry/registry.h"
#include "probes/drivers/registry_runtime.h"
#include "probes/drivers/runtime_drivers.h"

struct Preflight {
        CurlGlue *glue;
        const Config *config;
        RuntimeKind runtime;
        RegistrySeen *seen;           /* the owner's table of probed registries; NULL = none */
        ImageRef *ref;
        char *user, *password, *token, *platform;
        preflight_diag_t cb;
        preflight_idle_t idle;
        preflight_resolved_t resolved;
        preflight_manifest_t manifest_cb;
        void *userdata;
        RegistryOp *resolve, *range;
        RuntimeRegistryFetch *fetch;  /* the runtime's registry settings, asked before the registry */
        RuntimeRegistry rt;
        bool have_rt;
        RegistryHosts *hosts;         /* what those settings say of this image's registry */
        RegistryManifest *manifest;
        const char **layer_digests;   /* into manifest's layers */
        char *range_fallback;
        char *range_digest;
        char *range_hop;          /* the hop the probe found answering Range with 200 */
        char *mirror_hop;         /* the mirror the probe found silent or refusing */
        bool range_wanted;
        usec_t retry_not_before;  /* CLOCK_MONOTONIC; from a 429's Retry-After */
};

static void target(const Preflight *p, RegistryTarget *t) {
        *t = (RegistryTarget) {
                .domain = p->ref->domain,
                .repository = p->ref->path,
                .reference = p->ref->digest ? p->ref->digest : p->ref->tag ? p->ref->tag : "latest",
                .platform = p->platform,
                .username = p->user,
                .password = p->password,
                .identity_token = p->token,
                .config = &p->config->registry,
                .runtime = p->have_rt ? &p->rt : NULL,
                .timeout = 15 * USEC_PER_SEC,
        };
}

int preflight_new(CurlGlue *glue, const Config *config, RuntimeKind runtime, const PullRequest *req,
                  preflight_diag_t cb, void *userdata, Preflight **ret) {
        Preflight *p = calloc(1, sizeof(*p));
        int r;
        if (!p)
                return -ENOMEM;
        p->glue = glue;
        p->config = config;
        p->runtime = runtime;
        p->cb = cb;
        p->userdata = userdata;
        r = reference_parse(req->image, &p->ref);
        if (r >= 0 && ((req->auth_user && !(p->user = strdup(req->auth_user))) ||
                       (req->auth_password && !(p->password = strdup(req->auth_password))) ||
                       (req->identity_token && !(p->token = strdup(req->identity_token))) ||
                       (req->platform && !(p->platform = strdup(req->platform)))))
                r = -ENOMEM;
        if (r < 0) {
                preflight_free(p);
                return r;
        }
        *ret = p;
        return 0;
}

static void secret_free(char *s) {
        if (s)
                explicit_bzero(s, strlen(s));
        free(s);
}

Preflight *preflight_free(Preflight *p) {
        if (!p)
                return NULL;
        registry_op_free(p->resolve);
        registry_op_free(p->range);
        runtime_registry_fetch_free(p->fetch);
        runtime_registry_done(&p->rt);
        registry_hosts_free(p->hosts);
        free(p->layer_digests);
        registry_manifest_free(p->manifest);
        reference_free(p->ref);
        free(p->user);
        secret_free(p->password);
        secret_free(p->token);
        free(p->platform);
        free(p->range_fallback);
        free(p->range_digest);
        free(p->range_hop);
        free(p->mirror_hop);
        free(p);
        return NULL;
}

static void report(Preflight *p, int d, char *text) {
        if (d >= DIAG_NONE && d < _DIAGNOSIS_MAX && text)
                p->cb(p, d, text, p->userdata);
        else
                free(text);
}

static int start_range_probe(Preflight *p);

/* The file that lists the runtime's mirrors for this registry, when it is one (a hosts.toml). */
static const char *mirror_source(const Preflight *p) {
        const char *s = p->hosts ? p->hosts->source : NULL;
        return s && strstr(s, "hosts.toml") ? s : NULL;
}

/* A mirror that stayed silent or refused while the probe walked the runtime's hops: named whatever the
 * hops after it said, since the runtime may not walk past it as the probe did. */
static int mirror_diagnosis(Preflight *p, RegistryOp *op, char **ret_text) {
        size_t n = 0;
        const RegistryHopTry *tries = registry_op_tries(op, &n);
        int d = diagnose_mirror_hops_store(p->runtime, p->rt.containerd_store, tries, n, mirror_source(p), ret_text);
        if (d > DIAG_NONE) {
                free(p->mirror_hop);
                p->mirror_hop = strdup(diagnose_mirror_hop(tries, n));
        }
        return d;
}

static void on_resolved(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *userdata) {
        Preflight *p = userdata;
        char *text = NULL, *mirror_text = NULL;
        int d = DIAG_NONE, md;

        /* e and the hops' outcomes live in op: use them before the op goes */
        registry_seen_note(p->seen, p->ref->domain, p->runtime, p->hosts, r >= 0 ? m->host : NULL, r >= 0 ? NULL : e);
        md = mirror_diagnosis(p, op, &mirror_text);
        if (r < 0 && r != -EBUSY && r != -EACCES && r != -EPERM && r != -ENOENT) {
                /* the pull goes on without manifest checks or Range probes: say why, once */
                _cleanup_free_ char *why = e ? error_detail_format(e) : NULL;
                _cleanup_free_ char *how = p->hosts ? registry_hosts_describe(p->hosts) : NULL;
                char *note = NULL;
                if (asprintf(&note, "registry probe unavailable: %s (%s)", why ?: strerror(-r),
                             how ?: "the runtime's registry settings are unknown") >= 0)
                        report(p, DIAG_NONE, note);
        }
        if (r == -EKEYREJECTED || r == -EPROTO) {
                /* the probe used the runtime's own trust: the runtime will meet the same certificate */
                _cleanup_free_ char *detail = e ? error_detail_format(e) : NULL;
                d = diagnose_tls(p->runtime, p->hosts && p->hosts->n_hops ? p->hosts->hops[p->hosts->n_hops - 1].host :
                                                                               p->ref->domain,
                                 preflight_ca_where(p), detail, true, &text);
        } else if (r == -EBUSY) { /* only what the registry itself said; silence on transport trouble */
                if (e && e->retry_after)
                        p->retry_not_before = now_monotonic() + e->retry_after * USEC_PER_SEC;
                d = diagnose_registry_error(r, e, &text);
        }
        p->resolve = registry_op_free(op);
        report(p, md, mirror_text);
        if (p->manifest_cb)
                p->manifest_cb(p, r >= 0 ? m : NULL, p->userdata);
        if (r >= 0) {
                p->manifest = m;
                p->layer_digests = calloc(m->n_layers ?: 1, sizeof(*p->layer_digests));
                for (size_t i = 0; p->layer_digests && i < m->n_layers; i++)
                        p->layer_digests[i] = m->layers[i].digest;
                if (p->resolved)
                        p->resolved(p, p->userdata);
                d = diagnose_manifest(p->runtime, p->have_rt ? p->rt.version : NULL, m, &text);
                report(p, d, text);
                if (p->range_wanted)
                        (void) start_range_probe(p);
        } else {
                report(p, d, text);
                if (p->range_wanted)
                        report(p, DIAG_RANGE_IGNORED, TAKE_PTR(p->range_fallback));
        }
        if (p->idle) /* last: the job may end, and free p, from here */
                p->idle(p, p->userdata);
}

void preflight_set_manifest_cb(Preflight *p, preflight_manifest_t cb) {
        p->manifest_cb = cb;
}

static int resolve_now(Preflight *p) {
        RegistryTarget t;
        target(p, &t);
        return registry_resolve(p->glue, &t, on_resolved, p, &p->resolve);
}

static void on_runtime_registry(RuntimeRegistryFetch *f, RuntimeRegistry *rt, void *userdata) {
        Preflight *p = userdata;

        if (runtime_registry_copy(rt, &p->rt) >= 0) {
                p->have_rt = true;
                (void) registry_hosts_for(&p->rt, &p->config->registry, p->ref->domain, &p->hosts);
        }
        p->fetch = runtime_registry_fetch_free(p->fetch); /* rt goes with it */
        if (resolve_now(p) >= 0)
                return;
        if (p->range_wanted)
                report(p, DIAG_RANGE_IGNORED, TAKE_PTR(p->range_fallback));
        if (p->idle)
                p->idle(p, p->userdata);
}

void preflight_set_registry_seen(Preflight *p, RegistrySeen *seen) {
        assert(p);
        p->seen = seen;
}

int preflight_start(Preflight *p) {
        if (runtime_driver_get(p->runtime)) {
                int r = runtime_registry_fetch(p->glue, p->runtime, p->config, on_runtime_registry, p, &p->fetch);
                if (r >= 0)
                        return 0;
        }
        return resolve_now(p);
}

bool preflight_busy(const Preflight *p) {
        return p && (p->fetch || p->resolve);
}

void preflight_set_idle_callback(Preflight *p, preflight_idle_t cb) {
        p->idle = cb;
}

const char *preflight_ca_where(const Preflight *p) {
        return p && p->hosts ? p->hosts->ca_where : NULL;
}

const char *preflight_host(const Preflight *p) {
        return p && p->ref ? p->ref->domain : NULL;
}

static void on_range(RegistryOp *op, int r, RegistryRangeProbe *probe, const ErrorDetail *e, void *userdata) {
        Preflight *p = userdata;
        char *text = NULL;
        int d;

        /* probe lives in op: read it before the op goes */
        d = r >= 0 ? diagnose_range_probe(probe, &text) : DIAG_NONE;
        if (d == DIAG_RANGE_IGNORED && (probe->host || probe->via)) {
                free(p->range_hop);
                p->range_hop = strdup(probe->host ?: probe->via);
        }
        p->range = registry_op_free(op);
        p->range_wanted = false;
        if (d > DIAG_NONE) {
                free(p->range_fallback);
                p->range_fallback = NULL;
                report(p, d, text);
        } else {
                /* The registry honours Range when asked directly: the refusal came from a hop the
                 * runtime uses and we do not (a mirror or proxy of its own). */
                free(text);
                report(p, DIAG_RANGE_IGNORED, TAKE_PTR(p->range_fallback));
        }
}

static int start_range_probe(Preflight *p) {
        const RegistryLayer *biggest = NULL;
        RegistryTarget t;

        for (size_t i = 0; p->manifest && i < p->manifest->n_layers; i++)
                if (!biggest || p->manifest->layers[i].size > biggest->size)
                        biggest = &p->manifest->layers[i];
        if (!p->range_digest && !biggest) {
                report(p, DIAG_RANGE_IGNORED, TAKE_PTR(p->range_fallback));
                return 0;
        }
        target(p, &t);
        return registry_probe_range(p->glue, &t, p->range_digest ? p->range_digest : biggest->digest, on_range, p,
                                    &p->range);
}

void preflight_probe_range(Preflight *p, const char *digest, char *fallback) {
        if (p->range || p->range_wanted) {
                free(fallback);
                return;
        }
        p->range_wanted = true;
        p->range_fallback = fallback;
        free(p->range_digest); /* left by a probe that already came back (dockerd retries again) */
        p->range_digest = digest ? strdup(digest) : NULL;
        if (p->resolve || p->fetch)
                return; /* on_resolved starts it */
        if (start_range_probe(p) < 0)
                report(p, DIAG_RANGE_IGNORED, TAKE_PTR(p->range_fallback));
}

usec_t preflight_retry_after(const Preflight *p, usec_t now) {
        return p && p->retry_not_before > now ? p->retry_not_before - now : 0;
}

const char *preflight_layer_digest(const Preflight *p, const char *short_id) {
        for (size_t i = 0; p->manifest && short_id && i < p->manifest->n_layers; i++) {
                const char *d = p->manifest->layers[i].digest;
                const char *hex = strchr(d, ':');
                hex = hex ? hex + 1 : d;
                if (startswith(hex, short_id) || streq(d, short_id))
                        return d;
        }
        return NULL;
}

const char *const *preflight_layer_digests(const Preflight *p, size_t *ret_n) {
        if (!preflight_manifest_digest(p) || !p->layer_digests)
                return NULL;
        *ret_n = p->manifest->n_layers;
        return p->layer_digests;
}

const char *preflight_manifest_digest(const Preflight *p) {
        return p && p->manifest && !p->manifest->platform_missing ? p->manifest->manifest_digest : NULL;
}

void preflight_on_resolved(Preflight *p, preflight_resolved_t resolved) {
        if (p)
                p->resolved = resolved;
}

const char *preflight_range_hop(const Preflight *p) {
        return p ? p->range_hop : NULL;
}

const char *preflight_mirror_hop(const Preflight *p) {
        return p ? p->mirror_hop : NULL;
}
