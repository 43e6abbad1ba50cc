/* phase.c: names of phases and verdicts, as they appear in --json, journald fields and status. */
#include "basic/phase.h"

static const char *const phase_names[_PHASE_MAX] = {
        [PHASE_RESOLVE] = "resolve",         [PHASE_WAITING] = "waiting",
        [PHASE_DOWNLOADING] = "downloading", [PHASE_VERIFYING] = "verifying",
        [PHASE_EXTRACTING] = "extracting",   [PHASE_REGISTERING] = "registering",
        [PHASE_DONE] = "done",
};

static const char *const verdict_names[_VERDICT_MAX] = {
        [VERDICT_PROGRESSING] = "progressing", [VERDICT_WAITING] = "waiting",
        [VERDICT_SILENT_ALIVE] = "silent-alive", [VERDICT_DEGRADED] = "degraded",
        [VERDICT_STALLED] = "stalled",         [VERDICT_HUNG] = "hung",
        [VERDICT_DONE] = "done",
};

const char *phase_to_string(Phase p) { return p >= 0 && p < _PHASE_MAX ? phase_names[p] : NULL; }
Phase phase_from_string(const char *s) { return string_table_lookup(phase_names, _PHASE_MAX, s); }
const char *verdict_to_string(Verdict v) { return v >= 0 && v < _VERDICT_MAX ? verdict_names[v] : NULL; }
Verdict verdict_from_string(const char *s) { return string_table_lookup(verdict_names, _VERDICT_MAX, s); }
