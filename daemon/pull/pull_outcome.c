/* pull_outcome.c: what one watched pull tells its observer: every event (stamped with image, runtime
 * and attempt), and its end: the result event with digest, bytes, diagnosis, the registry probe's
 * note and elapsed time, held back a little for a registry probe still in flight. */
#include "daemon/pull/pull_job_record.h"

#include <stdlib.h>

void pull_job_emit(PullJob *j, PullEvent *e) {
        e->image = j->image;
        e->runtime = j->driver->name;
        e->attempt = j->attempt;
        if (j->cb)
                j->cb(j, e, j->userdata);
}

void pull_job_finish(PullJob *j, bool ok, ErrorClass error, const char *reason) {
        if (job_finished(j))
                return;
        j->state = ok ? PULL_JOB_SUCCEEDED : PULL_JOB_FAILED;
        /* a failure held for the registry probe and then aborted: nothing is read after the result */
        j->pending_timer = sd_event_source_disable_unref(j->pending_timer);
        j->bytes += pull_layers_clear(&j->layers);
        j->confirm = runtime_op_free(j->confirm);
        if (!ok && j->driver->abandon)
                (void) j->driver->abandon(j->glue, j->config, &j->req); /* the glue owns it from here */
        (void) sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        (void) sd_event_source_set_enabled(j->retry_timer, SD_EVENT_OFF);
        disk_wait_stop(j->disk);
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_RESULT, .ok = ok, .error = error, .reason = reason,
                                        .digest = j->digest, .bytes = j->bytes, .diagnosis = j->diag.diagnosis,
                                        .registry_probe = j->probe_note, .answer_ref = ok ? j->answer_ref : NULL,
                                        .answer_status = ok ? 0 : j->answer_status,
                                        .answer_message = ok ? NULL : j->answer_message,
                                        .elapsed_s = (double) (now_monotonic() - j->started) / USEC_PER_SEC });
}

void pull_job_finish_pending(PullJob *j) {
        if (j->state != PULL_JOB_PENDING)
                return;
        j->state = PULL_JOB_IDLE;
        j->pending_timer = sd_event_source_disable_unref(j->pending_timer);
        _cleanup_free_ char *reason = TAKE_PTR(j->pending_reason);
        if (j->pending_diagnose)
                pull_diag_error_text(&j->diag, j->preflight, j->detector, reason);
        pull_job_finish(j, j->pending_ok, j->pending_error, reason);
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        pull_job_finish_pending(userdata);
        return 0;
}

/* A failed pull waits a little for a registry probe still in flight, so the result carries what
 * the probe found or why it could not look, and the registry's own answer (an index's platforms,
 * a manifest's config type) is named before a reading of the runtime's error text (diagnose). A
 * probe that hangs does not hold the failure back. */
#define PULL_JOB_PENDING_MAX (5 * USEC_PER_SEC)
/* A success waits as long: the probe walks the same hops the runtime just went through, and on a
 * loaded node (2 cores, several pulls) 2 s were seen not to be enough for a refused mirror's note. */
#define PULL_JOB_PENDING_OK_MAX PULL_JOB_PENDING_MAX
static bool hold(PullJob *j, usec_t max) {
        if (!j->preflight || !preflight_busy(j->preflight) || j->state == PULL_JOB_PENDING || job_finished(j) ||
            sd_event_add_time_relative(j->event, &j->pending_timer, CLOCK_MONOTONIC, max, 10 * USEC_PER_MSEC,
                                       on_pending_timeout, j) < 0)
                return false;
        (void) sd_event_source_set_description(j->pending_timer, "pull-pending");
        j->state = PULL_JOB_PENDING;
        return true;
}

void pull_job_finish_ok(PullJob *j) {
        if (hold(j, PULL_JOB_PENDING_OK_MAX)) {
                j->pending_ok = true;
                j->pending_error = ERROR_NONE;
                j->pending_reason = NULL;
                j->pending_diagnose = false;
                return;
        }
        pull_job_finish(j, true, ERROR_NONE, NULL);
}

void pull_job_finish_failed(PullJob *j, ErrorClass error, const char *reason, bool diagnose) {
        if (hold(j, PULL_JOB_PENDING_MAX)) {
                j->pending_error = error;
                j->pending_reason = reason ? strdup(reason) : NULL;
                j->pending_diagnose = diagnose;
                return;
        }
        if (diagnose)
                pull_diag_error_text(&j->diag, j->preflight, j->detector, reason);
        pull_job_finish(j, false, error, reason);
}
