/* preheat_evict.h: eviction churn. A preheated image that leaves the runtime without pullwatch removing
 * it was evicted (on Kubernetes: kubelet's image GC); the second eviction within preheat.evict_window
 * holds its re-pulls back until the image filesystem is below kubelet's low threshold. Owns the counting
 * and the decision; the scheduler (preheat.c) owns the target's state and timers. */
#pragma once

#include <stdbool.h>
#include "basic/macro.h"

typedef struct EvictTrack {
        usec_t last;              /* CLOCK_MONOTONIC of the previous eviction; 0 = none */
        unsigned count;           /* evictions seen since the target was added */
        bool held;                /* re-pulls stopped */
        usec_t held_since;
} EvictTrack;

/* One more eviction at now: true when it is the second within window (re-pulls stop). Pure. */
bool evict_track_note(EvictTrack *e, usec_t now, usec_t window);

/* A held target may be tried again: usage (percent, or -1 when unmeasured) is below low_pct, or,
 * unmeasured, the window has passed since it was held. Pure. */
bool evict_track_may_retry(const EvictTrack *e, int usage_pct, unsigned low_pct, usec_t now, usec_t window);

void evict_track_release(EvictTrack *e);
