/* alerts.h: the daemon's journald alerts: one sentence plus MESSAGE_ID, PRIORITY and PULLWATCH_* fields
 * per alert kind, sent with sd_journal_sendv and rate limited per image (or key) and kind. It reports;
 * the agent decides when something deserves an alert. Field building is pure, for tests. */
#pragma once

#include <sys/uio.h>
#include <systemd/sd-event.h>
#include "daemon/agent/alert_catalog.h"
#include "daemon/pull/pull_job.h"

typedef struct AlertFields {
        const char *image, *runtime, *layer, *phase, *verdict, *evidence, *diagnosis;
        const char *client;       /* who started the pull, when not pullwatch: cri, engine-api, containerd-api */
        const char *action;       /* what pullwatch did on another client's pull: kill-helper, cut-connection */
        const char *hop;          /* host:port: the connection cut, the middlebox named */
        pid_t pid;                /* the helper ended, the runtime whose connection was cut; 0 = none */
        unsigned attempt;         /* 0 = not given */
        const char *rate_key;     /* what the rate limit counts per kind; NULL = image */
        unsigned count;           /* a summary: how many alerts of one cause it stands for (0 = not one) */
        const char *images;       /* a summary: the first few of their images, space-separated */
        uint64_t waited_sec;      /* how long something was waited for (preheat's mirror); 0 = not given */
        const char *next;         /* what happens after the wait: "wait" (go on waiting) | "origin" */
} AlertFields;

#define ALERT_RECORD_MAX 24

/* The iovec for sd_journal_sendv, and the strings it points into. */
typedef struct AlertRecord {
        struct iovec iov[ALERT_RECORD_MAX];
        size_t n;
        char *owned[ALERT_RECORD_MAX];
        size_t n_owned;
} AlertRecord;

/* SYSLOG_IDENTIFIER=pullwatch, MESSAGE_ID, PRIORITY, MESSAGE and every field that is set. */
int alert_record_build(AlertKind kind, const AlertFields *f, const char *message, AlertRecord *ret);
void alert_record_done(AlertRecord *r);
/* "FIELD=value" of a built record, NULL when absent (tests). */
const char *alert_record_get(const AlertRecord *r, const char *field, size_t *ret_len);

typedef struct Alerts Alerts;
/* Where records go: sd_journal_sendv unless a test puts a sink of its own. */
typedef int (*alerts_sink_t)(const struct iovec *iov, size_t n, void *userdata);

int alerts_new(usec_t rate_limit, Alerts **ret);
Alerts *alerts_free(Alerts *a);
static inline void alerts_freep(Alerts **a) { alerts_free(*a); }
void alerts_set_rate_limit(Alerts *a, usec_t rate_limit);
void alerts_set_sink(Alerts *a, alerts_sink_t sink, void *userdata);

/* Would an alert of kind for key pass at now? Records it when it would (0 = no limit). */
bool alerts_rate_ok(Alerts *a, AlertKind kind, const char *key, usec_t now);
/* 1 sent, 0 dropped by the rate limit or held for a summary, <0 the journal refused it.
 *
 * Per-image alerts (an image, no rate_key) aggregate by cause (kind and diagnosis): the first of a
 * cause goes out at once, as it is; the others of the same minute are held and counted, and when the
 * minute ends one summary of the same MESSAGE_ID names the count (PULLWATCH_COUNT) and the first few
 * images (PULLWATCH_IMAGES); while the cause goes on, one summary a minute. A bad list on 2,000 nodes
 * then writes two entries per node and minute, not one per image. The per-image detail stays in
 * `pullwatch status`. rate_limit 0 turns this off too: every alert as it comes. */
int alerts_send(Alerts *a, AlertKind kind, const AlertFields *f, const char *message, usec_t now);
#define ALERTS_AGGREGATE_WINDOW (60 * USEC_PER_SEC)
#define ALERTS_AGGREGATE_NAMES 3
/* Send the summaries of the minutes over at now (the timer does it when an event is attached). */
void alerts_flush(Alerts *a, usec_t now);
/* A timer on this loop (CLOCK_MONOTONIC, as every now given) sends the summaries when their minute ends. */
int alerts_attach_event(Alerts *a, sd_event *event);

/* The alert a pull event calls for, or -ENODATA (pure): a fault verdict, a diagnosis with an alert
 * kind, a result that failed (permanent or exhausted) or succeeded after retries. */
int alert_kind_for_pull_event(const PullEvent *e);
/* Fields and sentence of that alert (message: caller frees). */
int alert_for_pull_event(const PullEvent *e, AlertKind *ret_kind, AlertFields *ret_fields, char **ret_text);
/* alert_for_pull_event + alerts_send; 0 when the event calls for no alert. */
int alerts_pull_event(Alerts *a, const PullEvent *e, usec_t now);
