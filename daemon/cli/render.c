/* render.c: event formatting for `pullwatch pull` and `watch`. The terminal view keeps one line per
 * layer and redraws at most ten times a second; on a pipe only state changes are printed. */
#include "daemon/cli/render.h"
#include "basic/escape.h"

#include <math.h>

typedef struct Row {
        char id[72];
        Phase phase;
        uint64_t current, total;
        Verdict verdict;
        usec_t rate_at;
        uint64_t rate_bytes;
        double rate;
} Row;

struct TtyView {
        FILE *out;
        bool interactive;
        Row *rows;
        size_t n_rows;
        unsigned drawn;           /* lines drawn last time, to move back over them */
        usec_t last_draw;
        char status[256];
};

int tty_view_new(FILE *out, bool interactive, TtyView **ret) {
        TtyView *v = calloc(1, sizeof(*v));
        if (!v)
                return -ENOMEM;
        v->out = out;
        v->interactive = interactive;
        *ret = v;
        return 0;
}

TtyView *tty_view_free(TtyView *v) {
        if (!v)
                return NULL;
        free(v->rows);
        free(v);
        return NULL;
}

/* Every status line carries untrusted text (image names, runtime and registry errors). */
_printf_(2, 3) static void set_status(TtyView *v, const char *fmt, ...) {
        char raw[sizeof(v->status)];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(raw, sizeof(raw), fmt, ap);
        va_end(ap);
        escape_line_buf(raw, v->status, sizeof(v->status));
}

static Row *row_get(TtyView *v, const char *id) {
        for (size_t i = 0; i < v->n_rows; i++)
                if (streq(v->rows[i].id, id))
                        return &v->rows[i];
        Row *n = realloc(v->rows, (v->n_rows + 1) * sizeof(*n));
        if (!n)
                return NULL;
        v->rows = n;
        n = &v->rows[v->n_rows++];
        *n = (Row) { .phase = PHASE_WAITING, .verdict = VERDICT_WAITING };
        escape_line_buf(id, n->id, sizeof(n->id));
        return n;
}

static void draw(TtyView *v, usec_t now, bool force) {
        if (!force && now - v->last_draw < 100 * USEC_PER_MSEC)
                return;
        v->last_draw = now;
        if (v->drawn)
                fprintf(v->out, "\033[%uA", v->drawn);
        for (size_t i = 0; i < v->n_rows; i++) {
                Row *r = &v->rows[i];
                char cur[32], tot[32], rate[32] = "";
                format_bytes_human(r->current, cur, sizeof(cur));
                format_bytes_human(r->total, tot, sizeof(tot));
                if (r->phase == PHASE_DOWNLOADING && r->rate > 0) {
                        format_bytes_human((uint64_t) r->rate, rate, sizeof(rate));
                        strcat(rate, "/s");
                }
                fprintf(v->out, "\033[2K%-14.14s %-12s %9s%c%-9s %10s  %s\n", r->id, phase_to_string(r->phase),
                        r->total ? cur : "", r->total ? '/' : ' ', r->total ? tot : "", rate,
                        verdict_to_string(r->verdict));
        }
        fprintf(v->out, "\033[2K%s\n", v->status);
        v->drawn = (unsigned) v->n_rows + 1;
        fflush(v->out);
}

void tty_view_event(TtyView *v, const PullEvent *e, usec_t now) {
        Row *r = e->layer ? row_get(v, e->layer) : NULL;

        switch (e->kind) {
        case PULL_EVENT_ATTEMPT:
                /* A new attempt redraws from scratch below what is on screen. */
                v->n_rows = 0;
                v->drawn = 0;
                set_status(v, "%s: attempt %u via %s", e->image, e->attempt, e->runtime);
                if (!v->interactive)
                        fprintf(v->out, "%s\n", v->status); /* escaped by set_status() */
                break;
        case PULL_EVENT_PHASE:
        case PULL_EVENT_PROGRESS:
                if (!r)
                        break;
                if (e->phase == PHASE_DOWNLOADING && r->phase == PHASE_DOWNLOADING && now > r->rate_at &&
                    e->current >= r->rate_bytes && r->rate_at) {
                        double inst = (double) (e->current - r->rate_bytes) / ((double) (now - r->rate_at) / USEC_PER_SEC);
                        r->rate = r->rate > 0 ? 0.7 * r->rate + 0.3 * inst : inst;
                }
                r->rate_at = now;
                r->rate_bytes = e->current;
                if (!v->interactive && e->kind == PULL_EVENT_PHASE)
                        fprintf_line(v->out, "%s: %s", e->layer, phase_to_string(e->phase));
                if (e->phase != r->phase)
                        /* until the detector says more, a phase implies its plain verdict */
                        r->verdict = e->phase == PHASE_DONE      ? VERDICT_DONE
                                     : e->phase == PHASE_WAITING ? VERDICT_WAITING
                                                                 : VERDICT_PROGRESSING;
                r->phase = e->phase;
                r->current = e->current;
                r->total = e->total;
                break;
        case PULL_EVENT_VERDICT:
                if (r)
                        r->verdict = e->verdict;
                if (!v->interactive || verdict_is_fault(e->verdict))
                        set_status(v, "%s%s%s: %s", e->layer ? "layer " : "pull",
                                 e->layer ? e->layer : "", e->layer ? "" : "", verdict_to_string(e->verdict));
                if (!v->interactive && (verdict_is_fault(e->verdict) || e->verdict == VERDICT_SILENT_ALIVE))
                        fprintf_line(v->out, "%s %s: %s (%s)", e->layer ? e->layer : "pull", verdict_to_string(e->verdict),
                                     e->evidence ? e->evidence : "", phase_to_string(e->phase) ? phase_to_string(e->phase) : "-");
                break;
        case PULL_EVENT_ACTION:
                set_status(v, "%s %s%s%s%s", e->action, e->layer ? "layer " : "pull",
                           e->layer ? e->layer : "", e->pid > 0 ? ": " : "", e->pid > 0 && e->reason ? e->reason : "");
                if (!v->interactive)
                        fprintf(v->out, "%s\n", v->status); /* escaped by set_status() */
                break;
        case PULL_EVENT_RETRY:
                set_status(v, "retrying in %.1fs: %s", (double) e->delay / USEC_PER_SEC,
                         e->reason ? e->reason : "");
                if (!v->interactive)
                        fprintf(v->out, "%s\n", v->status); /* escaped by set_status() */
                break;
        case PULL_EVENT_RUNTIME_RETRY:
                if (r)
                        r->phase = PHASE_WAITING;
                if (!v->interactive)
                        fprintf_line(v->out, "%s: %s (the runtime retries by itself)", e->layer, e->reason ? e->reason : "");
                break;
        case PULL_EVENT_DIAGNOSIS:
                fputs(v->interactive ? "\033[2K" : "", v->out);
                fprintf_line(v->out, "diagnosis %s: %s", e->diagnosis,
                             e->remedy ? e->remedy : "");
                v->drawn = 0;
                break;
        case PULL_EVENT_RESULT:
                if (e->ok)
                        set_status(v, "%s: pulled in %.1fs, %u attempt%s, %s", e->image,
                                 e->elapsed_s, e->attempt, e->attempt == 1 ? "" : "s", e->digest ? e->digest : "");
                else
                        set_status(v, "%s: failed (%s) after %u attempt%s: %s", e->image,
                                 error_class_to_string(e->error), e->attempt, e->attempt == 1 ? "" : "s",
                                 e->reason ? e->reason : "");
                if (v->interactive)
                        draw(v, now, true);
                else
                        fprintf(v->out, "%s\n", v->status); /* escaped by set_status() */
                return;
        default:
                break;
        }
        if (v->interactive)
                draw(v, now, false);
}
