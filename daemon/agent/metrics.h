/* metrics.h: the daemon's Prometheus counters and gauges, formatted for node_exporter's textfile
 * collector and written atomically. Owns the numbers and their text form; never logs. */
#pragma once

#include "daemon/pull/pull_job.h"

typedef enum MetricsResult {
        METRICS_RESULT_OK,
        METRICS_RESULT_FAILED,      /* attempts exhausted */
        METRICS_RESULT_PERMANENT,   /* not retried */
        METRICS_RESULT_CANCELLED,   /* stopped by pullwatch (shutdown, removed, client gone) */
        _METRICS_RESULT_MAX,
} MetricsResult;

#define METRICS_RUNTIMES 2          /* docker, containerd */
#define METRICS_PREHEAT_STATES 8

typedef struct Metrics {
        uint64_t pulls[METRICS_RUNTIMES][_METRICS_RESULT_MAX];
        uint64_t retries;
        uint64_t verdicts[_VERDICT_MAX];
        double duration_sum;        /* seconds, finished pulls except cancelled ones */
        uint64_t duration_count;
        uint64_t bytes;
        const char *preheat_state_names[METRICS_PREHEAT_STATES];
        unsigned preheat[METRICS_PREHEAT_STATES];
        size_t n_preheat_states;
        int runtime_up[METRICS_RUNTIMES]; /* -1 unknown */
        /* other clients' pulls (the node guard) */
        uint64_t other_watched;     /* downloads and helpers of other clients' pulls judged */
        uint64_t other_verdicts[_VERDICT_MAX];
        uint64_t other_helpers_ended, other_connections_cut;
} Metrics;

void metrics_init(Metrics *m);
/* Count what a pull event means: results, retries, verdicts, duration, bytes. */
void metrics_pull_event(Metrics *m, const PullEvent *e);
/* Gauge of preheat images per state; names must stay valid (static strings). */
void metrics_set_preheat(Metrics *m, const char *const *names, const unsigned *counts, size_t n);
void metrics_set_runtime_up(Metrics *m, const char *runtime, bool up);
/* How many downloads and helpers of other clients' pulls the guard has judged so far. */
void metrics_set_other_watched(Metrics *m, uint64_t n);

/* The text exposition format (version 0.0.4). Caller frees. */
int metrics_format(const Metrics *m, char **ret);
/* Format and write atomically (mode 0644) to path. */
int metrics_write(const Metrics *m, const char *path);
