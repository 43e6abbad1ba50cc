/* registry_result.c: the registry probe's request and result types: the target built from a reference,
 * destructors, the error's text and copy. Calls nothing of the probe itself. */
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
