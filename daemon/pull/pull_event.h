/* pull_event.h: the vocabulary a watched pull speaks to its observer: the kinds of event and what each
 * carries. Owns the types and the kinds' names only; who emits them is pull_job, who reads them its
 * observers (the CLI's rendering, the agent's alerts and metrics, the guard's events too). */
#pragma once

#include "basic/phase.h"
#include "daemon/pull/detector.h"
#include "probes/runtime/runtime.h"

typedef struct PullJob PullJob;

typedef enum PullEventKind {
        PULL_EVENT_ATTEMPT,     /* an attempt starts */
        PULL_EVENT_PHASE,       /* a layer entered a phase */
        PULL_EVENT_PROGRESS,    /* a layer's bytes moved (at most once a second per layer, and once more
                                 * before a fault verdict on it when bytes came since the last) */
        PULL_EVENT_VERDICT,     /* a layer's or the pull's verdict changed */
        PULL_EVENT_ACTION,      /* pullwatch acted: cancelled an attempt, ended a hung helper */
        PULL_EVENT_RETRY,       /* a retry is scheduled */
        PULL_EVENT_DIAGNOSIS,   /* a known failure signature was recognised */
        PULL_EVENT_RUNTIME_RETRY, /* the runtime retries a layer by itself (dockerd's "Retrying in") */
        PULL_EVENT_RESULT,      /* last event */
        _PULL_EVENT_KIND_MAX,
} PullEventKind;

const char *pull_event_kind_to_string(PullEventKind k);

typedef struct PullEvent {
        PullEventKind kind;
        const char *image;
        const char *runtime;
        unsigned attempt;
        const char *layer;      /* NULL for pull-wide */
        Phase phase;
        uint64_t current, total;
        usec_t observed;        /* phase, progress: when the runtime reported current (CLOCK_MONOTONIC) */
        Verdict verdict;
        const char *evidence;
        const char *action;     /* "cancel", "kill-helper" */
        pid_t pid;              /* the helper ended */
        const char *reason;     /* why a retry / the failure text */
        usec_t delay;           /* retry backoff */
        const char *diagnosis;  /* stable name */
        const char *remedy;     /* one sentence */
        bool ok;
        ErrorClass error;
        const char *digest;
        double elapsed_s;
        uint64_t bytes;         /* bytes downloaded over all attempts (as the runtime reported) */
        const char *registry_probe; /* result: why pullwatch's registry probe could not help, or NULL */
        const char *client;     /* who started the pull when not pullwatch: "cri" (kubelet), "engine-api" (a
                                 * docker client), "containerd-api" (ctr, nerdctl), "unknown"; NULL for
                                 * pullwatch's own */
        const char *hop;        /* the peer of a connection cut, or of a middlebox diagnosis ("host:port") */
        /* result: the runtime's own answer to the last attempt's call (PullOutcome.answer_*), for a
         * caller of the runtime's API to be answered with: the ref on success, the gRPC status and
         * message of a failure; NULL / 0 when the runtime gave none */
        const char *answer_ref;
        int answer_status;
        const char *answer_message;
} PullEvent;

typedef void (*pull_job_event_t)(PullJob *j, const PullEvent *e, void *userdata);
