/* fuzz_registry: what a registry (or anything answering in its place: a mirror, a proxy, a captive
 * portal) sends back: manifest and index bodies, WWW-Authenticate, error bodies, token replies,
 * Retry-After, redirect URLs, platform strings from an index. All parsers run on every input. */
#include "tests/fuzz/fuzz_util.h"
#include "probes/registry/registry.h"

static const char *const content_types[] = {
        NULL,
        REGISTRY_MT_DOCKER_MANIFEST,
        REGISTRY_MT_DOCKER_LIST,
        REGISTRY_MT_OCI_MANIFEST,
        REGISTRY_MT_OCI_INDEX,
        REGISTRY_MT_SCHEMA1_SIGNED,
        "text/plain; charset=utf-8",
};

static const char *const wants[] = { NULL, "linux/amd64", "linux/arm64/v8", "linux/arm/v7", "windows/amd64" };

static void check_manifest(const RegistryManifest *m, int kind) {
        if (kind == REGISTRY_OBJECT_INDEX) {
                FUZZ_CHECK(m->media_type);
                return;
        }
        FUZZ_CHECK(m->schema_version == 1 || m->schema_version == 2);
        for (size_t i = 0; i < m->n_layers; i++)
                FUZZ_CHECK(m->layers[i].digest && strlen(m->layers[i].digest) > 0);
}

static void manifests(const char *body, size_t size) {
        for (size_t i = 0; i < ELEMENTSOF(content_types); i++) {
                RegistryManifest *m = calloc(1, sizeof(*m));
                int r;
                FUZZ_CHECK(m);
                r = registry_parse_manifest(body, size, content_types[i], m);
                FUZZ_CHECK(r < 0 || r < _REGISTRY_OBJECT_MAX);
                if (r >= 0)
                        check_manifest(m, r);
                registry_manifest_free(m);
        }
        for (size_t i = 0; i < ELEMENTSOF(wants); i++) {
                RegistryManifest *m = calloc(1, sizeof(*m));
                char *digest = NULL, *mt = NULL;
                int r;
                FUZZ_CHECK(m);
                r = registry_parse_index(body, size, wants[i], m, &digest, &mt);
                if (r == 0)
                        FUZZ_CHECK(digest && mt && m->chosen_platform);
                if (r == -ENXIO)
                        FUZZ_CHECK(!digest && m->chosen_platform);
                for (char **p = m->platforms; p && *p; p++) {
                        /* what we print for an index's platforms is already normalized */
                        char *again = NULL;
                        FUZZ_CHECK(registry_platform_normalize(*p, &again) == 0);
                        FUZZ_CHECK(streq(again, *p));
                        free(again);
                }
                free(digest);
                free(mt);
                registry_manifest_free(m);
        }
}

static void bodies(const char *body, size_t size) {
        char *token = NULL;
        ErrorDetail e = {};
        if (registry_parse_error_body(body, size, &e) == 0)
                FUZZ_CHECK(e.code || e.message);
        error_detail_done(&e);
        if (registry_parse_token(body, size, &token) == 0)
                FUZZ_CHECK(token && *token && !strpbrk(token, "\r\n"));
        free(token);
}

/* Header values and URLs are strings: the input up to its first NUL. */
static void strings(const char *s) {
        RegistryChallenge c = {};
        char *a = NULL, *b = NULL;

        if (registry_parse_challenge(s, &c) == 0)
                FUZZ_CHECK(c.scheme == REGISTRY_AUTH_BASIC || c.scheme == REGISTRY_AUTH_BEARER);
        registry_challenge_done(&c);

        (void) registry_parse_retry_after(s, 1700000000);

        if (registry_url_host(s, &a) == 0)
                FUZZ_CHECK(*a && !strchr(a, '@') && !strpbrk(a, "/?#"));
        if (registry_url_strip_query(s, &b) == 0) {
                const char *rest = strstr(b, "://") + 3;
                FUZZ_CHECK(!strpbrk(rest, "?#"));
                FUZZ_CHECK(!memchr(rest, '@', strcspn(rest, "/"))); /* no userinfo */
        }
        free(a);
        free(b);
        a = b = NULL;

        if (registry_platform_normalize(s, &a) == 0) {
                FUZZ_CHECK(registry_platform_normalize(a, &b) == 0);
                FUZZ_CHECK(streq(a, b));
        }
        free(a);
        free(b);
        (void) registry_host_is_loopback(s);
        (void) registry_api_host(s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *s = fuzz_strndup(data, size);

        manifests(s, size);
        bodies(s, size);
        strings(s);
        free(s);
        return 0;
}
