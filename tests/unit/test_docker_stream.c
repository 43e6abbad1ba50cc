/* Unit tests: dockerd's progress stream cut into messages whatever the read boundaries; statuses
 * mapped to phases; errors classified. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "probes/docker/docker_stream.h"
#include "probes/docker/docker.h"

typedef struct Seen {
        unsigned n;
        char ids[32][80];
        char statuses[32][80];
} Seen;

static int collect(json_t *msg, void *userdata) {
        Seen *s = userdata;
        const char *id = json_string_value(json_object_get(msg, "id"));
        const char *st = json_string_value(json_object_get(msg, "status"));
        if (s->n < 32) {
                snprintf(s->ids[s->n], 80, "%s", id ? id : "");
                snprintf(s->statuses[s->n], 80, "%s", st ? st : "");
        }
        s->n++;
        return 0;
}

static const char stream[] =
        "{\"status\":\"Pulling from test/x\",\"id\":\"v1\"}\r\n"
        "{\"status\":\"Pulling fs layer\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Waiting\",\"progressDetail\":{},\"id\":\"bbb\"}\r\n"
        "{\"status\":\"Downloading\",\"progressDetail\":{\"current\":512,\"total\":2048},\"progress\":\"[=> ]\",\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Verifying Checksum\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Download complete\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Extracting\",\"progressDetail\":{\"current\":100,\"total\":2048},\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Pull complete\",\"progressDetail\":{},\"id\":\"aaa\"}\r\n"
        "{\"status\":\"Digest: sha256:0123\"}\r\n"
        "{\"status\":\"Status: Downloaded newer image for x\"}\r\n";

static void test_whole_stream(void **state) {
        Seen s = {};
        DockerStream *ds = NULL;
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        assert_int_equal(docker_stream_feed(ds, stream, strlen(stream)), 0);
        assert_int_equal(docker_stream_finish(ds), 0);
        assert_int_equal(s.n, 10);
        assert_string_equal(s.ids[1], "aaa");
        assert_string_equal(s.statuses[6], "Extracting");
        docker_stream_free(ds);
}

/* Every split point, and byte-by-byte: the same messages come out. */
static void test_every_split(void **state) {
        size_t n = strlen(stream);
        for (size_t cut = 0; cut <= n; cut++) {
                Seen s = {};
                DockerStream *ds = NULL;
                assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
                assert_int_equal(docker_stream_feed(ds, stream, cut), 0);
                assert_int_equal(docker_stream_feed(ds, stream + cut, n - cut), 0);
                assert_int_equal(docker_stream_finish(ds), 0);
                assert_int_equal(s.n, 10);
                assert_string_equal(s.statuses[9], "Status: Downloaded newer image for x");
                docker_stream_free(ds);
        }
        Seen s = {};
        DockerStream *ds = NULL;
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        for (size_t i = 0; i < n; i++)
                assert_int_equal(docker_stream_feed(ds, stream + i, 1), 0);
        assert_int_equal(docker_stream_finish(ds), 0);
        assert_int_equal(s.n, 10);
        docker_stream_free(ds);
}

static void test_last_message_without_newline(void **state) {
        Seen s = {};
        DockerStream *ds = NULL;
        const char *in = "{\"status\":\"Waiting\",\"id\":\"a\"}\n{\"status\":\"Pull complete\",\"id\":\"a\"}";
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        assert_int_equal(docker_stream_feed(ds, in, strlen(in)), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(docker_stream_finish(ds), 0);
        assert_int_equal(s.n, 2);
        docker_stream_free(ds);
}

static void test_truncated(void **state) {
        Seen s = {};
        DockerStream *ds = NULL;
        const char *in = "{\"status\":\"Waiting\",\"id\":\"a\"}\r\n{\"status\":\"Downlo";
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        assert_int_equal(docker_stream_feed(ds, in, strlen(in)), 0);
        assert_int_equal(docker_stream_finish(ds), -EBADMSG);
        assert_non_null(strstr(docker_stream_error(ds), "message 2"));
        assert_int_equal(s.n, 1);
        docker_stream_free(ds);
}

static void test_garbage(void **state) {
        static const char *const bad[] = {
                "not json at all\n", "[1,2,3]\n", "\"a string\"\n", "{\"status\": \n", "\x01\x02\xff\xfe\n",
                "{\"a\":1,\"a\":2}\n",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                Seen s = {};
                DockerStream *ds = NULL;
                assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
                assert_int_equal(docker_stream_feed(ds, bad[i], strlen(bad[i])), -EBADMSG);
                assert_non_null(docker_stream_error(ds));
                /* Once broken, it stays broken: nothing half-parsed is delivered later. */
                assert_int_equal(docker_stream_feed(ds, "{}\n", 3), -EBADMSG);
                assert_int_equal(s.n, 0);
                docker_stream_free(ds);
        }
}

static void test_oversized(void **state) {
        Seen s = {};
        DockerStream *ds = NULL;
        size_t n = DOCKER_STREAM_MAX_MESSAGE + 10;
        char *big = malloc(n);
        assert_non_null(big);
        memset(big, 'a', n);
        big[0] = '{';
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        /* Arrives in pieces, without a newline: the cap must hold across reads. */
        int r = 0;
        for (size_t off = 0; off < n && r == 0; off += 4096)
                r = docker_stream_feed(ds, big + off, MIN((size_t) 4096, n - off));
        assert_int_equal(r, -EMSGSIZE);
        assert_non_null(strstr(docker_stream_error(ds), "larger than"));
        free(big);
        docker_stream_free(ds);
}

static void test_blank_lines_ignored(void **state) {
        Seen s = {};
        DockerStream *ds = NULL;
        const char *in = "\r\n\n  \r\n{\"status\":\"Waiting\",\"id\":\"a\"}\r\n\r\n";
        assert_int_equal(docker_stream_new(collect, &s, &ds), 0);
        assert_int_equal(docker_stream_feed(ds, in, strlen(in)), 0);
        assert_int_equal(docker_stream_finish(ds), 0);
        assert_int_equal(s.n, 1);
        docker_stream_free(ds);
}

static void parse_one(const char *text, DockerMessage *m, json_t **keep) {
        *keep = json_loads(text, 0, NULL);
        assert_non_null(*keep);
        assert_int_equal(docker_message_parse(*keep, m), 0);
}

static void test_status_mapping(void **state) {
        static const struct {
                const char *status;
                Phase phase;
        } table[] = {
                { "Pulling fs layer", PHASE_DOWNLOADING }, { "Waiting", PHASE_WAITING },
                { "Downloading", PHASE_DOWNLOADING },      { "Verifying Checksum", PHASE_VERIFYING },
                { "Download complete", PHASE_WAITING },    { "Extracting", PHASE_EXTRACTING },
                { "Pull complete", PHASE_DONE },           { "Already exists", PHASE_DONE },
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
                char buf[256];
                DockerMessage m;
                json_t *j;
                snprintf(buf, sizeof(buf),
                         "{\"status\":\"%s\",\"progressDetail\":{\"current\":7,\"total\":9},\"id\":\"abc\"}",
                         table[i].status);
                parse_one(buf, &m, &j);
                assert_int_equal(m.kind, DOCKER_MSG_LAYER);
                assert_int_equal(m.phase, table[i].phase);
                assert_string_equal(m.id, "abc");
                assert_int_equal(m.current, 7);
                assert_int_equal(m.total, 9);
                json_decref(j);
        }
}

/* dockerd on the containerd image store (28.5.2, captured on the bed): extraction is a counter of
 * seconds, repeated several times a second. It is the extracting phase, never bytes. */
static void test_seconds_counter_is_not_bytes(void **state) {
        DockerMessage m;
        json_t *j;

        parse_one("{\"status\":\"Extracting\",\"progressDetail\":{\"current\":4,\"units\":\"s\"},"
                  "\"progress\":\"4 s\",\"id\":\"4122d4eb220d\"}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_LAYER);
        assert_int_equal(m.phase, PHASE_EXTRACTING);
        assert_string_equal(m.units, "s");
        assert_int_equal(m.current, 0);
        assert_int_equal(m.total, 0);
        json_decref(j);

        parse_one("{\"status\":\"Downloading\",\"progressDetail\":{\"current\":512,\"total\":2048,\"units\":\"B\"},"
                  "\"id\":\"4122d4eb220d\"}", &m, &j);
        assert_int_equal(m.current, 512);
        assert_int_equal(m.total, 2048);
        json_decref(j);

        parse_one("{\"status\":\"Pull complete\",\"progressDetail\":{\"hidecounts\":true},\"id\":\"4122d4eb220d\"}", &m, &j);
        assert_int_equal(m.phase, PHASE_DONE);
        json_decref(j);
}

static void test_image_retry_error(void **state) {
        DockerMessage m;
        json_t *j;

        parse_one("{\"status\":\"Pulling from library/busybox\",\"id\":\"latest\"}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_IMAGE);
        assert_null(m.id); /* the tag is not a layer */
        json_decref(j);

        parse_one("{\"status\":\"Digest: sha256:abcd\"}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_IMAGE);
        assert_string_equal(m.digest, "sha256:abcd");
        json_decref(j);

        parse_one("{\"status\":\"Retrying in 5 seconds\",\"progressDetail\":{},\"id\":\"2a57ddc33014\"}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_RETRY);
        assert_string_equal(m.id, "2a57ddc33014");
        json_decref(j);

        parse_one("{\"errorDetail\":{\"message\":\"unexpected EOF\"},\"error\":\"unexpected EOF\"}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_ERROR);
        assert_string_equal(m.error, "unexpected EOF");
        json_decref(j);

        parse_one("{\"errorDetail\":{\"message\":\"only detail\"}}", &m, &j);
        assert_int_equal(m.kind, DOCKER_MSG_ERROR);
        assert_string_equal(m.error, "only detail");
        json_decref(j);

        j = json_loads("{\"foo\":1}", 0, NULL);
        assert_int_equal(docker_message_parse(j, &m), -EBADMSG);
        json_decref(j);
}

static void test_classify(void **state) {
        static const struct {
                const char *msg;
                ErrorClass c;
        } table[] = {
                { "manifest for 127.0.0.1:5000/x:nope not found: manifest unknown: manifest unknown", ERROR_PERMANENT },
                { "pull access denied for nope, repository does not exist or may require 'docker login'", ERROR_PERMANENT },
                { "unauthorized: authentication required", ERROR_PERMANENT },
                { "no matching manifest for linux/arm64/v8 in the manifest list entries", ERROR_PERMANENT },
                { "invalid reference format", ERROR_PERMANENT },
                /* captured from dockerd 28.5.2 on the containerd image store (containerd 2.1.9) */
                { "failed to resolve reference \"192.0.2.2:45735/test/plainhttp:v1\": failed to do request: Head "
                  "\"https://192.0.2.2:45735/v2/test/plainhttp/manifests/v1\": http: server gave HTTP response to "
                  "HTTPS client",
                  ERROR_PERMANENT },
                { "failed to resolve reference \"127.0.0.1:40489/test/x:v1\": failed to do request: Head "
                  "\"https://127.0.0.1:40489/v2/test/x/manifests/v1\": tls: first record does not look like a TLS "
                  "handshake",
                  ERROR_PERMANENT },
                { "failed to resolve reference \"192.0.2.2:40373/test/plainhttp:v1\": failed to do request: Head "
                  "\"https://192.0.2.2:40373/v2/test/plainhttp/manifests/v1\": tls: failed to verify certificate: "
                  "x509: certificate is valid for 127.0.0.1, not 192.0.2.2",
                  ERROR_PERMANENT },
                { "Get \"https://reg.example:5000/v2/\": x509: certificate signed by unknown authority", ERROR_PERMANENT },
                { "unexpected EOF", ERROR_TRANSIENT },
                { "expected HTTP 206 from byte range request", ERROR_TRANSIENT },
                { "read tcp 127.0.0.1:1->127.0.0.1:2: read: connection reset by peer", ERROR_TRANSIENT },
                { "received unexpected HTTP status: 503 Service Unavailable", ERROR_TRANSIENT },
                { "failed to register layer: Error processing tar file(exit status 1): unexpected EOF", ERROR_TRANSIENT },
                { NULL, ERROR_TRANSIENT },
        };
        for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
                assert_int_equal(docker_classify_error(table[i].msg), table[i].c);
}

static void test_split_reference(void **state) {
        static const struct {
                const char *in, *from, *tag;
        } ok[] = {
                { "busybox", "busybox", "latest" },
                { "127.0.0.1:5000/test/x:v1", "127.0.0.1:5000/test/x", "v1" },
                { "127.0.0.1:5000/test/x", "127.0.0.1:5000/test/x", "latest" },
                { "reg/x@sha256:abc", "reg/x", "sha256:abc" },
        };
        for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
                char *from = NULL, *tag = NULL;
                assert_int_equal(docker_split_reference(ok[i].in, &from, &tag), 0);
                assert_string_equal(from, ok[i].from);
                assert_string_equal(tag, ok[i].tag);
                free(from);
                free(tag);
        }
        char *from = NULL, *tag = NULL;
        assert_int_equal(docker_split_reference("", &from, &tag), -EINVAL);
        assert_int_equal(docker_split_reference("a:", &from, &tag), -EINVAL);
        assert_int_equal(docker_split_reference("has space", &from, &tag), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_whole_stream),
                cmocka_unit_test(test_every_split),
                cmocka_unit_test(test_last_message_without_newline),
                cmocka_unit_test(test_truncated),
                cmocka_unit_test(test_garbage),
                cmocka_unit_test(test_oversized),
                cmocka_unit_test(test_blank_lines_ignored),
                cmocka_unit_test(test_status_mapping),
                cmocka_unit_test(test_image_retry_error),
                cmocka_unit_test(test_seconds_counter_is_not_bytes),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_split_reference),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
