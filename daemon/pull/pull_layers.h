/* pull_layers.h: what one attempt of a pull saw of each layer, from the runtime's own reports: its
 * phase, its bytes (this connection's and the attempt's furthest), when its connection started,
 * dockerd's "Retrying in N seconds" countdowns, and which byte count its observer was last told.
 * Bookkeeping only: no events, no I/O, no verdicts; pull_job.c acts on what this reports. */
#pragma once

#include "basic/macro.h"
#include "basic/phase.h"

typedef struct LayerSeen {
        char *id;
        Phase phase;
        uint64_t downloaded;      /* this attempt: bytes the runtime reported for this layer */
        uint64_t current;         /* the last byte count reported (of this connection, after a restart) */
        uint64_t size;
        usec_t download_since;    /* this layer's current connection started (for cut timing) */
        bool in_runtime_retry;    /* inside a "Retrying in N seconds" countdown */
        unsigned runtime_retries;
        uint64_t bytes_at_retry;  /* downloaded when the last countdown began */
        unsigned countdown;       /* seconds in the last "Retrying in N seconds" */
        Verdict verdict;
        usec_t last_progress_event;
        uint64_t emitted;         /* bytes in the last phase/progress event */
        uint64_t observed;        /* bytes in the last report from the runtime, and when it came */
        usec_t observed_at;
} LayerSeen;

typedef struct PullLayers {
        LayerSeen *seen;
        size_t n;
} PullLayers;

/* What a report from the runtime means for the observer. */
typedef enum LayerNews {
        LAYER_NEWS_NONE,
        LAYER_NEWS_PHASE,         /* the layer entered a phase */
        LAYER_NEWS_PROGRESS,      /* its bytes moved (at most once a PULL_LAYERS_PROGRESS_INTERVAL) */
} LayerNews;

#define PULL_LAYERS_PROGRESS_INTERVAL USEC_PER_SEC

/* The layer id (added when new; NULL on ENOMEM), or only when known. */
LayerSeen *pull_layers_get(PullLayers *t, const char *id);
LayerSeen *pull_layers_find(const PullLayers *t, const char *id);
/* Forget every layer (a new attempt); returns the bytes they had downloaded. */
uint64_t pull_layers_clear(PullLayers *t);
/* Sums over the attempt's layers: bytes downloaded, sizes reported. */
uint64_t pull_layers_downloaded(const PullLayers *t);
uint64_t pull_layers_size(const PullLayers *t);
/* The newest connection still downloading started when (since when none started later). */
usec_t pull_layers_newest_download(const PullLayers *t, usec_t since);

/* A phase/bytes report for s at `at`: updated, and what to tell the observer (a progress event is said
 * with s->observed_at, a phase event with at). */
LayerNews pull_layers_report(LayerSeen *s, Phase phase, uint64_t current, uint64_t total, usec_t at);
/* One of dockerd's "Retrying in N seconds" for s (text may be NULL). true when it begins a new
 * countdown (one cut: the next messages of the same countdown return false); then *ret_timed says the
 * cut connection had started (false: refused before its first byte, no timed cut), *ret_cut how long it
 * had run, and *ret_no_bytes that the resume before it brought no byte (was the Range refused?). */
bool pull_layers_runtime_retry(LayerSeen *s, const char *text, usec_t at, bool *ret_timed, usec_t *ret_cut,
                               bool *ret_no_bytes);
/* The detector judged s anew (phase: the detector's). false when the verdict is the one it had; else
 * *ret_flush says that bytes came after the last progress event and must be said (with
 * s->observed_at) before this fault verdict, so the stream shows where the layer stopped. */
bool pull_layers_verdict(LayerSeen *s, Verdict v, Phase phase, bool *ret_flush);
