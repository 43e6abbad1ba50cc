/* detector.c: per-phase budgets and liveness rules that tell a silent-but-working layer from a hung
 * one, and a stuck layer from one queued behind others. See detector.h for the contract. */
#include "daemon/pull/detector.h"

#include <stdarg.h>
#include <stdio.h>

struct Detector {
        WatchdogConfig cfg;
        LayerTrack *layers;
        size_t n_layers, alloc;
        usec_t started;
        usec_t last_activity;     /* any message at all */
        usec_t last_progress;     /* any layer's bytes or phase moved */
        LivenessDelta last_liveness;
        bool have_liveness;
        Verdict verdict;
        const char *verdict_layer;
        char evidence[DETECTOR_EVIDENCE_MAX];
};


static unsigned secs(usec_t u) { return (unsigned) ((u + USEC_PER_SEC / 2) / USEC_PER_SEC); }

_printf_(2, 3) static void set_evidence(char *dst, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dst, DETECTOR_EVIDENCE_MAX, fmt, ap);
        va_end(ap);
}

usec_t detector_silent_budget(const WatchdogConfig *cfg, uint64_t size) {
        usec_t b = cfg->silent_min;
        if (cfg->silent_min_rate > 0 && size > 0) {
                usec_t by_size = (usec_t) ((double) size / (double) cfg->silent_min_rate * USEC_PER_SEC);
                b = MAX(b, by_size);
        }
        return b;
}

int detector_new(const WatchdogConfig *cfg, usec_t now, Detector **ret) {
        Detector *d = calloc(1, sizeof(*d));
        if (!d)
                return -ENOMEM;
        d->cfg = *cfg;
        detector_restart(d, now);
        *ret = d;
        return 0;
}

static void layers_clear(Detector *d) {
        for (size_t i = 0; i < d->n_layers; i++)
                free(d->layers[i].id);
        d->n_layers = 0;
}

Detector *detector_free(Detector *d) {
        if (!d)
                return NULL;
        layers_clear(d);
        free(d->layers);
        free(d);
        return NULL;
}

void detector_restart(Detector *d, usec_t now) {
        layers_clear(d);
        d->started = d->last_activity = d->last_progress = now;
        d->have_liveness = false;
        d->verdict = VERDICT_PROGRESSING;
        d->verdict_layer = NULL;
        d->evidence[0] = 0;
}

static LayerTrack *find(Detector *d, const char *id) {
        for (size_t i = 0; i < d->n_layers; i++)
                if (streq(d->layers[i].id, id))
                        return &d->layers[i];
        return NULL;
}

const LayerTrack *detector_find(const Detector *d, const char *id) { return find((Detector *) d, id); }

static LayerTrack *find_or_add(Detector *d, const char *id, usec_t at) {
        LayerTrack *l = find(d, id);
        if (l)
                return l;
        if (d->n_layers == d->alloc) {
                size_t a = MAX(d->alloc * 2, (size_t) 8);
                LayerTrack *n = realloc(d->layers, a * sizeof(*n));
                if (!n)
                        return NULL;
                d->layers = n;
                d->alloc = a;
        }
        l = &d->layers[d->n_layers];
        *l = (LayerTrack) { .phase = _PHASE_INVALID, .first_seen = at, .phase_since = at,
                            .last_progress = at, .verdict = VERDICT_WAITING, .verdict_since = at };
        l->id = strdup(id);
        if (!l->id)
                return NULL;
        d->n_layers++;
        return l;
}

static void trickle_reset(LayerTrack *l) { l->trickle_n = l->trickle_head = 0; }

static void trickle_push(const WatchdogConfig *cfg, LayerTrack *l, usec_t at, uint64_t bytes) {
        /* Keep ~DETECTOR_TRICKLE_RING points spread over the window; more would only cost memory. */
        usec_t spacing = cfg->trickle_window / (DETECTOR_TRICKLE_RING - 2);
        if (l->trickle_n > 0) {
                unsigned last = (l->trickle_head + DETECTOR_TRICKLE_RING - 1) % DETECTOR_TRICKLE_RING;
                if (at < l->trickle[last].at + spacing)
                        return;
        }
        l->trickle[l->trickle_head] = (TrickleSample) { at, bytes };
        l->trickle_head = (l->trickle_head + 1) % DETECTOR_TRICKLE_RING;
        if (l->trickle_n < DETECTOR_TRICKLE_RING)
                l->trickle_n++;
}

int detector_layer(Detector *d, const char *id, Phase phase, uint64_t current, uint64_t total, usec_t at) {
        LayerTrack *l;

        if (!id || phase < 0 || phase >= _PHASE_MAX)
                return -EINVAL;
        l = find_or_add(d, id, at);
        if (!l)
                return -ENOMEM;
        d->last_activity = MAX(d->last_activity, at);
        at = MAX(at, l->phase_since);

        if (phase == PHASE_DOWNLOADING && total > 0)
                l->size = MAX(l->size, total);
        if (phase == PHASE_EXTRACTING && total > 0 && l->size == 0)
                l->size = total;

        if (phase != l->phase) {
                /* A retried download may come back to downloading: that is news, not progress. */
                bool forward = l->phase < 0 || phase > l->phase || phase == PHASE_DONE;
                l->phase = phase;
                l->phase_since = at;
                l->current = current;
                l->total = total;
                l->cpu_busy_since = 0;
                l->last_output = 0;
                trickle_reset(l);
                if (forward) {
                        l->last_progress = at;
                        d->last_progress = MAX(d->last_progress, at);
                }
                if (phase == PHASE_DOWNLOADING)
                        trickle_push(&d->cfg, l, at, current);
                return 0;
        }
        if (current > l->current) {
                l->last_progress = at;
                d->last_progress = MAX(d->last_progress, at);
                l->cpu_busy_since = 0;
        } else if (current < l->current)
                trickle_reset(l); /* restarted from an earlier offset */
        l->current = current;
        if (total > 0)
                l->total = total;
        if (phase == PHASE_DOWNLOADING)
                trickle_push(&d->cfg, l, at, current);
        return 0;
}

void detector_activity(Detector *d, usec_t at) { d->last_activity = MAX(d->last_activity, at); }

void detector_runtime_retry(Detector *d, const char *id, usec_t at) {
        LayerTrack *l = id ? find(d, id) : NULL;
        d->last_activity = MAX(d->last_activity, at);
        if (!l)
                return;
        /* The runtime is handling this layer itself (dockerd: up to 5 tries with a growing delay, then
         * it fails the pull): waiting on it, not stalled. Its next Downloading is progress again. */
        if (l->phase != PHASE_WAITING) {
                l->runtime_retries++;
                l->phase = PHASE_WAITING;
                l->phase_since = at;
                trickle_reset(l);
        }
        l->last_progress = at;
        d->last_progress = MAX(d->last_progress, at);
}

static bool any_download_moving(const Detector *d, usec_t window_start) {
        for (size_t i = 0; i < d->n_layers; i++)
                if (phase_is_network(d->layers[i].phase) && d->layers[i].last_progress >= window_start)
                        return true;
        return false;
}

void detector_liveness(Detector *d, const LivenessDelta *lv) {
        /* Helper output and disk growth belong to extraction. The runtime's own I/O (which the caller
         * passes only for runtimes that extract in-process) could be another layer's download, so it
         * counts for a silent layer only when no download moved meanwhile; and only with no helper
         * alive: with one, the helper is the pipeline (the runtime writes what the helper produced, a
         * pipe's worth at most, and a runtime slow to write drains the pipe, so the helper writes
         * again within a sample or two). While the helper is silent, the runtime's own writes are
         * something else: containerd's metadata commits, its GC after a removal (on a loaded node
         * one came 13 s into an asleep decompressor's silence and put the hung verdict 13 s late). */
        bool runtime_attributable = lv->n_helpers == 0 && !any_download_moving(d, lv->at - lv->interval);
        bool output = lv->available &&
                      (lv->helper_io > 0 || lv->disk_grew || (runtime_attributable && lv->runtime_io > 0));
        /* A quarter of a core is work, not a helper idling in a read. */
        bool cpu_busy = lv->available && lv->interval > 0 && lv->helper_cpu * 4 >= lv->interval;

        d->last_liveness = *lv;
        d->have_liveness = lv->available;
        for (size_t i = 0; i < d->n_layers; i++) {
                LayerTrack *l = &d->layers[i];
                if (!phase_is_silent(l->phase))
                        continue;
                if (output)
                        l->last_output = lv->at;
                if (cpu_busy && !output) {
                        if (l->cpu_busy_since == 0)
                                l->cpu_busy_since = lv->at - lv->interval;
                } else
                        l->cpu_busy_since = 0;
        }
}

static Verdict set_verdict(LayerTrack *l, Verdict v, usec_t now) {
        if (v != l->verdict) {
                l->verdict = v;
                l->verdict_since = now;
                l->verdict_changed = true;
        }
        return v;
}

static Verdict judge_download(Detector *d, LayerTrack *l, usec_t now) {
        const WatchdogConfig *c = &d->cfg;
        usec_t quiet = now - MAX(l->last_progress, l->phase_since);
        char got[32], size[32];

        format_bytes_human(l->current, got, sizeof(got));
        format_bytes_human(l->total ? l->total : l->size, size, sizeof(size));
        if (quiet >= c->network_stall) {
                if (l->total > 0)
                        set_evidence(l->evidence, "no bytes for %us at %u%% of %s", secs(quiet),
                                     (unsigned) (l->current * 100 / l->total), size);
                else
                        set_evidence(l->evidence, "no bytes for %us after %s", secs(quiet), got);
                return set_verdict(l, VERDICT_STALLED, now);
        }
        /* Trickle: the oldest sample that is at least a window old gives the rate over the window. */
        if (c->trickle_rate > 0 && c->trickle_window > 0 && now - l->phase_since >= c->trickle_window) {
                const TrickleSample *ref = NULL;
                for (unsigned k = 0; k < l->trickle_n; k++) {
                        unsigned idx = (l->trickle_head + DETECTOR_TRICKLE_RING - 1 - k) % DETECTOR_TRICKLE_RING;
                        if (l->trickle[idx].at + c->trickle_window <= now) {
                                ref = &l->trickle[idx];
                                break;
                        }
                }
                if (ref && now > ref->at) {
                        double rate = (double) (l->current - MIN(ref->bytes, l->current)) /
                                      ((double) (now - ref->at) / USEC_PER_SEC);
                        if (rate < (double) c->trickle_rate) {
                                char floor[32];
                                format_bytes_human(c->trickle_rate, floor, sizeof(floor));
                                set_evidence(l->evidence, "%.1f KiB/s over the last %us at %s of %s, floor %s/s",
                                             rate / 1024.0, secs(now - ref->at), got, size, floor);
                                return set_verdict(l, VERDICT_DEGRADED, now);
                        }
                }
        }
        set_evidence(l->evidence, "%s of %s", got, size);
        return set_verdict(l, VERDICT_PROGRESSING, now);
}

static Verdict judge_silent(Detector *d, LayerTrack *l, usec_t now) {
        const WatchdogConfig *c = &d->cfg;
        const LivenessDelta *lv = &d->last_liveness;
        usec_t since = MAX(l->phase_since, l->last_progress);
        char size[32];

        format_bytes_human(l->size, size, sizeof(size));
        if (!d->have_liveness) {
                /* Blind: only the size-scaled budget is left to go by. */
                usec_t budget = detector_silent_budget(c, l->size);
                if (now - since >= budget) {
                        set_evidence(l->evidence, "%s silent for %us, over its %us budget for %s, runtime not observable",
                                     phase_to_string(l->phase), secs(now - since), secs(budget), size);
                        return set_verdict(l, VERDICT_HUNG, now);
                }
                set_evidence(l->evidence, "%s silent for %us of a %us budget", phase_to_string(l->phase),
                             secs(now - since), secs(budget));
                return set_verdict(l, VERDICT_PROGRESSING, now);
        }
        if (l->cpu_busy_since && now - l->cpu_busy_since >= c->livelock_window) {
                set_evidence(l->evidence, "%s pid %d at %u%% CPU, 0 bytes written for %us",
                             lv->n_helpers ? lv->busiest_comm : "runtime", (int) lv->busiest_pid,
                             lv->interval ? (unsigned) (lv->helper_cpu * 100 / lv->interval) : 0,
                             secs(now - l->cpu_busy_since));
                return set_verdict(l, VERDICT_HUNG, now);
        }
        usec_t quiet = now - MAX(since, l->last_output);
        if (!l->cpu_busy_since && quiet >= c->hang_quiet) {
                if (lv->n_helpers)
                        set_evidence(l->evidence, "%s pid %d asleep (state %c), no CPU and no I/O for %us while %s",
                                     lv->busiest_comm, (int) lv->busiest_pid, lv->busiest_state ? lv->busiest_state : '?',
                                     secs(quiet), phase_to_string(l->phase));
                else
                        set_evidence(l->evidence, "no CPU and no I/O from the runtime for %us while %s",
                                     secs(quiet), phase_to_string(l->phase));
                return set_verdict(l, VERDICT_HUNG, now);
        }
        if (l->cpu_busy_since)
                set_evidence(l->evidence, "%s pid %d busy without output for %us", lv->busiest_comm,
                             (int) lv->busiest_pid, secs(now - l->cpu_busy_since));
        else if (l->last_output)
                set_evidence(l->evidence, "%s for %us, I/O %us ago", phase_to_string(l->phase),
                             secs(now - l->phase_since), secs(now - l->last_output));
        else
                set_evidence(l->evidence, "%s for %us", phase_to_string(l->phase), secs(now - l->phase_since));
        return set_verdict(l, VERDICT_SILENT_ALIVE, now);
}

static int verdict_rank(Verdict v) {
        switch (v) {
        case VERDICT_HUNG: return 3;
        case VERDICT_STALLED: return 2;
        case VERDICT_DEGRADED: return 1;
        default: return 0;
        }
}

Verdict detector_evaluate(Detector *d, usec_t now) {
        const WatchdogConfig *c = &d->cfg;
        LayerTrack *worst = NULL;
        bool alive = false, all_done = d->n_layers > 0;
        unsigned waiting = 0;

        for (size_t i = 0; i < d->n_layers; i++) {
                LayerTrack *l = &d->layers[i];
                Verdict v;

                l->verdict_changed = false;
                if (l->phase == PHASE_DONE)
                        v = set_verdict(l, VERDICT_DONE, now);
                else if (l->phase == PHASE_WAITING || l->phase == PHASE_RESOLVE) {
                        set_evidence(l->evidence, "waiting for %us", secs(now - l->phase_since));
                        v = set_verdict(l, VERDICT_WAITING, now);
                        waiting++;
                } else if (phase_is_network(l->phase))
                        v = judge_download(d, l, now);
                else if (l->phase == PHASE_EXTRACTING && now - l->last_progress < c->sample_interval * 2) {
                        /* Extraction with visible byte movement is progress, not silence. */
                        set_evidence(l->evidence, "extracting, bytes moving");
                        v = set_verdict(l, VERDICT_PROGRESSING, now);
                } else
                        v = judge_silent(d, l, now);

                if (v != VERDICT_DONE)
                        all_done = false;
                if (v == VERDICT_PROGRESSING || v == VERDICT_SILENT_ALIVE)
                        alive = true;
                if (verdict_rank(v) > 0 && (!worst || verdict_rank(v) > verdict_rank(worst->verdict)))
                        worst = l;
        }

        d->verdict_layer = NULL;
        if (worst) {
                d->verdict = worst->verdict;
                d->verdict_layer = worst->id;
                snprintf(d->evidence, sizeof(d->evidence), "%s", worst->evidence);
        } else if (all_done) {
                d->verdict = VERDICT_DONE;
                d->evidence[0] = 0;
        } else if (d->n_layers == 0) {
                usec_t quiet = now - d->last_activity;
                if (quiet >= c->network_stall) {
                        d->verdict = VERDICT_STALLED;
                        set_evidence(d->evidence, "no answer while resolving the image for %us", secs(quiet));
                } else {
                        d->verdict = VERDICT_PROGRESSING;
                        set_evidence(d->evidence, "resolving");
                }
        } else if (!alive && now - d->last_progress >= c->waiting_max) {
                /* Everything queued and nothing moving: queued behind what? Nothing. */
                d->verdict = VERDICT_STALLED;
                set_evidence(d->evidence, "no layer moved for %us, %u waiting", secs(now - d->last_progress), waiting);
        } else {
                d->verdict = alive ? VERDICT_PROGRESSING : VERDICT_WAITING;
                set_evidence(d->evidence, "%u of %zu layers waiting", waiting, d->n_layers);
        }
        return d->verdict;
}

size_t detector_n_layers(const Detector *d) { return d->n_layers; }
const LayerTrack *detector_layer_at(const Detector *d, size_t i) { return i < d->n_layers ? &d->layers[i] : NULL; }

Verdict detector_pull_verdict(const Detector *d, const char **ret_layer, const char **ret_evidence) {
        if (ret_layer)
                *ret_layer = d->verdict_layer;
        if (ret_evidence)
                *ret_evidence = d->evidence;
        return d->verdict;
}

const LivenessDelta *detector_last_liveness(const Detector *d) { return d->have_liveness ? &d->last_liveness : NULL; }
