/* preheat_evict.c: the counting behind preheat-evicted. Two evictions are needed: one is what a recheck
 * is for (kubelet's GC ran once, the image comes back); two within the window mean the node's image
 * filesystem cannot hold the list, and pulling again only feeds the GC. */
#include "daemon/preheat/preheat_evict.h"

bool evict_track_note(EvictTrack *e, usec_t now, usec_t window) {
        bool again = e->last != 0 && now - e->last <= window;

        e->count++;
        e->last = now;
        if (again && !e->held) {
                e->held = true;
                e->held_since = now;
        }
        return e->held;
}

bool evict_track_may_retry(const EvictTrack *e, int usage_pct, unsigned low_pct, usec_t now, usec_t window) {
        if (!e->held)
                return true;
        if (usage_pct >= 0)
                return (unsigned) usage_pct < low_pct;
        return now - e->held_since > window;
}

void evict_track_release(EvictTrack *e) {
        e->held = false;
        e->held_since = 0;
        e->last = 0; /* counting starts afresh: the space is there now */
}

/* ---- the scheduler's side (preheat_model.h) ---- */

#include <stdio.h>

#include "daemon/preheat/preheat_model.h"

static const Config *target_config(const Target *t) { return t->preheat->config->config; }

/* Usage of t's image filesystem in percent, -1 when it cannot be measured (not located yet: asked now,
 * for the next time); figures into buf. Only statvfs runs here. */
static int usage(const Target *t, char *buf, size_t size) {
        Preheat *p = t->preheat;
        ImageFs fs = {};
        char used[32], cap[32];
        int pct;

        if (p->stopped || imagefs_cache_measure(&p->imagefs, p->glue, p->config->config, t->runtime, &fs) < 0) {
                snprintf(buf, size, "the image filesystem could not be measured");
                return -1;
        }
        pct = (int) imagefs_percent(fs.used, fs.capacity);
        format_bytes_human(fs.used, used, sizeof(used));
        format_bytes_human(fs.capacity, cap, sizeof(cap));
        snprintf(buf, size, "%s is %d%% used (%s of %s)", fs.path, pct, used, cap);
        imagefs_done(&fs);
        return pct;
}

bool preheat_evicted(Target *t, char **ret_why) {
        const Config *c = target_config(t);
        char disk[512], window[32] = "";
        _cleanup_free_ char *w = format_duration(c->preheat.evict_window);
        Preheat *p = t->preheat;

        *ret_why = NULL;
        if (!evict_track_note(&t->evict, now_monotonic(), c->preheat.evict_window))
                return false;
        snprintf(window, sizeof(window), "%s", w ?: "the window");
        (void) usage(t, disk, sizeof(disk));
        if (asprintf(ret_why,
                     "evicted twice within %s without pullwatch removing it: kubelet's image garbage collection "
                     "deletes unused images above its high threshold (%u%%) down to the low one (%u%%); %s. "
                     "Re-pulls stop until usage is below %u%%; give the image filesystem room or set preheat.pin "
                     "(containerd).",
                     window, c->kubelet.image_gc_high_threshold, c->kubelet.image_gc_low_threshold, disk,
                     c->kubelet.image_gc_low_threshold) < 0)
                *ret_why = NULL;
        if (p->hooks.evicted)
                p->hooks.evicted(p->userdata, t->image, preheat_runtime_name(t), *ret_why ?: "evicted twice");
        return true;
}

bool preheat_evict_retry(Target *t) {
        const Config *c = target_config(t);
        char disk[512];
        int pct = usage(t, disk, sizeof(disk));

        if (!evict_track_may_retry(&t->evict, pct, c->kubelet.image_gc_low_threshold, now_monotonic(),
                                   c->preheat.evict_window))
                return false;
        evict_track_release(&t->evict);
        return true;
}
