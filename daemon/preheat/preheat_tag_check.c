/* preheat_tag_check.c: a ready target's recheck asks the registry whether its tag moved to another
 * digest, the way the runtime would ask (its mirrors, certs.d / hosts.toml CAs). A moved tag marks the
 * target (t->tag_moved) and wakes the scheduler's reap, which queues it for a pull. */
#include "daemon/preheat/preheat_model.h"

#include "basic/reference.h"
#include "probes/registry/credentials.h"
#include "probes/registry/registry.h"

#define PREHEAT_REGISTRY_TIMEOUT (15 * USEC_PER_SEC)

static const Config *cfg(const Preheat *p) { return p->config->config; }

static void on_registry_resolved(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *userdata) {
        Target *t = userdata;
        const StateEntry *s = state_find(t->preheat->state, t->image, preheat_runtime_name(t));

        registry_op_free(op);
        t->check = NULL;
        /* An unreachable registry proves nothing: the image stays ready. */
        if (r >= 0 && m->digest && s && s->digest && !streq(m->digest, s->digest) && t->state == PREHEAT_READY) {
                t->tag_moved = true; /* the scheduler's reap queues it for a pull */
                (void) sd_event_source_set_enabled(t->preheat->reap, SD_EVENT_ONESHOT);
        }
        registry_manifest_free(m);
}

/* The check goes to the registry the way the runtime does (its mirrors, certs.d / hosts.toml CAs):
 * with our own settings only, a registry behind a private CA never answers it, and a moved tag is
 * never noticed. rt NULL: the runtime did not say; our settings only. */
static void registry_check_with(Target *t, const RuntimeRegistry *runtime) {
        Preheat *p = t->preheat;
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_credential_ Credential *cred = NULL;
        RegistryTarget rt;

        if (t->check || reference_parse(t->image, &ref) < 0)
                return;
        if (cfg(p)->credentials)
                (void) credentials_lookup(cfg(p)->credentials, reference_registry_host(ref), &cred);
        rt = (RegistryTarget) {
                .domain = ref->domain,
                .repository = ref->path,
                .reference = ref->tag,
                .platform = t->platform ? t->platform : cfg(p)->platform,
                .username = cred ? cred->username : NULL,
                .password = cred ? cred->password : NULL,
                .identity_token = cred ? cred->identity_token : NULL,
                .config = &cfg(p)->registry,
                .runtime = runtime,
                .timeout = PREHEAT_REGISTRY_TIMEOUT,
        };
        (void) registry_resolve(p->glue, &rt, on_registry_resolved, t, &t->check);
}

static void on_check_runtime_registry(RuntimeRegistryFetch *f, RuntimeRegistry *runtime, void *userdata) {
        Target *t = userdata;

        registry_check_with(t, runtime); /* runtime is valid during this call; the check copies it */
        t->check_rt = runtime_registry_fetch_free(t->check_rt);
}

void preheat_tag_check_start(Target *t) {
        Preheat *p = t->preheat;
        _cleanup_reference_ ImageRef *ref = NULL;

        if (!p->registry_check || t->check || t->check_rt || reference_parse(t->image, &ref) < 0 || ref->digest ||
            !ref->tag)
                return; /* pinned by digest: it cannot move */
        if (runtime_registry_fetch(p->glue, t->runtime, cfg(p), on_check_runtime_registry, t, &t->check_rt) < 0)
                registry_check_with(t, NULL);
}

void preheat_tag_check_stop(Target *t) {
        t->check = registry_op_free(t->check);
        t->check_rt = runtime_registry_fetch_free(t->check_rt);
        t->tag_moved = false;
}
