/* Unit tests: gRPC frames encoded and decoded whatever the read boundaries; truncated, oversized,
 * compressed and garbage input refused cleanly; grpc-message percent-decoding; status names; protobuf
 * garbage rejected; transport failures named by socket (against throwaway unix-socket servers); and
 * containerd's answers classified permanent or transient; ingest refs of every MakeRefKey form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "probes/transport/grpc.h"
#include "probes/containerd/containerd.h"
#include "probes/containerd/containerd_content.h"
#include "containerd_content.pb-c.h"
#include "containerd_version.pb-c.h"

typedef struct Frames {
        unsigned n;
        size_t len[16];
        uint8_t data[16][64];
        int fail_at; /* return an error for this frame index, -1 never */
} Frames;

static int collect(const uint8_t *data, size_t len, void *userdata) {
        Frames *f = userdata;
        if ((int) f->n == f->fail_at)
                return -ECANCELED;
        if (f->n < 16) {
                f->len[f->n] = len;
                memcpy(f->data[f->n], data, MIN(len, (size_t) 64));
        }
        f->n++;
        return 0;
}

static void encode_version(const char *v, uint8_t **buf, size_t *n) {
        Containerd__Services__Version__V1__VersionResponse m = CONTAINERD__SERVICES__VERSION__V1__VERSION_RESPONSE__INIT;
        m.version = (char *) v;
        m.revision = (char *) "rev";
        assert_int_equal(grpc_frame_encode(&m.base, buf, n), 0);
}

static void test_encode_empty(void **state) {
        Containerd__Services__Version__V1__Empty e = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        uint8_t *buf = NULL;
        size_t n = 0;
        assert_int_equal(grpc_frame_encode(&e.base, &buf, &n), 0);
        assert_int_equal(n, 5);
        assert_memory_equal(buf, "\0\0\0\0\0", 5);
        free(buf);
}

static void test_decode_split_every_byte(void **state) {
        uint8_t *a, *b, *c, stream[256];
        size_t na, nb, nc, n = 0;
        Frames f = { .fail_at = -1 };
        GrpcDecoder d;

        encode_version("1.6.20", &a, &na);
        encode_version("", &b, &nb);
        encode_version("v2.0.0-rc.1", &c, &nc);
        memcpy(stream + n, a, na), n += na;
        memcpy(stream + n, b, nb), n += nb;
        memcpy(stream + n, c, nc), n += nc;
        /* every split point, one byte at a time and all at once */
        for (size_t step = 1; step <= n; step = step == 1 ? n : n + 1) {
                grpc_decoder_init(&d, 0);
                f.n = 0;
                for (size_t i = 0; i < n; i += step)
                        assert_int_equal(grpc_decoder_feed(&d, stream + i, MIN(step, n - i), collect, &f), 0);
                assert_int_equal(grpc_decoder_finish(&d), 0);
                assert_int_equal(f.n, 3);
                assert_int_equal(f.len[0], na - 5);
                assert_memory_equal(f.data[2], c + 5, nc - 5);
                Containerd__Services__Version__V1__VersionResponse *m =
                        containerd__services__version__v1__version_response__unpack(NULL, f.len[2], f.data[2]);
                assert_non_null(m);
                assert_string_equal(m->version, "v2.0.0-rc.1");
                containerd__services__version__v1__version_response__free_unpacked(m, NULL);
                grpc_decoder_done(&d);
        }
        free(a), free(b), free(c);
}

static void test_decode_empty_message(void **state) {
        Frames f = { .fail_at = -1 };
        GrpcDecoder d;
        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\0\0\0\0\0\0", 10, collect, &f), 0);
        assert_int_equal(f.n, 2);
        assert_int_equal(f.len[0], 0);
        assert_int_equal(grpc_decoder_finish(&d), 0);
        grpc_decoder_done(&d);
}

static void test_decode_truncated(void **state) {
        Frames f = { .fail_at = -1 };
        GrpcDecoder d;

        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0", 3, collect, &f), 0);
        assert_int_equal(grpc_decoder_finish(&d), -EBADMSG); /* header cut */
        grpc_decoder_done(&d);

        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\x0a" "abc", 8, collect, &f), 0);
        assert_int_equal(f.n, 0);
        assert_int_equal(grpc_decoder_finish(&d), -EBADMSG); /* body cut */
        grpc_decoder_done(&d);
}

static void test_decode_oversized(void **state) {
        Frames f = { .fail_at = -1 };
        GrpcDecoder d;

        /* 16 MiB + 1 announced: refused at the header, before any allocation */
        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\x01\0\0\x01", 5, collect, &f), -EMSGSIZE);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\0", 5, collect, &f), -EMSGSIZE); /* sticky */
        assert_int_equal(grpc_decoder_finish(&d), -EMSGSIZE);
        grpc_decoder_done(&d);
        /* the largest length a header can say */
        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\xff\xff\xff\xff", 5, collect, &f), -EMSGSIZE);
        grpc_decoder_done(&d);
        /* exactly the cap passes the header check */
        grpc_decoder_init(&d, 8);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\x08" "12345678", 13, collect, &f), 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\x09", 5, collect, &f), -EMSGSIZE);
        grpc_decoder_done(&d);
        assert_int_equal(f.n, 1);
}

static void test_decode_flags(void **state) {
        Frames f = { .fail_at = -1 };
        GrpcDecoder d;

        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\x01\0\0\0\x01x", 6, collect, &f), -EPROTONOSUPPORT);
        grpc_decoder_done(&d);
        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "HTTP/1.1 400 Bad Request\r\n", 26, collect, &f), -EBADMSG);
        grpc_decoder_done(&d);
        assert_int_equal(f.n, 0);
}

static void test_decode_callback_error(void **state) {
        Frames f = { .fail_at = 1 };
        GrpcDecoder d;
        grpc_decoder_init(&d, 0);
        assert_int_equal(grpc_decoder_feed(&d, "\0\0\0\0\x01" "a" "\0\0\0\0\x01" "b", 12, collect, &f), -ECANCELED);
        assert_int_equal(f.n, 1);
        grpc_decoder_done(&d);
}

static void test_protobuf_garbage(void **state) {
        static const uint8_t garbage[][8] = {
                { 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff }, /* field 0 / endless varint */
                { 0x0a, 0x7f, 'a', 'b' },                           /* length runs past the end */
                { 0x0a, 0x05, 0x1a, 0x10, 'r', 'e', 'f' },          /* nested message cut short */
                { 0x0f, 0x00 },                                     /* wire type 7 */
        };
        for (size_t i = 0; i < ELEMENTSOF(garbage); i++) {
                size_t n = i == 0 ? 8 : i == 1 ? 4 : i == 2 ? 7 : 2;
                ProtobufCMessage *m = protobuf_c_message_unpack(
                        &containerd__services__content__v1__list_statuses_response__descriptor, NULL, n, garbage[i]);
                assert_null(m);
        }
}

static void test_percent_decode(void **state) {
        static const struct {
                const char *in, *out;
        } t[] = {
                { "plain", "plain" },     { "a%20b", "a b" },  { "100%25", "100%" },  { "%C3%A9t%C3%A9", "\xc3\xa9t\xc3\xa9" },
                { "%", "%" },             { "%4", "%4" },      { "x%zz", "x%zz" }, { "end%2", "end%2" },
                { "%0a%0D", "\n\r" },     { "", "" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                char *s = grpc_percent_decode(t[i].in, strlen(t[i].in));
                assert_non_null(s);
                assert_string_equal(s, t[i].out);
                free(s);
        }
}

static void test_status_names(void **state) {
        assert_string_equal(grpc_status_to_string(GRPC_OK), "OK");
        assert_string_equal(grpc_status_to_string(GRPC_NOT_FOUND), "NotFound");
        assert_string_equal(grpc_status_to_string(GRPC_UNAUTHENTICATED), "Unauthenticated");
        assert_null(grpc_status_to_string(17));
        assert_null(grpc_status_to_string(-1));
        assert_int_equal(grpc_status_from_string("unavailable"), GRPC_UNAVAILABLE);
        assert_int_equal(grpc_status_from_string("nope"), -EINVAL);
        for (int i = 0; i < _GRPC_STATUS_MAX; i++)
                assert_int_equal(grpc_status_from_string(grpc_status_to_string(i)), i);

        GrpcReply r = { .status = GRPC_NOT_FOUND, .message = (char *) "image not found" };
        char *s = grpc_reply_describe(&r, "PullImage");
        assert_string_equal(s, "PullImage: NotFound: image not found");
        free(s);
}

/* The transport's detail: the socket as source, what went wrong as message; the text reads as before. */
static char *transport_text(const char *socket, CURLcode code, long os_errno, bool got_headers, int want) {
        ErrorDetail e = {};
        char *m;
        assert_int_equal(grpc_transport_error(socket, code, os_errno, got_headers, &e), want);
        m = error_detail_format(&e);
        assert_non_null(m);
        error_detail_done(&e);
        return m;
}

static void test_transport_errors(void **state) {
        char *m = NULL, file[] = "/tmp/pw-grpc-test-XXXXXX";
        int fd = mkstemp(file);
        assert_true(fd >= 0);
        close(fd);

        m = transport_text("/nope.sock", CURLE_COULDNT_CONNECT, ENOENT, false, -ENOENT);
        assert_string_equal(m, "/nope.sock: no such socket (is containerd running? see containerd.socket)");
        free(m);
        m = transport_text(file, CURLE_COULDNT_CONNECT, ECONNREFUSED, false, -ECONNREFUSED);
        assert_non_null(strstr(m, "not a unix socket"));
        free(m);
        m = transport_text("/x.sock", CURLE_HTTP2, 0, false, -EPROTO);
        assert_non_null(strstr(m, "/x.sock is not a containerd socket"));
        free(m);
        m = transport_text("/x.sock", CURLE_SEND_ERROR, 0, false, -EPROTO);
        free(m);
        m = transport_text("/x.sock", CURLE_RECV_ERROR, 0, true, -ECONNRESET);
        free(m);
        /* containerd killed in the middle of a PullImage: no headers yet (unary replies come at the end),
         * but a lost connection, not a wrong socket */
        m = transport_text("/x.sock", CURLE_PARTIAL_FILE, 0, false, -ECONNRESET);
        assert_non_null(strstr(m, "/x.sock: connection lost"));
        free(m);
        m = transport_text("/x.sock", CURLE_OPERATION_TIMEDOUT, 0, false, -ETIMEDOUT);
        free(m);
        /* a NULL detail: the errno alone */
        assert_int_equal(grpc_transport_error("/x.sock", CURLE_OUT_OF_MEMORY, 0, false, NULL), -ENOMEM);
        unlink(file);
}

/* A reply's errno and detail: the detail formats as grpc_reply_describe() does. */
static void test_reply_error(void **state) {
        static const struct {
                GrpcReply reply;
                int want;
                const char *text;
        } t[] = {
                { { .status = GRPC_OK }, 0, NULL },
                { { .status = GRPC_NOT_FOUND, .message = (char *) "image not found" }, -ENOENT,
                  "ImageStatus: NotFound: image not found" },
                { { .status = GRPC_UNIMPLEMENTED }, -EPROTO, "ImageStatus: Unimplemented" },
                { { .status = GRPC_ALREADY_EXISTS, .message = (char *) "" }, -EEXIST, "ImageStatus: AlreadyExists" },
                { { .status = GRPC_UNAVAILABLE, .message = (char *) "x" }, -EIO, "ImageStatus: Unavailable: x" },
                { { .error = -ENOENT, .message = (char *) "/s.sock: no such socket" }, -ENOENT,
                  "/s.sock: no such socket" },
                { { .error = -ETIMEDOUT }, -ETIMEDOUT, "Connection timed out" },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                ErrorDetail e = {};
                assert_int_equal(grpc_reply_error(&t[i].reply, "ImageStatus", &e), t[i].want);
                assert_int_equal(grpc_reply_error(&t[i].reply, "ImageStatus", NULL), t[i].want);
                if (t[i].text) {
                        _cleanup_free_ char *got = error_detail_format(&e), *old = NULL;
                        assert_string_equal(got, t[i].text);
                        if (t[i].reply.error == 0) {
                                old = grpc_reply_describe(&t[i].reply, "ImageStatus");
                                assert_string_equal(got, old);
                        }
                } else
                        assert_null(e.message);
                error_detail_done(&e);
        }
}

/* A throwaway unix-socket server: answers every connection with `reply` (NULL: says nothing). */
typedef struct Server {
        char path[108];
        int fd;
        const char *reply;
        pthread_t thread;
} Server;

static void *serve(void *userdata) {
        Server *s = userdata;
        int c = accept(s->fd, NULL, NULL);
        char buf[4096];
        if (c < 0)
                return NULL;
        (void) !read(c, buf, sizeof(buf));
        if (s->reply)
                (void) !write(c, s->reply, strlen(s->reply));
        else
                while (read(c, buf, sizeof(buf)) > 0) /* hold it open until the client gives up */
                        ;
        close(c);
        return NULL;
}

static void server_start(Server *s, const char *reply) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        snprintf(s->path, sizeof(s->path), "/tmp/pw-grpc-test-%d.sock", (int) getpid());
        unlink(s->path);
        strcpy(sa.sun_path, s->path);
        s->reply = reply;
        s->fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_int_equal(bind(s->fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(s->fd, 4), 0);
        assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(Server *s) {
        shutdown(s->fd, SHUT_RDWR);
        pthread_join(s->thread, NULL);
        close(s->fd);
        unlink(s->path);
}

static int call_version(const char *socket, usec_t timeout, GrpcReply *r) {
        Containerd__Services__Version__V1__Empty e = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        GrpcTarget t = { .socket = socket, .namespace = "k8s.io", .timeout = timeout };
        return grpc_call_sync(&t, "/containerd.services.version.v1.Version/Version", &e.base,
                              &containerd__services__version__v1__version_response__descriptor, false, r);
}

static void test_call_not_grpc(void **state) {
        Server s;
        GrpcReply r;
        server_start(&s, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n");
        assert_int_equal(call_version(s.path, 5 * USEC_PER_SEC, &r), -EPROTO);
        assert_non_null(strstr(r.message, s.path));
        assert_non_null(strstr(r.message, "is not a containerd socket"));
        grpc_reply_done(&r);
        server_stop(&s);
}

static void test_call_silent(void **state) {
        Server s;
        GrpcReply r;
        server_start(&s, NULL);
        assert_int_equal(call_version(s.path, 300 * USEC_PER_MSEC, &r), -ETIMEDOUT);
        assert_non_null(strstr(r.message, s.path));
        grpc_reply_done(&r);
        server_stop(&s);
}

static void test_call_missing_socket(void **state) {
        GrpcReply r;
        ErrorDetail e = {};
        char *m = NULL;
        assert_int_equal(call_version("/nonexistent/containerd.sock", USEC_PER_SEC, &r), -ENOENT);
        assert_string_equal(r.message,
                            "/nonexistent/containerd.sock: no such socket (is containerd running? see containerd.socket)");
        grpc_reply_done(&r);
        assert_int_equal(containerd_version("/nonexistent/containerd.sock", NULL, &e), -ENOENT);
        m = error_detail_format(&e);
        assert_string_equal(m, "/nonexistent/containerd.sock: no such socket (is containerd running? see containerd.socket)");
        free(m);
        error_detail_done(&e);
}

static void test_classify(void **state) {
        static const struct {
                GrpcStatus status;
                const char *message;
                ErrorClass want;
        } t[] = {
                { GRPC_NOT_FOUND, "failed to resolve reference \"r/x:1\": r/x:1: not found", ERROR_PERMANENT },
                { GRPC_UNKNOWN, "failed to copy: httpReadSeeker: failed open: unexpected status code 401 Unauthorized",
                  ERROR_PERMANENT },
                { GRPC_UNKNOWN, "pull access denied, repository does not exist or may require authorization: "
                                "server message: insufficient_scope", ERROR_PERMANENT },
                { GRPC_UNKNOWN, "failed to parse image reference \"bad ref!\": invalid reference format",
                  ERROR_PERMANENT },
                { GRPC_UNKNOWN, "no match for platform in manifest: not found", ERROR_PERMANENT },
                { GRPC_UNKNOWN, "content digest sha256:abc: not found", ERROR_PERMANENT },
                { GRPC_UNAUTHENTICATED, "", ERROR_PERMANENT },
                { GRPC_PERMISSION_DENIED, "", ERROR_PERMANENT },
                { GRPC_UNKNOWN, "failed to copy: read tcp 10.0.0.1:4242->10.0.0.2:443: read: connection reset by peer",
                  ERROR_TRANSIENT },
                { GRPC_UNKNOWN, "failed to copy: unexpected EOF", ERROR_TRANSIENT },
                { GRPC_UNKNOWN, "unexpected status code 503 Service Unavailable", ERROR_TRANSIENT },
                { GRPC_UNKNOWN, "dial tcp 127.0.0.1:5999: connect: connection refused", ERROR_TRANSIENT },
                { GRPC_UNAVAILABLE, "transport is closing", ERROR_TRANSIENT },
                { GRPC_DEADLINE_EXCEEDED, NULL, ERROR_TRANSIENT },
                { GRPC_OK, NULL, ERROR_NONE },
        };
        for (size_t i = 0; i < ELEMENTSOF(t); i++)
                assert_int_equal(containerd_classify_message(t[i].status, t[i].message), t[i].want);

        assert_int_equal(containerd_classify(-EPROTO, GRPC_OK, NULL), ERROR_PERMANENT);
        assert_int_equal(containerd_classify(-ECONNREFUSED, GRPC_OK, NULL), ERROR_TRANSIENT);
        assert_int_equal(containerd_classify(-ECONNRESET, GRPC_OK, NULL), ERROR_TRANSIENT);
        assert_int_equal(containerd_classify(0, GRPC_NOT_FOUND, "x"), ERROR_PERMANENT);
        assert_int_equal(containerd_classify(0, GRPC_UNKNOWN, "dial tcp: connection reset"), ERROR_TRANSIENT);
}

static void test_lease_id_and_filters(void **state) {
        char *a = NULL, *b = NULL, *c = NULL, *h = NULL, *f = NULL;

        assert_int_equal(containerd_lease_id("k8s.io", "docker.io/library/busybox:latest", &a), 0);
        assert_int_equal(containerd_lease_id("k8s.io", "docker.io/library/busybox:latest", &b), 0);
        assert_int_equal(containerd_lease_id("default", "docker.io/library/busybox:latest", &c), 0);
        assert_string_equal(a, b);
        assert_string_not_equal(a, c);
        assert_true(startswith(a, CONTAINERD_LEASE_PREFIX));
        assert_int_equal(strlen(a), strlen(CONTAINERD_LEASE_PREFIX) + 16);
        free(a), free(b), free(c);

        assert_int_equal(cd_source_host("127.0.0.1:5000", &h), 0);
        assert_string_equal(h, "127.0.0.1");
        free(h);
        assert_int_equal(cd_source_host("[::1]:5000", &h), 0);
        assert_string_equal(h, "::1");
        free(h);
        assert_int_equal(cd_source_host("docker.io", &h), 0);
        assert_string_equal(h, "docker.io");
        free(h);

        assert_int_equal(cd_manifest_filter("docker.io", "library/my.app", &f), 0);
        assert_string_equal(f, "labels.\"containerd.io/gc.ref.content.config\","
                               "labels.\"containerd.io/distribution.source.docker.io\"~=\"^(.*,)?library/my[.]app(,.*)?$\"");
        free(f);
        assert_int_equal(cd_manifest_filter("docker.io", "evil\"repo", &f), -EINVAL);
}

/* containerd's MakeRefKey forms, 1.6 to 2.1: "<kind>-<digest>" and "<kind>-<ref.name>@<digest>". */
static void test_ingest_refs(void **state) {
        static const char D[] = "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b";
        static const struct {
                const char *prefix;
                CdRefKind kind;
        } kinds[] = {
                { "manifest-", CD_REF_MANIFEST }, { "index-", CD_REF_INDEX },   { "layer-", CD_REF_LAYER },
                { "config-", CD_REF_CONFIG },     { "attestation-", CD_REF_ATTESTATION },
                { "unknown-", CD_REF_UNKNOWN },
        };
        static const char *const bad[] = {
                "", "layer-", "layer-sha256:", "layer-sha256:6c3c", "blob-sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "layer-md5:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "layer-sha256:6C3C624B58DBBCD3C0DD82B4C53F04194D1247C6EEBDAAB7C610CF7D66709B3B",
                "layer-sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b0",
                "layer-@sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "layer-name@", "Layer-sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
                "ctr-pull-sha256:6c3c624b58dbbcd3c0dd82b4c53f04194d1247c6eebdaab7c610cf7d66709b3b",
        };
        char ref[256];
        const char *digest, *kind_end;

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                const char *forms[] = { "", "docker.io/library/busybox:1.36@", "name@with@ats@", "v1@" };
                for (size_t j = 0; j < ELEMENTSOF(forms); j++) {
                        snprintf(ref, sizeof ref, "%s%s%s", kinds[i].prefix, forms[j], D);
                        digest = NULL;
                        assert_int_equal(cd_ref_parse(ref, &digest), kinds[i].kind);
                        assert_non_null(digest);
                        assert_string_equal(digest, D);
                        assert_true(cd_ref_split(ref, &kind_end, &digest));
                        assert_ptr_equal(kind_end, ref + strlen(kinds[i].prefix));
                        assert_string_equal(digest, D);
                }
        }
        snprintf(ref, sizeof ref, "layer-sha512:%0128d", 0);
        assert_int_equal(cd_ref_parse(ref, &digest), CD_REF_LAYER);
        assert_string_equal(digest, ref + strlen("layer-"));
        assert_int_equal(cd_ref_parse(NULL, &digest), _CD_REF_KIND_INVALID);
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(cd_ref_parse(bad[i], &digest), _CD_REF_KIND_INVALID);
                assert_false(cd_ref_split(bad[i], &kind_end, &digest));
        }
}

/* CRI's effective image_pull_progress_timeout, from a verbose Status' info["config"] (as captured
 * from containerd 1.7.24; 2.1.9 leaves the image settings out), and which values are known-bad. */
static void test_progress_timeout(void **state) {
        static const char cfg17[] =
                "{\"containerd\":{\"snapshotter\":\"overlayfs\"},\"maxConcurrentDownloads\":3,"
                "\"imagePullProgressTimeout\":\"5m0s\",\"imagePullWithSyncFs\":false}";
        static const char cfg21[] = "{\"containerdRootDir\":\"/x\",\"cdiSpecDirs\":[\"/etc/cdi\"]}";
        char *v = NULL;

        assert_int_equal(containerd_cri_config_progress_timeout(cfg17, &v), 0);
        assert_string_equal(v, "5m0s");
        free(v);
        assert_int_equal(containerd_cri_config_progress_timeout(cfg21, &v), -ENODATA);
        assert_int_equal(containerd_cri_config_progress_timeout(NULL, &v), -ENODATA);
        assert_int_equal(containerd_cri_config_progress_timeout("{not json", &v), -EBADMSG);

        assert_null(containerd_progress_timeout_warning("5m0s", "v1.7.24"));
        assert_null(containerd_progress_timeout_warning("1h0m0s", "v2.1.9"));
        assert_null(containerd_progress_timeout_warning("0s", "1.7.24~ds1")); /* off: pullwatch watches */
        assert_non_null(strstr(containerd_progress_timeout_warning("0s", "v2.1.9"), "#14158"));
        assert_non_null(strstr(containerd_progress_timeout_warning("1m0s", "v1.7.5"), "#9369"));
        assert_non_null(containerd_progress_timeout_warning("4m59s", "v1.7.24"));
        assert_non_null(containerd_progress_timeout_warning("90s", "v2.1.9"));
        assert_non_null(containerd_progress_timeout_warning("1.5m", NULL));
        assert_null(containerd_progress_timeout_warning("5m", NULL));
        assert_null(containerd_progress_timeout_warning("bogus", "v1.7.24"));
        assert_null(containerd_progress_timeout_warning("", "v1.7.24"));
        assert_null(containerd_progress_timeout_warning(NULL, "v1.7.24"));
        assert_null(containerd_progress_timeout_warning("5x", "v1.7.24"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode_empty),
                cmocka_unit_test(test_decode_split_every_byte),
                cmocka_unit_test(test_decode_empty_message),
                cmocka_unit_test(test_decode_truncated),
                cmocka_unit_test(test_decode_oversized),
                cmocka_unit_test(test_decode_flags),
                cmocka_unit_test(test_decode_callback_error),
                cmocka_unit_test(test_protobuf_garbage),
                cmocka_unit_test(test_percent_decode),
                cmocka_unit_test(test_status_names),
                cmocka_unit_test(test_transport_errors),
                cmocka_unit_test(test_reply_error),
                cmocka_unit_test(test_call_not_grpc),
                cmocka_unit_test(test_call_silent),
                cmocka_unit_test(test_call_missing_socket),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_lease_id_and_filters),
                cmocka_unit_test(test_ingest_refs),
                cmocka_unit_test(test_progress_timeout),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
