/* test_wake_heap: many entries on one sd-event timer wake in time order, one per loop iteration; a
 * moved entry wakes at its new time, a removed one never; an entry armed from a wake runs on a later
 * iteration; random arms and removals keep the heap ordered (each wake in order, every armed one woken). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <cmocka.h>

#include "daemon/preheat/wake_heap.h"

typedef struct Item {
        int id;
        WakeEntry wake;
} Item;

typedef struct Log {
        int order[512];
        usec_t at[512];
        size_t n;
        WakeHeap *h;
        Item *rearm;              /* armed again (now) from its own wake, once */
} Log;

static void on_wake(WakeEntry *e, void *userdata) {
        Log *l = userdata;
        Item *it = (Item *) ((char *) e - offsetof(Item, wake));
        assert_int_equal(e->at, 0); /* out of the heap before its call */
        assert_int_equal(e->pos, 0);
        assert_true(l->n < 512);
        l->at[l->n] = now_monotonic();
        l->order[l->n++] = it->id;
        if (it == l->rearm) {
                l->rearm = NULL;
                assert_int_equal(wake_heap_set(l->h, e, now_monotonic()), 0);
        }
}

/* run the loop until nothing is armed */
static void drain(sd_event *ev, WakeHeap *h) {
        for (int i = 0; i < 100000 && h->n > 0; i++)
                assert_true(sd_event_run(ev, USEC_PER_SEC) >= 0);
        assert_int_equal(h->n, 0);
}

static void test_order_move_remove(void **s) {
        sd_event *ev = NULL;
        WakeHeap h;
        Log l = { .h = &h };
        Item it[5];
        usec_t t0 = now_monotonic();

        assert_int_equal(sd_event_new(&ev), 0);
        assert_int_equal(wake_heap_init(&h, ev, "test-wake", on_wake, &l), 0);
        for (int i = 0; i < 5; i++) {
                it[i] = (Item) { .id = i };
                /* 0 at +50 ms, 1 at +40, 2 at +30, 3 at +20, 4 at +10 */
                assert_int_equal(wake_heap_set(&h, &it[i].wake, t0 + (5 - i) * 10 * USEC_PER_MSEC), 0);
        }
        assert_int_equal(wake_heap_set(&h, &it[0].wake, t0 + 5 * USEC_PER_MSEC), 0); /* moved first */
        wake_heap_remove(&h, &it[2].wake);
        assert_int_equal(it[2].wake.at, 0);
        wake_heap_remove(&h, &it[2].wake); /* twice: nothing */
        assert_int_equal(wake_heap_set(&h, &it[1].wake, USEC_INFINITY), 0); /* disarmed */
        l.rearm = &it[3];
        drain(ev, &h);
        assert_int_equal(l.n, 4);
        assert_int_equal(l.order[0], 0);
        assert_int_equal(l.order[1], 4);
        assert_int_equal(l.order[2], 3);
        assert_int_equal(l.order[3], 3); /* armed again from its wake: a later iteration */
        assert_true(l.at[0] >= t0 + 5 * USEC_PER_MSEC);
        assert_true(l.at[1] >= t0 + 10 * USEC_PER_MSEC);
        assert_true(l.at[2] >= t0 + 20 * USEC_PER_MSEC);
        wake_heap_done(&h);
        sd_event_unref(ev);
}

/* one entry per iteration, as a timer source each would be: two due at once take two iterations */
static void test_one_per_iteration(void **s) {
        sd_event *ev = NULL;
        WakeHeap h;
        Log l = { .h = &h };
        Item a = { .id = 1 }, b = { .id = 2 };

        assert_int_equal(sd_event_new(&ev), 0);
        assert_int_equal(wake_heap_init(&h, ev, "test-wake", on_wake, &l), 0);
        assert_int_equal(wake_heap_set(&h, &a.wake, now_monotonic()), 0);
        assert_int_equal(wake_heap_set(&h, &b.wake, now_monotonic()), 0);
        assert_true(sd_event_run(ev, USEC_PER_SEC) > 0);
        assert_int_equal(l.n, 1);
        assert_true(sd_event_run(ev, USEC_PER_SEC) > 0);
        assert_int_equal(l.n, 2);
        wake_heap_done(&h);
        sd_event_unref(ev);
}

/* random arms, moves and removals of 300 entries: every armed one wakes once, in time order */
static void test_random(void **s) {
        sd_event *ev = NULL;
        WakeHeap h;
        Log l = { .h = &h };
        Item it[300];
        usec_t want[300];
        usec_t t0 = now_monotonic();
        size_t armed = 0;

        srand(24);
        assert_int_equal(sd_event_new(&ev), 0);
        assert_int_equal(wake_heap_init(&h, ev, "test-wake", on_wake, &l), 0);
        assert_int_equal(wake_heap_reserve(&h, 300), 0);
        for (int i = 0; i < 300; i++)
                it[i] = (Item) { .id = i };
        for (int k = 0; k < 2000; k++) {
                int i = rand() % 300;
                if (rand() % 4 == 0)
                        wake_heap_remove(&h, &it[i].wake);
                else
                        assert_int_equal(wake_heap_set(&h, &it[i].wake, t0 + 1 + (usec_t) (rand() % 20000)), 0);
        }
        for (int i = 0; i < 300; i++) {
                want[i] = it[i].wake.at;
                armed += want[i] != 0;
        }
        assert_int_equal(h.n, armed);
        drain(ev, &h);
        assert_int_equal(l.n, armed);
        for (size_t k = 0; k < l.n; k++) {
                assert_true(want[l.order[k]] != 0);
                assert_true(l.at[k] >= want[l.order[k]]);
                if (k > 0)
                        assert_true(want[l.order[k - 1]] <= want[l.order[k]]);
        }
        wake_heap_done(&h);
        sd_event_unref(ev);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_order_move_remove),
                cmocka_unit_test(test_one_per_iteration),
                cmocka_unit_test(test_random),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
