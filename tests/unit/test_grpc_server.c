/* test_grpc_server.c: the gRPC server on a real unix socket, called by libcurl (HTTP/2 prior knowledge,
 * the way containerd's clients and kubelet speak) from a child process while the parent runs the loop. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <stdint.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "basic/macro.h"
#include "probes/transport/grpc_server.h"

typedef struct Fixture {
        char dir[64], path[100];
        sd_event *event;
        GrpcServer *server;
        GrpcServerCall *held;       /* a call the handler answers later (or never) */
        unsigned calls, cancelled;
        char last_path[128];
        char ns[64];
        enum { ECHO, FAIL, HOLD } mode;
} Fixture;

static void on_call(GrpcServerCall *call, const char *path, const uint8_t *msg, size_t len, void *userdata) {
        Fixture *f = userdata;
        f->calls++;
        snprintf(f->last_path, sizeof(f->last_path), "%s", path);
        snprintf(f->ns, sizeof(f->ns), "%s", grpc_server_call_header(call, "containerd-namespace") ?: "");
        switch (f->mode) {
        case ECHO: {
                uint8_t rev[256];
                for (size_t i = 0; i < len && i < sizeof(rev); i++)
                        rev[i] = msg[len - 1 - i];
                assert_int_equal(grpc_server_call_reply(call, rev, MIN(len, sizeof(rev))), 0);
                break;
        }
        case FAIL:
                assert_int_equal(grpc_server_call_fail(call, GRPC_NOT_FOUND, "no such image: \"a b\" 100% gone\n"), 0);
                break;
        case HOLD:
                f->held = call;
                break;
        }
}

static void on_cancelled(GrpcServerCall *call, void *userdata) {
        Fixture *f = userdata;
        f->cancelled++;
        if (f->held == call)
                f->held = NULL;
}

static int setup(void **state) {
        Fixture *f = calloc(1, sizeof(*f));
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        int fd;

        assert_non_null(f);
        strcpy(f->dir, "/tmp/pwgrpcsrv.XXXXXX");
        assert_non_null(mkdtemp(f->dir));
        snprintf(f->path, sizeof(f->path), "%s/cri.sock", f->dir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 16), 0);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(grpc_server_new(f->event, fd, 64, &(GrpcServerHandlers) { on_call, on_cancelled }, f,
                                         &f->server),
                         0);
        *state = f;
        return 0;
}

static int teardown(void **state) {
        Fixture *f = *state;
        grpc_server_free(f->server);
        sd_event_unref(f->event);
        unlink(f->path);
        rmdir(f->dir);
        free(f);
        return 0;
}

/* ---- the client, in a child ---- */

typedef struct Reply {
        char status[8], message[256];
        uint8_t body[512];
        size_t body_len;
        int curl_code;
} Reply;

static size_t on_header(char *b, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        size_t len = size * n;
        char line[512];
        snprintf(line, sizeof(line), "%.*s", (int) len, b);
        line[strcspn(line, "\r\n")] = 0;
        if (startswith(line, "grpc-status: "))
                snprintf(r->status, sizeof(r->status), "%.7s", line + 13);
        if (startswith(line, "grpc-message: "))
                snprintf(r->message, sizeof(r->message), "%.255s", line + 14);
        return len;
}

static size_t on_body(char *b, size_t size, size_t n, void *userdata) {
        Reply *r = userdata;
        size_t len = size * n, take = MIN(len, sizeof(r->body) - r->body_len);
        memcpy(r->body + r->body_len, b, take);
        r->body_len += take;
        return len;
}

/* POST body (already framed) to path; timeout_ms 0 = none. Runs in the child. */
static void client_call(const char *sock, const char *path, const uint8_t *body, size_t len, long timeout_ms, Reply *r) {
        CURL *c = curl_easy_init();
        struct curl_slist *h = NULL;
        char url[256];
        snprintf(url, sizeof(url), "http://localhost%s", path);
        h = curl_slist_append(h, "content-type: application/grpc");
        h = curl_slist_append(h, "te: trailers");
        h = curl_slist_append(h, "containerd-namespace: k8s.io");
        if (curl_easy_setopt(c, CURLOPT_UNIX_SOCKET_PATH, sock) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HTTPHEADER, h) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDS, (const char *) body) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, (long) len) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_HEADERDATA, r) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_WRITEDATA, r) != CURLE_OK ||
            curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, timeout_ms ?: 10000L) != CURLE_OK)
                r->curl_code = -1;
        else
                r->curl_code = (int) curl_easy_perform(c);
        curl_slist_free_all(h);
        curl_easy_cleanup(c);
}

typedef struct Child {
        pid_t pid;
        int fd;                     /* the child's Reply arrives here */
        Reply reply;
        bool done;
} Child;

static int on_child(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        Child *ch = userdata;
        ssize_t n = read(fd, &ch->reply, sizeof(ch->reply));
        assert_int_equal(n, (ssize_t) sizeof(ch->reply));
        ch->done = true;
        return 0;
}

/* Run one call from a child while the loop serves it; at most 15 s. */
static void call(Fixture *f, const char *path, const uint8_t *body, size_t len, long timeout_ms, Reply *ret) {
        int p[2];
        Child ch = {};
        sd_event_source *src = NULL;

        assert_int_equal(pipe2(p, O_CLOEXEC), 0);
        ch.pid = fork();
        assert_true(ch.pid >= 0);
        if (ch.pid == 0) {
                Reply r = {};
                client_call(f->path, path, body, len, timeout_ms, &r);
                _exit(write(p[1], &r, sizeof(r)) == (ssize_t) sizeof(r) ? 0 : 1);
        }
        close(p[1]);
        assert_int_equal(sd_event_add_io(f->event, &src, p[0], EPOLLIN, on_child, &ch), 0);
        for (int i = 0; i < 300 && !ch.done; i++) /* 15 s at most */
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        sd_event_source_disable_unref(src);
        close(p[0]);
        assert_int_equal(waitpid(ch.pid, NULL, 0), ch.pid);
        assert_true(ch.done);
        *ret = ch.reply;
}

static size_t frame(uint8_t *out, uint8_t flag, const char *msg) {
        size_t n = strlen(msg);
        out[0] = flag;
        out[1] = (uint8_t) (n >> 24);
        out[2] = (uint8_t) (n >> 16);
        out[3] = (uint8_t) (n >> 8);
        out[4] = (uint8_t) n;
        memcpy(out + 5, msg, n);
        return n + 5;
}

static void test_unary_ok(void **state) {
        Fixture *f = *state;
        uint8_t b[64];
        Reply r;

        f->mode = ECHO;
        call(f, "/runtime.v1.ImageService/ImageStatus", b, frame(b, 0, "abc"), 0, &r);
        assert_int_equal(r.curl_code, 0);
        assert_string_equal(r.status, "0");
        assert_int_equal(r.body_len, 8);
        assert_memory_equal(r.body, "\0\0\0\0\3cba", 8);
        assert_int_equal(f->calls, 1);
        assert_string_equal(f->last_path, "/runtime.v1.ImageService/ImageStatus");
        assert_string_equal(f->ns, "k8s.io");
}

static void test_status_trailers_only(void **state) {
        Fixture *f = *state;
        uint8_t b[64];
        Reply r;
        _cleanup_free_ char *decoded = NULL;

        f->mode = FAIL;
        call(f, "/runtime.v1.ImageService/PullImage", b, frame(b, 0, "x"), 0, &r);
        assert_string_equal(r.status, "5");
        assert_string_equal(r.message, "no such image: \"a b\" 100%25 gone%0A");
        decoded = grpc_percent_decode(r.message, strlen(r.message));
        assert_string_equal(decoded, "no such image: \"a b\" 100% gone\n");
        assert_int_equal(r.body_len, 0);
}

static void test_oversized_and_compressed_refused(void **state) {
        Fixture *f = *state;
        uint8_t b[256];
        char big[100];
        Reply r;
        GrpcServerStats st;

        f->mode = ECHO;
        memset(big, 'x', sizeof(big) - 1);
        big[sizeof(big) - 1] = 0;
        call(f, "/runtime.v1.ImageService/PullImage", b, frame(b, 0, big), 0, &r);
        assert_string_equal(r.status, "8"); /* RESOURCE_EXHAUSTED: over the 64-byte cap */
        call(f, "/runtime.v1.ImageService/PullImage", b, frame(b, 1, "abc"), 0, &r);
        assert_string_equal(r.status, "12"); /* UNIMPLEMENTED: we offer no compression */
        call(f, "/runtime.v1.ImageService/PullImage", b, 3, 0, &r);
        assert_string_equal(r.status, "13"); /* a frame cut short */
        assert_int_equal(f->calls, 0);
        grpc_server_stats(f->server, &st);
        assert_int_equal(st.refused, 3);
        /* and it still serves */
        call(f, "/runtime.v1.ImageService/ImageStatus", b, frame(b, 0, "ok"), 0, &r);
        assert_string_equal(r.status, "0");
}

static void test_client_cancel_reaches_handler(void **state) {
        Fixture *f = *state;
        uint8_t b[64];
        Reply r;
        GrpcServerStats st;

        f->mode = HOLD;
        call(f, "/runtime.v1.ImageService/PullImage", b, frame(b, 0, "img"), 300, &r);
        assert_int_equal(r.curl_code, CURLE_OPERATION_TIMEDOUT);
        assert_int_equal(f->calls, 1);
        /* the child is gone: run the loop until the server noticed (bounded) */
        for (int i = 0; i < 100 && f->cancelled == 0; i++)
                assert_true(sd_event_run(f->event, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(f->cancelled, 1);
        assert_null(f->held);
        grpc_server_stats(f->server, &st);
        assert_int_equal(st.open_calls, 0);
}

static void test_garbage_closes_only_that_connection(void **state) {
        Fixture *f = *state;
        int sp[2];
        GrpcServerConn *conn;
        const char garbage[] = "GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        uint8_t b[64];
        Reply r;
        GrpcServerStats st;

        assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp), 0);
        assert_int_equal(grpc_server_adopt(f->server, sp[0], &conn), 0);
        assert_int_equal(grpc_server_conn_feed(conn, (const uint8_t *) garbage, sizeof(garbage) - 1), -EPROTO);
        close(sp[1]);
        grpc_server_stats(f->server, &st);
        assert_int_equal(st.protocol_errors, 1);
        assert_int_equal(st.open_connections, 0);
        f->mode = ECHO;
        call(f, "/runtime.v1.ImageService/ImageStatus", b, frame(b, 0, "ok"), 0, &r);
        assert_string_equal(r.status, "0");
}

static void test_percent_encode(void **state) {
        _cleanup_free_ char *a = grpc_percent_encode("plain text ~");
        _cleanup_free_ char *b = grpc_percent_encode("50%\t\xc3\xa9");
        assert_string_equal(a, "plain text ~");
        assert_string_equal(b, "50%25%09%C3%A9");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_unary_ok, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_trailers_only, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oversized_and_compressed_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_client_cancel_reaches_handler, setup, teardown),
                cmocka_unit_test_setup_teardown(test_garbage_closes_only_that_connection, setup, teardown),
                cmocka_unit_test(test_percent_encode),
        };
        signal(SIGPIPE, SIG_IGN);
        curl_global_init(CURL_GLOBAL_DEFAULT);
        return cmocka_run_group_tests(tests, NULL, NULL);
}
