/* test_preheat_evict.c: eviction churn counting: one eviction re-pulls, a second within the window holds,
 * a second after the window does not; a held image is tried again below the low threshold (or, when
 * the disk cannot be measured, once the window has passed). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/preheat/preheat_evict.h"

#define H (3600 * USEC_PER_SEC)

static void test_second_within_window_holds(void **state) {
        EvictTrack e = {};
        assert_false(evict_track_note(&e, 10 * USEC_PER_SEC, H));
        assert_true(evict_track_note(&e, 10 * USEC_PER_SEC + H / 2, H));
        assert_true(e.held);
        assert_int_equal(e.count, 2);
}

static void test_second_after_window_repulls(void **state) {
        EvictTrack e = {};
        assert_false(evict_track_note(&e, 10 * USEC_PER_SEC, H));
        assert_false(evict_track_note(&e, 10 * USEC_PER_SEC + H + 1, H));
        /* ... but a third soon after the second holds */
        assert_true(evict_track_note(&e, 10 * USEC_PER_SEC + H + 2, H));
}

static void test_retry_below_low(void **state) {
        EvictTrack e = {};
        usec_t t0 = 5 * USEC_PER_SEC;
        assert_true(evict_track_may_retry(&e, 99, 80, t0, H)); /* not held: always */
        evict_track_note(&e, t0, H);
        evict_track_note(&e, t0 + 1, H);
        assert_false(evict_track_may_retry(&e, 80, 80, t0 + 2, H));
        assert_false(evict_track_may_retry(&e, 91, 80, t0 + 2 * H, H)); /* measured: the window does not matter */
        assert_true(evict_track_may_retry(&e, 79, 80, t0 + 2, H));
        /* unmeasured: after the window */
        assert_false(evict_track_may_retry(&e, -1, 80, t0 + 2, H));
        assert_true(evict_track_may_retry(&e, -1, 80, t0 + 2 * H, H));
        evict_track_release(&e);
        assert_false(e.held);
        assert_false(evict_track_note(&e, t0 + 3 * H, H)); /* counting starts afresh */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_second_within_window_holds),
                cmocka_unit_test(test_second_after_window_repulls),
                cmocka_unit_test(test_retry_below_low),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
