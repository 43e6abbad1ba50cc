/* phase.h: the phases a layer passes through and the verdicts the detector gives, with their names.
 * Owns only the vocabulary shared by drivers, detector, alerts and output; no state. */
#pragma once

#include "basic/macro.h"

typedef enum Phase {
        PHASE_RESOLVE,      /* manifest/config being fetched, layers not known yet */
        PHASE_WAITING,      /* queued for a download slot, or downloaded and queued for extraction */
        PHASE_DOWNLOADING,  /* bytes arriving */
        PHASE_VERIFYING,    /* digest check / content commit: silent */
        PHASE_EXTRACTING,   /* decompress + untar into the snapshot/layer dir: silent or with bytes */
        PHASE_REGISTERING,  /* layer store registration / snapshot commit: silent */
        PHASE_DONE,
        _PHASE_MAX,
        _PHASE_INVALID = -EINVAL,
} Phase;

typedef enum Verdict {
        VERDICT_PROGRESSING,
        VERDICT_WAITING,
        VERDICT_SILENT_ALIVE,
        VERDICT_DEGRADED,   /* trickle: moving below the floor rate for a long window */
        VERDICT_STALLED,    /* network phase, no bytes */
        VERDICT_HUNG,       /* silent phase without liveness, or a livelock */
        VERDICT_DONE,
        _VERDICT_MAX,
        _VERDICT_INVALID = -EINVAL,
} Verdict;

const char *phase_to_string(Phase p);
Phase phase_from_string(const char *s);
const char *verdict_to_string(Verdict v);
Verdict verdict_from_string(const char *s);

/* Network phases need bytes; silent phases need liveness evidence. */
static inline bool phase_is_network(Phase p) { return p == PHASE_RESOLVE || p == PHASE_DOWNLOADING; }
static inline bool phase_is_silent(Phase p) {
        return p == PHASE_VERIFYING || p == PHASE_EXTRACTING || p == PHASE_REGISTERING;
}
/* Verdicts that call for cutting the pull. */
static inline bool verdict_is_fault(Verdict v) {
        return v == VERDICT_STALLED || v == VERDICT_HUNG || v == VERDICT_DEGRADED;
}
