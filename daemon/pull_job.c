/* pull_job.c: the attempt loop. Every sample_interval: liveness delta in, detector out, and a fault
 * verdict cuts the attempt (ending a hung helper first, since closing the connection alone leaves a
 * stuck decompressor that the next attempt would attach to again), then a retry after backoff. */
#include "daemon/pull_job.h"
#include "daemon/diagnose.h"
#include "daemon/disk_wait.h"
#include "daemon/preflight.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#define PROGRESS_EVENT_INTERVAL USEC_PER_SEC
/* The first attempt waits this long at most for the manifest, to measure the image against the disk. */
#define DISK_GATE_TIMEOUT (10 * USEC_PER_SEC)

typedef struct LayerSeen {
        char *id;
        Phase phase;
        uint64_t downloaded;      /* this attempt: bytes the runtime reported for this layer */
        uint64_t current;         /* the last byte count reported (of this connection, after a restart) */
        uint64_t size;
        usec_t download_since;    /* this layer's current connection started (for cut timing) */
        bool in_runtime_retry;    /* inside a "Retrying in N seconds" countdown */
        unsigned runtime_retries;
        uint64_t bytes_at_retry;  /* downloaded when the last countdown began */
        unsigned countdown;       /* seconds in the last "Retrying in N seconds" */
        Verdict verdict;
        usec_t last_progress_event;
        uint64_t emitted;         /* bytes in the last phase/progress event */
        uint64_t observed;        /* bytes in the last report from the runtime, and when it came */
        usec_t observed_at;
} LayerSeen;

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
        LayerSeen *seen;
        size_t n_seen;
        char *last_reason;
        char *digest;
        uint64_t bytes;
        bool finished, ok;
        DiagAttempt history[32];  /* connection cuts, oldest first (dockerd's own retries too) */
        size_t n_history;
        bool reported[_DIAGNOSIS_MAX];
        char *diagnosis;          /* the last one named, for the result */
        bool running;             /* an attempt is in flight (its runtime pull not finished or cut) */
        char *unpassable;         /* cut at a fixed time by a hop that ignores Range: why we stop */
        char *cut_layer;          /* the newest cut's layer, its size and bytes when cut */
        uint64_t cut_size, cut_bytes;
        Preflight *preflight;     /* the registry's view, asked alongside attempt 1 */
        RuntimeOp *confirm;       /* after the runtime said success: is the image there? */
        char *probe_note;          /* the registry probe could not reach the registry: why */
        uint64_t reached_before;   /* the furthest any earlier attempt got, summed over its layers */
        bool pending_finish;       /* failed, waiting for the registry probe to come back */
        bool pending_diagnose;     /* ... and then reading the runtime's error text */
        sd_event_source *pending_timer;
        ErrorClass pending_error;
        char *pending_reason;
        DiskWait *disk;           /* attempt 1 waits for its verdict; a retry after ENOSPC for space */
        bool disk_gating;
};

static RuntimeKind job_runtime_kind(const PullJob *j) {
        return streq(j->driver->name, "containerd") ? RUNTIME_CONTAINERD : RUNTIME_DOCKER;
}

static const char *const event_names[_PULL_EVENT_KIND_MAX] = {
        [PULL_EVENT_ATTEMPT] = "attempt", [PULL_EVENT_PHASE] = "phase",     [PULL_EVENT_PROGRESS] = "progress",
        [PULL_EVENT_VERDICT] = "verdict", [PULL_EVENT_ACTION] = "action",   [PULL_EVENT_RETRY] = "retry",
        [PULL_EVENT_DIAGNOSIS] = "diagnosis", [PULL_EVENT_RUNTIME_RETRY] = "runtime-retry",
        [PULL_EVENT_RESULT] = "result",
};

const char *pull_event_kind_to_string(PullEventKind k) {
        return k >= 0 && k < _PULL_EVENT_KIND_MAX ? event_names[k] : NULL;
}

usec_t pull_backoff_delay(usec_t base, usec_t max, unsigned attempt, double rnd) {
        double d = (double) base * ldexp(1.0, (int) MIN(attempt > 0 ? attempt - 1 : 0, 40u));
        if (d > (double) max)
                d = (double) max;
        return (usec_t) (d / 2.0 + d / 2.0 * rnd);
}

static void emit(PullJob *j, PullEvent *e) {
        e->image = j->image;
        e->runtime = j->driver->name;
        e->attempt = j->attempt;
        if (j->cb)
                j->cb(j, e, j->userdata);
}

/* Name a diagnosis once per pull: repeating the same advice on every attempt is noise. */
static void report_diagnosis(PullJob *j, int d, char *text, const char *layer) {
        _cleanup_free_ char *t = text;
        if (d <= DIAG_NONE || d >= _DIAGNOSIS_MAX || j->reported[d])
                return;
        j->reported[d] = true;
        free(j->diagnosis);
        j->diagnosis = strdup(diagnosis_to_string(d));
        emit(j, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = diagnosis_to_string(d), .remedy = t,
                               .layer = layer });
}

static void finish(PullJob *j, bool ok, ErrorClass error, const char *reason);

/* A hop that cuts every connection at a fixed time and answers Range with 200 restarts a long layer
 * from zero on every retry, forever: once both are known, say so and stop instead of retrying. */
static void check_unpassable(PullJob *j) {
        char *text = NULL;
        if (j->finished || j->unpassable || !j->reported[DIAG_MIDDLEBOX_TIMEOUT] || !j->reported[DIAG_RANGE_IGNORED])
                return;
        if (diagnose_unpassable_hop(diagnose_attempts_cut(j->history, j->n_history), preflight_range_hop(j->preflight),
                                    j->cut_layer, j->cut_size, j->cut_bytes, &text) != DIAG_MIDDLEBOX_TIMEOUT || !text)
                return;
        j->unpassable = text;
        emit(j, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .diagnosis = diagnosis_to_string(DIAG_MIDDLEBOX_TIMEOUT),
                               .remedy = text, .layer = j->cut_layer });
        if (j->running) {
                /* out of the runtime's callback: the next sample cuts the attempt and ends the pull */
                sd_event_source_set_time_relative(j->sample_timer, 0);
                sd_event_source_set_enabled(j->sample_timer, SD_EVENT_ONESHOT);
        } else
                finish(j, false, ERROR_PERMANENT, text);
}

static void record_cut(PullJob *j, AttemptFailure f, usec_t elapsed, const char *layer) {
        char *text = NULL;
        int d;
        if (f != ATTEMPT_RESET && f != ATTEMPT_EOF && f != ATTEMPT_TRANSIENT)
                return;
        if (layer) {
                LayerSeen *s = NULL;
                for (size_t i = 0; i < j->n_seen && !s; i++)
                        if (streq(j->seen[i].id, layer))
                                s = &j->seen[i];
                free(j->cut_layer);
                j->cut_layer = strdup(layer);
                j->cut_size = s ? s->size : 0;
                j->cut_bytes = s ? s->current : 0;
        }
        if (j->n_history == ELEMENTSOF(j->history)) {
                memmove(j->history, j->history + 1, sizeof(j->history) - sizeof(j->history[0]));
                j->n_history--;
        }
        j->history[j->n_history++] = (DiagAttempt) { .failure = f, .elapsed = elapsed };
        d = diagnose_attempts(j->history, j->n_history, &text);
        report_diagnosis(j, d, text, layer);
        check_unpassable(j);
}

/* What this attempt's last sample said of a pull that looked alive: a layer extracting with its
 * helper at work first, else one still moving. NULL when a layer was judged faulted, or nothing was
 * judged yet. */
static const char *alive_evidence(PullJob *j, char *buf, size_t size) {
        const LayerTrack *best = NULL;

        for (size_t i = 0; i < detector_n_layers(j->detector); i++) {
                const LayerTrack *l = detector_layer_at(j->detector, i);
                if (verdict_is_fault(l->verdict))
                        return NULL;
                if (l->verdict != VERDICT_PROGRESSING && l->verdict != VERDICT_SILENT_ALIVE)
                        continue;
                if (!best || (l->phase == PHASE_EXTRACTING && best->phase != PHASE_EXTRACTING))
                        best = l;
        }
        if (!best)
                return NULL;
        snprintf(buf, size, "layer %.19s %s, %s: %s", best->id, phase_to_string(best->phase),
                 verdict_to_string(best->verdict), best->evidence);
        return buf;
}

static void diagnose_error_text(PullJob *j, const char *message) {
        char *text = NULL, alive[256];
        int d;

        /* containerd ended a pull pullwatch did not cancel (no callback follows pullwatch's own cancel) */
        if (job_runtime_kind(j) == RUNTIME_CONTAINERD &&
            (d = diagnose_cri_cancel(message, alive_evidence(j, alive, sizeof(alive)), NULL, &text)) != DIAG_NONE) {
                report_diagnosis(j, d, text, NULL);
                return;
        }
        d = diagnose_runtime_error(job_runtime_kind(j), message, &text);
        if (d == DIAG_TLS_UNTRUSTED && j->preflight) {
                /* name the file this runtime reads this registry's CA from */
                free(text);
                text = NULL;
                d = diagnose_tls(job_runtime_kind(j), preflight_host(j->preflight), preflight_ca_where(j->preflight),
                                 strcasestr(message, "x509: ") ?: message, false, &text);
        }
        /* A refused Range: ask the registry directly, so the diagnosis can name the hop at fault. */
        if (d == DIAG_RANGE_IGNORED && j->preflight && !j->reported[d]) {
                preflight_probe_range(j->preflight, NULL, text);
                return;
        }
        report_diagnosis(j, d, text, NULL);
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
        report_diagnosis(j, d, text, NULL);
        check_unpassable(j);
        /* The runtime may have failed before the registry's 429 reached us: push a retry already
         * scheduled out to the registry's Retry-After. */
        if (wait > 0 && sd_event_source_get_enabled(j->retry_timer, &enabled) >= 0 && enabled != SD_EVENT_OFF &&
            sd_event_source_get_time(j->retry_timer, &next) >= 0 && next < now_monotonic() + wait) {
                sd_event_source_set_time_relative(j->retry_timer, wait);
                emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = "the registry asked to wait (429 Retry-After)",
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

static LayerSeen *seen_get(PullJob *j, const char *id) {
        for (size_t i = 0; i < j->n_seen; i++)
                if (streq(j->seen[i].id, id))
                        return &j->seen[i];
        LayerSeen *n = realloc(j->seen, (j->n_seen + 1) * sizeof(*n));
        if (!n)
                return NULL;
        j->seen = n;
        n = &j->seen[j->n_seen];
        *n = (LayerSeen) { .id = strdup(id), .phase = _PHASE_INVALID, .verdict = _VERDICT_INVALID };
        if (!n->id)
                return NULL;
        j->n_seen++;
        return n;
}

static void seen_clear(PullJob *j) {
        for (size_t i = 0; i < j->n_seen; i++) {
                j->bytes += j->seen[i].downloaded;
                free(j->seen[i].id);
        }
        free(j->seen);
        j->seen = NULL;
        j->n_seen = 0;
}

static void on_layer(void *userdata, const char *layer, Phase phase, uint64_t current, uint64_t total, usec_t at) {
        PullJob *j = userdata;
        LayerSeen *s;

        (void) detector_layer(j->detector, layer, phase, current, total, at);
        s = seen_get(j, layer);
        if (!s)
                return;
        if (phase == PHASE_DOWNLOADING) {
                if (s->phase != PHASE_DOWNLOADING || s->in_runtime_retry)
                        s->download_since = at;
                s->in_runtime_retry = false;
                s->current = current;
                s->downloaded = MAX(s->downloaded, current);
                s->size = MAX(s->size, total);
        } else if (s->phase == PHASE_DOWNLOADING && phase != PHASE_DONE)
                s->downloaded = MAX(s->downloaded, s->size); /* the last progress message lags */
        /* when the count last changed: dockerd on the containerd store repeats it every second */
        if (current != s->observed || s->phase != phase) {
                s->observed = current;
                s->observed_at = at;
        }
        if (s->phase != phase) {
                s->phase = phase;
                s->last_progress_event = at;
                s->emitted = current;
                emit(j, &(PullEvent) { .kind = PULL_EVENT_PHASE, .layer = layer, .phase = phase,
                                       .current = current, .total = total, .observed = at });
        } else if (current > 0 && current != s->emitted && at - s->last_progress_event >= PROGRESS_EVENT_INTERVAL) {
                /* Only bytes that moved: dockerd on the containerd store repeats the same count
                 * every second, which says nothing new. */
                s->last_progress_event = at;
                s->emitted = current;
                emit(j, &(PullEvent) { .kind = PULL_EVENT_PROGRESS, .layer = layer, .phase = phase,
                                       .current = current, .total = total, .observed = s->observed_at });
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
        LayerSeen *s = layer ? seen_get(j, layer) : NULL;

        unsigned n = 0;

        detector_runtime_retry(j->detector, layer, at);
        /* dockerd counts down "Retrying in 5 seconds", "... 4 seconds": one cut, many messages. A
         * count that goes up is the next cut, even with no Downloading message in between. */
        if (text)
                (void) sscanf(text, "Retrying in %u", &n);
        if (s && s->in_runtime_retry && n > s->countdown)
                s->in_runtime_retry = false;
        if (s)
                s->countdown = n;
        if (s && !s->in_runtime_retry) {
                s->in_runtime_retry = true;
                s->phase = PHASE_WAITING;
                emit(j, &(PullEvent) { .kind = PULL_EVENT_RUNTIME_RETRY, .layer = layer, .reason = text,
                                       .phase = PHASE_WAITING });
                /* a cut is timed from the connection's first byte; a retry refused before any byte
                 * (dockerd's "expected HTTP 206") is no timed cut */
                if (s->download_since)
                        record_cut(j, ATTEMPT_RESET, at - s->download_since, layer);
                s->download_since = 0;
                /* A resume that brought no byte before failing again: was the Range refused? Ask the
                 * registry through the same hops now rather than after dockerd's last try. */
                if (s->runtime_retries > 0 && s->downloaded <= s->bytes_at_retry && j->preflight &&
                    !j->reported[DIAG_RANGE_IGNORED])
                        preflight_probe_range(j->preflight, preflight_layer_digest(j->preflight, layer), NULL);
                s->runtime_retries++;
                s->bytes_at_retry = s->downloaded;
        }
}

static void finish(PullJob *j, bool ok, ErrorClass error, const char *reason) {
        if (j->finished)
                return;
        j->finished = true;
        j->ok = ok;
        seen_clear(j);
        j->confirm = runtime_op_free(j->confirm);
        if (!ok && j->driver->abandon)
                (void) j->driver->abandon(j->glue, j->config, &j->req); /* the glue owns it from here */
        sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        sd_event_source_set_enabled(j->retry_timer, SD_EVENT_OFF);
        disk_wait_stop(j->disk);
        emit(j, &(PullEvent) { .kind = PULL_EVENT_RESULT, .ok = ok, .error = error, .reason = reason,
                               .digest = j->digest, .bytes = j->bytes, .diagnosis = j->diagnosis,
                               .registry_probe = j->probe_note,
                               .elapsed_s = (double) (now_monotonic() - j->started) / USEC_PER_SEC });
}

static void finish_pending(PullJob *j) {
        if (!j->pending_finish)
                return;
        j->pending_finish = false;
        j->pending_timer = sd_event_source_disable_unref(j->pending_timer);
        _cleanup_free_ char *reason = TAKE_PTR(j->pending_reason);
        if (j->pending_diagnose)
                diagnose_error_text(j, reason);
        finish(j, false, j->pending_error, reason);
}

static int on_pending_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        finish_pending(userdata);
        return 0;
}

/* A failed pull waits a little for a registry probe still in flight, so the result carries what
 * the probe found or why it could not look, and the registry's own answer (an index's platforms,
 * a manifest's config type) is named before a reading of the runtime's error text (diagnose). A
 * probe that hangs does not hold the failure back. */
#define PENDING_MAX (5 * USEC_PER_SEC)
static void finish_failed(PullJob *j, ErrorClass error, const char *reason, bool diagnose) {
        if (j->preflight && preflight_busy(j->preflight) && !j->pending_finish && !j->finished &&
            sd_event_add_time_relative(j->event, &j->pending_timer, CLOCK_MONOTONIC, PENDING_MAX, 10 * USEC_PER_MSEC,
                                       on_pending_timeout, j) >= 0) {
                j->pending_finish = true;
                j->pending_error = error;
                j->pending_reason = reason ? strdup(reason) : NULL;
                j->pending_diagnose = diagnose;
                return;
        }
        if (diagnose)
                diagnose_error_text(j, reason);
        finish(j, false, error, reason);
}

static void on_preflight_idle(Preflight *p, void *userdata) {
        finish_pending(userdata);
}

static int start_attempt(PullJob *j);
static bool wait_for_space(PullJob *j, const char *message);

static int on_retry_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        PullJob *j = userdata;
        int r = start_attempt(j);
        if (r < 0) {
                char buf[128];
                snprintf(buf, sizeof(buf), "could not start attempt %u: %s", j->attempt, strerror(-r));
                finish(j, false, ERROR_TRANSIENT, buf);
        }
        return 0;
}

static void schedule_retry(PullJob *j, const char *reason) {
        usec_t delay;
        uint64_t reached = 0;

        /* An attempt that got no further into its layers than the one before, on a runtime that
         * resumes with Range (containerd keeps partial ingests): was the Range refused on the way?
         * Ask through the runtime's own hops; the probe names the hop answering 200. */
        for (size_t i = 0; i < j->n_seen; i++)
                reached += j->seen[i].downloaded;
        if (j->attempt >= 2 && reached > 0 && reached <= j->reached_before && j->preflight &&
            !j->reported[DIAG_RANGE_IGNORED])
                preflight_probe_range(j->preflight, NULL, NULL);
        j->reached_before = MAX(j->reached_before, reached);

        free(j->last_reason);
        j->last_reason = strdup(reason ? reason : "");
        if (j->attempt >= j->config->retry.attempts) {
                char buf[512];
                snprintf(buf, sizeof(buf), "gave up after %u attempts: %s", j->attempt, reason ? reason : "");
                finish_failed(j, ERROR_TRANSIENT, buf, false);
                return;
        }
        delay = pull_backoff_delay(j->config->retry.backoff, j->config->retry.backoff_max, j->attempt,
                                   (double) random() / ((double) RAND_MAX + 1.0));
        /* A registry that said "429, come back in N s" is not asked sooner. */
        delay = MAX(delay, preflight_retry_after(j->preflight, now_monotonic()));
        emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = reason, .delay = delay });
        sd_event_source_set_time_relative(j->retry_timer, delay);
        sd_event_source_set_enabled(j->retry_timer, SD_EVENT_ONESHOT);
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
        finish(j, true, ERROR_NONE, NULL);
}

static void on_finished(void *userdata, const PullOutcome *o) {
        PullJob *j = userdata;

        j->running = false;
        sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        if (o->digest) {
                free(j->digest);
                j->digest = strdup(o->digest);
        }
        switch (o->error) {
        case ERROR_NONE: {
                /* The runtime says the image is complete. dockerd on the containerd store stops its
                 * progress ticker with the pull, so a layer's last message ("Pull complete") may
                 * never come: every layer seen is done. */
                for (size_t i = 0; i < j->n_seen; i++)
                        if (j->seen[i].phase != PHASE_DONE)
                                on_layer(j, j->seen[i].id, PHASE_DONE, j->seen[i].size, j->seen[i].size,
                                         now_monotonic());
                int r = j->driver->confirm ? j->driver->confirm(j->glue, j->config, &j->req, on_confirmed, j, &j->confirm)
                                           : -EOPNOTSUPP;
                if (r == -EOPNOTSUPP)
                        finish(j, true, ERROR_NONE, NULL);
                else if (r < 0)
                        on_confirmed(NULL, r, NULL, j);
                break;
        }
        case ERROR_PERMANENT:
                finish_failed(j, ERROR_PERMANENT, o->message, true);
                break;
        default: {
                /* The attempt's cut, timed from the newest layer connection still downloading. */
                usec_t since = j->attempt_started;
                for (size_t i = 0; i < j->n_seen; i++)
                        if (j->seen[i].phase == PHASE_DOWNLOADING && j->seen[i].download_since)
                                since = MAX(since, j->seen[i].download_since);
                AttemptFailure f = attempt_failure_from_text(o->message);
                diagnose_error_text(j, o->message);
                record_cut(j, f, now_monotonic() - since, NULL);
                /* A cut body, or one that came whole but wrong (a pull-through cache whose upstream was
                 * cut: containerd's "unexpected commit digest"): the resume depends on Range along the
                 * runtime's hops, so ask them now. */
                if ((f == ATTEMPT_RESET || f == ATTEMPT_EOF || (o->message && strcasestr(o->message, "unexpected commit digest"))) &&
                    j->preflight && !j->reported[DIAG_RANGE_IGNORED])
                        preflight_probe_range(j->preflight, NULL, NULL);
                if (j->unpassable)
                        finish(j, false, ERROR_PERMANENT, j->unpassable);
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
        bool gate = j->disk_gating;

        j->disk_gating = false;
        if (fit == DISK_NO_ROOM || fit == DISK_OVER_HIGH) {
                if (asprintf(&reason, "%s%s", gate ? "not started: " : "", t ?: "no room on the image filesystem") < 0)
                        reason = NULL;
                if (gate)
                        report_diagnosis(j, DIAG_DISK_PRESSURE, TAKE_PTR(t), NULL);
                finish(j, false, ERROR_TRANSIENT, reason ?: "no room on the image filesystem");
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
        uint64_t stored = 0, reported = 0, need;
        char b_need[32], reason[384];

        if (diagnose_runtime_error(job_runtime_kind(j), message, NULL) != DIAG_DISK_FULL ||
            j->attempt >= j->config->retry.attempts)
                return false;
        for (size_t i = 0; i < j->n_seen; i++) {
                stored += j->seen[i].downloaded;
                reported += j->seen[i].size;
        }
        need = disk_gate_remaining(job_runtime_kind(j), disk_wait_size(j->disk), reported, stored);
        free(j->last_reason);
        j->last_reason = strdup(message ?: "");
        format_bytes_human(need, b_need, sizeof(b_need));
        snprintf(reason, sizeof(reason), "waiting for disk space: %s more needed on %s (no space left on device)",
                 b_need, disk_wait_path(j->disk) ?: "the image filesystem");
        emit(j, &(PullEvent) { .kind = PULL_EVENT_RETRY, .reason = reason, .delay = 0 });
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
                const LayerTrack *t = layer ? detector_find(j->detector, layer) : NULL;
                bool spinning = t && t->cpu_busy_since;
                usec_t quiet = t ? now_monotonic() - (spinning ? t->cpu_busy_since
                                                                : MAX(MAX(t->phase_since, t->last_progress), t->last_output))
                                 : 0;
                char *text = NULL;
                int d = diagnose_decompressor(job_runtime_kind(j), lv->busiest_comm, lv->busiest_pid, spinning, quiet,
                                              &text);
                report_diagnosis(j, d, text, layer);
                char cut[384];
                int r = j->liveness.kill_helper(j->liveness.userdata, lv->busiest_pid, cut, sizeof(cut));
                if (r < 0)
                        snprintf(cut, sizeof(cut), "%s pid %d not signalled: %s", lv->busiest_comm,
                                 (int) lv->busiest_pid,
                                 r == -EPERM ? "not a proven helper of the runtime" : r == -ESRCH ? "gone" : strerror(-r));
                emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = r < 0 ? "kill-helper-refused" : "kill-helper",
                                       .layer = layer, .pid = lv->busiest_pid, .verdict = v, .reason = cut });
        }
        j->driver->cancel(j->pull);
        j->running = false;
        emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cancel", .layer = layer, .verdict = v,
                               .evidence = evidence });
        snprintf(reason, sizeof(reason), "%s%s %s: %s", layer ? "layer " : "pull", layer ? layer : "",
                 verdict_to_string(v), evidence ? evidence : "");
        schedule_retry(j, reason);
}

static int on_sample(sd_event_source *s, uint64_t usec, void *userdata) {
        PullJob *j = userdata;
        usec_t now = now_monotonic();
        const char *layer = NULL, *evidence = NULL;
        Verdict v;

        if (j->unpassable) {
                /* the runtime would go on retrying through a hop that cannot pass the layer */
                j->driver->cancel(j->pull);
                j->running = false;
                emit(j, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cancel", .layer = j->cut_layer,
                                       .evidence = j->unpassable });
                finish(j, false, ERROR_PERMANENT, j->unpassable);
                return 0;
        }

        if (j->have_liveness) {
                LivenessDelta lv = {};
                if (j->liveness.sample(j->liveness.userdata, now, &lv) >= 0)
                        detector_liveness(j->detector, &lv);
                if (lv.unverified) {
                        char *text = NULL;
                        int d = diagnose_runtime_unverified(job_runtime_kind(j), lv.why, &text);
                        report_diagnosis(j, d, text, NULL);
                }
        }
        v = detector_evaluate(j->detector, now);

        for (size_t i = 0; i < detector_n_layers(j->detector); i++) {
                const LayerTrack *l = detector_layer_at(j->detector, i);
                LayerSeen *seen = seen_get(j, l->id);
                if (seen && seen->verdict != l->verdict) {
                        seen->verdict = l->verdict;
                        /* bytes that came after the last (rate-limited) progress event: said before a
                         * fault verdict, with the time they were seen, so the stream shows where it stopped */
                        if (verdict_is_fault(l->verdict) && seen->observed != seen->emitted && seen->phase == l->phase) {
                                seen->emitted = seen->observed;
                                emit(j, &(PullEvent) { .kind = PULL_EVENT_PROGRESS, .layer = l->id, .phase = seen->phase,
                                                       .current = seen->observed, .total = l->total,
                                                       .observed = seen->observed_at });
                        }
                        emit(j, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .layer = l->id, .phase = l->phase,
                                               .verdict = l->verdict, .evidence = l->evidence,
                                               .current = l->current, .total = l->total });
                }
        }
        detector_pull_verdict(j->detector, &layer, &evidence);
        if (v != j->pull_verdict) {
                j->pull_verdict = v;
                if (!layer) /* layer verdicts were reported above */
                        emit(j, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .verdict = v, .evidence = evidence,
                                               .phase = _PHASE_INVALID });
        }
        if (verdict_is_fault(v)) {
                _cleanup_free_ char *l = layer ? strdup(layer) : NULL, *e = evidence ? strdup(evidence) : NULL;
                cut_attempt(j, v, l, e);
                return 0;
        }
        sd_event_source_set_time_relative(s, j->config->watchdog.sample_interval);
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
        seen_clear(j);
        if (j->have_liveness) {
                LivenessDelta lv;
                (void) j->liveness.sample(j->liveness.userdata, now, &lv); /* baseline */
        }
        emit(j, &(PullEvent) { .kind = PULL_EVENT_ATTEMPT, .reason = j->last_reason });
        r = j->driver->start(j->glue, j->config, &j->req, &callbacks, j, &j->pull);
        if (r < 0)
                return r;
        j->running = true;
        tell_expected(j);
        sd_event_source_set_time_relative(j->sample_timer, j->config->watchdog.sample_interval);
        return sd_event_source_set_enabled(j->sample_timer, SD_EVENT_ONESHOT);
}

int pull_job_new(sd_event *event, CurlGlue *glue, const Config *config, const RuntimeDriver *driver,
                 const PullRequest *req, pull_job_event_t cb, void *userdata, PullJob **ret) {
        PullJob *j = calloc(1, sizeof(*j));
        int r;

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
        r = j->image ? detector_new(&config->watchdog, now_monotonic(), &j->detector) : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_time_relative(event, &j->sample_timer, CLOCK_MONOTONIC, config->watchdog.sample_interval,
                                               10 * USEC_PER_MSEC, on_sample, j);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->sample_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = sd_event_add_time_relative(event, &j->retry_timer, CLOCK_MONOTONIC, USEC_PER_SEC, 10 * USEC_PER_MSEC,
                                               on_retry_timer, j);
        if (r >= 0)
                r = sd_event_source_set_enabled(j->retry_timer, SD_EVENT_OFF);
        if (r >= 0)
                r = disk_wait_new(glue, config, job_runtime_kind(j), imagefs_locate, j->image, on_disk, j, &j->disk);
        if (r < 0) {
                pull_job_free(j);
                return r;
        }
        /* Without a parsable reference there is no registry to ask; the runtime will say why. */
        (void) preflight_new(glue, config, job_runtime_kind(j), &j->req, on_preflight, j, &j->preflight);
        if (j->preflight) {
                preflight_set_idle_callback(j->preflight, on_preflight_idle);
                preflight_on_resolved(j->preflight, on_resolved);
                preflight_set_manifest_cb(j->preflight, on_manifest);
        }
        *ret = j;
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
        disk_wait_free(j->disk);
        detector_free(j->detector);
        seen_clear(j);
        sd_event_unref(j->event);
        free(j->image);
        free(j->last_reason);
        free(j->digest);
        free(j->diagnosis);
        free(j->probe_note);
        free(j->pending_reason);
        sd_event_source_disable_unref(j->pending_timer);
        free(j->unpassable);
        free(j->cut_layer);
        free(j);
        return NULL;
}

void pull_job_set_liveness(PullJob *j, const LivenessSource *src) {
        j->have_liveness = src && src->sample;
        if (src)
                j->liveness = *src;
}

int pull_job_start(PullJob *j) {
        j->started = now_monotonic();
        /* Attempt 1 waits for the manifest and for where the runtime keeps images (DISK_GATE_TIMEOUT at
         * most): an image that cannot fit, or that would trigger kubelet's image GC, is not pulled at
         * all. A runtime that cannot say where it keeps images is not held up (the gate answers "go on"
         * as soon as it says so). */
        if (j->preflight) {
                j->disk_gating = true;
                disk_wait_gate(j->disk, DISK_GATE_TIMEOUT);
                if (preflight_start(j->preflight) >= 0)
                        return 0;
                j->disk_gating = false;
                disk_wait_stop(j->disk);
        }
        return start_attempt(j);
}

void pull_job_abort(PullJob *j, const char *why) {
        if (j->finished)
                return;
        if (j->pull)
                j->driver->cancel(j->pull);
        finish(j, false, ERROR_CANCELLED, why);
}

bool pull_job_finished(const PullJob *j) { return j->finished; }
bool pull_job_ok(const PullJob *j) { return j->ok; }
unsigned pull_job_attempt(const PullJob *j) { return j->attempt; }
const char *pull_job_image(const PullJob *j) { return j->image; }
const Detector *pull_job_detector(const PullJob *j) { return j->detector; }
