/* test_escape: escape_line, the one escaping of untrusted text on stderr and journal MESSAGE lines:
 * control characters, forged "<N>" priorities, C1 and broken UTF-8, backslashes, truncation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "basic/escape.h"

static void check(const char *in, const char *want) {
        _cleanup_free_ char *got = escape_line(in);
        assert_non_null(got);
        assert_string_equal(got, want);
}

static void test_plain_text_passes(void **s) {
        check("", "");
        check("pull of reg/app:v1 failed: manifest unknown", "pull of reg/app:v1 failed: manifest unknown");
        check("a <0> in the middle is text", "a <0> in the middle is text");
        check("Größe 3 GiB \xe2\x80\x94 ok", "Größe 3 GiB \xe2\x80\x94 ok"); /* valid UTF-8 stays */
        assert_null(escape_line(NULL));
}

static void test_control_characters(void **s) {
        check("one\ntwo", "one\\ntwo");
        check("cr\rlf\r\n", "cr\\rlf\\r\\n");
        check("tab\there", "tab\\there");
        check("\033[2Jwiped", "\\x1b[2Jwiped");
        check("bell\a del\x7f", "bell\\x07 del\\x7f");
        check("back\\slash", "back\\\\slash"); /* so "\\n" in the input cannot pass for an escaped newline */
}

static void test_forged_priority(void **s) {
        check("<0>emergency", "\\x3c0>emergency");
        check("<12>x", "\\x3c12>x");
        check("denied\n<0>forged line", "denied\\n<0>forged line"); /* no line start left to forge */
        check("<b>bold</b>", "<b>bold</b>");                        /* not a priority */
        check("<>", "<>");
}

static void test_c1_and_broken_utf8(void **s) {
        check("csi \xc2\x9b" "31m", "csi \\u009b31m");
        check("nel \xc2\x85", "nel \\u0085");
        check("bad \xff\xfe end", "bad \\xff\\xfe end");
        check("cut \xe2\x80", "cut \\xe2\\x80");
        check("overlong \xc0\xaf", "overlong \\xc0\\xaf");
        check("surrogate \xed\xa0\x80", "surrogate \\xed\\xa0\\x80");
}

static void test_buffer_cut_at_boundary(void **s) {
        char buf[8];
        escape_line_buf("ab\ncdef", buf, sizeof(buf));
        assert_string_equal(buf, "ab\\ncde");
        escape_line_buf("abcdef\n", buf, sizeof(buf));
        assert_string_equal(buf, "abcdef"); /* "\\n" does not fit: no half escape */
        escape_line_buf("abcde\xe2\x80\x94", buf, sizeof(buf));
        assert_string_equal(buf, "abcde"); /* nor half a character */
        escape_line_buf(NULL, buf, sizeof(buf));
        assert_string_equal(buf, "");
}

static void test_fprintf_line(void **s) {
        char *out = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&out, &len);
        assert_non_null(f);
        assert_int_equal(fprintf_line(f, "%s (%s): %s", "reg/app:v1", "docker", "EOF\n<0>forged"), 0);
        fclose(f);
        assert_string_equal(out, "reg/app:v1 (docker): EOF\\n<0>forged\n");
        free(out);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_plain_text_passes),
                cmocka_unit_test(test_control_characters),
                cmocka_unit_test(test_forged_priority),
                cmocka_unit_test(test_c1_and_broken_utf8),
                cmocka_unit_test(test_buffer_cut_at_boundary),
                cmocka_unit_test(test_fprintf_line),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
