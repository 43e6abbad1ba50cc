/* wake_heap.c: entries' next times on one timer source; see wake_heap.h. */
#include "daemon/preheat/wake_heap.h"

#include <assert.h>
#include <errno.h>
#include <stdlib.h>

static void place(WakeHeap *h, size_t i, WakeEntry *e) {
        h->v[i] = e;
        e->pos = i + 1;
}

static void sift_up(WakeHeap *h, size_t i) {
        WakeEntry *e = h->v[i];
        while (i > 0) {
                size_t parent = (i - 1) / 2;
                if (h->v[parent]->at <= e->at)
                        break;
                place(h, i, h->v[parent]);
                i = parent;
        }
        place(h, i, e);
}

static void sift_down(WakeHeap *h, size_t i) {
        WakeEntry *e = h->v[i];
        for (;;) {
                size_t c = 2 * i + 1;
                if (c >= h->n)
                        break;
                if (c + 1 < h->n && h->v[c + 1]->at < h->v[c]->at)
                        c++;
                if (e->at <= h->v[c]->at)
                        break;
                place(h, i, h->v[c]);
                i = c;
        }
        place(h, i, e);
}

/* the timer follows the heap's top */
static void rearm(WakeHeap *h) {
        if (!h->timer)
                return;
        if (h->n == 0) {
                (void) sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(h->timer, h->v[0]->at);
        (void) sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

static void take_out(WakeHeap *h, WakeEntry *e) {
        size_t i = e->pos - 1;

        assert(i < h->n && h->v[i] == e);
        e->pos = 0;
        e->at = 0;
        if (i != --h->n) {
                WakeEntry *m = h->v[h->n]; /* the last one fills the hole, then finds its place */
                place(h, i, m);
                sift_down(h, i);
                sift_up(h, m->pos - 1);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        WakeHeap *h = userdata;
        WakeEntry *e;

        (void) s;
        (void) usec;
        if (h->n == 0 || h->v[0]->at > now_monotonic()) {
                rearm(h); /* moved later since the timer was set */
                return 0;
        }
        e = h->v[0];
        take_out(h, e);
        rearm(h);
        h->fn(e, h->userdata); /* last: it may arm entries, or free the owner's */
        return 0;
}

int wake_heap_init(WakeHeap *h, sd_event *event, const char *description, wake_fn fn, void *userdata) {
        int r;

        assert(h);
        assert(event);
        assert(fn);
        *h = (WakeHeap) { .fn = fn, .userdata = userdata };
        r = sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, USEC_INFINITY, 0, on_timer, h);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(h->timer, description);
        return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
}

void wake_heap_done(WakeHeap *h) {
        if (!h)
                return;
        for (size_t i = 0; i < h->n; i++)
                h->v[i]->pos = 0, h->v[i]->at = 0;
        h->timer = sd_event_source_disable_unref(h->timer);
        free(h->v);
        h->v = NULL;
        h->n = h->size = 0;
}

int wake_heap_reserve(WakeHeap *h, size_t n) {
        WakeEntry **v;

        if (n <= h->size)
                return 0;
        n = n < 2 * h->size ? 2 * h->size : n;
        v = realloc(h->v, n * sizeof(*v));
        if (!v)
                return -ENOMEM;
        h->v = v;
        h->size = n;
        return 0;
}

int wake_heap_set(WakeHeap *h, WakeEntry *e, usec_t at) {
        int r;

        assert(h);
        assert(e);
        if (at == USEC_INFINITY) {
                wake_heap_remove(h, e);
                return 0;
        }
        if (at == 0)
                at = 1; /* 0 means "not armed" */
        if (e->pos) {
                e->at = at;
                sift_down(h, e->pos - 1);
                sift_up(h, e->pos - 1);
        } else {
                r = wake_heap_reserve(h, h->n + 1);
                if (r < 0)
                        return r;
                e->at = at;
                place(h, h->n++, e);
                sift_up(h, h->n - 1);
        }
        rearm(h);
        return 0;
}

void wake_heap_remove(WakeHeap *h, WakeEntry *e) {
        assert(h);
        assert(e);
        if (!e->pos) {
                e->at = 0;
                return;
        }
        take_out(h, e);
        rearm(h);
}
