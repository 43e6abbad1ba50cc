/* pull_diag.h: what one pull has diagnosed: the connection cuts so far (dockerd's own retries too), the
 * diagnoses named (each once per pull: the same advice on every attempt is noise), the last name for
 * the result, and a hop that cannot pass a layer (cuts at a fixed time and ignores Range). Reads the
 * runtime's error text with diagnose.c and names what it finds through the say callback. No timers,
 * no retries, no events of its own: pull_job.c acts on what this finds. */
#pragma once

#include "daemon/pull/detector.h"
#include "daemon/pull/diagnose.h"
#include "daemon/pull/preflight.h"
#include "daemon/pull/pull_layers.h"

/* A diagnosis named: d, its remedy text, the layer it concerns (NULL: the pull). */
typedef void (*pull_diag_say_t)(void *userdata, Diagnosis d, const char *remedy, const char *layer);

typedef struct PullDiag {
        RuntimeKind runtime;
        pull_diag_say_t say;
        void *userdata;
        DiagAttempt history[32];  /* connection cuts, oldest first */
        size_t n_history;
        bool reported[_DIAGNOSIS_MAX];
        char *diagnosis;          /* the last one named, for the result */
        char *unpassable;         /* cut at a fixed time by a hop that ignores Range: why we stop */
        char *cut_layer;          /* the newest cut's layer, its size and bytes when cut */
        uint64_t cut_size, cut_bytes;
} PullDiag;

void pull_diag_init(PullDiag *g, RuntimeKind runtime, pull_diag_say_t say, void *userdata);
void pull_diag_done(PullDiag *g);

/* Name diagnosis d (DIAG_NONE and repeats are dropped); takes text. */
void pull_diag_report(PullDiag *g, int d, char *text, const char *layer);
static inline bool pull_diag_reported(const PullDiag *g, Diagnosis d) {
        return d > DIAG_NONE && d < _DIAGNOSIS_MAX && g->reported[d];
}
/* A connection cut after elapsed (s: the layer cut, or NULL for the attempt's). false when f is no
 * cut (nothing recorded); else the cuts so far are diagnosed, and the caller checks the hop
 * (pull_diag_find_unpassable). */
bool pull_diag_record_cut(PullDiag *g, AttemptFailure f, usec_t elapsed, const char *layer, const LayerSeen *s);
/* Once both a cut at a fixed time and an ignored Range were named: is the hop one no retry passes?
 * true when that is found now (g->unpassable says why, g->cut_layer where). */
bool pull_diag_find_unpassable(PullDiag *g, const Preflight *pf);
/* The runtime's error text: name what it says; a refused Range is first asked of the registry (pf)
 * so the diagnosis can name the hop. det: what the attempt's last sample said (containerd ending a
 * pull that looked alive). */
/* A hung helper (lv's busiest) about to be ended for layer: name what it is (a decompressor spinning or
 * stuck, and for how long). */
void pull_diag_decompressor(PullDiag *g, const Detector *det, const LivenessDelta *lv, const char *layer, usec_t now);
/* Was a Range refused on the way? Ask the registry (pf, through the runtime's hops) unless that is
 * known already. digest: the layer to ask for, NULL for any. */
void pull_diag_ask_range(PullDiag *g, Preflight *pf, const char *digest);
void pull_diag_error_text(PullDiag *g, Preflight *pf, const Detector *det, const char *message);
