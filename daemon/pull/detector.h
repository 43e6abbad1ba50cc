/* detector.h: the phase-aware stall detector. From per-layer phase/byte observations and liveness
 * deltas (all timestamped by the caller) it gives each layer and the pull a verdict with evidence.
 * Pure logic: no I/O, no clock, no logging; it decides nothing about cancelling (the pull job does). */
#pragma once

#include <sys/types.h>
#include "config/config.h"
#include "basic/phase.h"

#define DETECTOR_EVIDENCE_MAX 192
#define DETECTOR_TRICKLE_RING 32

/* What the liveness probes saw over one sampling interval, already attributed by the caller:
 * "helpers" are the runtime's decompressor/untar processes and their children. */
typedef struct LivenessDelta {
        usec_t at;               /* end of the interval */
        usec_t interval;         /* its length */
        bool available;          /* false: the runtime could not be observed (no pid, no /proc) */
        bool unverified;         /* no process could be proven to be the runtime: see why */
        char why[DETECTOR_EVIDENCE_MAX];
        uint64_t helper_io;      /* bytes read+written by helpers during the interval */
        uint64_t helper_cpu;     /* CPU microseconds of helpers */
        uint64_t runtime_io;     /* the runtime's own (and other descendants') I/O bytes */
        uint64_t runtime_cpu;
        bool disk_grew;          /* the extraction target grew */
        unsigned n_helpers;
        pid_t busiest_pid;       /* helper with the most CPU (or the oldest one when none burns) */
        char busiest_comm[16];
        char busiest_state;      /* 'R', 'S', 'D'... from /proc */
        uint64_t busiest_cpu;
} LivenessDelta;

typedef struct TrickleSample {
        usec_t at;
        uint64_t bytes;
} TrickleSample;

typedef struct LayerTrack {
        char *id;
        Phase phase;
        uint64_t current, total;  /* bytes of the current phase */
        uint64_t size;            /* compressed size, once known */
        usec_t first_seen;
        usec_t phase_since;
        usec_t last_progress;     /* bytes moved or phase advanced */
        usec_t last_output;       /* liveness output evidence while in a silent phase */
        usec_t cpu_busy_since;    /* helpers burning CPU without output since; 0 = not */
        unsigned runtime_retries; /* the runtime's own "Retrying in" for this layer */
        TrickleSample trickle[DETECTOR_TRICKLE_RING];
        unsigned trickle_n, trickle_head;
        Verdict verdict;
        usec_t verdict_since;
        bool verdict_changed;     /* set by detector_evaluate when verdict moved */
        char evidence[DETECTOR_EVIDENCE_MAX];
} LayerTrack;

typedef struct Detector Detector;

int detector_new(const WatchdogConfig *cfg, usec_t now, Detector **ret);
Detector *detector_free(Detector *d);
static inline void detector_freep(Detector **d) { detector_free(*d); }

/* A new attempt starts: layers are forgotten, clocks restart at now. */
void detector_restart(Detector *d, usec_t now);

/* Observations. Times must not go backwards by much; older ones are clamped. */
int detector_layer(Detector *d, const char *id, Phase phase, uint64_t current, uint64_t total, usec_t at);
void detector_activity(Detector *d, usec_t at);
void detector_runtime_retry(Detector *d, const char *id, usec_t at);
void detector_liveness(Detector *d, const LivenessDelta *l);

/* Recompute every verdict as of now. Returns the pull's verdict. */
Verdict detector_evaluate(Detector *d, usec_t now);

size_t detector_n_layers(const Detector *d);
const LayerTrack *detector_layer_at(const Detector *d, size_t i);
const LayerTrack *detector_find(const Detector *d, const char *id);

/* The pull's verdict, the layer that decided it (NULL for pull-wide) and the evidence. */
Verdict detector_pull_verdict(const Detector *d, const char **ret_layer, const char **ret_evidence);
/* The last liveness delta seen (for naming the helper to cut). */
const LivenessDelta *detector_last_liveness(const Detector *d);
/* Silent budget for a layer of this size. */
usec_t detector_silent_budget(const WatchdogConfig *cfg, uint64_t size);
