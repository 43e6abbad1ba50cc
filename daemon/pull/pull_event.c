/* pull_event.c: the names of a pull's event kinds, as --json, the control protocol and the journal
 * spell them. */
#include "daemon/pull/pull_event.h"

static const char *const event_names[_PULL_EVENT_KIND_MAX] = {
        [PULL_EVENT_ATTEMPT] = "attempt", [PULL_EVENT_PHASE] = "phase",     [PULL_EVENT_PROGRESS] = "progress",
        [PULL_EVENT_VERDICT] = "verdict", [PULL_EVENT_ACTION] = "action",   [PULL_EVENT_RETRY] = "retry",
        [PULL_EVENT_DIAGNOSIS] = "diagnosis", [PULL_EVENT_RUNTIME_RETRY] = "runtime-retry",
        [PULL_EVENT_RESULT] = "result",
};

const char *pull_event_kind_to_string(PullEventKind k) {
        return k >= 0 && k < _PULL_EVENT_KIND_MAX ? event_names[k] : NULL;
}
