/* pull_job_record.h: the PullJob record, shared by the modules that make up one watched pull:
 * pull_job.c (the attempt loop: attempts, cuts, retries with backoff, the disk gate) and
 * pull_outcome.c (events to the observer and the pull's result). Not for use outside them: everyone
 * else goes through pull_job.h. */
#pragma once

#include "daemon/pull/disk_wait.h"
#include "daemon/pull/preflight.h"
#include "daemon/pull/pull_diag.h"
#include "daemon/pull/pull_job.h"
#include "daemon/pull/pull_layers.h"

/* Where a job is: one state, not a set of flags. */
typedef enum PullJobState {
        PULL_JOB_IDLE,            /* no attempt in flight: before the first, or between two (retry, disk wait) */
        PULL_JOB_GATING,          /* attempt 1 held until the disk gate answers */
        PULL_JOB_RUNNING,         /* an attempt in flight (its runtime pull not finished or cut) */
        PULL_JOB_PENDING,         /* ended, its result held for the registry probe to come back */
        PULL_JOB_SUCCEEDED,       /* finished: the result went out */
        PULL_JOB_FAILED,          /* finished, failed or cancelled */
        _PULL_JOB_STATE_MAX,
        _PULL_JOB_STATE_INVALID = -EINVAL,
} PullJobState;

struct PullJob {
        sd_event *event;
        CurlGlue *glue;
        const Config *config;
        const RuntimeDriver *driver;
        PullRequest req;
        char *image;
        pull_job_event_t cb;
        void *userdata;
        LivenessSource liveness;
        bool have_liveness;

        Detector *detector;
        RuntimePull *pull;
        sd_event_source *sample_timer;
        sd_event_source *retry_timer;
        unsigned attempt;
        usec_t started, attempt_started;
        Verdict pull_verdict;
        PullLayers layers;        /* this attempt's, as the runtime reported them */
        char *last_reason;
        char *digest;
        char *answer_ref;         /* the last attempt's runtime answer (PullOutcome.answer_*) */
        int answer_status;
        char *answer_message;
        uint64_t bytes;
        PullJobState state;
        PullDiag diag;            /* cuts so far (dockerd's own retries too), diagnoses named */
        Preflight *preflight;     /* the registry's view, asked alongside attempt 1 */
        RuntimeOp *confirm;       /* after the runtime said success: is the image there? */
        char *probe_note;          /* the registry probe could not reach the registry: why */
        uint64_t reached_before;   /* the furthest any earlier attempt got, summed over its layers */
        bool pending_diagnose;     /* PENDING: then read the runtime's error text */
        sd_event_source *pending_timer;
        ErrorClass pending_error;
        bool pending_ok;           /* PENDING: a success held (briefly) for the probe's diagnoses */
        char *pending_reason;
        DiskWait *disk;           /* attempt 1 waits for its verdict; a retry after ENOSPC for space */
        bool gate_beside;         /* attempt 1 did not wait: the gate's verdict, still to come, cuts it */
        bool start_at_once;       /* pull_job_set_start_at_once() */
        sd_event_source *beside;  /* after the attempt's request went out: what need not delay it */
        bool baseline_due;        /* beside: the attempt's liveness baseline */
        bool gate_due;            /* beside: attempt 1 started at once; the disk gate and the probe next */
};

static inline bool job_finished(const PullJob *j) {
        return j->state == PULL_JOB_SUCCEEDED || j->state == PULL_JOB_FAILED;
}

/* The attempt in flight is over (finished, or cut): the job waits for what comes next. */
static inline void job_attempt_over(PullJob *j) {
        if (j->state == PULL_JOB_RUNNING)
                j->state = PULL_JOB_IDLE;
}

static inline RuntimeKind job_runtime_kind(const PullJob *j) {
        return j->driver->kind;
}

/* pull_outcome.c: an event to the observer (image, runtime and attempt filled in). */
void pull_job_emit(PullJob *j, PullEvent *e);
/* The pull's end: timers off, the result sent (once). */
void pull_job_finish(PullJob *j, bool ok, ErrorClass error, const char *reason);
/* A failure: held while a registry probe is still in flight (PULL_JOB_PENDING_MAX at most); diagnose:
 * read the runtime's error text first. */
void pull_job_finish_failed(PullJob *j, ErrorClass error, const char *reason, bool diagnose);
/* A success, held as long (PULL_JOB_PENDING_OK_MAX at most) for a probe still looking at the hops:
 * a mirror the runtime went past (refused) is named before the result, not never. */
void pull_job_finish_ok(PullJob *j);
/* The result held for the probe, now (the probe came back). */
void pull_job_finish_pending(PullJob *j);
