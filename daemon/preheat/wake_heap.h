/* wake_heap.h: many entries' next times on one sd-event timer (a binary min-heap by time), instead of a
 * timer source each: 2,000 preheat targets held 2,000 sources (~300 B each in sd-event). It owns the
 * heap and its timer; it never frees an entry and knows nothing of what an entry is. */
#pragma once

#include <stddef.h>
#include <systemd/sd-event.h>

#include "basic/timestamp.h"

/* Embedded in the owner's struct. at: CLOCK_MONOTONIC, 0 = not armed. */
typedef struct WakeEntry {
        usec_t at;
        size_t pos;               /* 1 + its index in the heap; 0 = not in it */
} WakeEntry;

/* Called from the timer for one entry that is due, after it left the heap (at is 0 again): the same one
 * entry per loop iteration as a timer source of its own would be. */
typedef void (*wake_fn)(WakeEntry *e, void *userdata);

typedef struct WakeHeap {
        sd_event_source *timer;
        WakeEntry **v;
        size_t n, size;
        wake_fn fn;
        void *userdata;
} WakeHeap;

int wake_heap_init(WakeHeap *h, sd_event *event, const char *description, wake_fn fn, void *userdata);
/* Drops the timer and the heap; the entries are the owner's. */
void wake_heap_done(WakeHeap *h);
/* Room for n entries, so that wake_heap_set() of at most n entries never allocates. */
int wake_heap_reserve(WakeHeap *h, size_t n);
/* Wake e at at (CLOCK_MONOTONIC; it moves if armed), or not at all for USEC_INFINITY. Never fails once
 * room is reserved; -ENOMEM (e not armed) otherwise. */
int wake_heap_set(WakeHeap *h, WakeEntry *e, usec_t at);
void wake_heap_remove(WakeHeap *h, WakeEntry *e);
