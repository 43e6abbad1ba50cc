/* test_runtime_op_shared: runtime_op_http_shared on a real event loop and curl glue against a unix
 * socket this test serves (HTTP/1.0, one answer per connection, connections counted). Checks that ops
 * asking the same path while one request is in flight share it, each parsing with its own arg; that a
 * 200 answer is reused within the ttl and not with ttl 0; that freeing the op whose request is in flight
 * hands the request on to a waiter; and that different paths are asked separately. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "probes/runtime/runtime_op.h"

static char tmpdir[] = "/tmp/test_runtime_op.XXXXXX";

typedef struct World {
        sd_event *event;
        CurlGlue *glue;
        char sock[96];
        int listen_fd;
        sd_event_source *accept_src;
        unsigned connections;
        unsigned answered;        /* done callbacks */
        char texts[8][64];
} World;

static int on_accept(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        World *w = userdata;
        char req[1024], resp[256];
        int c = accept4(fd, NULL, NULL, SOCK_CLOEXEC);
        ssize_t n;

        if (c < 0)
                return 0;
        w->connections++;
        n = read(c, req, sizeof(req) - 1); /* one small GET: arrives in one read on a unix socket */
        req[n > 0 ? n : 0] = 0;
        const char *body = strstr(req, "GET /info") ? "{\"n\":1}" : "{\"other\":1}";
        snprintf(resp, sizeof(resp), "HTTP/1.0 200 OK\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n%s",
                 strlen(body), body);
        assert_true(write(c, resp, strlen(resp)) > 0);
        close(c);
        return 0;
}

static void world_start(World *w) {
        struct sockaddr_un a = { .sun_family = AF_UNIX };

        memset(w, 0, sizeof(*w));
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(curl_glue_new(w->event, &w->glue), 0);
        snprintf(w->sock, sizeof(w->sock), "%s/docker.sock", tmpdir);
        (void) unlink(w->sock);
        snprintf(a.sun_path, sizeof(a.sun_path), "%s", w->sock);
        w->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        assert_true(w->listen_fd >= 0);
        assert_int_equal(bind(w->listen_fd, (struct sockaddr *) &a, sizeof(a)), 0);
        assert_int_equal(listen(w->listen_fd, 16), 0);
        assert_int_equal(sd_event_add_io(w->event, &w->accept_src, w->listen_fd, EPOLLIN, on_accept, w), 0);
}

static void world_stop(World *w) {
        curl_glue_free(w->glue);
        sd_event_source_disable_unref(w->accept_src);
        close(w->listen_fd);
        (void) unlink(w->sock);
        sd_event_unref(w->event);
}

/* The body prefixed with the op's arg: each op parses with its own. */
static int parse(const char *arg, int r, long status, const char *body, char **ret_text) {
        if (r < 0 || status != 200)
                return r < 0 ? r : -EIO;
        return asprintf(ret_text, "%s:%s", arg, body) < 0 ? -ENOMEM : 0;
}

static void on_done(RuntimeOp *op, int r, const char *text, void *userdata) {
        World *w = userdata;
        assert_int_equal(r, 0);
        if (w->answered < 8)
                snprintf(w->texts[w->answered], sizeof(w->texts[0]), "%s", text ?: "");
        w->answered++;
}

static void run_until_answered(World *w, unsigned n) {
        for (int i = 0; i < 2000 && w->answered < n; i++)
                assert_true(sd_event_run(w->event, 10 * USEC_PER_MSEC) >= 0);
        assert_int_equal(w->answered, n);
}

static void test_joined_in_flight(void **s) {
        World w;
        world_start(&w);
        for (int i = 0; i < 3; i++) {
                char arg[8];
                snprintf(arg, sizeof(arg), "p%d", i);
                assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/info", RUNTIME_OP_SETTINGS_TTL, parse, arg,
                                                        on_done, &w, NULL), 0);
        }
        run_until_answered(&w, 3);
        assert_int_equal(w.connections, 1);
        assert_string_equal(w.texts[0], "p0:{\"n\":1}"); /* answered in the order asked */
        assert_string_equal(w.texts[1], "p1:{\"n\":1}");
        assert_string_equal(w.texts[2], "p2:{\"n\":1}");
        /* within the ttl: the stored answer, no request */
        assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/info", RUNTIME_OP_SETTINGS_TTL, parse, "later",
                                                on_done, &w, NULL), 0);
        run_until_answered(&w, 4);
        assert_int_equal(w.connections, 1);
        assert_string_equal(w.texts[3], "later:{\"n\":1}");
        /* ttl 0 (a ping): asks again; another path is its own request */
        assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/info", 0, parse, "now", on_done, &w, NULL), 0);
        assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/version", RUNTIME_OP_SETTINGS_TTL, parse, "v",
                                                on_done, &w, NULL), 0);
        run_until_answered(&w, 6);
        assert_int_equal(w.connections, 3);
        world_stop(&w);
}

static void test_leader_freed(void **s) {
        World w;
        RuntimeOp *leader = NULL;
        world_start(&w);
        assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/info", RUNTIME_OP_SETTINGS_TTL, parse, "gone",
                                                on_done, &w, &leader), 0);
        assert_int_equal(runtime_op_http_shared(w.glue, w.sock, "/info", RUNTIME_OP_SETTINGS_TTL, parse, "w",
                                                on_done, &w, NULL), 0);
        runtime_op_free(leader); /* its request goes; the waiter asks on its own */
        run_until_answered(&w, 1);
        assert_string_equal(w.texts[0], "w:{\"n\":1}");
        world_stop(&w);
}

static int setup(void **s) { return mkdtemp(tmpdir) ? 0 : -1; }
static int teardown(void **s) { return rmdir(tmpdir); }

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_joined_in_flight),
                cmocka_unit_test(test_leader_freed),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
