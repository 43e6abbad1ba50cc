/* preheat_status.c: what the scheduler looks like from outside: counts per state, the one-line summary
 * for STATUS=, and the per-target JSON behind `pullwatch status`. Reads targets; changes nothing. */
#include "daemon/preheat/preheat_model.h"

#include <math.h>
#include <stdio.h>

static const char *const next_names[] = { "none", "check", "pull", "recheck" };

static const char *const state_names[_PREHEAT_STATE_MAX] = {
        [PREHEAT_WAITING] = "waiting", [PREHEAT_QUEUED] = "queued", [PREHEAT_PULLING] = "pulling",
        [PREHEAT_READY] = "ready",     [PREHEAT_FAILED] = "failed",   [PREHEAT_EVICTED] = "evicted",
};

const char *preheat_state_to_string(PreheatState s) {
        return s >= 0 && s < _PREHEAT_STATE_MAX ? state_names[s] : NULL;
}

unsigned preheat_counts(const Preheat *p, unsigned counts[_PREHEAT_STATE_MAX]) {
        for (size_t i = 0; i < _PREHEAT_STATE_MAX; i++)
                counts[i] = 0;
        for (size_t i = 0; i < p->n_targets; i++)
                counts[p->targets[i]->state]++;
        return (unsigned) p->n_targets;
}

bool preheat_complete(const Preheat *p) {
        unsigned c[_PREHEAT_STATE_MAX];
        unsigned n = preheat_counts(p, c);
        return n > 0 && c[PREHEAT_READY] == n;
}

int preheat_summary(const Preheat *p, char *buf, size_t size) {
        unsigned c[_PREHEAT_STATE_MAX];
        unsigned n = preheat_counts(p, c), waiting = c[PREHEAT_WAITING] + c[PREHEAT_QUEUED];
        int k = snprintf(buf, size, "preheat %u/%u ready, %u pulling, %u failed", c[PREHEAT_READY], n,
                         c[PREHEAT_PULLING], c[PREHEAT_FAILED]);
        if (k >= 0 && (size_t) k < size && c[PREHEAT_EVICTED] > 0)
                k += snprintf(buf + k, size - (size_t) k, ", %u evicted", c[PREHEAT_EVICTED]);
        if (k >= 0 && (size_t) k < size && waiting > 0)
                k += snprintf(buf + k, size - (size_t) k, ", %u waiting", waiting);
        return k < 0 || (size_t) k >= size ? -ENOBUFS : 0;
}

static json_t *time_or_null(uint64_t usec) {
        char b[32];
        return usec && format_timestamp(usec, b, sizeof(b)) >= 0 ? json_string(b) : json_null();
}

static int by_order(const void *a, const void *b) {
        const Target *x = *(Target *const *) a, *y = *(Target *const *) b;
        return x->order < y->order ? -1 : x->order > y->order ? 1 : (int) x->runtime - (int) y->runtime;
}

json_t *preheat_status_json(const Preheat *p) { return preheat_status_json_capped(p, SIZE_MAX, NULL); }

json_t *preheat_status_json_capped(const Preheat *p, size_t max, size_t *ret_omitted) {
        _cleanup_free_ Target **sorted = NULL;
        json_t *arr = json_array();
        usec_t now = now_monotonic();
        size_t not_ready = 0;

        if (!arr)
                return NULL;
        sorted = p->n_targets ? calloc(p->n_targets, sizeof(*sorted)) : NULL;
        if (p->n_targets && !sorted)
                return json_decref(arr), NULL;
        if (p->n_targets)
                memcpy(sorted, p->targets, p->n_targets * sizeof(*sorted));
        if (p->n_targets > 1) /* qsort(NULL, 0, ...) is undefined (UBSan says so) */
                qsort(sorted, p->n_targets, sizeof(*sorted), by_order);
        /* Over max: every target not ready first (up to max), then ready ones fill the rest; the list's
         * order is kept and the caller says how many were left out. */
        for (size_t i = 0; i < p->n_targets; i++)
                not_ready += sorted[i]->state != PREHEAT_READY;
        if (ret_omitted)
                *ret_omitted = p->n_targets > max ? p->n_targets - max : 0;
        size_t ready_room = max > not_ready ? max - not_ready : 0, not_ready_room = max;
        for (size_t i = 0; i < p->n_targets; i++) {
                const Target *t = sorted[i];
                size_t *room = t->state == PREHEAT_READY ? &ready_room : &not_ready_room;
                if (*room == 0)
                        continue;
                (*room)--;
                const StateEntry *s = state_find(p->state, t->image, preheat_runtime_name(t));
                const char *err = t->error ? t->error : s ? s->last_error : NULL;
                json_t *o = json_pack("{s:s, s:s, s:s, s:i, s:s?, s:o, s:o, s:I, s:s?, s:s?}", "image", t->image, "runtime",
                                      preheat_runtime_name(t), "state", preheat_state_to_string(t->state), "priority",
                                      t->priority, "digest", s ? s->digest : NULL, "last_success",
                                      time_or_null(s ? s->last_success : 0), "last_attempt",
                                      time_or_null(s ? s->last_attempt : 0), "attempts",
                                      (json_int_t) (s ? s->attempts : 0), "error", err, "platform", t->platform);
                if (!o)
                        continue;
                if (t->wake.at > now) {
                        json_object_set_new(o, "next", json_string(next_names[t->next]));
                        json_object_set_new(o, "next_in_s", json_real(round((double) (t->wake.at - now) / 1e5) / 10.0));
                }
                if (t->pull && !t->pull_done)
                        json_object_set_new(o, "pull", watched_pull_status_json(t->pull));
                json_array_append_new(arr, o);
        }
        return arr;
}
