/* pull_layers.c: the per-layer record of one attempt (pull_layers.h): what the runtime reported of each
 * layer, and when a report is news for the observer. */
#include "daemon/pull/pull_layers.h"

#include <stdio.h>
#include <stdlib.h>

LayerSeen *pull_layers_find(const PullLayers *t, const char *id) {
        for (size_t i = 0; i < t->n; i++)
                if (streq(t->seen[i].id, id))
                        return &t->seen[i];
        return NULL;
}

LayerSeen *pull_layers_get(PullLayers *t, const char *id) {
        LayerSeen *n = pull_layers_find(t, id);
        if (n)
                return n;
        n = realloc(t->seen, (t->n + 1) * sizeof(*n));
        if (!n)
                return NULL;
        t->seen = n;
        n = &t->seen[t->n];
        *n = (LayerSeen) { .id = strdup(id), .phase = _PHASE_INVALID, .verdict = _VERDICT_INVALID };
        if (!n->id)
                return NULL;
        t->n++;
        return n;
}

uint64_t pull_layers_clear(PullLayers *t) {
        uint64_t bytes = 0;
        for (size_t i = 0; i < t->n; i++) {
                bytes += t->seen[i].downloaded;
                free(t->seen[i].id);
        }
        free(t->seen);
        t->seen = NULL;
        t->n = 0;
        return bytes;
}

uint64_t pull_layers_downloaded(const PullLayers *t) {
        uint64_t sum = 0;
        for (size_t i = 0; i < t->n; i++)
                sum += t->seen[i].downloaded;
        return sum;
}

uint64_t pull_layers_size(const PullLayers *t) {
        uint64_t sum = 0;
        for (size_t i = 0; i < t->n; i++)
                sum += t->seen[i].size;
        return sum;
}

usec_t pull_layers_newest_download(const PullLayers *t, usec_t since) {
        for (size_t i = 0; i < t->n; i++)
                if (t->seen[i].phase == PHASE_DOWNLOADING && t->seen[i].download_since)
                        since = MAX(since, t->seen[i].download_since);
        return since;
}

LayerNews pull_layers_report(LayerSeen *s, Phase phase, uint64_t current, uint64_t total, usec_t at) {
        if (phase == PHASE_DOWNLOADING) {
                if (s->phase != PHASE_DOWNLOADING || s->in_runtime_retry)
                        s->download_since = at;
                s->in_runtime_retry = false;
                s->current = current;
                s->downloaded = MAX(s->downloaded, current);
                s->size = MAX(s->size, total);
        } else if (s->phase == PHASE_DOWNLOADING && phase != PHASE_DONE)
                s->downloaded = MAX(s->downloaded, s->size); /* the last progress message lags */
        /* when the count last changed: dockerd on the containerd store repeats it every second */
        if (current != s->observed || s->phase != phase) {
                s->observed = current;
                s->observed_at = at;
        }
        if (s->phase != phase) {
                s->phase = phase;
                s->last_progress_event = at;
                s->emitted = current;
                return LAYER_NEWS_PHASE;
        }
        if (current > 0 && current != s->emitted && at - s->last_progress_event >= PULL_LAYERS_PROGRESS_INTERVAL) {
                /* Only bytes that moved: dockerd on the containerd store repeats the same count
                 * every second, which says nothing new. */
                s->last_progress_event = at;
                s->emitted = current;
                return LAYER_NEWS_PROGRESS;
        }
        return LAYER_NEWS_NONE;
}

bool pull_layers_runtime_retry(LayerSeen *s, const char *text, usec_t at, bool *ret_timed, usec_t *ret_cut,
                               bool *ret_no_bytes) {
        unsigned n = 0;

        /* dockerd counts down "Retrying in 5 seconds", "... 4 seconds": one cut, many messages. A
         * count that goes up is the next cut, even with no Downloading message in between. */
        if (text)
                (void) sscanf(text, "Retrying in %u", &n);
        if (s->in_runtime_retry && n > s->countdown)
                s->in_runtime_retry = false;
        s->countdown = n;
        if (s->in_runtime_retry)
                return false;
        s->in_runtime_retry = true;
        s->phase = PHASE_WAITING;
        /* a cut is timed from the connection's first byte; a retry refused before any byte
         * (dockerd's "expected HTTP 206") is no timed cut */
        *ret_timed = s->download_since != 0;
        *ret_cut = s->download_since ? at - s->download_since : 0;
        s->download_since = 0;
        /* A resume that brought no byte before failing again: was the Range refused? */
        *ret_no_bytes = s->runtime_retries > 0 && s->downloaded <= s->bytes_at_retry;
        s->runtime_retries++;
        s->bytes_at_retry = s->downloaded;
        return true;
}

bool pull_layers_verdict(LayerSeen *s, Verdict v, Phase phase, bool *ret_flush) {
        if (s->verdict == v)
                return false;
        s->verdict = v;
        *ret_flush = verdict_is_fault(v) && s->observed != s->emitted && s->phase == phase;
        if (*ret_flush)
                s->emitted = s->observed;
        return true;
}
