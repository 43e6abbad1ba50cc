/* test_diagnose.c: every diagnosis from real runtime error texts (the field reports in
 * shared/seeds and moby/containerd sources), the manifest/probe/attempt forms, and negatives. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/pull/diagnose.h"

static void expect_text(RuntimeKind k, const char *text, Diagnosis want, const char *needle) {
        char *sentence = NULL;
        int r = diagnose_runtime_error(k, text, &sentence);
        if (r != (int) want)
                fail_msg("%s: got %s, want %s", text ? text : "(null)", diagnosis_to_string(r),
                         diagnosis_to_string(want));
        if (want == DIAG_NONE)
                assert_null(sentence);
        else {
                assert_non_null(sentence);
                if (needle && !strstr(sentence, needle))
                        fail_msg("'%s' lacks '%s'", sentence, needle);
        }
        free(sentence);
}

static void test_names(void **state) {
        for (int d = 0; d < _DIAGNOSIS_MAX; d++) {
                const char *n = diagnosis_to_string(d);
                assert_non_null(n);
                for (const char *c = n; *c; c++)
                        assert_true((*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-');
                assert_int_equal(diagnosis_from_string(n), d);
        }
        assert_string_equal(diagnosis_to_string(DIAG_OCTET_STREAM_CONFIG), "octet-stream-config");
        assert_string_equal(diagnosis_to_string(DIAG_MIDDLEBOX_TIMEOUT), "middlebox-timeout");
        assert_string_equal(diagnosis_to_string(DIAG_RANGE_IGNORED), "range-ignored");
        assert_null(diagnosis_to_string(_DIAGNOSIS_MAX));
        assert_null(diagnosis_to_string(-1));
        assert_int_equal(diagnosis_from_string("nope"), _DIAGNOSIS_INVALID);
        assert_int_equal(diagnosis_from_string(NULL), _DIAGNOSIS_INVALID);
        assert_true(diagnosis_is_permanent(DIAG_SCHEMA1));
        assert_true(diagnosis_is_permanent(DIAG_REGISTRY_SCHEME));
        assert_string_equal(diagnosis_to_string(DIAG_REGISTRY_SCHEME), "registry-scheme");
        assert_false(diagnosis_is_permanent(DIAG_RATE_LIMITED));
        assert_false(diagnosis_is_permanent(DIAG_MIDDLEBOX_TIMEOUT));
}

/* seed 000: dockerd behind a mirror and an LB that ignores Range and cuts at 60 s */
static void test_seed000_range(void **state) {
        expect_text(RUNTIME_DOCKER,
                    "time=\"2022-09-08T01:12:08.681917626Z\" level=info msg=\"Download failed, retrying (2/5): "
                    "expected HTTP 206 from byte range request\"",
                    DIAG_RANGE_IGNORED, "Range");
        expect_text(RUNTIME_DOCKER, "expected HTTP 206 from byte range request", DIAG_RANGE_IGNORED, "200");
        /* the other lines of the same report name nothing by themselves */
        expect_text(RUNTIME_DOCKER, "Download failed, retrying (3/5): unexpected EOF", DIAG_NONE, NULL);
        expect_text(RUNTIME_DOCKER, "Not continuing with pull after error: context canceled", DIAG_NONE, NULL);
        assert_int_equal(attempt_failure_from_text("Download failed, retrying (3/5): unexpected EOF"), ATTEMPT_EOF);
        assert_int_equal(attempt_failure_from_text("(104: Connection reset by peer) while reading upstream"),
                         ATTEMPT_RESET);
        assert_int_equal(attempt_failure_from_text("stream error: stream ID 17; INTERNAL_ERROR; received from peer"),
                         ATTEMPT_RESET);
        assert_int_equal(attempt_failure_from_text("expected HTTP 206 from byte range request"), ATTEMPT_TRANSIENT);
        assert_int_equal(attempt_failure_from_text("manifest unknown"), ATTEMPT_OTHER);
        assert_int_equal(attempt_failure_from_text(NULL), ATTEMPT_NONE);
}

/* seed 004: containerd 1.4 and an image built by docker 1.10 */
static void test_seed004_octet_stream(void **state) {
        const char *kubelet =
                "Failed to pull image \"ccr.ccs.tencentyun.com/tkeimages/tke-hpc-controller:v1.0.0\": rpc error: "
                "code = NotFound desc = failed to pull and unpack image "
                "\"ccr.ccs.tencentyun.com/tkeimages/tke-hpc-controller:v1.0.0\": failed to unpack image on "
                "snapshotter overlayfs: failed to extract layer "
                "sha256:d72a74c56330b347f7d18b64d2effd93edd695fde25dc301d52c37efbcf4844e: failed to get reader "
                "from content store: content digest "
                "sha256:2bf487c4beaa6fa7ea6e46ec1ff50029024ebf59f628c065432a16a940792b58: not found";
        const char *crictl =
                "FATA[0001] pulling image failed: rpc error: code = NotFound desc = failed to pull and unpack image "
                "\"docker.io/library/redis:2.8.23\": failed to unpack image on snapshotter overlayfs: failed to "
                "extract layer sha256:4dcab49015d47e8f300ec33400a02cebc7b54cadd09c37e49eccbc655279da90: failed to "
                "get reader from content store: content digest "
                "sha256:51f5c6a04d83efd2d45c5fd59537218924bc46705e3de6ffc8bc07b51481610b: not found";

        expect_text(RUNTIME_CONTAINERD, kubelet, DIAG_OCTET_STREAM_CONFIG,
                    "sha256:2bf487c4beaa6fa7ea6e46ec1ff50029024ebf59f628c065432a16a940792b58");
        expect_text(RUNTIME_CONTAINERD, crictl, DIAG_OCTET_STREAM_CONFIG, "pull it through Docker");
        expect_text(RUNTIME_CONTAINERD, crictl, DIAG_OCTET_STREAM_CONFIG, "current builder");
        /* the runtime that skips it, once (measured: dockerd 28.5 on its containerd store fails the same way) */
        expect_text(RUNTIME_CONTAINERD, crictl, DIAG_OCTET_STREAM_CONFIG, "which containerd 1.4 to 2.0 skips: ");
        expect_text(RUNTIME_DOCKER, crictl, DIAG_OCTET_STREAM_CONFIG, "which Docker's containerd image store");
        expect_text(RUNTIME_CONTAINERD,
                    "level=warning msg=\"reference for unknown type: application/octet-stream\" "
                    "digest=\"sha256:481995377a044d40ca3358e4203fe95eca1d58b98a1d4c2d9cec51c0c4569613\" "
                    "mediatype=application/octet-stream size=5946",
                    DIAG_OCTET_STREAM_CONFIG, "docker < 1.11");
        expect_text(RUNTIME_CONTAINERD,
                    "unexpected media type application/octet-stream for "
                    "sha256:481995377a044d40ca3358e4203fe95eca1d58b98a1d4c2d9cec51c0c4569613: not found",
                    DIAG_OCTET_STREAM_CONFIG, NULL);
        /* dockerd with the containerd image store fails the same way; the remedy differs */
        expect_text(RUNTIME_DOCKER, crictl, DIAG_OCTET_STREAM_CONFIG, "classic");
}

/* seed 002: the unpigz hang surfaces as an error only once someone kills the helper */
static void test_seed002_decompressor(void **state) {
        char *t = NULL;

        expect_text(RUNTIME_DOCKER,
                    "failed to register layer: Error processing tar file(exit status 1): unexpected EOF",
                    DIAG_NONE, NULL);
        assert_int_equal(diagnose_decompressor(RUNTIME_DOCKER, "unpigz", 1170083, true, 300 * USEC_PER_SEC, &t),
                         DIAG_DECOMPRESSOR_HANG);
        assert_non_null(strstr(t, "MOBY_DISABLE_PIGZ=true"));
        assert_non_null(strstr(t, "1170083"));
        assert_non_null(strstr(t, "spun"));
        assert_non_null(strstr(t, "300s"));
        free(t);
        assert_int_equal(diagnose_decompressor(RUNTIME_CONTAINERD, "unpigz", 42, false, 120 * USEC_PER_SEC, &t),
                         DIAG_DECOMPRESSOR_HANG);
        assert_non_null(strstr(t, "CONTAINERD_DISABLE_PIGZ=1"));
        assert_non_null(strstr(t, "CONTAINERD_DISABLE_IGZIP=1"));
        assert_null(strstr(t, "MOBY_"));
        assert_non_null(strstr(t, "slept"));
        free(t);
        /* containerd 2.0+ runs igzip first: both switches, or it falls back to the other helper */
        for (RuntimeKind k = RUNTIME_DOCKER; k <= RUNTIME_CONTAINERD; k++) {
                assert_int_equal(diagnose_decompressor(k, "igzip", 43, true, 90 * USEC_PER_SEC, &t), DIAG_DECOMPRESSOR_HANG);
                assert_non_null(strstr(t, "igzip (pid 43)"));
                assert_non_null(strstr(t, "CONTAINERD_DISABLE_IGZIP=1"));
                assert_non_null(strstr(t, "CONTAINERD_DISABLE_PIGZ=1"));
                assert_null(strstr(t, "MOBY_"));
                free(t);
        }
        assert_int_equal(diagnose_decompressor(RUNTIME_DOCKER, "docker-untar", 7, false, 60 * USEC_PER_SEC, &t),
                         DIAG_DECOMPRESSOR_HANG);
        assert_non_null(strstr(t, "MOBY_DISABLE_PIGZ=true"));
        free(t);
        assert_int_equal(diagnose_decompressor(RUNTIME_DOCKER, "xz", 7, true, 60 * USEC_PER_SEC, &t),
                         DIAG_DECOMPRESSOR_HANG);
        assert_null(strstr(t, "PIGZ"));
        free(t);
        assert_int_equal(diagnose_decompressor(RUNTIME_DOCKER, NULL, 7, true, 60, &t), DIAG_NONE);
        assert_null(t);
}

static void test_platform_and_schema1(void **state) {
        expect_text(RUNTIME_DOCKER,
                    "Error response from daemon: no matching manifest for linux/arm64/v8 in the manifest list entries",
                    DIAG_NO_PLATFORM, "linux/arm64/v8");
        expect_text(RUNTIME_DOCKER,
                    "no matching manifest for windows(10.0.22631)/amd64 in the manifest list entries",
                    DIAG_NO_PLATFORM, "windows(10.0.22631)/amd64");
        expect_text(RUNTIME_CONTAINERD,
                    "failed to pull and unpack image \"r.example/x:1\": no match for platform in manifest: not found",
                    DIAG_NO_PLATFORM, NULL);
        expect_text(RUNTIME_DOCKER,
                    "Docker Image Format v1 and Docker Image manifest version 2, schema 1 support has been removed. "
                    "Suggest the author of docker.io/library/busybox:1.0 to upgrade the image to the OCI Format "
                    "or Docker Image manifest v2, schema 2. More information at "
                    "https://docs.docker.com/go/deprecated-image-specs/",
                    DIAG_SCHEMA1, "schema 2 or OCI");
        expect_text(RUNTIME_DOCKER,
                    "[DEPRECATION NOTICE] Docker Image Format v1, and Docker Image manifest version 2, schema 1 "
                    "support will be removed in an upcoming release.",
                    DIAG_SCHEMA1, NULL);
        /* containerd 2.x; the "not implemented" must not read as anything else */
        expect_text(RUNTIME_CONTAINERD,
                    "failed to resolve reference \"docker.io/library/busybox:1.0\": not implemented: media type "
                    "\"application/vnd.docker.distribution.manifest.v1+prettyjws\" is no longer supported since "
                    "containerd v2.0, please rebuild the image as "
                    "\"application/vnd.docker.distribution.manifest.v2+json\" or "
                    "\"application/vnd.oci.image.manifest.v1+json\": not found",
                    DIAG_SCHEMA1, NULL);
        expect_text(RUNTIME_CONTAINERD, "media-type: schema 1 not supported", DIAG_SCHEMA1, NULL);
}

static void test_auth_rate_disk_notfound(void **state) {
        expect_text(RUNTIME_DOCKER,
                    "Error response from daemon: pull access denied for private/app, repository does not exist or "
                    "may require 'docker login': denied: requested access to the resource is denied",
                    DIAG_AUTH, "denied");
        expect_text(RUNTIME_DOCKER,
                    "Error response from daemon: Head \"https://reg.example/v2/app/manifests/1\": unauthorized: "
                    "authentication required",
                    DIAG_AUTH, "docker login");
        expect_text(RUNTIME_DOCKER, "Get \"https://reg.example/v2/\": no basic auth credentials", DIAG_AUTH, NULL);
        expect_text(RUNTIME_CONTAINERD,
                    "failed to pull and unpack image \"reg.example/app:1\": failed to resolve reference "
                    "\"reg.example/app:1\": failed to authorize: failed to fetch anonymous token: unexpected status "
                    "from GET request to https://auth.example.com/token?scope=repository%3Aapp%3Apull&service=reg: "
                    "401 Unauthorized",
                    DIAG_AUTH, "realm https://auth.example.com/token:");
        expect_text(RUNTIME_CONTAINERD,
                    "failed to resolve reference \"reg.example/app:1\": pull access denied, repository does not "
                    "exist or may require authorization: server message: insufficient_scope: authorization failed",
                    DIAG_AUTH, NULL);
        expect_text(RUNTIME_CONTAINERD,
                    "unexpected status from HEAD request to https://reg.example/v2/app/manifests/1: 403 Forbidden",
                    DIAG_AUTH, "denied");

        expect_text(RUNTIME_DOCKER,
                    "Error response from daemon: toomanyrequests: You have reached your pull rate limit. You may "
                    "increase the limit by authenticating and upgrading: https://www.docker.com/increase-rate-limit",
                    DIAG_RATE_LIMITED, "429");
        expect_text(RUNTIME_CONTAINERD,
                    "failed to copy: httpReadSeeker: failed open: unexpected status code "
                    "https://registry-1.docker.io/v2/library/python/manifests/sha256:a773107406cd3dc167cca6f91c82c2c5"
                    "587ac6e84e240baa6dfc8599cd849d5e: 429 Too Many Requests - Server message: toomanyrequests: You "
                    "have reached your unauthenticated pull rate limit.",
                    DIAG_RATE_LIMITED, NULL);

        expect_text(RUNTIME_CONTAINERD,
                    "failed to extract layer sha256:aa: write "
                    "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs/usr/lib/x.so: no "
                    "space left on device: unknown",
                    DIAG_DISK_FULL, "/var/lib/containerd/io.containerd.snapshotter.v1.overlayfs/snapshots/42/fs");
        expect_text(RUNTIME_DOCKER, "write /var/lib/docker/tmp/GetImageBlob123: no space left on device",
                    DIAG_DISK_FULL, "/var/lib/docker");
        expect_text(RUNTIME_DOCKER, "No space left on device", DIAG_DISK_FULL, NULL);

        /* captured from dockerd 28.5.2 on the containerd image store (containerd 2.1.9) */
        expect_text(RUNTIME_DOCKER,
                    "failed to resolve reference \"192.0.2.2:45735/test/plainhttp:v1\": failed to do request: Head "
                    "\"https://192.0.2.2:45735/v2/test/plainhttp/manifests/v1\": http: server gave HTTP response to "
                    "HTTPS client",
                    DIAG_REGISTRY_SCHEME, "/etc/docker/certs.d/192.0.2.2:45735/ca.crt");
        expect_text(RUNTIME_DOCKER,
                    "failed to resolve reference \"127.0.0.1:40489/test/x:v1\": failed to do request: Head "
                    "\"https://127.0.0.1:40489/v2/test/x/manifests/v1\": tls: first record does not look like a TLS "
                    "handshake",
                    DIAG_REGISTRY_SCHEME, "insecure-registries");
        expect_text(RUNTIME_CONTAINERD,
                    "failed to pull and unpack image \"reg.example:5000/app:1\": failed to resolve reference "
                    "\"reg.example:5000/app:1\": failed to do request: Head "
                    "\"https://reg.example:5000/v2/app/manifests/1\": http: server gave HTTP response to HTTPS client",
                    DIAG_REGISTRY_SCHEME, "/etc/containerd/certs.d/reg.example:5000/hosts.toml");
        expect_text(RUNTIME_DOCKER,
                    "Error response from daemon: manifest for busybox:nope not found: manifest unknown: manifest unknown",
                    DIAG_NOT_FOUND, "tag");
        expect_text(RUNTIME_CONTAINERD,
                    "failed to pull and unpack image \"docker.io/library/busybox:nope\": failed to resolve reference "
                    "\"docker.io/library/busybox:nope\": docker.io/library/busybox:nope: not found",
                    DIAG_NOT_FOUND, NULL);
}

static void test_text_negatives(void **state) {
        char *t = (char *) 0x1;
        assert_int_equal(diagnose_runtime_error(RUNTIME_DOCKER, NULL, &t), DIAG_NONE);
        assert_null(t);
        expect_text(RUNTIME_DOCKER, "", DIAG_NONE, NULL);
        expect_text(RUNTIME_CONTAINERD, "context canceled", DIAG_NONE, NULL);
        expect_text(RUNTIME_CONTAINERD, "rpc error: code = Canceled desc = context canceled", DIAG_NONE, NULL);
        expect_text(RUNTIME_DOCKER, "dial unix /var/run/docker.sock: connect: connection refused", DIAG_NONE, NULL);
        expect_text(RUNTIME_DOCKER, "read tcp 10.0.0.2:51234->10.0.0.1:443: read: connection reset by peer",
                    DIAG_NONE, NULL);
        /* an untrusted certificate is tls-untrusted, not a scheme problem */
        expect_text(RUNTIME_DOCKER,
                    "Head \"https://192.0.2.2:40373/v2/x/manifests/v1\": tls: failed to verify certificate: x509: "
                    "certificate signed by unknown authority",
                    DIAG_TLS_UNTRUSTED, NULL);
        /* without ret_text the verdict alone comes back */
        assert_int_equal(diagnose_runtime_error(RUNTIME_DOCKER, "toomanyrequests", NULL), DIAG_RATE_LIMITED);
}

static RegistryManifest *manifest(const char *mt, int schema, const char *config_mt) {
        RegistryManifest *m = calloc(1, sizeof(*m));
        m->manifest_media_type = mt ? strdup(mt) : NULL;
        m->schema_version = schema;
        m->config_media_type = config_mt ? strdup(config_mt) : NULL;
        m->config_digest = strdup("sha256:481995377a044d40ca3358e4203fe95eca1d58b98a1d4c2d9cec51c0c4569613");
        return m;
}

static void test_manifest(void **state) {
        char *t = NULL;
        RegistryManifest *m = manifest(REGISTRY_MT_DOCKER_MANIFEST, 2, REGISTRY_MT_OCTET_STREAM);

        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, m, &t), DIAG_OCTET_STREAM_CONFIG);
        assert_non_null(strstr(t, "sha256:481995377a044d40ca3358e4203fe95eca1d58b98a1d4c2d9cec51c0c4569613"));
        assert_non_null(strstr(t, "through Docker"));
        free(t);
        /* Docker's classic store pulls these fine */
        assert_int_equal(diagnose_manifest(RUNTIME_DOCKER, NULL, m, &t), DIAG_NONE);
        assert_null(t);
        /* containerd 1.6 and 1.7 refuse them, 2.x unpacks them (measured on the bed's rows) */
        static const struct {
                const char *version;
                int want;
        } versions[] = {
                { "1.6.20~ds1", DIAG_OCTET_STREAM_CONFIG }, { "v1.7.24", DIAG_OCTET_STREAM_CONFIG },
                { "garbage", DIAG_OCTET_STREAM_CONFIG },    { "", DIAG_OCTET_STREAM_CONFIG },
                { "v2.1.9", DIAG_NONE },                    { "2.1.9+unknown", DIAG_NONE },
                { "2.2.0", DIAG_NONE },                     { "v10.0.0", DIAG_NONE },
        };
        for (size_t i = 0; i < ELEMENTSOF(versions); i++) {
                assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, versions[i].version, m, &t), versions[i].want);
                assert_true((t != NULL) == (versions[i].want != DIAG_NONE));
                free(t);
                t = NULL;
        }
        registry_manifest_free(m);

        m = manifest(REGISTRY_MT_DOCKER_MANIFEST, 2, REGISTRY_MT_DOCKER_CONFIG);
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, m, &t), DIAG_NONE);
        registry_manifest_free(m);

        m = manifest(REGISTRY_MT_SCHEMA1_SIGNED, 1, NULL);
        assert_int_equal(diagnose_manifest(RUNTIME_DOCKER, NULL, m, &t), DIAG_SCHEMA1);
        assert_non_null(strstr(t, "prettyjws"));
        free(t);
        registry_manifest_free(m);

        m = calloc(1, sizeof(*m));
        m->is_index = true;
        m->platform_missing = true;
        m->chosen_platform = strdup("linux/s390x");
        m->platforms = calloc(3, sizeof(char *));
        m->platforms[0] = strdup("linux/amd64");
        m->platforms[1] = strdup("linux/arm64/v8");
        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, m, &t), DIAG_NO_PLATFORM);
        assert_non_null(strstr(t, "no linux/s390x entry (it has: linux/amd64, linux/arm64/v8)"));
        free(t);
        registry_manifest_free(m);

        assert_int_equal(diagnose_manifest(RUNTIME_CONTAINERD, NULL, NULL, &t), DIAG_NONE);
}

static void test_range_probe(void **state) {
        char *t = NULL;
        RegistryRangeProbe p = { .http_status = 206, .honoured = true, .host = "127.0.0.1:5000", .via = "127.0.0.1:5000" };

        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_NONE);
        p = (RegistryRangeProbe) { .http_status = 200, .host = "mirror.example:5000", .via = "mirror.example:5000" };
        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_RANGE_IGNORED);
        assert_non_null(strstr(t, "mirror.example:5000 answered a Range request with HTTP 200"));
        free(t);
        p = (RegistryRangeProbe) { .http_status = 200, .host = "cdn.example", .via = "mirror.example", .redirects = 1 };
        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_RANGE_IGNORED);
        assert_non_null(strstr(t, "cdn.example answered"));
        assert_non_null(strstr(t, "through mirror.example"));
        free(t);
        assert_int_equal(diagnose_range_probe(NULL, &t), DIAG_NONE);
        /* a mirror of the runtime's is named as one, directly or as the start of a redirect */
        p = (RegistryRangeProbe) { .http_status = 200, .host = "127.0.0.1:7001", .via = "127.0.0.1:7001", .via_mirror = true };
        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_RANGE_IGNORED);
        assert_non_null(strstr(t, "the mirror 127.0.0.1:7001 answered a Range request with HTTP 200"));
        assert_non_null(strstr(t, "remove the mirror"));
        free(t);
        p = (RegistryRangeProbe) { .http_status = 200, .host = "cdn.example", .via = "m.example", .via_mirror = true };
        assert_int_equal(diagnose_range_probe(&p, &t), DIAG_RANGE_IGNORED);
        assert_non_null(strstr(t, "cdn.example answered a Range request with HTTP 200 (reached through the mirror m.example)"));
        free(t);
}

#define SEC USEC_PER_SEC
static void test_mirror_hops(void **state) {
        char *t = NULL;
        /* issue 25 as measured on containerd 2.1.9: a silent mirror in front of a pull-through cache */
        RegistryHopTry silent[] = {
                { .host = "127.0.0.1:7001", .mirror = true, .outcome = REGISTRY_HOP_SILENT, .elapsed = 15 * SEC + 2000 },
                { .host = "127.0.0.1:7002", .mirror = true, .outcome = REGISTRY_HOP_ANSWERED, .http_status = 200 },
        };
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, silent, 2, "hosts.toml /c/certs.d/r/hosts.toml", &t),
                         DIAG_MIRROR_UNRESPONSIVE);
        assert_non_null(strstr(t, "the mirror 127.0.0.1:7001 (hosts.toml /c/certs.d/r/hosts.toml) accepted the connection "
                                  "and stayed silent for 15s"));
        assert_non_null(strstr(t, "the next hop, mirror 127.0.0.1:7002, answers (HTTP 200)"));
        assert_non_null(strstr(t, "#10624"));
        assert_non_null(strstr(t, "dial_timeout"));
        free(t);
        assert_string_equal(diagnose_mirror_hop(silent, 2), "127.0.0.1:7001");
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, silent, 2, NULL, NULL), DIAG_MIRROR_UNRESPONSIVE);
        /* dockerd: registry-mirrors, and what it does (measured): 15 s, then the next endpoint */
        assert_int_equal(diagnose_mirror_hops(RUNTIME_DOCKER, silent, 2, NULL, &t), DIAG_MIRROR_UNRESPONSIVE);
        assert_non_null(strstr(t, "(registry-mirrors in /etc/docker/daemon.json)"));
        assert_non_null(strstr(t, "15 s"));
        assert_null(strstr(t, "#10624"));
        free(t);
        /* dockerd on the containerd image store (measured on 28.5.2): containerd's resolver waits on it */
        assert_int_equal(diagnose_mirror_hops_store(RUNTIME_DOCKER, true, silent, 2, NULL, &t), DIAG_MIRROR_UNRESPONSIVE);
        assert_non_null(strstr(t, "(registry-mirrors in /etc/docker/daemon.json)"));
        assert_non_null(strstr(t, "containerd image store"));
        assert_non_null(strstr(t, "#10624"));
        assert_null(strstr(t, "15 s"));
        free(t);
        /* containerd has one wording whatever the flag says */
        assert_int_equal(diagnose_mirror_hops_store(RUNTIME_CONTAINERD, true, silent, 2, NULL, &t), DIAG_MIRROR_UNRESPONSIVE);
        assert_non_null(strstr(t, "containerd does not fall back from a mirror that accepts and stays silent"));
        free(t);
        /* the last hop asked: nothing after it; the registry itself silent is no mirror's fault */
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, silent, 1, NULL, &t), DIAG_MIRROR_UNRESPONSIVE);
        assert_non_null(strstr(t, "no hop after it was asked"));
        free(t);
        RegistryHopTry origin[] = { { .host = "reg:5000", .outcome = REGISTRY_HOP_SILENT, .elapsed = 15 * SEC } };
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, origin, 1, NULL, &t), DIAG_NONE);
        assert_null(t);
        /* refused, with a next hop that is silent too, then one that refuses the image */
        RegistryHopTry refused[] = {
                { .host = "10.0.0.1:5000", .mirror = true, .outcome = REGISTRY_HOP_REFUSED },
                { .host = "reg:5000", .outcome = REGISTRY_HOP_SILENT },
        };
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, refused, 2, NULL, &t), DIAG_MIRROR_REFUSED);
        assert_non_null(strstr(t, "the mirror 10.0.0.1:5000 (hosts.toml) refused the connection"));
        assert_non_null(strstr(t, "the next hop, registry reg:5000, does not answer either (silent)"));
        assert_non_null(strstr(t, "tries the next host at once"));
        free(t);
        refused[1] = (RegistryHopTry) { .host = "reg:5000", .outcome = REGISTRY_HOP_ANSWERED, .http_status = 404 };
        assert_int_equal(diagnose_mirror_hops(RUNTIME_DOCKER, refused, 2, NULL, &t), DIAG_MIRROR_REFUSED);
        assert_non_null(strstr(t, "answers but refuses this image (HTTP 404)"));
        free(t);
        /* a mirror that answered, even with an error, is not this diagnosis; nor is one after an answer */
        RegistryHopTry fine[] = {
                { .host = "m:1", .mirror = true, .outcome = REGISTRY_HOP_ANSWERED, .http_status = 503 },
                { .host = "m:2", .mirror = true, .outcome = REGISTRY_HOP_SILENT },
        };
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, fine, 2, NULL, &t), DIAG_NONE);
        assert_null(t);
        assert_null(diagnose_mirror_hop(fine, 2));
        /* a mirror that failed otherwise (name resolution, TLS) is left to the other diagnoses */
        fine[0].outcome = REGISTRY_HOP_FAILED;
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, fine, 1, NULL, &t), DIAG_NONE);
        assert_int_equal(diagnose_mirror_hops(RUNTIME_CONTAINERD, NULL, 0, NULL, &t), DIAG_NONE);
        assert_false(diagnosis_is_permanent(DIAG_MIRROR_UNRESPONSIVE));
        assert_string_equal(diagnosis_to_string(DIAG_MIRROR_UNRESPONSIVE), "mirror-unresponsive");
        assert_string_equal(diagnosis_to_string(DIAG_MIRROR_REFUSED), "mirror-refused");
}

static void test_registry_error(void **state) {
        char *t = NULL;
        ErrorDetail e = { .http_status = 401, .code = "UNAUTHORIZED", .realm = "https://auth.example/token" };

        assert_int_equal(diagnose_registry_error(-EACCES, &e, &t), DIAG_AUTH);
        assert_non_null(strstr(t, "realm https://auth.example/token"));
        assert_non_null(strstr(t, "401 UNAUTHORIZED"));
        free(t);
        e = (ErrorDetail) { .http_status = 403, .code = "DENIED" };
        assert_int_equal(diagnose_registry_error(-EPERM, &e, &t), DIAG_AUTH);
        assert_non_null(strstr(t, "denied"));
        free(t);
        e = (ErrorDetail) { .http_status = 429, .code = "TOOMANYREQUESTS", .retry_after = 30 };
        assert_int_equal(diagnose_registry_error(-EBUSY, &e, &t), DIAG_RATE_LIMITED);
        assert_non_null(strstr(t, "retry after 30s"));
        free(t);
        e = (ErrorDetail) { .http_status = 404, .code = "MANIFEST_UNKNOWN" };
        assert_int_equal(diagnose_registry_error(-ENOENT, &e, &t), DIAG_NOT_FOUND);
        assert_non_null(strstr(t, "MANIFEST_UNKNOWN"));
        free(t);
        e = (ErrorDetail) { .http_status = 500 };
        assert_int_equal(diagnose_registry_error(-EIO, &e, &t), DIAG_NONE);
        assert_int_equal(diagnose_registry_error(-ETIMEDOUT, NULL, &t), DIAG_NONE);
        assert_null(t);
}

#define S(x) ((usec_t) ((x) * USEC_PER_SEC))

static int attempts(const DiagAttempt *a, size_t n, char **t) {
        return diagnose_attempts(a, n, t);
}

static void test_middlebox(void **state) {
        char *t = NULL;

        /* seed 000: an nginx LB with proxy_read_timeout 60s */
        DiagAttempt lb[] = { { ATTEMPT_RESET, S(61) }, { ATTEMPT_RESET, S(59.5) } };
        assert_int_equal(attempts(lb, 2, &t), DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "connections cut after ~60s"));
        assert_non_null(strstr(t, "proxy_read_timeout or an LB idle timeout between this node and the registry"));
        free(t);

        DiagAttempt three[] = { { ATTEMPT_EOF, S(58) }, { ATTEMPT_RESET, S(60) }, { ATTEMPT_RESET, S(62) },
                                { ATTEMPT_TRANSIENT, S(1) } };
        assert_int_equal(attempts(three, 4, &t), DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "~60s on 3 consecutive attempts (58-62s)"));
        free(t);

        DiagAttempt abs_ok[] = { { ATTEMPT_RESET, S(10) }, { ATTEMPT_RESET, S(14.9) } };
        assert_int_equal(attempts(abs_ok, 2, NULL), DIAG_MIDDLEBOX_TIMEOUT);
        DiagAttempt abs_no[] = { { ATTEMPT_RESET, S(10) }, { ATTEMPT_RESET, S(16) } };
        assert_int_equal(attempts(abs_no, 2, NULL), DIAG_NONE);
        DiagAttempt pct_ok[] = { { ATTEMPT_RESET, S(200) }, { ATTEMPT_RESET, S(229) } };
        assert_int_equal(attempts(pct_ok, 2, NULL), DIAG_MIDDLEBOX_TIMEOUT);
        DiagAttempt pct_no[] = { { ATTEMPT_RESET, S(200) }, { ATTEMPT_RESET, S(240) } };
        assert_int_equal(attempts(pct_no, 2, NULL), DIAG_NONE);

        DiagAttempt one[] = { { ATTEMPT_RESET, S(60) } };
        assert_int_equal(attempts(one, 1, &t), DIAG_NONE);
        assert_null(t);
        DiagAttempt broken[] = { { ATTEMPT_RESET, S(60) }, { ATTEMPT_TRANSIENT, S(60) }, { ATTEMPT_RESET, S(60) } };
        assert_int_equal(attempts(broken, 3, NULL), DIAG_NONE);
        DiagAttempt fast[] = { { ATTEMPT_RESET, S(0.4) }, { ATTEMPT_RESET, S(0.5) } };
        assert_int_equal(attempts(fast, 2, NULL), DIAG_NONE);
        DiagAttempt other[] = { { ATTEMPT_OTHER, S(60) }, { ATTEMPT_OTHER, S(60) } };
        assert_int_equal(attempts(other, 2, NULL), DIAG_NONE);
        assert_int_equal(attempts(NULL, 0, NULL), DIAG_NONE);

        /* the newest agreeing run wins */
        DiagAttempt newest[] = { { ATTEMPT_RESET, S(30) }, { ATTEMPT_RESET, S(30) }, { ATTEMPT_RESET, S(90) },
                                 { ATTEMPT_RESET, S(92) } };
        assert_int_equal(attempts(newest, 4, &t), DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "~91s on 2"));
        free(t);
        /* an older run still counts when the newest attempts do not agree */
        DiagAttempt older[] = { { ATTEMPT_RESET, S(300) }, { ATTEMPT_RESET, S(310) }, { ATTEMPT_RESET, S(20) } };
        assert_int_equal(attempts(older, 3, &t), DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "~305s"));
        free(t);
}

static void test_seed000_as_it_happened(void **state) {
        char *t = NULL;

        /* dockerd's own retries: cut at ~60 s, a Range retry refused with no byte (not timed), cut again */
        DiagAttempt lb[] = { { ATTEMPT_RESET, S(60.4) }, { ATTEMPT_RESET, S(59.8) } };
        assert_true(diagnose_attempts_cut(lb, 2) >= S(59.8) && diagnose_attempts_cut(lb, 2) <= S(60.4));
        DiagAttempt apart[] = { { ATTEMPT_RESET, S(20) }, { ATTEMPT_RESET, S(60) } };
        assert_int_equal(diagnose_attempts_cut(apart, 2), 0);
        assert_int_equal(diagnose_attempts_cut(NULL, 0), 0);

        /* the 1.4 GB layer of the report: 70 % in 60 s */
        assert_int_equal(diagnose_unpassable_hop(S(60), "lb.example:443", "2a57ddc33014", 1378000000, 964600000, &t),
                         DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "cannot finish through lb.example:443"));
        assert_non_null(strstr(t, "after ~60s and answers Range with HTTP 200"));
        assert_non_null(strstr(t, "read or idle timeout on lb.example:443 above the layer's transfer time"));
        assert_non_null(strstr(t, "layer 2a57ddc33014 needs ~86s for its 1378 MB"));
        assert_non_null(strstr(t, "bypass that hop"));
        free(t);
        /* hop and sizes unknown: still the finding and the remedy */
        assert_int_equal(diagnose_unpassable_hop(S(3), NULL, NULL, 0, 0, &t), DIAG_MIDDLEBOX_TIMEOUT);
        assert_non_null(strstr(t, "through a hop between this node and the registry"));
        assert_null(strstr(t, "needs ~"));
        free(t);
        assert_int_equal(diagnose_unpassable_hop(0, "h", NULL, 0, 0, &t), DIAG_NONE);
        assert_null(t);
}

/* containerd's own image_pull_progress_timeout. The first text is PullImage's grpc-message as
 * containerd 2.1.9 sent it on the bed (image_pull_progress_timeout = "5s", a layer paused 15 s at the
 * proxy: its log said "cancel pulling image ... because of no progress in 5s"); the second is the
 * unpack form of containerd #13909 (2.2's transfer service), from unpacker.go's "failed to extract
 * layer (%s %s) to %s as %q: %w" under CRI's "failed to pull and unpack image %q: %w". */
static void test_cri_progress_timeout(void **state) {
        static const char measured[] = "failed to pull and unpack image \"127.0.0.1:33627/t/pause:v1\": context canceled";
        static const char unpack[] =
                "rpc error: code = Canceled desc = failed to pull and unpack image \"docker.io/library/big:1\": "
                "failed to extract layer (application/vnd.oci.image.layer.v1.tar+gzip "
                "sha256:1cf715c5f043c568d13710c8f9644db47901c639a2e50675dc8f27f5f56a3bde) to overlayfs as "
                "\"extract-613909505-4YQc sha256:b647400ed936631c6d66a2acc5b0f4a2dcaf86b690342053c46f2c6c9249043c\": "
                "context canceled";
        const char *alive = "layer sha256:1cf715c5f043 extracting, silent-alive: unpigz pid 4242 busy";
        char *t = NULL;

        assert_string_equal(diagnosis_to_string(DIAG_CRI_PROGRESS_TIMEOUT), "cri-progress-timeout");
        assert_false(diagnosis_is_permanent(DIAG_CRI_PROGRESS_TIMEOUT));

        assert_int_equal(diagnose_cri_cancel(measured, "layer 1cf715c5f043 downloading, progressing: 1.0MiB of 8.0MiB",
                                             "5s", &t), DIAG_CRI_PROGRESS_TIMEOUT);
        assert_non_null(strstr(t, "image_pull_progress_timeout (5s)"));
        assert_non_null(strstr(t, "io.containerd.cri.v1.images"));
        assert_non_null(strstr(t, "#14158"));          /* not 0s on 2.x */
        assert_non_null(strstr(t, "1.0MiB of 8.0MiB")); /* what pullwatch saw */
        assert_null(strstr(t, "#13909"));
        free(t);

        assert_int_equal(diagnose_cri_cancel(unpack, alive, NULL, &t), DIAG_CRI_PROGRESS_TIMEOUT);
        assert_non_null(strstr(t, "during unpack"));
        assert_non_null(strstr(t, "#13909"));
        assert_non_null(strstr(t, "use_local_image_pull = true"));
        assert_non_null(strstr(t, "unpigz pid 4242 busy"));
        assert_non_null(strstr(t, "image_pull_progress_timeout saw")); /* value unknown: none invented */
        free(t);

        /* no evidence that the pull was alive (or pullwatch judged it faulted): not this diagnosis */
        t = NULL;
        assert_int_equal(diagnose_cri_cancel(unpack, NULL, "5m0s", &t), DIAG_NONE);
        assert_null(t);
        /* other cancels: dockerd's, or another failure of CRI's */
        assert_int_equal(diagnose_cri_cancel("Not continuing with pull after error: context canceled", alive, NULL, &t),
                         DIAG_NONE);
        assert_int_equal(diagnose_cri_cancel("failed to pull and unpack image \"x\": unexpected EOF", alive, NULL, &t),
                         DIAG_NONE);
        assert_int_equal(diagnose_cri_cancel(NULL, alive, NULL, &t), DIAG_NONE);
        /* the plain text diagnosis does not claim it: only with pullwatch's evidence */
        assert_int_equal(diagnose_runtime_error(RUNTIME_CONTAINERD, measured, NULL), DIAG_NONE);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cri_progress_timeout),
                cmocka_unit_test(test_seed000_as_it_happened),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_seed000_range),
                cmocka_unit_test(test_seed004_octet_stream),
                cmocka_unit_test(test_seed002_decompressor),
                cmocka_unit_test(test_platform_and_schema1),
                cmocka_unit_test(test_auth_rate_disk_notfound),
                cmocka_unit_test(test_text_negatives),
                cmocka_unit_test(test_manifest),
                cmocka_unit_test(test_range_probe),
                cmocka_unit_test(test_mirror_hops),
                cmocka_unit_test(test_registry_error),
                cmocka_unit_test(test_middlebox),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
