/* pull_job.h: one watched pull from first attempt to result: drives a runtime driver, samples
 * liveness, runs the detector, cuts hung or stalled attempts and retries with backoff and jitter.
 * Owns the attempt loop and its decisions; output (terminal, JSON, journald) belongs to its observer. */
#pragma once

#include <systemd/sd-event.h>
#include "daemon/pull/detector.h"
#include "daemon/pull/pull_event.h"
#include "daemon/pull/registry_seen.h"
#include "probes/runtime/runtime.h"

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
/* Attempt 1 starts at once, beside the disk gate and the registry probe instead of after them (a
 * caller waiting on the pull, kubelet through the CRI endpoint): a gate that then finds no room cuts
 * the attempt and ends the pull as it would have refused to start it. Before pull_job_start(). */
void pull_job_set_start_at_once(PullJob *j, bool b);
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
