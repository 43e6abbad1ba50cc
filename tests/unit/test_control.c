/* test_control: the request parser (oversized, garbage, unknown cmd, bad arguments) and the server on
 * a real unix socket driven by an sd-event loop: mode 0600, a status answer, error objects instead of
 * crashes, a streamed pull, a client that leaves mid-stream, a stale socket replaced, a live one kept. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <cmocka.h>

#include "daemon/agent/control.h"

static char tmpdir[] = "/tmp/test_control.XXXXXX";
static char sock_path[256];

static int setup(void **s) {
        if (!mkdtemp(tmpdir))
                return -1;
        snprintf(sock_path, sizeof sock_path, "%s/run/control.sock", tmpdir);
        return 0;
}

static int teardown(void **s) {
        char p[300];
        unlink(sock_path);
        snprintf(p, sizeof p, "%s/run", tmpdir);
        rmdir(p);
        return rmdir(tmpdir);
}

/* control_request_parse() with the sentence for the error object (a static copy, NULL when none). */
static int parse_full(const char *line, size_t size, ControlRequest *r, const char **why) {
        static char text[256];
        ErrorDetail e = {};
        int k = control_request_parse(line, size, r, &e);

        *why = NULL;
        if (e.message) {
                assert_null(e.source); /* a request line has no file or URL to name */
                snprintf(text, sizeof text, "%s", e.message);
                *why = text;
        }
        error_detail_done(&e);
        return k;
}

static int parse(const char *line, ControlRequest *r, const char **why) {
        return parse_full(line, strlen(line), r, why);
}

static void test_parse_good(void **s) {
        ControlRequest r;
        const char *why;

        assert_int_equal(parse("{\"cmd\":\"status\"}", &r, &why), 0);
        assert_int_equal(r.cmd, CONTROL_STATUS);
        assert_null(r.image);
        control_request_done(&r);

        assert_int_equal(parse("{\"cmd\":\"pull\",\"image\":\"busybox:1.36\",\"runtime\":\"docker\","
                               "\"platform\":\"linux/arm64\",\"namespace\":\"k8s.io\",\"extra\":[1,2]}", &r, &why), 0);
        assert_int_equal(r.cmd, CONTROL_PULL);
        assert_string_equal(r.image, "busybox:1.36");
        assert_string_equal(r.runtime, "docker");
        assert_string_equal(r.platform, "linux/arm64");
        assert_string_equal(r.namespace, "k8s.io");
        control_request_done(&r);

        assert_int_equal(parse("  {\"cmd\":\"pull\",\"image\":\"x\",\"runtime\":null}  ", &r, &why), 0);
        assert_null(r.runtime);
        control_request_done(&r);
}

static void test_parse_bad(void **s) {
        static const struct {
                const char *line;
                int r;
        } cases[] = {
                { "", -EBADMSG },
                { "garbage", -EBADMSG },
                { "{\"cmd\":", -EBADMSG },
                { "[\"status\"]", -EBADMSG },
                { "\"status\"", -EBADMSG },
                { "{\"cmd\":\"status\",\"cmd\":\"pull\"}", -EBADMSG },
                { "{}", -EINVAL },
                { "{\"cmd\":42}", -EINVAL },
                { "{\"cmd\":\"reboot\"}", -EOPNOTSUPP },
                { "{\"cmd\":\"STATUS\"}", -EOPNOTSUPP },
                { "{\"cmd\":\"pull\"}", -EINVAL },
                { "{\"cmd\":\"pull\",\"image\":\"\"}", -EINVAL },
                { "{\"cmd\":\"pull\",\"image\":7}", -EINVAL },
                { "{\"cmd\":\"pull\",\"image\":\"a\\u0000b\"}", -EBADMSG }, /* jansson refuses NUL */
                { "{\"cmd\":\"pull\",\"image\":\"x\",\"runtime\":\"podman\"}", -EINVAL },
                { "{\"cmd\":\"pull\",\"image\":\"x\",\"platform\":[]}", -EINVAL },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                ControlRequest r;
                const char *why = NULL;
                assert_int_equal(parse(cases[i].line, &r, &why), cases[i].r);
                assert_non_null(why); /* always a sentence for the error object */
        }
}

static void test_parse_oversized(void **s) {
        _cleanup_free_ char *big = malloc(CONTROL_REQUEST_MAX + 10);
        ControlRequest r;
        const char *why;

        assert_non_null(big);
        memset(big, ' ', CONTROL_REQUEST_MAX + 9);
        memcpy(big, "{\"cmd\":\"status\"}", 16);
        big[CONTROL_REQUEST_MAX + 9] = 0;
        assert_int_equal(parse_full(big, strlen(big), &r, &why), -EMSGSIZE);
        assert_string_equal(why, "request too long");
        /* just under the limit is fine */
        assert_int_equal(parse_full(big, CONTROL_REQUEST_MAX - 1, &r, &why), 0);
        control_request_done(&r);
}

/* ---- the server ---- */

typedef struct World {
        sd_event *event;
        ControlServer *server;
        ControlConn *streaming;
        unsigned closed;
        char *last_image;
} World;

static int h_status(void *userdata, json_t **ret) {
        *ret = json_pack("{s:s, s:i}", "summary", "preheat 1/1 ready", "n", 1);
        return 0;
}

static int h_pull(void *userdata, ControlConn *c, const ControlRequest *req, ErrorDetail *ret_error) {
        World *w = userdata;
        json_t *o;
        if (streq(req->image, "refuse:me"))
                return error_detail_setf(ret_error, EHOSTDOWN, "no such runtime here");
        free(w->last_image);
        w->last_image = strdup(req->image);
        w->streaming = c;
        o = json_pack("{s:s, s:s}", "event", "attempt", "image", req->image);
        assert_int_equal(control_conn_send(c, o), 0);
        json_decref(o);
        return 0;
}

static void h_closed(void *userdata, ControlConn *c) {
        World *w = userdata;
        if (c == w->streaming)
                w->streaming = NULL;
        w->closed++;
}

static void world_start(World *w) {
        static const ControlHandlers h = { .status = h_status, .pull = h_pull, .closed = h_closed };
        *w = (World) {};
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(control_server_new(w->event, sock_path, NULL, 0, &h, w, &w->server), 0);
}

static void world_stop(World *w) {
        w->server = control_server_free(w->server);
        sd_event_unref(w->event);
        free(w->last_image);
}

static void spin(World *w, unsigned n) {
        for (unsigned i = 0; i < n; i++)
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
}

static int client(const char *data, size_t n) {
        int fd;
        assert_int_equal(control_connect(sock_path, &fd), 0);
        if (n)
                assert_int_equal(send(fd, data, n, MSG_NOSIGNAL), (ssize_t) n);
        return fd;
}

/* Read what the server sent until it closes (or no more comes within the spins). */
static size_t drain(World *w, int fd, char *buf, size_t size, bool *ret_closed) {
        size_t got = 0;
        *ret_closed = false;
        for (unsigned i = 0; i < 100 && !*ret_closed; i++) {
                spin(w, 1);
                for (;;) {
                        ssize_t k = recv(fd, buf + got, size - 1 - got, MSG_DONTWAIT);
                        if (k == 0) {
                                *ret_closed = true;
                                break;
                        }
                        if (k < 0)
                                break;
                        got += (size_t) k;
                }
        }
        buf[got] = 0;
        return got;
}

static json_t *first_json(const char *buf) {
        return json_loadb(buf, strcspn(buf, "\n"), 0, NULL);
}

static void test_socket_mode_and_status(void **s) {
        World w;
        struct stat st;
        char buf[4096];
        bool closed;
        int fd;

        world_start(&w);
        assert_int_equal(stat(sock_path, &st), 0);
        assert_true(S_ISSOCK(st.st_mode));
        assert_int_equal(st.st_mode & 0777, 0600);
        fd = client("{\"cmd\":\"status\"}\n", 17);
        drain(&w, fd, buf, sizeof buf, &closed);
        assert_true(closed);
        json_t *o = first_json(buf);
        assert_non_null(o);
        assert_string_equal(json_string_value(json_object_get(o, "summary")), "preheat 1/1 ready");
        json_decref(o);
        close(fd);
        /* a request without its newline, then end of input (printf ... | nc -U) */
        fd = client("{\"cmd\":\"status\"}", 16);
        shutdown(fd, SHUT_WR);
        drain(&w, fd, buf, sizeof buf, &closed);
        assert_true(closed);
        assert_non_null(strstr(buf, "preheat 1/1 ready"));
        close(fd);
        world_stop(&w);
        assert_int_equal(stat(sock_path, &st), -1); /* removed on the way out */
}

static void expect_error(World *w, const char *data, size_t n, const char *code) {
        char buf[4096];
        bool closed;
        int fd = client(data, n);
        drain(w, fd, buf, sizeof buf, &closed);
        assert_true(closed);
        json_t *o = first_json(buf);
        assert_non_null(o);
        assert_non_null(json_string_value(json_object_get(o, "error")));
        assert_string_equal(json_string_value(json_object_get(o, "code")), code);
        json_decref(o);
        close(fd);
}

static void test_errors_not_crashes(void **s) {
        _cleanup_free_ char *big = malloc(3 * CONTROL_REQUEST_MAX);
        World w;

        world_start(&w);
        expect_error(&w, "garbage\n", 8, "bad-request");
        expect_error(&w, "{\"cmd\":\"halt\"}\n", 15, "unknown-command");
        expect_error(&w, "{\"cmd\":\"pull\"}\n", 15, "bad-request");
        expect_error(&w, "\0\0\0\n", 4, "bad-request");
        expect_error(&w, "{\"cmd\":\"pull\",\"image\":\"refuse:me\"}\n", 35, "pull-refused");
        /* a line longer than the limit is answered once and the connection closed */
        memset(big, 'x', 3 * CONTROL_REQUEST_MAX);
        expect_error(&w, big, 2 * CONTROL_REQUEST_MAX, "bad-request");
        /* the server still serves */
        expect_error(&w, "[]\n", 3, "bad-request");
        assert_int_equal(w.closed, 0);
        world_stop(&w);
}

static void test_pull_stream_and_client_leaving(void **s) {
        const char *req = "{\"cmd\":\"pull\",\"image\":\"reg/app:v1\"}\n";
        char buf[4096];
        bool closed;
        World w;
        int fd;

        world_start(&w);
        /* streamed until the handler finishes it; the client half-closing does not end the stream */
        fd = client(req, strlen(req));
        shutdown(fd, SHUT_WR);
        spin(&w, 5);
        assert_non_null(w.streaming);
        assert_string_equal(w.last_image, "reg/app:v1");
        json_t *o = json_pack("{s:s, s:b}", "event", "result", "ok", 1);
        assert_int_equal(control_conn_send(w.streaming, o), 0);
        json_decref(o);
        control_conn_finish(w.streaming);
        w.streaming = NULL;
        drain(&w, fd, buf, sizeof buf, &closed);
        assert_true(closed);
        assert_non_null(strstr(buf, "\"event\":\"attempt\""));
        assert_non_null(strstr(buf, "\"event\":\"result\""));
        assert_int_equal(w.closed, 0);
        close(fd);

        /* a client that goes away mid-stream: the handler hears of it exactly once */
        fd = client(req, strlen(req));
        spin(&w, 5);
        assert_non_null(w.streaming);
        close(fd);
        spin(&w, 5);
        assert_null(w.streaming);
        assert_int_equal(w.closed, 1);

        /* shutdown with a stream open tells the handler too */
        fd = client(req, strlen(req));
        spin(&w, 5);
        assert_non_null(w.streaming);
        world_stop(&w);
        assert_int_equal(w.closed, 2);
        close(fd);
}

static void test_stale_and_live_socket(void **s) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        static const ControlHandlers h = { .status = h_status };
        ControlServer *second = NULL;
        World w;
        int fd;

        /* a socket file nobody listens on (a daemon that died) is replaced */
        strcpy(sa.sun_path, sock_path);
        fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        close(fd);
        world_start(&w);
        /* a live one is not taken over, and not removed either */
        assert_int_equal(control_server_new(w.event, sock_path, NULL, 0, &h, NULL, &second), -EADDRINUSE);
        assert_null(second);
        expect_error(&w, "{}\n", 3, "bad-request");
        world_stop(&w);
        assert_int_equal(control_connect(sock_path, &fd), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_good),
                cmocka_unit_test(test_parse_bad),
                cmocka_unit_test(test_parse_oversized),
                cmocka_unit_test(test_socket_mode_and_status),
                cmocka_unit_test(test_errors_not_crashes),
                cmocka_unit_test(test_pull_stream_and_client_leaving),
                cmocka_unit_test(test_stale_and_live_socket),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
