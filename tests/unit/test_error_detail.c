/* test_error_detail: the one error-detail type: its text with and without each part (the config
 * loader's "file:line:column: key: message", the registry's "GET url: HTTP 404 CODE: message (auth
 * realm ...) (retry after Ns)", hosts.toml's "path:line: field: message"), set, copy, move, and the
 * escaped line for text that carries a server's bytes. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "basic/error_detail.h"

static void check(const ErrorDetail *e, const char *want) {
        _cleanup_free_ char *got = error_detail_format(e);
        assert_non_null(got);
        assert_string_equal(got, want);
}

static void test_file_parts(void **state) {
        ErrorDetail e = { .source = (char *) "/etc/pullwatch/pullwatch.yaml", .line = 3, .column = 15,
                          .field = (char *) "watchdog.hang_quiet", .message = (char *) "expected a duration" };

        check(&e, "/etc/pullwatch/pullwatch.yaml:3:15: watchdog.hang_quiet: expected a duration");
        e.field = NULL;
        check(&e, "/etc/pullwatch/pullwatch.yaml:3:15: expected a duration");
        e.column = 0; /* hosts.toml knows lines only */
        e.field = (char *) "capabilities";
        check(&e, "/etc/pullwatch/pullwatch.yaml:3: capabilities: expected a duration");
        e.line = 0;
        e.field = NULL;
        check(&e, "/etc/pullwatch/pullwatch.yaml: expected a duration");
        e.source = NULL;
        e.line = 7;
        e.column = 2;
        check(&e, "7:2: expected a duration");
        e.line = e.column = 0;
        e.field = (char *) "retry";
        check(&e, "retry: expected a duration");
        e.field = NULL;
        check(&e, "expected a duration");
        e.message = NULL;
        check(&e, "unknown error");
        e.source = (char *) "/x.yaml";
        check(&e, "/x.yaml: unknown error");
        assert_null(error_detail_format(NULL));
        assert_null(error_detail_format_line(NULL));
        error_detail_done(NULL);
}

static void test_http_parts(void **state) {
        ErrorDetail e = { .http_status = 404, .code = (char *) "MANIFEST_UNKNOWN",
                          .message = (char *) "manifest unknown",
                          .source = (char *) "GET http://127.0.0.1:5000/v2/x/manifests/t" };

        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: HTTP 404 MANIFEST_UNKNOWN: manifest unknown");
        e.code = NULL;
        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: HTTP 404: manifest unknown");
        e.message = NULL;
        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: HTTP 404");
        e.http_status = 0;
        e.code = (char *) "DENIED";
        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: DENIED");
        e.message = (char *) "requested access to the resource is denied";
        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: DENIED: requested access to the resource is denied");
        e.code = NULL;
        check(&e, "GET http://127.0.0.1:5000/v2/x/manifests/t: requested access to the resource is denied");

        e = (ErrorDetail) { .http_status = 429, .code = (char *) "TOOMANYREQUESTS", .message = (char *) "slow down",
                            .realm = (char *) "https://auth.example/token", .retry_after = 30 };
        check(&e, "HTTP 429 TOOMANYREQUESTS: slow down (auth realm https://auth.example/token) (retry after 30s)");
        e.realm = NULL;
        check(&e, "HTTP 429 TOOMANYREQUESTS: slow down (retry after 30s)");
        e.retry_after = 0;
        e.realm = (char *) "https://auth.example/token";
        check(&e, "HTTP 429 TOOMANYREQUESTS: slow down (auth realm https://auth.example/token)");
}

static void test_set_copy_move(void **state) {
        ErrorDetail e = {}, c = {}, m = {};

        assert_int_equal(error_detail_set(NULL, EINVAL, "f", 1, 2, "k", "x"), -EINVAL);
        assert_int_equal(error_detail_set(&e, EINVAL, "/p.yaml", 4, 9, "preheat.list", "bad %s", "path"), -EINVAL);
        check(&e, "/p.yaml:4:9: preheat.list: bad path");
        /* setting again replaces everything, -errno given either way */
        assert_int_equal(error_detail_setf(&e, -ENOENT, "no registry %d", 2), -ENOENT);
        check(&e, "no registry 2");
        assert_null(e.source);
        assert_null(e.field);
        assert_int_equal(e.line, 0);

        e.source = strdup("GET https://h/v2/");
        e.code = strdup("UNAUTHORIZED");
        e.realm = strdup("https://auth/token");
        e.http_status = 401;
        e.retry_after = 5;
        e.line = 1;
        e.column = 1;
        e.field = strdup("f");
        assert_int_equal(error_detail_copy(&e, &c), 0);
        error_detail_done(&e);
        assert_null(e.message);
        check(&c, "GET https://h/v2/:1:1: f: HTTP 401 UNAUTHORIZED: no registry 2 (auth realm https://auth/token) "
                  "(retry after 5s)");

        assert_int_equal(error_detail_setf(&m, EIO, "old"), -EIO);
        error_detail_move(&m, &c);
        assert_null(c.source);
        assert_null(c.message);
        assert_int_equal(c.http_status, 0);
        assert_string_equal(m.code, "UNAUTHORIZED");
        assert_int_equal(m.retry_after, 5);
        error_detail_done(&m);
        error_detail_done(&c);
}

static void test_escaped_line(void **state) {
        ErrorDetail e = { .source = (char *) "GET https://h/v2/r/manifests/t", .http_status = 500,
                          .message = (char *) "boom\r\n<0>forged\x1b[2J\\" };
        _cleanup_free_ char *raw = error_detail_format(&e), *line = error_detail_format_line(&e);

        /* raw keeps the server's bytes (journald fields, JSON); the line is safe for stderr */
        assert_string_equal(raw, "GET https://h/v2/r/manifests/t: HTTP 500: boom\r\n<0>forged\x1b[2J\\");
        assert_string_equal(line, "GET https://h/v2/r/manifests/t: HTTP 500: boom\\r\\n<0>forged\\x1b[2J\\\\");

        e = (ErrorDetail) { .source = (char *) "<3>/tmp/a\tb.yaml", .line = 1, .column = 1,
                            .field = (char *) "k\x7f", .message = (char *) "m" };
        free(line);
        line = error_detail_format_line(&e);
        assert_string_equal(line, "\\x3c3>/tmp/a\\tb.yaml:1:1: k\\x7f: m");
}

static void test_wrap(void **state) {
        ErrorDetail e = {};
        _cleanup_free_ char *text = NULL;

        /* NULL detail: only the errno travels */
        assert_int_equal(error_detail_wrap(NULL, ENOENT, "reading %s", "x"), -ENOENT);

        /* context goes in front of everything; what a server answered and its message stay as they were */
        assert_int_equal(error_detail_set(&e, -EIO, "GET https://h/v2/r/manifests/t", 0, 0, NULL, "manifest unknown"), -EIO);
        e.http_status = 404;
        assert_int_equal(error_detail_wrap(&e, -EIO, "preflight of %s", "h/r:t"), -EIO);
        check(&e, "preflight of h/r:t: GET https://h/v2/r/manifests/t: HTTP 404: manifest unknown");
        assert_string_equal(e.message, "manifest unknown");
        {
                ErrorDetail copy;
                assert_int_equal(error_detail_copy(&e, &copy), 0);
                check(&copy, "preflight of h/r:t: GET https://h/v2/r/manifests/t: HTTP 404: manifest unknown");
                error_detail_done(&copy);
        }

        /* wraps stack, outermost first, like a path through the program */
        error_detail_done(&e);
        (void) error_detail_setf(&e, ECONNREFUSED, "/run/containerd/containerd.sock: connection refused");
        assert_int_equal(error_detail_wrap(&e, ECONNREFUSED, "ImageStatus"), -ECONNREFUSED);
        assert_int_equal(error_detail_wrap(&e, -ECONNREFUSED, "cannot reach containerd"), -ECONNREFUSED);
        check(&e, "cannot reach containerd: ImageStatus: /run/containerd/containerd.sock: connection refused");

        /* no message: the server's code still follows the context */
        error_detail_done(&e);
        e.code = strdup("NotFound");
        assert_non_null(e.code);
        assert_int_equal(error_detail_wrap(&e, ENOENT, "RemoveImage"), -ENOENT);
        text = error_detail_format(&e);
        assert_string_equal(text, "RemoveImage: NotFound");
        error_detail_done(&e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_file_parts),
                cmocka_unit_test(test_http_parts),
                cmocka_unit_test(test_set_copy_move),
                cmocka_unit_test(test_escaped_line),
                cmocka_unit_test(test_wrap),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
