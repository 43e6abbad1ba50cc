/* pull_diag.c: one pull's diagnoses (pull_diag.h): cut history, once-per-pull naming, the unpassable
 * hop, and the reading of the runtime's error text. */
#include "daemon/pull/pull_diag.h"

#include <stdio.h>
#include <stdlib.h>

#include "probes/drivers/runtime_drivers.h"

void pull_diag_init(PullDiag *g, RuntimeKind runtime, pull_diag_say_t say, void *userdata) {
        *g = (PullDiag) { .runtime = runtime, .say = say, .userdata = userdata };
}

void pull_diag_done(PullDiag *g) {
        free(g->diagnosis);
        free(g->unpassable);
        free(g->cut_layer);
        g->diagnosis = g->unpassable = g->cut_layer = NULL;
}

void pull_diag_report(PullDiag *g, int d, char *text, const char *layer) {
        _cleanup_free_ char *t = text;
        if (d <= DIAG_NONE || d >= _DIAGNOSIS_MAX || g->reported[d])
                return;
        g->reported[d] = true;
        free(g->diagnosis);
        g->diagnosis = strdup(diagnosis_to_string(d));
        if (g->say)
                g->say(g->userdata, d, t, layer);
}

bool pull_diag_find_unpassable(PullDiag *g, const Preflight *pf) {
        char *text = NULL;
        if (g->unpassable || !g->reported[DIAG_MIDDLEBOX_TIMEOUT] || !g->reported[DIAG_RANGE_IGNORED])
                return false;
        if (diagnose_unpassable_hop(diagnose_attempts_cut(g->history, g->n_history), preflight_range_hop(pf),
                                    g->cut_layer, g->cut_size, g->cut_bytes, &text) != DIAG_MIDDLEBOX_TIMEOUT || !text)
                return false;
        g->unpassable = text;
        return true;
}

bool pull_diag_record_cut(PullDiag *g, AttemptFailure f, usec_t elapsed, const char *layer, const LayerSeen *s) {
        char *text = NULL;
        int d;
        if (f != ATTEMPT_RESET && f != ATTEMPT_EOF && f != ATTEMPT_TRANSIENT)
                return false;
        if (layer) {
                free(g->cut_layer);
                g->cut_layer = strdup(layer);
                g->cut_size = s ? s->size : 0;
                g->cut_bytes = s ? s->current : 0;
        }
        if (g->n_history == ELEMENTSOF(g->history)) {
                memmove(g->history, g->history + 1, sizeof(g->history) - sizeof(g->history[0]));
                g->n_history--;
        }
        g->history[g->n_history++] = (DiagAttempt) { .failure = f, .elapsed = elapsed };
        d = diagnose_attempts(g->history, g->n_history, &text);
        pull_diag_report(g, d, text, layer);
        return true;
}

/* What this attempt's last sample said of a pull that looked alive: a layer extracting with its
 * helper at work first, else one still moving. NULL when a layer was judged faulted, or nothing was
 * judged yet. */
static const char *alive_evidence(const Detector *det, char *buf, size_t size) {
        const LayerTrack *best = NULL;

        for (size_t i = 0; i < detector_n_layers(det); i++) {
                const LayerTrack *l = detector_layer_at(det, i);
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

void pull_diag_error_text(PullDiag *g, Preflight *pf, const Detector *det, const char *message) {
        const RuntimeDriver *driver = runtime_driver_get(g->runtime);
        char *text = NULL, alive[256];
        int d;

        /* the runtime ended a pull pullwatch did not cancel (no callback follows pullwatch's own cancel) */
        if (driver && driver->cancels_stalled &&
            (d = diagnose_cri_cancel(message, alive_evidence(det, alive, sizeof(alive)), NULL, &text)) != DIAG_NONE) {
                pull_diag_report(g, d, text, NULL);
                return;
        }
        d = diagnose_runtime_error(g->runtime, message, &text);
        if (d == DIAG_TLS_UNTRUSTED && pf) {
                /* name the file this runtime reads this registry's CA from */
                free(text);
                text = NULL;
                d = diagnose_tls(g->runtime, preflight_host(pf), preflight_ca_where(pf),
                                 strcasestr(message, "x509: ") ?: message, false, &text);
        }
        /* A refused Range: ask the registry directly, so the diagnosis can name the hop at fault. */
        if (d == DIAG_RANGE_IGNORED && pf && !g->reported[d]) {
                preflight_probe_range(pf, NULL, text);
                return;
        }
        pull_diag_report(g, d, text, NULL);
}

void pull_diag_decompressor(PullDiag *g, const Detector *det, const LivenessDelta *lv, const char *layer, usec_t now) {
        const LayerTrack *t = layer ? detector_find(det, layer) : NULL;
        bool spinning = t && t->cpu_busy_since;
        usec_t quiet = t ? now - (spinning ? t->cpu_busy_since : MAX(MAX(t->phase_since, t->last_progress), t->last_output))
                         : 0;
        char *text = NULL;
        int d = diagnose_decompressor(g->runtime, lv->busiest_comm, lv->busiest_pid, spinning, quiet, &text);
        pull_diag_report(g, d, text, layer);
}

void pull_diag_ask_range(PullDiag *g, Preflight *pf, const char *digest) {
        if (pf && !g->reported[DIAG_RANGE_IGNORED])
                preflight_probe_range(pf, digest, NULL);
}
