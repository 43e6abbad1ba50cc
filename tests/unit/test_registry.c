/* test_registry.c: the registry probe's pure half: WWW-Authenticate with tricky quoting, manifests
 * and indexes (schema 2, OCI, schema 1, octet-stream config, garbage), platforms, hosts, sha256.
 * The real-registry tests live in test_registry_live.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ifaddrs.h>

#include "probes/registry/registry.h"

static void challenge_ok(const char *h, RegistryAuthScheme scheme, const char *realm, const char *service,
                         const char *scope) {
        RegistryChallenge c = {};
        if (registry_parse_challenge(h, &c) < 0)
                fail_msg("rejected: %s", h);
        assert_int_equal(c.scheme, scheme);
        if (!streq_ptr(c.realm, realm) || !streq_ptr(c.service, service) || !streq_ptr(c.scope, scope))
                fail_msg("%s: realm=%s service=%s scope=%s", h, c.realm ?: "(null)", c.service ?: "(null)",
                         c.scope ?: "(null)");
        registry_challenge_done(&c);
}

static void challenge_bad(const char *h) {
        RegistryChallenge c = {};
        if (registry_parse_challenge(h, &c) != -EINVAL)
                fail_msg("accepted: %s", h ?: "(null)");
}

static void test_www_authenticate(void **state) {
        RegistryChallenge c = {};

        challenge_ok("Bearer realm=\"https://auth.docker.io/token\",service=\"registry.docker.io\","
                     "scope=\"repository:library/busybox:pull\"",
                     REGISTRY_AUTH_BEARER, "https://auth.docker.io/token", "registry.docker.io",
                     "repository:library/busybox:pull");
        /* commas inside quotes belong to the value */
        challenge_ok("Bearer realm=\"https://a.example/token\",service=\"s\",scope=\"repository:x/y:pull,push\"",
                     REGISTRY_AUTH_BEARER, "https://a.example/token", "s", "repository:x/y:pull,push");
        challenge_ok("Bearer scope=\"repository:a:pull,push repository:b:pull\",realm=\"r,1\"",
                     REGISTRY_AUTH_BEARER, "r,1", NULL, "repository:a:pull,push repository:b:pull");
        /* quoted-pair escapes */
        challenge_ok("Bearer realm=\"https://a/t\\\"k\",service=\"s\\\\x\"", REGISTRY_AUTH_BEARER, "https://a/t\"k",
                     "s\\x", NULL);
        /* case, blanks around '=' and ',' */
        challenge_ok("bearer REALM = \"r\" , Service= \"s\"", REGISTRY_AUTH_BEARER, "r", "s", NULL);
        /* unquoted values, as some registries send them */
        challenge_ok("Bearer realm=https://a.example:8443/token,service=reg", REGISTRY_AUTH_BEARER,
                     "https://a.example:8443/token", "reg", NULL);
        challenge_ok("Basic realm=\"Registry Realm\"", REGISTRY_AUTH_BASIC, "Registry Realm", NULL, NULL);
        challenge_ok("Basic", REGISTRY_AUTH_BASIC, NULL, NULL, NULL);
        /* several challenges: Bearer wins wherever it stands */
        challenge_ok("Basic realm=\"b\", Bearer realm=\"r\",service=\"s\"", REGISTRY_AUTH_BEARER, "r", "s", NULL);
        challenge_ok("Bearer realm=\"r\", Basic realm=\"b\"", REGISTRY_AUTH_BEARER, "r", NULL, NULL);
        /* foreign schemes with token68 or params are skipped */
        challenge_ok("Negotiate YIIabc==, Basic realm=\"x\"", REGISTRY_AUTH_BASIC, "x", NULL, NULL);
        challenge_ok("Digest realm=\"d\", nonce=\"a,b\", qop=\"auth\", Basic realm=\"x\"", REGISTRY_AUTH_BASIC, "x",
                     NULL, NULL);

        assert_int_equal(registry_parse_challenge("Bearer realm=\"r\",service=\"s\",scope=\"repository:x:pull\","
                                                  "error=\"insufficient_scope\"", &c), 0);
        assert_string_equal(c.error, "insufficient_scope");
        registry_challenge_done(&c);
        registry_challenge_done(&c); /* idempotent */

        challenge_bad(NULL);
        challenge_bad("");
        challenge_bad("   ,  ");
        challenge_bad("Bearer");                        /* no realm to ask */
        challenge_bad("Bearer realm=\"\"");
        challenge_bad("Bearer realm=\"unterminated");
        challenge_bad("realm=\"x\"");                   /* parameter before any scheme */
        challenge_bad("Digest realm=\"x\", nonce=\"y\""); /* nothing we speak */
        challenge_bad("Bearer realm=");
        challenge_bad("\"Bearer\" realm=\"x\"");
}

/* seed 004: centos:latest's list and manifest, redis:2.8.23's manifest with the old config type */
static const char centos_manifest[] =
        "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\","
        " \"config\": {\"mediaType\": \"application/vnd.docker.container.image.v1+json\", \"size\": 2143,"
        "  \"digest\": \"sha256:300e315adb2f96afe5f0b2780b87f28ae95231fe3bdd1e16b9ba606307728f55\"},"
        " \"layers\": [{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": 75181999,"
        "  \"digest\": \"sha256:7a0437f04f83f084b7ed68ad9c4a4947e12fc4e1b006b38129bac89114ec3621\"}]}";

static const char redis_manifest[] =
        "{\"schemaVersion\": 2, \"mediaType\": \"application/vnd.docker.distribution.manifest.v2+json\","
        " \"config\": {\"mediaType\": \"application/octet-stream\", \"size\": 5946,"
        "  \"digest\": \"sha256:481995377a044d40ca3358e4203fe95eca1d58b98a1d4c2d9cec51c0c4569613\"},"
        " \"layers\": [{\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": 51356334,"
        "  \"digest\": \"sha256:51f5c6a04d83efd2d45c5fd59537218924bc46705e3de6ffc8bc07b51481610b\"},"
        " {\"mediaType\": \"application/vnd.docker.image.rootfs.diff.tar.gzip\", \"size\": 3,"
        "  \"digest\": \"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"}]}";

static const char centos_list[] =
        "{\"manifests\":["
        "{\"digest\":\"sha256:dbbacecc49b088458781c16f3775f2a2ec7521079034a7ba499c8b0bb7f86875\","
        " \"mediaType\":\"application\\/vnd.docker.distribution.manifest.v2+json\","
        " \"platform\":{\"architecture\":\"amd64\",\"os\":\"linux\"},\"size\":529},"
        "{\"digest\":\"sha256:7723d6b5d15b1c64d0a82ee6298c66cf8c27179e1c8a458e719041ffd08cd091\","
        " \"mediaType\":\"application\\/vnd.docker.distribution.manifest.v2+json\","
        " \"platform\":{\"architecture\":\"arm64\",\"os\":\"linux\",\"variant\":\"v8\"},\"size\":529},"
        "{\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
        " \"mediaType\":\"application\\/vnd.oci.image.manifest.v1+json\","
        " \"platform\":{\"architecture\":\"unknown\",\"os\":\"unknown\"},\"size\":566},"
        "{\"digest\":\"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\","
        " \"mediaType\":\"application\\/vnd.docker.distribution.manifest.v2+json\",\"size\":529}"
        "],\"mediaType\":\"application\\/vnd.docker.distribution.manifest.list.v2+json\",\"schemaVersion\":2}";

static const char schema1_manifest[] =
        "{\"schemaVersion\": 1, \"name\": \"library/busybox\", \"tag\": \"1.0\", \"architecture\": \"amd64\","
        " \"fsLayers\": [{\"blobSum\": \"sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad\"},"
        "  {\"blobSum\": \"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\"}],"
        " \"history\": [{\"v1Compatibility\": \"{}\"}, {\"v1Compatibility\": \"{}\"}],"
        " \"signatures\": [{\"header\": {\"alg\": \"ES256\"}, \"signature\": \"x\", \"protected\": \"y\"}]}";

static RegistryManifest *parse(const char *body, const char *ct, int want) {
        RegistryManifest *m = calloc(1, sizeof(*m));
        int r = registry_parse_manifest(body, strlen(body), ct, m);
        if (r != want)
                fail_msg("parse gave %d, want %d: %.80s", r, want, body);
        return m;
}

static void test_manifest_schema2(void **state) {
        RegistryManifest *m = parse(centos_manifest, REGISTRY_MT_DOCKER_MANIFEST, REGISTRY_OBJECT_MANIFEST);
        assert_int_equal(m->schema_version, 2);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_DOCKER_MANIFEST);
        assert_string_equal(m->config_media_type, REGISTRY_MT_DOCKER_CONFIG);
        assert_string_equal(m->config_digest, "sha256:300e315adb2f96afe5f0b2780b87f28ae95231fe3bdd1e16b9ba606307728f55");
        assert_int_equal(m->config_size, 2143);
        assert_int_equal(m->n_layers, 1);
        assert_int_equal(m->layers[0].size, 75181999);
        assert_string_equal(m->layers[0].media_type, "application/vnd.docker.image.rootfs.diff.tar.gzip");
        /* a second parse into the same struct replaces, never leaks */
        assert_int_equal(registry_parse_manifest(redis_manifest, strlen(redis_manifest),
                                                 REGISTRY_MT_DOCKER_MANIFEST "; charset=utf-8", m),
                         REGISTRY_OBJECT_MANIFEST);
        assert_string_equal(m->config_media_type, REGISTRY_MT_OCTET_STREAM);
        assert_int_equal(m->n_layers, 2);
        registry_manifest_free(m);

        /* generic Content-Type: the body's mediaType decides */
        m = parse(redis_manifest, "application/json", REGISTRY_OBJECT_MANIFEST);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_DOCKER_MANIFEST);
        assert_string_equal(m->config_media_type, REGISTRY_MT_OCTET_STREAM);
        registry_manifest_free(m);
}

static void test_manifest_oci(void **state) {
        /* OCI 1.0 allows the top-level mediaType to be absent */
        static const char oci[] =
                "{\"schemaVersion\":2,\"config\":{\"mediaType\":\"application/vnd.oci.image.config.v1+json\","
                "\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":2},"
                "\"layers\":[],\"annotations\":{\"a\":\"b\"}}";
        RegistryManifest *m = parse(oci, REGISTRY_MT_OCI_MANIFEST, REGISTRY_OBJECT_MANIFEST);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_OCI_MANIFEST);
        assert_string_equal(m->config_media_type, REGISTRY_MT_OCI_CONFIG);
        assert_int_equal(m->n_layers, 0);
        registry_manifest_free(m);
        m = parse(oci, NULL, REGISTRY_OBJECT_MANIFEST);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_OCI_MANIFEST);
        registry_manifest_free(m);
}

static void test_manifest_schema1(void **state) {
        RegistryManifest *m = parse(schema1_manifest, REGISTRY_MT_SCHEMA1_SIGNED, REGISTRY_OBJECT_SCHEMA1);
        assert_int_equal(m->schema_version, 1);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_SCHEMA1_SIGNED);
        assert_null(m->config_media_type);
        assert_int_equal(m->n_layers, 2);
        /* base first, like schema 2 */
        assert_string_equal(m->layers[0].digest, "sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        registry_manifest_free(m);
        /* served as plain JSON: recognized from the body */
        m = parse(schema1_manifest, "application/json", REGISTRY_OBJECT_SCHEMA1);
        assert_string_equal(m->manifest_media_type, REGISTRY_MT_SCHEMA1_SIGNED);
        registry_manifest_free(m);
}

static void test_index(void **state) {
        RegistryManifest *m = parse(centos_list, REGISTRY_MT_DOCKER_LIST, REGISTRY_OBJECT_INDEX);
        char *d = NULL, *mt = NULL;

        assert_string_equal(m->media_type, REGISTRY_MT_DOCKER_LIST);
        assert_int_equal(registry_parse_index(centos_list, strlen(centos_list), "linux/amd64", m, &d, &mt), 0);
        assert_string_equal(d, "sha256:dbbacecc49b088458781c16f3775f2a2ec7521079034a7ba499c8b0bb7f86875");
        assert_string_equal(mt, REGISTRY_MT_DOCKER_MANIFEST);
        assert_string_equal(m->chosen_platform, "linux/amd64");
        free(d), free(mt);
        /* aarch64 and arm64 without variant both mean linux/arm64/v8 */
        assert_int_equal(registry_parse_index(centos_list, strlen(centos_list), "linux/aarch64", m, &d, &mt), 0);
        assert_string_equal(d, "sha256:7723d6b5d15b1c64d0a82ee6298c66cf8c27179e1c8a458e719041ffd08cd091");
        assert_string_equal(m->chosen_platform, "linux/arm64/v8");
        free(d), free(mt);
        assert_int_equal(registry_parse_index(centos_list, strlen(centos_list), "linux/s390x", m, &d, &mt), -ENXIO);
        assert_string_equal(m->chosen_platform, "linux/s390x");
        /* the attestation (unknown/unknown) and the platform-less entry are not platforms */
        assert_int_equal(strv_length(m->platforms), 2);
        assert_string_equal(m->platforms[0], "linux/amd64");
        assert_string_equal(m->platforms[1], "linux/arm64/v8");
        registry_manifest_free(m);

        /* an OCI index recognized by shape alone */
        static const char oci_index[] =
                "{\"schemaVersion\":2,\"manifests\":[{\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\","
                "\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\",\"size\":7,"
                "\"platform\":{\"os\":\"linux\",\"architecture\":\"arm\",\"variant\":\"v7\"}}]}";
        m = parse(oci_index, NULL, REGISTRY_OBJECT_INDEX);
        assert_string_equal(m->media_type, REGISTRY_MT_OCI_INDEX);
        assert_int_equal(registry_parse_index(oci_index, strlen(oci_index), "linux/arm", m, &d, &mt), 0);
        assert_string_equal(m->chosen_platform, "linux/arm/v7");
        free(d), free(mt);
        assert_int_equal(registry_parse_index(oci_index, strlen(oci_index), "linux/arm/v6", m, &d, &mt), -ENXIO);
        registry_manifest_free(m);
}

static void test_garbage(void **state) {
        static const char *const bad[] = {
                "", "{", "[]", "null", "\"x\"", "{}", "{\"schemaVersion\":2}",
                "{\"schemaVersion\":3,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":{},"
                "\"layers\":[]}",
                /* digests that would walk out of the URL path */
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":"
                "{\"mediaType\":\"a\",\"digest\":\"sha256:../../etc\",\"size\":1},\"layers\":[]}",
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":"
                "{\"mediaType\":\"a\",\"digest\":\"sha256:abc\",\"size\":1},\"layers\":[]}",
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":"
                "{\"mediaType\":\"a\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
                "\"size\":-1},\"layers\":[]}",
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.manifest.v1+json\",\"config\":"
                "{\"mediaType\":\"a\",\"digest\":\"sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\","
                "\"size\":1},\"layers\":{}}",
                "{\"schemaVersion\":1,\"fsLayers\":[{\"blobSum\":\"nope\"}]}",
                "{\"schemaVersion\":1,\"fsLayers\":{}}",
                "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.oci.image.index.v1+json\",\"manifests\":{}}",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                RegistryManifest *m = parse(bad[i], NULL, -EBADMSG);
                registry_manifest_free(m);
        }
        /* every truncation of a good manifest is refused cleanly */
        for (size_t n = 0; n < sizeof(centos_manifest) - 1; n += 7) {
                RegistryManifest *m = calloc(1, sizeof(*m));
                assert_int_equal(registry_parse_manifest(centos_manifest, n, REGISTRY_MT_DOCKER_MANIFEST, m), -EBADMSG);
                registry_manifest_free(m);
        }
        RegistryManifest *m = parse(centos_manifest, "application/vnd.oci.artifact.manifest.v1+json",
                                    REGISTRY_OBJECT_MANIFEST); /* unknown header: the body decides */
        registry_manifest_free(m);
        static const char artifact[] = "{\"schemaVersion\":2,\"mediaType\":\"application/vnd.example+json\"}";
        m = parse(artifact, NULL, -EPROTONOSUPPORT);
        registry_manifest_free(m);
        char *d = NULL, *mt = NULL;
        m = calloc(1, sizeof(*m));
        assert_int_equal(registry_parse_index("{\"manifests\":[{\"digest\":\"x\"}]}", 31, NULL, m, &d, &mt), -EBADMSG);
        assert_int_equal(registry_parse_index("{", 1, NULL, m, &d, &mt), -EBADMSG);
        registry_manifest_free(m);
        /* an oversized body is refused before parsing */
        size_t big = REGISTRY_MANIFEST_MAX + 1;
        char *huge = malloc(big);
        memset(huge, ' ', big);
        m = calloc(1, sizeof(*m));
        assert_int_equal(registry_parse_manifest(huge, big, NULL, m), -EBADMSG);
        registry_manifest_free(m);
        free(huge);
}

static void test_error_and_token_bodies(void **state) {
        static const char e[] = "{\"errors\":[{\"code\":\"MANIFEST_UNKNOWN\",\"message\":\"manifest unknown\","
                                "\"detail\":{\"Tag\":\"nope\"}}]}";
        char *tok = NULL;
        ErrorDetail d = { .http_status = 404 };

        assert_int_equal(registry_parse_error_body(e, strlen(e), &d), 0);
        assert_string_equal(d.code, "MANIFEST_UNKNOWN");
        assert_string_equal(d.message, "manifest unknown");
        assert_int_equal(d.http_status, 404);
        assert_int_equal(registry_parse_error_body("<html>502</html>", 16, &d), -EBADMSG);
        assert_int_equal(registry_parse_error_body("{\"errors\":[]}", 13, &d), -EBADMSG);
        /* a body of another shape leaves what was there */
        assert_string_equal(d.code, "MANIFEST_UNKNOWN");
        error_detail_done(&d);

        assert_int_equal(registry_parse_token("{\"token\":\"abc\"}", 15, &tok), 0);
        assert_string_equal(tok, "abc");
        free(tok);
        assert_int_equal(registry_parse_token("{\"token\":\"\",\"access_token\":\"def\"}", 33, &tok), 0);
        assert_string_equal(tok, "def");
        free(tok);
        assert_int_equal(registry_parse_token("{}", 2, &tok), -EBADMSG);
        assert_int_equal(registry_parse_token("{\"token\":\"a\\r\\nX-Evil: 1\"}", 26, &tok), -EBADMSG);
        assert_int_equal(registry_parse_token("token", 5, &tok), -EBADMSG);

        ErrorDetail err = { .http_status = 404, .code = "MANIFEST_UNKNOWN", .message = "manifest unknown",
                              .source = "http://127.0.0.1:5000/v2/x/manifests/t" };
        char *s = error_detail_format(&err);
        assert_string_equal(s, "http://127.0.0.1:5000/v2/x/manifests/t: HTTP 404 MANIFEST_UNKNOWN: manifest unknown");
        free(s);
        err = (ErrorDetail) { .http_status = 429, .code = "TOOMANYREQUESTS", .message = "slow down",
                                .realm = "https://auth.example/token", .retry_after = 30 };
        s = error_detail_format(&err);
        assert_string_equal(s, "HTTP 429 TOOMANYREQUESTS: slow down (auth realm https://auth.example/token) "
                               "(retry after 30s)");
        free(s);
}

static void norm(const char *in, const char *want) {
        char *out = NULL;
        int r = registry_platform_normalize(in, &out);
        if (!want) {
                assert_int_equal(r, -EINVAL);
                return;
        }
        assert_int_equal(r, 0);
        assert_string_equal(out, want);
        free(out);
}

static void test_platforms(void **state) {
        char *host = NULL;

        norm("linux/amd64", "linux/amd64");
        norm("linux/x86_64", "linux/amd64");
        norm("Linux/AMD64", "linux/amd64");
        norm("linux/aarch64", "linux/arm64/v8");
        norm("linux/arm64/v8", "linux/arm64/v8");
        norm("linux/arm64/8", "linux/arm64/v8");
        norm("linux/arm", "linux/arm/v7");
        norm("linux/arm/6", "linux/arm/v6");
        norm("linux/armhf", "linux/arm/v7");
        norm("linux/i386", "linux/386");
        norm("arm64", "linux/arm64/v8");
        norm("windows/amd64", "windows/amd64");
        norm("", NULL);
        norm("/", NULL);
        norm("linux//amd64", NULL);
        norm("a/b/c/d", NULL);
        norm("linux/amd 64", NULL);
        norm(NULL, NULL);

        assert_int_equal(registry_host_platform(&host), 0);
        assert_true(startswith(host, "linux/"));
        free(host);

        assert_true(registry_platform_match("linux/amd64", "linux", "amd64", NULL));
        assert_true(registry_platform_match("linux/amd64", "linux", "amd64", "v3"));
        assert_false(registry_platform_match("linux/amd64/v3", "linux", "amd64", NULL));
        assert_false(registry_platform_match("linux/amd64", "linux", "arm64", NULL));
        assert_false(registry_platform_match("linux/amd64", "windows", "amd64", NULL));
        assert_true(registry_platform_match("linux/arm64", "linux", "arm64", NULL));
        assert_true(registry_platform_match("linux/arm64", "linux", "arm64", "v8"));
        assert_false(registry_platform_match("linux/arm/v7", "linux", "arm", "v6"));
        assert_false(registry_platform_match("linux/amd64", NULL, "amd64", NULL));
        assert_false(registry_platform_match("bad//", "linux", "amd64", NULL));
}

static void urls(const RegistryConfig *c, const char *domain, const char *const *want) {
        char **l = NULL;
        assert_int_equal(registry_base_urls(c, domain, &l), 0);
        for (size_t i = 0; want[i] || l[i]; i++) {
                if (!want[i] || !l[i] || !streq(want[i], l[i]))
                        fail_msg("%s: url %zu is %s, want %s", domain, i, l[i] ?: "(none)", want[i] ?: "(none)");
        }
        strv_free(l);
}

static void test_hosts(void **state) {
        char *insecure[] = { "reg.local:5000", "plainhost", "10.1.0.0/16", "http://other:80", "mirror.local:5000", NULL };
        char *mirrors[] = { "https://mirror.gcr.io/", "127.0.0.1:5000", "mirror.local:5000", "", NULL };
        RegistryConfig c = { .insecure = insecure, .mirrors = mirrors };
        char *s = NULL, **l = NULL;

        assert_string_equal(registry_api_host("docker.io"), "registry-1.docker.io");
        assert_string_equal(registry_api_host("index.docker.io"), "registry-1.docker.io");
        assert_string_equal(registry_api_host("quay.io"), "quay.io");

        assert_true(registry_host_is_loopback("localhost:5000"));
        assert_true(registry_host_is_loopback("127.0.0.1"));
        assert_true(registry_host_is_loopback("127.1.2.3:80"));
        assert_true(registry_host_is_loopback("[::1]:5000"));
        assert_true(registry_host_is_loopback("::1"));
        assert_false(registry_host_is_loopback("10.0.0.1"));
        assert_false(registry_host_is_loopback("localhost.example.com"));
        assert_false(registry_host_is_loopback("128.0.0.1:5000"));
        assert_false(registry_host_is_loopback(NULL));

        /* a mirror on this node: loopback, or an address of one of its interfaces; never a name */
        assert_true(registry_host_is_node_local("127.0.0.1:5000"));
        assert_true(registry_host_is_node_local("localhost:5000"));
        assert_false(registry_host_is_node_local("192.0.2.55:5000")); /* TEST-NET-1: on no interface here */
        assert_false(registry_host_is_node_local("mirror.example:5000"));
        assert_false(registry_host_is_node_local(NULL));
        struct ifaddrs *ifs = NULL;
        assert_int_equal(getifaddrs(&ifs), 0);
        for (struct ifaddrs *i = ifs; i; i = i->ifa_next)
                if (i->ifa_addr && i->ifa_addr->sa_family == AF_INET) {
                        char a[INET_ADDRSTRLEN + 8];
                        assert_non_null(inet_ntop(AF_INET, &((struct sockaddr_in *) i->ifa_addr)->sin_addr, a, INET_ADDRSTRLEN));
                        strcat(a, ":5000");
                        assert_true(registry_host_is_node_local(a));
                }
        freeifaddrs(ifs);

        assert_true(registry_host_is_insecure(&c, "reg.local:5000"));
        assert_false(registry_host_is_insecure(&c, "reg.local:5001"));
        assert_true(registry_host_is_insecure(&c, "plainhost:1234"));
        assert_true(registry_host_is_insecure(&c, "10.1.2.3:5000"));
        assert_false(registry_host_is_insecure(&c, "10.2.0.1"));
        assert_true(registry_host_is_insecure(&c, "other:80"));
        assert_false(registry_host_is_insecure(NULL, "reg.local:5000"));

        /* mirrors first, for Docker Hub only, as dockerd does */
        urls(&c, "docker.io", (const char *const[]) { "https://mirror.gcr.io", "http://127.0.0.1:5000",
                                                      "http://mirror.local:5000", "https://registry-1.docker.io", NULL });
        urls(&c, "quay.io", (const char *const[]) { "https://quay.io", NULL });
        urls(&c, "reg.local:5000", (const char *const[]) { "http://reg.local:5000", NULL });
        urls(NULL, "localhost:5000", (const char *const[]) { "http://localhost:5000", NULL });
        urls(NULL, "[::1]:5000", (const char *const[]) { "http://[::1]:5000", NULL });
        assert_int_equal(registry_base_urls(NULL, "a/b", &l), -EINVAL);
        assert_int_equal(registry_base_urls(NULL, "", &l), -EINVAL);

        assert_int_equal(registry_url_host("https://user:pw@h.example:5000/v2/x?y", &s), 0);
        assert_string_equal(s, "h.example:5000");
        free(s);
        assert_int_equal(registry_url_strip_query("https://user:pw@s3.example/bucket/blob?X-Amz-Signature=secret#f", &s), 0);
        assert_string_equal(s, "https://s3.example/bucket/blob");
        free(s);
        /* a raw '@' in the password: nothing of it may show as the host (found by fuzz_registry) */
        assert_int_equal(registry_url_host("http://user:p@ss@h.example/v2/", &s), 0);
        assert_string_equal(s, "h.example");
        free(s);
        assert_int_equal(registry_url_strip_query("http://user:p@ss@h.example/v2/x@y?q", &s), 0);
        assert_string_equal(s, "http://h.example/v2/x@y");
        free(s);
        assert_int_equal(registry_url_host("not a url", &s), -EINVAL);

        assert_int_equal(registry_parse_retry_after("120", 0), 120);
        assert_int_equal(registry_parse_retry_after(" 7", 0), 7);
        assert_int_equal(registry_parse_retry_after("abc", 0), 0);
        assert_int_equal(registry_parse_retry_after("12abc", 0), 0);
        assert_int_equal(registry_parse_retry_after(NULL, 0), 0);
        /* 2015-10-21 07:27:00 UTC is 1445412420 */
        assert_int_equal(registry_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412420), 60);
        assert_int_equal(registry_parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412500), 0);
}

static void digest_is(const void *data, size_t n, const char *hex) {
        char *d = NULL;
        assert_int_equal(registry_sha256_digest(data, n, &d), 0);
        assert_true(startswith(d, "sha256:"));
        assert_string_equal(d + 7, hex);
        free(d);
}

static void test_sha256(void **state) {
        char *a = malloc(1000000);
        memset(a, 'a', 1000000);
        digest_is("", 0, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        digest_is("abc", 3, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
        /* padding boundaries */
        digest_is(a, 55, "9f4390f8d30c2dd92ec9f095b65e2b9ae9b0a925a5258e241c9f1e910f734318");
        digest_is(a, 56, "b35439a4ac6f0948b6d6f9e3c6af0f5f590ce20f1bde7090ef7970686ec6738a");
        digest_is(a, 64, "ffe054fe7ae0cb6dc65c3af9b61d5209f439851db43d0ba5997337df154668eb");
        digest_is(a, 119, "31eba51c313a5c08226adf18d4a359cfdfd8d2e816b13f4af952f7ea6584dcfb");
        digest_is(a, 1000000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
        free(a);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_www_authenticate),
                cmocka_unit_test(test_manifest_schema2),
                cmocka_unit_test(test_manifest_oci),
                cmocka_unit_test(test_manifest_schema1),
                cmocka_unit_test(test_index),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_error_and_token_bodies),
                cmocka_unit_test(test_platforms),
                cmocka_unit_test(test_hosts),
                cmocka_unit_test(test_sha256),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
