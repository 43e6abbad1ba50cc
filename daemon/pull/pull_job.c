/* pull_job.c: the attempt loop. Every sample_interval: liveness delta in, detector out, and a fault
 * verdict cuts the attempt (ending a hung helper first, since closing the connection alone leaves a
 * stuck decompressor that the next attempt would attach to again), then a retry after backoff. */
#include "daemon/pull/pull_job_record.h"
#include "probes/drivers/runtime_drivers.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* The first attempt waits this long at most for the manifest, to measure the image against the disk. */
#define DISK_GATE_TIMEOUT (10 * USEC_PER_SEC)

usec_t pull_backoff_delay(usec_t base, usec_t max, unsigned attempt, double rnd) {
        double d = (double) base * ldexp(1.0, (int) MIN(attempt > 0 ? attempt - 1 : 0, 40u));
        if (d > (double) max)
                d = (double) max;
        return (usec_t) (d / 2.0 + d / 2.0 * rnd);
}

/* pull_diag names a diagnosis (once per pull) */
static void on_diagnosis(void *userdata, Diagnosis d, const char *remedy, const char *layer) {
        pull_job_emit(userdata, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = diagnosis_to_string(d),
                                               .remedy = remedy, .layer = layer });
}

/* A hop that cuts every connection at a fixed time and answers Range with 200 restarts a long layer
 * from zero on every retry, forever: once both are known, say so and stop instead of retrying. */
static void check_unpassable(PullJob *j) {
        if (job_finished(j) || !pull_diag_find_unpassable(&j->diag, j->preflight))
                return;
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = diagnosis_to_string(DIAG_MIDDLEBOX_TIMEOUT),
                                        .remedy = j->diag.unpassable, .layer = j->diag.cut_layer });
        if (j->state == PULL_JOB_RUNNING) {
                /* out of the runtime's callback: the next sample cuts the attempt and ends the pull */
                (void) sd_event_source_set_time_relative(j->sample_timer, 0);
                (void) sd_event_source_set_enabled(j->sample_timer, SD_EVENT_ONESHOT);
        } else
                pull_job_finish(j, false, ERROR_PERMANENT, j->diag.unpassable);
}

static void record_cut(PullJob *j, AttemptFailure f, usec_t elapsed, const char *layer) {
        if (pull_diag_record_cut(&j->diag, f, elapsed, layer, layer ? pull_layers_find(&j->layers, layer) : NULL))
                check_unpassable(j);
}

static void diagnose_error_text(PullJob *j, const char *message) {
        pull_diag_error_text(&j->diag, j->preflight, j->detector, message);
}

static void on_preflight(Preflight *p, Diagnosis d, char *text, void *userdata) {
        PullJob *j = userdata;
        usec_t wait = preflight_retry_after(p, now_monotonic()), next = 0;
        int enabled = SD_EVENT_OFF;

        if (d == DIAG_NONE && text) { /* not a diagnosis: what the probe could not do, for the result */
                free(j->probe_note);
                j->probe_note = text;
                return;
        }
        pull_diag_report(&j->diag, d, text, NULL);
        check_unpassable(j);
        /* The runtime may have failed before the registry's 429 reached us: push a retry already
         * scheduled out to the registry's Retry-After. */
        if (wait > 0 && sd_event_source_get_enabled(j->retry_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            sd_event_source_get_time(j->retry_timer, &next) >= 0 && next < now_monotonic() + wait) {
                (void) sd_event_source_set_time_relative(j->retry_timer, wait);
                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = "the registry asked to wait (429 Retry-After)",
                                                .delay = wait });
        }
}

/* The pull follows the manifest its reference resolves to now, not whatever of the repository the
 * runtime's store already holds (an upgrade's v1) or another client fetches beside it. */
static void tell_expected(PullJob *j) {
        const char *d = preflight_manifest_digest(j->preflight);
        const char *const *layers;
        size_t n = 0;

        if (d && j->pull && j->driver->expect)
                j->driver->expect(j->pull, d);
        /* and its layers, so that a driver keeping partial downloads holds them from their first byte */
        layers = j->pull && j->driver->expect_layers ? preflight_layer_digests(j->preflight, &n) : NULL;
        if (layers && n > 0)
                j->driver->expect_layers(j->pull, layers, n);
}

static void on_resolved(Preflight *p, void *userdata) {
        tell_expected(userdata);
}

static void on_layer(void *userdata, const char *layer, Phase phase, uint64_t current, uint64_t total, usec_t at) {
        PullJob *j = userdata;
        LayerSeen *s;

        (void) detector_layer(j->detector, layer, phase, current, total, at);
        s = pull_layers_get(&j->layers, layer);
        if (!s)
                return;
        switch (pull_layers_report(s, phase, current, total, at)) {
        case LAYER_NEWS_PHASE:
                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_PHASE, .layer = layer, .phase = phase,
                                                .current = current, .total = total, .observed = at });
                break;
        case LAYER_NEWS_PROGRESS:
                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_PROGRESS, .layer = layer, .phase = phase,
                                                .current = current, .total = total, .observed = s->observed_at });
                break;
        default:
                break;
        }
}

static void on_activity(void *userdata, const char *status, usec_t at) {
        PullJob *j = userdata;
        detector_activity(j->detector, at);
}

static void on_helper_runtime(void *userdata, const RuntimeProcess *rp, const char *store) {
        PullJob *j = userdata;
        if (j->have_liveness && j->liveness.add_runtime)
                (void) j->liveness.add_runtime(j->liveness.userdata, rp);
}

static void on_runtime_retry(void *userdata, const char *layer, const char *text, usec_t at) {
        PullJob *j = userdata;
        LayerSeen *s = layer ? pull_layers_get(&j->layers, layer) : NULL;
        bool timed = false, no_bytes = false;
        usec_t cut = 0;

        detector_runtime_retry(j->detector, layer, at);
        if (!s || !pull_layers_runtime_retry(s, text, at, &timed, &cut, &no_bytes))
                return;
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_RUNTIME_RETRY, .layer = layer, .reason = text,
                                        .phase = PHASE_WAITING });
        if (timed)
                record_cut(j, ATTEMPT_RESET, cut, layer);
        /* A resume that brought no byte before failing again: was the Range refused? Ask the
         * registry through the same hops now rather than after dockerd's last try. */
        if (no_bytes && j->preflight)
                pull_diag_ask_range(&j->diag, j->preflight, preflight_layer_digest(j->preflight, layer));
}


static void on_preflight_idle(Preflight *p, void *userdata) {
        pull_job_finish_pending(userdata);
}

static int start_attempt(PullJob *j);
static bool wait_for_space(PullJob *j, const char *message);

/* What an attempt needs soon but not before its request: the liveness baseline (finding the runtime's
 * process reads /proc/net/unix and /proc) and, for attempt 1 started at once, the disk gate and the
 * registry probe (their calls to the runtime and the registry). Run from a source below curl's in
 * priority, once the request is on its way; or at the latest before a sample or the attempt's end. */
static void run_beside(PullJob *j) {
        bool gate = j->gate_due;

        (void) sd_event_source_set_enabled(j->beside, SD_EVENT_OFF);
        j->gate_due = false;
        if (j->baseline_due && j->have_liveness) {
                LivenessDelta lv;
                (void) j->liveness.sample(j->liveness.userdata, now_monotonic(), &lv);
        }
        j->baseline_due = false;
        if (!gate || job_finished(j))
                return;
        disk_wait_gate(j->disk, DISK_GATE_TIMEOUT);
        if (preflight_start(j->preflight) >= 0)
                j->gate_beside = true;
        else
                disk_wait_stop(j->disk);
}

static int on_beside(sd_event_source *s, void *userdata) {
        run_beside(userdata);
        return 0;
}

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PullJob *j = userdata;
        int r = start_attempt(j);
        if (r < 0) {
                char buf[128];
                snprintf(buf, sizeof(buf), "could not start attempt %u: %s", j->attempt, strerror(-r));
                pull_job_finish(j, false, ERROR_TRANSIENT, buf);
        }
        return 0;
}

static void schedule_retry(PullJob *j, const char *reason) {
        usec_t delay;
        uint64_t reached = pull_layers_downloaded(&j->layers);

        /* An attempt that got no further into its layers than the one before, on a runtime that
         * resumes with Range (containerd keeps partial ingests): was the Range refused on the way?
         * Ask through the runtime's own hops; the probe names the hop answering 200. */
        if (j->attempt >= 2 && reached > 0 && reached <= j->reached_before)
                pull_diag_ask_range(&j->diag, j->preflight, NULL);
        j->reached_before = MAX(j->reached_before, reached);

        free(j->last_reason);
        j->last_reason = strdup(reason ? reason : "");
        if (j->attempt >= j->config->retry.attempts) {
                char buf[512];
                snprintf(buf, sizeof(buf), "gave up after %u attempts: %s", j->attempt, reason ? reason : "");
                pull_job_finish_failed(j, ERROR_TRANSIENT, buf, false);
                return;
        }
        delay = pull_backoff_delay(j->config->retry.backoff, j->config->retry.backoff_max, j->attempt,
                                   (double) random() / ((double) RAND_MAX + 1.0));
        /* A registry that said "429, come back in N s" is not asked sooner. */
        delay = MAX(delay, preflight_retry_after(j->preflight, now_monotonic()));
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = reason, .delay = delay });
        (void) sd_event_source_set_time_relative(j->retry_timer, delay);
        (void) sd_event_source_set_enabled(j->retry_timer, SD_EVENT_ONESHOT);
}

static void on_confirmed(RuntimeOp *op, int r, const char *digest, void *userdata) {
        PullJob *j = userdata;

        j->confirm = NULL; /* the op frees itself */
        if (r < 0) {
                char buf[256];
                snprintf(buf, sizeof(buf), "the runtime reported success but the image is not there (%s)",
                         strerror(-r));
                schedule_retry(j, buf);
                return;
        }
        if (digest && !j->digest)
                j->digest = strdup(digest);
        pull_job_finish_ok(j);
}

static void on_finished(void *userdata, const PullOutcome *o) {
        PullJob *j = userdata;

        run_beside(j); /* an answer faster than the loop: the gate and the probe as before it */
        job_attempt_over(j);
        (void) sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        if (o->digest) {
                free(j->digest);
                j->digest = strdup(o->digest);
        }
        free(j->answer_ref);
        free(j->answer_message);
        j->answer_ref = o->answer_ref ? strdup(o->answer_ref) : NULL;
        j->answer_status = o->answer_status;
        j->answer_message = o->answer_message ? strdup(o->answer_message) : NULL;
        switch (o->error) {
        case ERROR_NONE: {
                /* The runtime says the image is complete. dockerd on the containerd store stops its
                 * progress ticker with the pull, so a layer's last message ("Pull complete") may
                 * never come: every layer seen is done. */
                for (size_t i = 0; i < j->layers.n; i++)
                        if (j->layers.seen[i].phase != PHASE_DONE)
                                on_layer(j, j->layers.seen[i].id, PHASE_DONE, j->layers.seen[i].size,
                                         j->layers.seen[i].size, now_monotonic());
                /* the runtime's answer may prove the image stored already (CRI's): nothing to ask */
                int r = j->driver->confirm && !o->stored
                                ? j->driver->confirm(j->glue, j->config, &j->req, on_confirmed, j, &j->confirm)
                                : -EOPNOTSUPP;
                if (r == -EOPNOTSUPP)
                        pull_job_finish_ok(j);
                else if (r < 0)
                        on_confirmed(NULL, r, NULL, j);
                break;
        }
        case ERROR_PERMANENT:
                pull_job_finish_failed(j, ERROR_PERMANENT, o->message, true);
                break;
        default: {
                /* The attempt's cut, timed from the newest layer connection still downloading. */
                usec_t since = pull_layers_newest_download(&j->layers, j->attempt_started);
                AttemptFailure f = attempt_failure_from_text(o->message);
                diagnose_error_text(j, o->message);
                record_cut(j, f, now_monotonic() - since, NULL);
                /* A cut body, or one that came whole but wrong (a pull-through cache whose upstream was
                 * cut: containerd's "unexpected commit digest"): the resume depends on Range along the
                 * runtime's hops, so ask them now. */
                if (f == ATTEMPT_RESET || f == ATTEMPT_EOF || (o->message && strcasestr(o->message, "unexpected commit digest")))
                        pull_diag_ask_range(&j->diag, j->preflight, NULL);
                if (j->diag.unpassable)
                        pull_job_finish(j, false, ERROR_PERMANENT, j->diag.unpassable);
                else if (!wait_for_space(j, o->message))
                        schedule_retry(j, o->message);
                break;
        }
        }
}

/* ---- disk: the gate before attempt 1 and the wait for space after ENOSPC ---- */

static void on_disk(DiskWait *w, DiskFit fit, char *text, void *userdata) {
        PullJob *j = userdata;
        _cleanup_free_ char *t = text, *reason = NULL;
        bool gate = j->state == PULL_JOB_GATING, beside = j->gate_beside;

        j->gate_beside = false;
        if (gate)
                j->state = PULL_JOB_IDLE;
        if (beside) {
                /* the gate's verdict on an attempt 1 that did not wait for it: room, and it goes on;
                 * none, and it is cut as the gate would have kept it from starting (a success already
                 * held for the probe is not undone) */
                if ((fit != DISK_NO_ROOM && fit != DISK_OVER_HIGH) ||
                    (j->state != PULL_JOB_RUNNING && j->state != PULL_JOB_IDLE))
                        return;
                if (j->state == PULL_JOB_RUNNING) {
                        j->driver->cancel(j->pull);
                        job_attempt_over(j);
                        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cancel", .evidence = t });
                }
                if (asprintf(&reason, "cut at once: %s", t ?: "no room on the image filesystem") < 0)
                        reason = NULL;
                pull_diag_report(&j->diag, DIAG_DISK_PRESSURE, TAKE_PTR(t), NULL);
                pull_job_finish(j, false, ERROR_TRANSIENT, reason ?: "no room on the image filesystem");
                return;
        }
        if (fit == DISK_NO_ROOM || fit == DISK_OVER_HIGH) {
                if (asprintf(&reason, "%s%s", gate ? "not started: " : "", t ?: "no room on the image filesystem") < 0)
                        reason = NULL;
                if (gate)
                        pull_diag_report(&j->diag, DIAG_DISK_PRESSURE, TAKE_PTR(t), NULL);
                pull_job_finish(j, false, ERROR_TRANSIENT, reason ?: "no room on the image filesystem");
                return;
        }
        on_retry_timer(NULL, 0, j); /* the attempt the gate held, or the retry that waited for space */
}

static void on_manifest(Preflight *p, const RegistryManifest *m, void *userdata) {
        PullJob *j = userdata;
        disk_wait_set_size(j->disk, disk_gate_image_size(m));
}

/* ENOSPC: a retry now would download again and fail again. Wait until statvfs shows the room the rest
 * of the image needs, as long as the retries would have taken at most. */
static bool wait_for_space(PullJob *j, const char *message) {
        uint64_t need;
        char b_need[32], reason[384];

        if (diagnose_runtime_error(job_runtime_kind(j), message, NULL) != DIAG_DISK_FULL ||
            j->attempt >= j->config->retry.attempts)
                return false;
        need = disk_gate_remaining(job_runtime_kind(j), disk_wait_size(j->disk), pull_layers_size(&j->layers),
                                   pull_layers_downloaded(&j->layers));
        free(j->last_reason);
        j->last_reason = strdup(message ?: "");
        j->gate_beside = false; /* the wait for space replaces a gate verdict still to come */
        format_bytes_human(need, b_need, sizeof(b_need));
        snprintf(reason, sizeof(reason), "waiting for disk space: %s more needed on %s (no space left on device)",
                 b_need, disk_wait_path(j->disk) ?: "the image filesystem");
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = reason, .delay = 0 });
        disk_wait_space(j->disk, need, j->config->watchdog.sample_interval,
                        j->config->retry.backoff_max * j->config->retry.attempts);
        return true;
}

static void cut_attempt(PullJob *j, Verdict v, const char *layer, const char *evidence) {
        const LivenessDelta *lv = detector_last_liveness(j->detector);
        char reason[384];

        /* A hang inside a helper survives a closed connection; end the helper so the runtime fails
         * that layer instead of the next attempt attaching to the same stuck transfer. */
        if (v == VERDICT_HUNG && lv && lv->n_helpers > 0 && lv->busiest_pid > 0 && j->have_liveness &&
            j->liveness.kill_helper) {
                char cut[384];
                pull_diag_decompressor(&j->diag, j->detector, lv, layer, now_monotonic());
                int r = j->liveness.kill_helper(j->liveness.userdata, lv->busiest_pid, cut, sizeof(cut));
                if (r < 0)
                        snprintf(cut, sizeof(cut), "%s pid %d not signalled: %s", lv->busiest_comm,
                                 (int) lv->busiest_pid,
                                 r == -EPERM ? "not a proven helper of the runtime" : r == -ESRCH ? "gone" : strerror(-r));
                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = r < 0 ? "kill-helper-refused" : "kill-helper",
                                                .layer = layer, .pid = lv->busiest_pid, .verdict = v, .reason = cut });
        }
        j->driver->cancel(j->pull);
        job_attempt_over(j);
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cancel", .layer = layer, .verdict = v,
                                        .evidence = evidence });
        /* a pull that never got past resolving, behind a mirror the probe found dead: name it here too */
        const char *mirror = layer ? NULL : preflight_mirror_hop(j->preflight);
        snprintf(reason, sizeof(reason), "%s%s %s: %s%s%s%s", layer ? "layer " : "pull", layer ? layer : "",
                 verdict_to_string(v), evidence ? evidence : "", mirror ? " (the runtime's mirror " : "", mirror ?: "",
                 mirror ? " does not answer)" : "");
        schedule_retry(j, reason);
}

static int on_sample(sd_event_source *s, uint64_t usec, void *userdata) {
        PullJob *j = userdata;
        usec_t now = now_monotonic();
        const char *layer = NULL, *evidence = NULL;
        Verdict v;

        run_beside(j);
        if (j->diag.unpassable) {
                /* the runtime would go on retrying through a hop that cannot pass the layer */
                j->driver->cancel(j->pull);
                job_attempt_over(j);
                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cancel", .layer = j->diag.cut_layer,
                                                .evidence = j->diag.unpassable });
                pull_job_finish(j, false, ERROR_PERMANENT, j->diag.unpassable);
                return 0;
        }

        if (j->have_liveness) {
                LivenessDelta lv = {};
                if (j->liveness.sample(j->liveness.userdata, now, &lv) >= 0)
                        detector_liveness(j->detector, &lv);
                if (lv.unverified) {
                        char *text = NULL;
                        int d = diagnose_runtime_unverified(job_runtime_kind(j), lv.why, &text);
                        pull_diag_report(&j->diag, d, text, NULL);
                }
        }
        v = detector_evaluate(j->detector, now);

        for (size_t i = 0; i < detector_n_layers(j->detector); i++) {
                const LayerTrack *l = detector_layer_at(j->detector, i);
                LayerSeen *seen = pull_layers_get(&j->layers, l->id);
                bool flush = false;
                if (seen && pull_layers_verdict(seen, l->verdict, l->phase, &flush)) {
                        /* bytes that came after the last (rate-limited) progress event: said before a
                         * fault verdict, with the time they were seen, so the stream shows where it stopped */
                        if (flush) {
                                pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_PROGRESS, .layer = l->id, .phase = seen->phase,
                                                                .current = seen->observed, .total = l->total,
                                                                .observed = seen->observed_at });
                        }
                        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .layer = l->id, .phase = l->phase,
                                                        .verdict = l->verdict, .evidence = l->evidence,
                                                        .current = l->current, .total = l->total });
                }
        }
        detector_pull_verdict(j->detector, &layer, &evidence);
        if (v != j->pull_verdict) {
                j->pull_verdict = v;
                if (!layer) /* layer verdicts were reported above */
                        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .verdict = v, .evidence = evidence,
                                                        .phase = _PHASE_INVALID });
        }
        if (verdict_is_fault(v)) {
                _cleanup_free_ char *l = layer ? strdup(layer) : NULL, *e = evidence ? strdup(evidence) : NULL;
                cut_attempt(j, v, l, e);
                return 0;
        }
        (void) sd_event_source_set_time_relative(s, j->config->watchdog.sample_interval);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static int start_attempt(PullJob *j) {
        static const PullCallbacks callbacks = {
                .layer = on_layer,
                .activity = on_activity,
                .runtime_retry = on_runtime_retry,
                .helper_runtime = on_helper_runtime,
                .finished = on_finished,
        };
        usec_t now = now_monotonic();
        int r;

        j->pull = j->driver->free(j->pull);
        j->attempt++;
        j->attempt_started = now;
        j->pull_verdict = VERDICT_PROGRESSING;
        detector_restart(j->detector, now);
        j->bytes += pull_layers_clear(&j->layers);
        j->answer_ref = mfree(j->answer_ref); /* an answer is the attempt's own, never an earlier one's */
        j->answer_message = mfree(j->answer_message);
        j->answer_status = 0;
        pull_job_emit(j, &(PullEvent) { .kind = PULL_EVENT_ATTEMPT, .reason = j->last_reason });
        r = j->driver->start(j->glue, j->config, &j->req, &callbacks, j, &j->pull);
        if (r < 0)
                return r;
        j->state = PULL_JOB_RUNNING;
        j->baseline_due = true;
        (void) sd_event_source_set_enabled(j->beside, SD_EVENT_ONESHOT);
        tell_expected(j);
        (void) sd_event_source_set_time_relative(j->sample_timer, j->config->watchdog.sample_interval);
        return sd_event_source_set_enabled(j->sample_timer, SD_EVENT_ONESHOT);
}

int pull_job_new(sd_event *event, CurlGlue *glue, const Config *config, const RuntimeDriver *driver,
                 const PullRequest *req, pull_job_event_t cb, void *userdata, PullJob **ret) {
        _cleanup_(pull_job_freep) PullJob *j = NULL;
        int r;

        assert(event);
        assert(config);
        assert(driver);
        assert(req);
        assert(ret);
        j = calloc(1, sizeof(*j));
        if (!j)
                return -ENOMEM;
        j->event = sd_event_ref(event);
        j->glue = glue;
        j->config = config;
        j->driver = driver;
        j->req = *req;
        j->image = strdup(req->image);
        j->req.image = j->image;
        j->cb = cb;
        j->userdata = userdata;
        pull_diag_init(&j->diag, job_runtime_kind(j), on_diagnosis, j);
        r = j->image ? detector_new(&config->watchdog, now_monotonic(), &j->detector) : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time_relative(event, &j->sample_timer, CLOCK_MONOTONIC, config->watchdog.sample_interval,
                                               10 * USEC_PER_MSEC, on_sample, j);
        if (r >= 0)
                (void) sd_event_source_set_description(j->sample_timer, "pull-sample");
        if (r >= 0)
                r = sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &j->retry_timer, CLOCK_MONOTONIC, USEC_PER_SEC, 10 * USEC_PER_MSEC,
                                               on_retry_timer, j);
        if (r >= 0)
                (void) sd_event_source_set_description(j->retry_timer, "pull-retry");
        if (r >= 0)
                r = sd_event_source_set_enabled(j->retry_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_defer(event, &j->beside, on_beside, j);
        if (r >= 0)
                r = sd_event_source_set_priority(j->beside, SD_EVENT_PRIORITY_NORMAL + 1);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->beside, SD_EVENT_OFF);
        if (r >= 0)
                (void) sd_event_source_set_description(j->beside, "pull-beside");
        if (r >= 0)
                r = disk_wait_new(glue, config, job_runtime_kind(j), imagefs_locate, j->image, on_disk, j, &j->disk);
        if (r < 0)
                return r;
        /* Without a parsable reference there is no registry to ask; the runtime will say why. */
        (void) preflight_new(glue, config, job_runtime_kind(j), &j->req, on_preflight, j, &j->preflight);
        if (j->preflight) {
                preflight_set_idle_callback(j->preflight, on_preflight_idle);
                preflight_on_resolved(j->preflight, on_resolved);
                preflight_set_manifest_cb(j->preflight, on_manifest);
        }
        *ret = TAKE_PTR(j);
        return 0;
}

PullJob *pull_job_free(PullJob *j) {
        if (!j)
                return NULL;
        if (j->pull)
                j->driver->free(j->pull);
        runtime_op_free(j->confirm);
        preflight_free(j->preflight);
        sd_event_source_disable_unref(j->sample_timer);
        sd_event_source_disable_unref(j->retry_timer);
        sd_event_source_disable_unref(j->beside);
        disk_wait_free(j->disk);
        detector_free(j->detector);
        pull_layers_clear(&j->layers);
        sd_event_unref(j->event);
        free(j->image);
        free(j->last_reason);
        free(j->digest);
        free(j->answer_ref);
        free(j->answer_message);
        pull_diag_done(&j->diag);
        free(j->probe_note);
        free(j->pending_reason);
        sd_event_source_disable_unref(j->pending_timer);
        free(j);
        return NULL;
}

void pull_job_set_liveness(PullJob *j, const LivenessSource *src) {
        j->have_liveness = src && src->sample;
        if (src)
                j->liveness = *src;
}

void pull_job_set_registry_seen(PullJob *j, RegistrySeen *seen) {
        assert(j);
        if (j->preflight)
                preflight_set_registry_seen(j->preflight, seen);
}

int pull_job_start(PullJob *j) {
        j->started = now_monotonic();
        /* Attempt 1 waits for the manifest and for where the runtime keeps images (DISK_GATE_TIMEOUT at
         * most): an image that cannot fit, or that would trigger kubelet's image GC, is not pulled at
         * all. A runtime that cannot say where it keeps images is not held up (the gate answers "go on"
         * as soon as it says so). */
        if (j->preflight && j->start_at_once) {
                /* the runtime's request first: the gate and the probe start once it is out (run_beside) */
                int r = start_attempt(j);
                if (r < 0)
                        return r;
                j->gate_due = true;
                return 0;
        }
        if (j->preflight) {
                j->state = PULL_JOB_GATING;
                disk_wait_gate(j->disk, DISK_GATE_TIMEOUT);
                if (preflight_start(j->preflight) >= 0)
                        return 0;
                j->state = PULL_JOB_IDLE;
                disk_wait_stop(j->disk);
        }
        return start_attempt(j);
}

void pull_job_set_start_at_once(PullJob *j, bool b) {
        assert(j);
        j->start_at_once = b;
}

void pull_job_abort(PullJob *j, const char *why) {
        if (job_finished(j))
                return;
        if (j->pull)
                j->driver->cancel(j->pull);
        pull_job_finish(j, false, ERROR_CANCELLED, why);
}

bool pull_job_finished(const PullJob *j) { return job_finished(j); }
bool pull_job_ok(const PullJob *j) { return j->state == PULL_JOB_SUCCEEDED; }
unsigned pull_job_attempt(const PullJob *j) { return j->attempt; }
const char *pull_job_image(const PullJob *j) { return j->image; }
const Detector *pull_job_detector(const PullJob *j) { return j->detector; }
