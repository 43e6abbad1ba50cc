/* pull_job.h: one watched pull from first attempt to result: drives a runtime driver, samples
 * liveness, runs the detector, cuts hung or stalled attempts and retries with backoff and jitter.
 * Owns the attempt loop and its decisions; output (terminal, JSON, journald) belongs to its observer. */
#pragma once

#include <systemd/sd-event.h>
#include "daemon/pull/detector.h"
#include "daemon/pull/registry_seen.h"
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
} PullEvent;

typedef void (*pull_job_event_t)(PullJob *j, const PullEvent *e, void *userdata);

/* A source of liveness deltas for the runtime this job drives. */
typedef struct LivenessSource {
        /* Fill *ret for the interval ending at now; ret->available = false when blind. */
        int (*sample)(void *userdata, usec_t now, LivenessDelta *ret);
        /* End a hung helper the probes found; must refuse anything but a helper of the runtime.
         * report receives what was cut (pid, executable, start time, parent). */
        int (*kill_helper)(void *userdata, pid_t pid, char *report, size_t report_size);
        /* The runtime pulls through another process whose children do the decompressing (dockerd
         * on the containerd image store): watch that one's helpers too. Optional. */
        int (*add_runtime)(void *userdata, const RuntimeProcess *rp);
        void *userdata;
} LivenessSource;

int pull_job_new(sd_event *event, CurlGlue *glue, const Config *config, const RuntimeDriver *driver,
                 const PullRequest *req, pull_job_event_t cb, void *userdata, PullJob **ret);
PullJob *pull_job_free(PullJob *j);
static inline void pull_job_freep(PullJob **j) { pull_job_free(*j); }

void pull_job_set_liveness(PullJob *j, const LivenessSource *src);
/* Record the job's registry probe in seen (the owner's table, registry_seen.h; NULL: nowhere). */
void pull_job_set_registry_seen(PullJob *j, RegistrySeen *seen);
int pull_job_start(PullJob *j);
/* Stop now (shutdown): the attempt is cut and a result with ERROR_CANCELLED is sent. */
void pull_job_abort(PullJob *j, const char *why);

bool pull_job_finished(const PullJob *j);
bool pull_job_ok(const PullJob *j);
unsigned pull_job_attempt(const PullJob *j);
const char *pull_job_image(const PullJob *j);
const Detector *pull_job_detector(const PullJob *j);

/* Exponential backoff with equal jitter: a delay in [d/2, d], d = min(max, base * 2^(attempt-1)).
 * rnd in [0,1). Pure, for tests. */
usec_t pull_backoff_delay(usec_t base, usec_t max, unsigned attempt, double rnd);
