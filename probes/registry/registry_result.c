/* registry_result.c: the registry probe's request and result types: the target built from a reference,
 * destructors. Calls nothing of the probe itself (the error is an ErrorDetail, basic/error_detail.h). */
#include "probes/registry/registry.h"

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
