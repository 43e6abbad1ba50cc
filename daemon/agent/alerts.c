/* alerts.c: journald records. The message is one sentence an operator can act on; the catalog entry
 * (journalctl -x) carries the explanation and remedy, so the sentence stays short. */
#include "daemon/agent/alerts.h"
#include "daemon/pull/diagnose.h"
#include "basic/escape.h"

#include <inttypes.h>
#include <stdio.h>
#include <systemd/sd-journal.h>

typedef struct RateEntry {
        AlertKind kind;
        char *key;
        usec_t last;
} RateEntry;

/* One cause's minute: the alerts held back in it, for its summary. */
typedef struct Aggregate {
        AlertKind kind;
        char *cause;              /* the diagnosis, "" for none */
        char *runtime;            /* the first held alert's */
        usec_t until;             /* the minute's end */
        unsigned count;
        char *images[ALERTS_AGGREGATE_NAMES];
} Aggregate;

struct Alerts {
        usec_t rate_limit;
        RateEntry *rates;
        size_t n_rates;
        Aggregate *aggs;
        size_t n_aggs;
        sd_event_source *timer;
        alerts_sink_t sink;
        void *userdata;
};

static int journal_sink(const struct iovec *iov, size_t n, void *userdata) {
        return sd_journal_sendv(iov, (int) n);
}

int alerts_new(usec_t rate_limit, Alerts **ret) {
        Alerts *a = calloc(1, sizeof(*a));
        if (!a)
                return -ENOMEM;
        a->rate_limit = rate_limit;
        a->sink = journal_sink;
        *ret = a;
        return 0;
}

static bool aggregate_close(Alerts *a, Aggregate *g);

static void aggregate_done(Aggregate *g) {
        free(g->cause);
        free(g->runtime);
        for (size_t i = 0; i < ALERTS_AGGREGATE_NAMES; i++)
                free(g->images[i]);
}

Alerts *alerts_free(Alerts *a) {
        if (!a)
                return NULL;
        for (size_t i = 0; i < a->n_rates; i++)
                free(a->rates[i].key);
        free(a->rates);
        for (size_t i = 0; i < a->n_aggs; i++) {
                (void) aggregate_close(a, &a->aggs[i]); /* what was held is said, even on the way out */
                aggregate_done(&a->aggs[i]);
        }
        free(a->aggs);
        sd_event_source_disable_unref(a->timer);
        free(a);
        return NULL;
}

void alerts_set_rate_limit(Alerts *a, usec_t rate_limit) { a->rate_limit = rate_limit; }

void alerts_set_sink(Alerts *a, alerts_sink_t sink, void *userdata) {
        a->sink = sink ? sink : journal_sink;
        a->userdata = userdata;
}

bool alerts_rate_ok(Alerts *a, AlertKind kind, const char *key, usec_t now) {
        RateEntry *e = NULL;

        if (!key)
                key = "";
        if (a->rate_limit == 0)
                return true;
        /* Expired entries go first: the table stays as small as the set of live incidents. */
        for (size_t i = 0; i < a->n_rates;) {
                if (now - a->rates[i].last >= a->rate_limit) {
                        free(a->rates[i].key);
                        a->rates[i] = a->rates[--a->n_rates];
                        continue;
                }
                if (a->rates[i].kind == kind && streq(a->rates[i].key, key))
                        e = &a->rates[i];
                i++;
        }
        if (e)
                return false;
        RateEntry *n = realloc(a->rates, (a->n_rates + 1) * sizeof(*n));
        if (!n)
                return true; /* better a duplicate alert than a lost one */
        a->rates = n;
        n[a->n_rates] = (RateEntry) { .kind = kind, .key = strdup(key), .last = now };
        if (n[a->n_rates].key)
                a->n_rates++;
        return true;
}

void alert_record_done(AlertRecord *r) {
        for (size_t i = 0; i < r->n_owned; i++)
                free(r->owned[i]);
        *r = (AlertRecord) {};
}

static int add_static(AlertRecord *r, const char *s) {
        if (r->n >= ALERT_RECORD_MAX)
                return -E2BIG;
        r->iov[r->n++] = (struct iovec) { .iov_base = (void *) s, .iov_len = strlen(s) };
        return 0;
}

/* PULLWATCH_* fields keep the raw bytes (sd_journal_sendv sends a value with a newline in the
 * protocol's binary form); MESSAGE is what journalctl prints as a line: escaped. */
static int add_field(AlertRecord *r, const char *name, const char *value) {
        _cleanup_free_ char *escaped = NULL;
        char *s;
        if (!value)
                return 0;
        if (r->n >= ALERT_RECORD_MAX || r->n_owned >= ALERT_RECORD_MAX)
                return -E2BIG;
        if (streq(name, "MESSAGE")) {
                escaped = escape_line(value);
                if (!escaped)
                        return -ENOMEM;
                value = escaped;
        }
        if (asprintf(&s, "%s=%s", name, value) < 0)
                return -ENOMEM;
        r->owned[r->n_owned++] = s;
        r->iov[r->n++] = (struct iovec) { .iov_base = s, .iov_len = strlen(s) };
        return 0;
}

int alert_record_build(AlertKind kind, const AlertFields *f, const char *message, AlertRecord *ret) {
        static const AlertFields none = {};
        const AlertInfo *info = alert_info(kind);
        AlertRecord r = {};
        char attempt[16], count[16];
        int k = 0;

        if (!info)
                return -EINVAL;
        if (!f)
                f = &none;
        snprintf(attempt, sizeof(attempt), "%u", f->attempt);
        snprintf(count, sizeof(count), "%u", f->count);
        char pid[16], waited[24];
        snprintf(pid, sizeof(pid), "%d", (int) f->pid);
        snprintf(waited, sizeof(waited), "%" PRIu64, f->waited_sec);
        if ((k = add_static(&r, "SYSLOG_IDENTIFIER=pullwatch")) < 0 || (k = add_static(&r, info->message_id_field)) < 0 ||
            (k = add_static(&r, alert_kind_priority_field(kind))) < 0 ||
            (k = add_field(&r, "MESSAGE", message ? message : info->summary)) < 0 ||
            (k = add_field(&r, "PULLWATCH_ALERT", info->name)) < 0 ||
            (k = add_field(&r, "PULLWATCH_IMAGE", f->image)) < 0 ||
            (k = add_field(&r, "PULLWATCH_RUNTIME", f->runtime)) < 0 ||
            (k = add_field(&r, "PULLWATCH_LAYER", f->layer)) < 0 ||
            (k = add_field(&r, "PULLWATCH_PHASE", f->phase)) < 0 ||
            (k = add_field(&r, "PULLWATCH_VERDICT", f->verdict)) < 0 ||
            (k = add_field(&r, "PULLWATCH_ATTEMPT", f->attempt ? attempt : NULL)) < 0 ||
            (k = add_field(&r, "PULLWATCH_EVIDENCE", f->evidence)) < 0 ||
            (k = add_field(&r, "PULLWATCH_DIAGNOSIS", f->diagnosis)) < 0 ||
            (k = add_field(&r, "PULLWATCH_CLIENT", f->client)) < 0 ||
            (k = add_field(&r, "PULLWATCH_OWNER", f->client ? "other" : NULL)) < 0 ||
            (k = add_field(&r, "PULLWATCH_ACTION", f->action)) < 0 ||
            (k = add_field(&r, "PULLWATCH_HOP", f->hop)) < 0 ||
            (k = add_field(&r, "PULLWATCH_PID", f->pid > 0 ? pid : NULL)) < 0 ||
            (k = add_field(&r, "PULLWATCH_COUNT", f->count ? count : NULL)) < 0 ||
            (k = add_field(&r, "PULLWATCH_IMAGES", f->images)) < 0 ||
            (k = add_field(&r, "PULLWATCH_WAITED_SEC", f->waited_sec ? waited : NULL)) < 0 ||
            (k = add_field(&r, "PULLWATCH_NEXT", f->next)) < 0) {
                alert_record_done(&r);
                return k;
        }
        *ret = r;
        return 0;
}

const char *alert_record_get(const AlertRecord *r, const char *field, size_t *ret_len) {
        size_t n = strlen(field);
        for (size_t i = 0; i < r->n; i++) {
                const char *s = r->iov[i].iov_base;
                if (r->iov[i].iov_len > n && strncmp(s, field, n) == 0 && s[n] == '=') {
                        if (ret_len)
                                *ret_len = r->iov[i].iov_len - n - 1;
                        return s + n + 1;
                }
        }
        return NULL;
}

static int send_now(Alerts *a, AlertKind kind, const AlertFields *f, const char *message) {
        AlertRecord rec;
        int r = alert_record_build(kind, f, message, &rec);
        if (r < 0)
                return r;
        r = a->sink(rec.iov, rec.n, a->userdata);
        alert_record_done(&rec);
        return r < 0 ? r : 1;
}

static void arm_timer(Alerts *a) {
        usec_t next = USEC_INFINITY;

        if (!a->timer)
                return;
        for (size_t i = 0; i < a->n_aggs; i++)
                next = MIN(next, a->aggs[i].until);
        if (next == USEC_INFINITY) {
                (void) sd_event_source_set_enabled(a->timer, SD_EVENT_OFF);
                return;
        }
        (void) sd_event_source_set_time(a->timer, next);
        (void) sd_event_source_set_enabled(a->timer, SD_EVENT_ONESHOT);
}

/* The minute of g is over: its summary when it held anything, and then a new minute (the cause goes
 * on: one summary a minute); a quiet minute ends the aggregate (0 returned: remove it). */
static bool aggregate_close(Alerts *a, Aggregate *g) {
        _cleanup_free_ char *m = NULL, *images = NULL;
        size_t len = 0, named = 0;

        if (g->count == 0)
                return false;
        for (size_t i = 0; i < ALERTS_AGGREGATE_NAMES && g->images[i]; i++)
                len += strlen(g->images[i]) + 1;
        images = calloc(len + 1, 1);
        for (size_t i = 0; images && i < ALERTS_AGGREGATE_NAMES && g->images[i]; i++, named++)
                strcat(strcat(images, i ? " " : ""), g->images[i]);
        if (asprintf(&m, "%s%s%s%s: %u more pull%s within %us, among them %s%s; each is in `pullwatch status`.",
                     alert_kind_summary(g->kind), *g->cause ? " (" : "", g->cause, *g->cause ? ")" : "", g->count,
                     g->count == 1 ? "" : "s", (unsigned) (ALERTS_AGGREGATE_WINDOW / USEC_PER_SEC),
                     images ? images : "-", g->count > named ? " ..." : "") < 0)
                m = NULL;
        (void) send_now(a, g->kind, &(AlertFields) { .runtime = g->runtime, .diagnosis = *g->cause ? g->cause : NULL,
                                                     .count = g->count, .images = images },
                        m);
        for (size_t i = 0; i < ALERTS_AGGREGATE_NAMES; i++)
                g->images[i] = mfree(g->images[i]);
        g->count = 0;
        g->until += ALERTS_AGGREGATE_WINDOW;
        return true;
}

void alerts_flush(Alerts *a, usec_t now) {
        for (size_t i = 0; i < a->n_aggs;) {
                Aggregate *g = &a->aggs[i];
                bool keep = true;
                while (keep && now >= g->until)
                        keep = aggregate_close(a, g);
                if (!keep) {
                        aggregate_done(g);
                        a->aggs[i] = a->aggs[--a->n_aggs];
                        continue;
                }
                i++;
        }
        arm_timer(a);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        alerts_flush(userdata, now_monotonic());
        return 0;
}

int alerts_attach_event(Alerts *a, sd_event *event) {
        int r;

        a->timer = sd_event_source_disable_unref(a->timer);
        r = sd_event_add_time(event, &a->timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_SEC, on_timer, a);
        if (r < 0)
                return r;
        arm_timer(a);
        return 0;
}

/* Held for the summary of its cause's minute (true), or the first of its cause: send it (false). */
static bool aggregate_hold(Alerts *a, AlertKind kind, const AlertFields *f, usec_t now) {
        const char *cause = f->diagnosis ? f->diagnosis : "";
        Aggregate *g = NULL, *n;

        alerts_flush(a, now); /* minutes over: their summaries first, in order */
        for (size_t i = 0; i < a->n_aggs && !g; i++)
                if (a->aggs[i].kind == kind && streq(a->aggs[i].cause, cause))
                        g = &a->aggs[i];
        if (g) {
                for (size_t i = 0; i < ALERTS_AGGREGATE_NAMES; i++)
                        if (!g->images[i]) {
                                g->images[i] = strdup(f->image);
                                break;
                        }
                if (!g->runtime && f->runtime)
                        g->runtime = strdup(f->runtime);
                g->count++;
                return true;
        }
        n = realloc(a->aggs, (a->n_aggs + 1) * sizeof(*n));
        if (!n)
                return false;
        a->aggs = n;
        n[a->n_aggs] = (Aggregate) { .kind = kind, .cause = strdup(cause), .until = now + ALERTS_AGGREGATE_WINDOW };
        if (n[a->n_aggs].cause)
                a->n_aggs++;
        arm_timer(a);
        return false;
}

int alerts_send(Alerts *a, AlertKind kind, const AlertFields *f, const char *message, usec_t now) {
        if (!alerts_rate_ok(a, kind, f ? (f->rate_key ? f->rate_key : f->image) : NULL, now))
                return 0;
        if (a->rate_limit > 0 && f && f->image && !f->rate_key && !f->count && aggregate_hold(a, kind, f, now))
                return 0;
        return send_now(a, kind, f, message);
}

int alert_kind_for_pull_event(const PullEvent *e) {
        switch (e->kind) {
        case PULL_EVENT_VERDICT:
                switch (e->verdict) {
                case VERDICT_STALLED: return ALERT_PULL_STALLED;
                case VERDICT_HUNG: return ALERT_PULL_HUNG;
                case VERDICT_DEGRADED: return ALERT_PULL_DEGRADED;
                default: return -ENODATA;
                }
        case PULL_EVENT_DIAGNOSIS: {
                AlertKind k = alert_kind_from_string(e->diagnosis);
                return k >= 0 && alert_kind_is_diagnosis(k) ? (int) k : -ENODATA;
        }
        case PULL_EVENT_ACTION:
                /* on pullwatch's own pulls a cut attempt shows in its verdict and retry; on another
                 * client's pull the action itself is the news */
                if (!e->client)
                        return -ENODATA;
                if (streq_ptr(e->action, "kill-helper"))
                        return ALERT_GUARD_HELPER_ENDED;
                if (streq_ptr(e->action, "cut-connection"))
                        return ALERT_GUARD_CONNECTION_CUT;
                if (streq_ptr(e->action, "cuts-stopped"))
                        return ALERT_GUARD_CUTS_STOPPED;
                return -ENODATA;
        case PULL_EVENT_RESULT:
                if (e->ok)
                        return e->attempt > 1 ? ALERT_PULL_RECOVERED : -ENODATA;
                if (e->error == ERROR_PERMANENT)
                        return ALERT_PULL_FAILED_PERMANENT;
                if (e->error == ERROR_CANCELLED)
                        return -ENODATA; /* we stopped it (shutdown, removed from the list, client gone) */
                return ALERT_PULL_FAILED;
        default:
                return -ENODATA;
        }
}

static const char *or_dash(const char *s) { return s && *s ? s : "-"; }

/* PullEvent.client as a person reads it */
static const char *client_words(const char *client) {
        return streq_ptr(client, "cri")              ? "kubelet (CRI)"
               : streq_ptr(client, "engine-api")     ? "a docker client (Engine API)"
               : streq_ptr(client, "containerd-api") ? "a containerd client (ctr, nerdctl)"
                                                     : "another client";
}

int alert_for_pull_event(const PullEvent *e, AlertKind *ret_kind, AlertFields *ret_fields, char **ret_text) {
        int k = alert_kind_for_pull_event(e);
        AlertFields f = {
                .image = e->image, .runtime = e->runtime, .layer = e->layer, .attempt = e->attempt, .client = e->client,
                .hop = e->hop,
                /* another client's: a hop's diagnosis is the hop's, whichever pull showed it */
                .rate_key = !e->client                                  ? NULL
                            : e->kind == PULL_EVENT_DIAGNOSIS && e->hop ? e->hop
                            : !e->image                                 ? e->layer ?: e->hop
                                                                        : NULL,
        };
        char *m = NULL;
        int r = 0;

        if (k < 0)
                return k;
        switch (k) {
        case ALERT_PULL_STALLED:
        case ALERT_PULL_HUNG:
        case ALERT_PULL_DEGRADED:
                f.phase = phase_to_string(e->phase);
                f.verdict = verdict_to_string(e->verdict);
                f.evidence = e->evidence;
                /* attempt 0: a pull someone else started (`pullwatch watch`), reported and left alone */
                r = e->attempt == 0
                        ? asprintf(&m, "Pull of %s %s%s%s%s%s (%s); another client's pull: pullwatch cancels nothing of it.",
                                   e->image ? e->image : "(image not known yet)", verdict_to_string(e->verdict),
                                   e->layer ? " at layer " : "", e->layer ? e->layer : "", f.phase ? " while " : "",
                                   f.phase ? f.phase : "", or_dash(e->evidence))
                        : asprintf(&m, "Pull of %s %s%s%s%s%s (%s); pullwatch cancels attempt %u and retries.", e->image,
                                   verdict_to_string(e->verdict), e->layer ? " at layer " : "", e->layer ? e->layer : "",
                                   f.phase ? " while " : "", f.phase ? f.phase : "", or_dash(e->evidence), e->attempt);
                break;
        default:
                if (alert_kind_is_diagnosis(k)) {
                        f.diagnosis = e->diagnosis;
                        f.evidence = e->remedy;
                        r = e->client ? asprintf(&m, "%s's pull of %s: %s", client_words(e->client),
                                                 e->image ?: "(image not known)", e->remedy ? e->remedy : alert_kind_summary(k))
                                      : asprintf(&m, "Pull of %s: %s", e->image, e->remedy ? e->remedy : alert_kind_summary(k));
                }
                break;
        case ALERT_GUARD_HELPER_ENDED:
        case ALERT_GUARD_CONNECTION_CUT:
                f.phase = phase_to_string(e->phase);
                f.verdict = verdict_to_string(e->verdict);
                f.evidence = e->evidence ?: e->reason;
                f.diagnosis = e->diagnosis;
                f.action = e->action;
                f.pid = e->pid;
                r = asprintf(&m, "%s's pull of %s: %s %s: %s; %s", client_words(e->client), e->image ?: "(image not known)",
                             k == ALERT_GUARD_HELPER_ENDED ? "ended the hung helper" : "cut the stalled registry connection",
                             or_dash(e->layer), or_dash(f.evidence),
                             k == ALERT_GUARD_HELPER_ENDED ? "the runtime fails the layer and the client retries"
                                                           : "the runtime retries and resumes the download");
                break;
        case ALERT_GUARD_CUTS_STOPPED:
                f.phase = phase_to_string(e->phase);
                f.verdict = verdict_to_string(e->verdict);
                f.evidence = e->evidence;
                f.action = e->action;
                f.pid = e->pid;
                r = asprintf(&m, "%s's pull of %s: layer %s stalled again after every cut (%s); pullwatch leaves it alone",
                             client_words(e->client), e->image ?: "(image not known)", or_dash(e->layer), or_dash(f.evidence));
                break;
        case ALERT_PULL_RECOVERED:
                f.diagnosis = e->diagnosis;
                r = asprintf(&m, "Pull of %s succeeded after %u attempts.", e->image, e->attempt);
                break;
        case ALERT_PULL_FAILED_PERMANENT:
                f.diagnosis = e->diagnosis;
                f.evidence = e->reason;
                r = asprintf(&m, "Pull of %s failed with a permanent error and is not retried: %s", e->image,
                             or_dash(e->reason));
                break;
        case ALERT_PULL_FAILED:
                f.diagnosis = e->diagnosis;
                f.evidence = e->reason;
                r = asprintf(&m, "Pull of %s failed after %u attempts: %s", e->image, e->attempt, or_dash(e->reason));
                break;
        }
        if (r < 0)
                return -ENOMEM;
        *ret_kind = (AlertKind) k;
        *ret_fields = f;
        *ret_text = m;
        return 0;
}

int alerts_pull_event(Alerts *a, const PullEvent *e, usec_t now) {
        _cleanup_free_ char *m = NULL, *key = NULL;
        AlertFields f;
        AlertKind k;
        int r = alert_for_pull_event(e, &k, &f, &m);
        if (r == -ENODATA)
                return 0;
        if (r < 0)
                return r;
        /* another client's pull, its image not known, or a hop's diagnosis: one incident per runtime and
         * layer or hop. A
         * mirror that fails in front of containerd and of dockerd is two alerts (two remedies), and
         * two mirrors are not one (with no key, every such alert of a kind shared "" and the first
         * silenced the rest for the rate limit) */
        if (f.rate_key && f.runtime) {
                if (asprintf(&key, "%s %s", f.runtime, f.rate_key) < 0)
                        return -ENOMEM;
                f.rate_key = key;
        }
        return alerts_send(a, k, &f, m, now);
}
