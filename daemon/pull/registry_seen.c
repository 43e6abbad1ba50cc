/* registry_seen.c: per registry host and runtime, the last probe's view: the settings the runtime
 * gave (hosts.toml, certs.d, insecure, mirrors) and whether the probe got through, and where not, why. */
#include "daemon/pull/registry_seen.h"

#include <assert.h>

#define SEEN_MAX 64

typedef struct Seen {
        RuntimeKind runtime;
        json_t *entry;
} Seen;

struct RegistrySeen {
        Seen seen[SEEN_MAX];
        size_t n_seen;
};

int registry_seen_new(RegistrySeen **ret) {
        _cleanup_free_ RegistrySeen *s = NULL;

        assert(ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

void registry_seen_clear(RegistrySeen *s) {
        if (!s)
                return;
        for (size_t i = 0; i < s->n_seen; i++)
                json_decref(s->seen[i].entry);
        s->n_seen = 0;
}

RegistrySeen *registry_seen_free(RegistrySeen *s) {
        registry_seen_clear(s);
        free(s);
        return NULL;
}

static json_t *hops_json(const RegistryHosts *h) {
        json_t *a = json_array();
        for (size_t i = 0; a && h && i < h->n_hops; i++) {
                const RegistryHop *hop = &h->hops[i];
                json_array_append_new(a, json_pack("{s:s, s:b, s:b, s:s?, s:s?}", "url", hop->root, "mirror", hop->mirror,
                                                   "skip_verify", hop->skip_verify, "ca",
                                                   hop->ca_files ? hop->ca_files[0] : NULL, "client_cert",
                                                   hop->client_cert));
        }
        return a;
}

void registry_seen_note(RegistrySeen *s, const char *domain, RuntimeKind runtime, const RegistryHosts *hosts,
                        const char *reached_hop, const ErrorDetail *e) {
        _cleanup_free_ char *desc = hosts ? registry_hosts_describe(hosts) : NULL, *err = e ? error_detail_format(e) : NULL;
        json_t *o;
        size_t i;

        if (!s || !domain)
                return;
        o = json_pack("{s:s, s:s, s:s, s:s?, s:s?, s:o, s:b, s:s?, s:s?, s:s?}", "host", domain, "runtime",
                      runtime_kind_to_string(runtime) ?: "unknown", "settings",
                      desc ?: "runtime settings unknown (pullwatch's own registry config)", "source",
                      hosts ? hosts->source : NULL, "ca", hosts ? hosts->ca_where : NULL, "hops", hops_json(hosts),
                      "reached", reached_hop != NULL, "via", reached_hop, "error", reached_hop ? NULL : err,
                      "settings_error", hosts ? hosts->error : NULL);
        if (!o)
                return;
        for (i = 0; i < s->n_seen; i++)
                if (s->seen[i].runtime == runtime &&
                    streq(json_string_value(json_object_get(s->seen[i].entry, "host")), domain))
                        break;
        if (i == s->n_seen) {
                if (s->n_seen == SEEN_MAX) { /* the oldest goes */
                        json_decref(s->seen[0].entry);
                        memmove(s->seen, s->seen + 1, sizeof(Seen) * (SEEN_MAX - 1));
                        i = --s->n_seen;
                }
                s->n_seen++;
        } else
                json_decref(s->seen[i].entry);
        s->seen[i] = (Seen) { .runtime = runtime, .entry = o };
}

json_t *registry_seen_json(const RegistrySeen *s) {
        json_t *a = json_array();
        for (size_t i = 0; a && s && i < s->n_seen; i++)
                (void) json_array_append(a, s->seen[i].entry);
        return a;
}
