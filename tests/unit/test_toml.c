/* test_toml: basic/toml.c, the TOML lexical layer under containerd_config.c and hosts_toml.c: blanks,
 * comments and line counting, every string form and escape, key segments, the end of a line, and
 * malformed input answered with "FILE:LINE: FIELD: what" on the line where it is. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "basic/toml.h"

/* The string at the start of text (after blanks), and where the scan stopped. */
static char *string_of(const char *text, unsigned *ret_line, const char **ret_rest) {
        TomlScan t = toml_scan("f.toml", text);
        char *s = NULL;
        toml_skip(&t, true);
        assert_int_equal(toml_string(&t, "k", &s), 0);
        assert_null(t.error.message);
        if (ret_line)
                *ret_line = t.line;
        if (ret_rest)
                *ret_rest = t.p;
        return s;
}

/* The scan's error as callers print it; it names the scan's file and a line. */
static void assert_error(const TomlScan *t, const char *want) {
        _cleanup_free_ char *got = error_detail_format(&t->error);
        assert_non_null(t->error.message);
        assert_string_equal(t->error.source, t->name);
        assert_true(t->error.line > 0);
        assert_string_equal(got, want);
}

/* The error reading a string (or a key segment) at the start of text (after blanks and newlines). */
static void check_error(const char *text, bool key, const char *field, const char *want) {
        TomlScan t = toml_scan("dir/f.toml", text);
        char *s = NULL;
        toml_skip(&t, true);
        assert_int_equal(key ? toml_key_segment(&t, field, &s) : toml_string(&t, field, &s), -EINVAL);
        assert_null(s);
        assert_non_null(t.error.message);
        assert_error(&t, want);
        toml_scan_done(&t);
}

static void test_skip_counts_lines(void **state) {
        TomlScan t = toml_scan("f.toml", "  # a comment\n\n\t# another\r\n  key");
        toml_skip(&t, false);
        assert_int_equal(*t.p, '\n'); /* the comment is skipped, the newline is not */
        assert_int_equal(t.line, 1);
        toml_skip(&t, true);
        assert_string_equal(t.p, "key");
        assert_int_equal(t.line, 4);
}

static void test_strings(void **state) {
        const char *rest;
        unsigned line;
        char *s;

        s = string_of("\"basic \\\"q\\\" \\\\ \\t\\n\\b\\f\\r\" = 1", NULL, &rest);
        assert_string_equal(s, "basic \"q\" \\ \t\n\b\f\r");
        assert_string_equal(rest, " = 1");
        free(s);
        s = string_of("'C:\\no\\escape'", NULL, NULL);
        assert_string_equal(s, "C:\\no\\escape");
        free(s);
        s = string_of("\"\\u00e9\\U0001F600\"", NULL, NULL);
        assert_string_equal(s, "\xc3\xa9\xf0\x9f\x98\x80");
        free(s);
        /* multi-line: the first newline is dropped, lines are counted, a line-ending backslash trims */
        s = string_of("\"\"\"\none\ntwo \\\n     three\"\"\"", &line, &rest);
        assert_string_equal(s, "one\ntwo three");
        assert_int_equal(line, 4);
        assert_string_equal(rest, "");
        free(s);
        s = string_of("'''\nraw \\n ''quoted'' '''", &line, NULL);
        assert_string_equal(s, "raw \\n ''quoted'' ");
        assert_int_equal(line, 2);
        free(s);
        /* four or five quotes at the end: one or two of them are content */
        s = string_of("\"\"\"a\"\"\"\"\"", NULL, &rest);
        assert_string_equal(s, "a\"\"");
        assert_string_equal(rest, "");
        free(s);
}

static void test_key_segments(void **state) {
        TomlScan t = toml_scan("f.toml", "plugins.\"io.containerd.grpc.v1.cri\".'x y' =");
        char *a = NULL, *b = NULL, *c = NULL;
        assert_int_equal(toml_key_segment(&t, NULL, &a), 0);
        assert_int_equal(*t.p++, '.');
        assert_int_equal(toml_key_segment(&t, NULL, &b), 0);
        assert_int_equal(*t.p++, '.');
        assert_int_equal(toml_key_segment(&t, NULL, &c), 0);
        assert_string_equal(a, "plugins");
        assert_string_equal(b, "io.containerd.grpc.v1.cri");
        assert_string_equal(c, "x y");
        assert_string_equal(t.p, " =");
        free(a);
        free(b);
        free(c);
}

static void test_end_of_line(void **state) {
        TomlScan t = toml_scan("f.toml", "   # fine\nnext");
        assert_int_equal(toml_end_of_line(&t, "k"), 0);
        assert_string_equal(t.p, "\nnext");
        t = toml_scan("f.toml", "\n\n  true false");
        toml_skip(&t, true);
        t.p += 4;
        assert_int_equal(toml_end_of_line(&t, "plugins.cri.enabled"), -EINVAL);
        assert_error(&t, "f.toml:3: plugins.cri.enabled: unexpected text after the value");
        toml_scan_done(&t);
}

static void test_malformed_names_line_and_field(void **state) {
        check_error("\"no end", false, "server", "dir/f.toml:1: server: unterminated string");
        check_error("\n\n\"ends at the line\nend\"", false, "ca", "dir/f.toml:3: ca: unterminated string");
        /* a multi-line string that never ends: the line where the text ran out */
        check_error("\"\"\"\none\ntwo", false, "k", "dir/f.toml:3: k: unterminated string");
        check_error("\n\"bad \\x escape\"", false, "plugins.\"io.containerd.cri.v1.images\".registry.config_path",
                    "dir/f.toml:2: plugins.\"io.containerd.cri.v1.images\".registry.config_path: unsupported escape \\x");
        check_error("\"\\u12g4\"", false, "k", "dir/f.toml:1: k: bad \\u escape");
        check_error("\"trailing \\", false, "k", "dir/f.toml:1: k: unsupported escape \\0");
        check_error("\n\n\n= 1", true, "host", "dir/f.toml:4: host: expected a key");
        check_error("'''multi''' = 1", true, NULL, "dir/f.toml:1: a multi-line string cannot be a key");
}

static void test_first_error_kept(void **state) {
        TomlScan t = toml_scan("f.toml", "");
        assert_int_equal(toml_fail(&t, "a", "first %d", 1), -EINVAL);
        t.line = 9;
        assert_int_equal(toml_fail(&t, NULL, "second"), -EINVAL);
        assert_error(&t, "f.toml:1: a: first 1");
        toml_scan_done(&t);
        assert_null(t.error.message);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_skip_counts_lines),
                cmocka_unit_test(test_strings),
                cmocka_unit_test(test_key_segments),
                cmocka_unit_test(test_end_of_line),
                cmocka_unit_test(test_malformed_names_line_and_field),
                cmocka_unit_test(test_first_error_kept),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
