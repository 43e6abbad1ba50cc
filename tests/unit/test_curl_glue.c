/* Unit tests: curl_glue's timer. curl's "act now" (a timeout of 0, asked on every curl_multi_add_handle
 * and several times along a request) is due on the loop's next iteration, not after a rounded-up
 * millisecond of sleep; transfers added that way still run to their done callback. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "probes/transport/curl_glue.h"

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        CURLcode *out = userdata;
        *out = result;
        curl_easy_cleanup(easy);
}

/* Added from outside any curl callback, a transfer makes curl ask for a timeout of 0: the glue's timer
 * must then fire in an iteration that does not wait (sd_event_run() with a timeout of 0 dispatches
 * it). Rounded up to 999 µs, it was not due yet. */
static void test_act_now_is_due_at_once(void **state) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(curl_glue_new(e, &g), 0);
        for (unsigned i = 0; i < 20; i++) {
                CURLcode result = CURL_LAST;
                CURL *easy = NULL;

                /* a socket that is not there: the transfer ends at its first action, whatever the host */
                assert_int_equal(curl_glue_make_easy("/nonexistent/pullwatch-test.sock", &easy), 0);
                assert_int_equal(curl_easy_setopt(easy, CURLOPT_URL, "http://localhost/"), CURLE_OK);
                assert_int_equal(curl_glue_add(g, easy, on_done, &result), 0);
                assert_true(sd_event_run(e, 0) > 0);
                while (result == CURL_LAST)
                        assert_true(sd_event_run(e, 10 * USEC_PER_SEC) >= 0);
                assert_int_equal(result, CURLE_COULDNT_CONNECT);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_act_now_is_due_at_once),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
