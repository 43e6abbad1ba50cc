/* metrics.c: every series is written on every flush, zeros included, so rate() and absent() behave
 * from the first scrape. Label values come from fixed tables, never from images: one series per image
 * would grow without bound on a node whose list changes. */
#include "daemon/agent/metrics.h"
#include "basic/atomic_file.h"

#include <inttypes.h>
#include <stdio.h>

static const char *const runtime_names[METRICS_RUNTIMES] = { "docker", "containerd" };
static const char *const result_names[_METRICS_RESULT_MAX] = {
        [METRICS_RESULT_OK] = "ok",
        [METRICS_RESULT_FAILED] = "failed",
        [METRICS_RESULT_PERMANENT] = "permanent",
        [METRICS_RESULT_CANCELLED] = "cancelled",
};

void metrics_init(Metrics *m) {
        *m = (Metrics) {};
        for (size_t i = 0; i < METRICS_RUNTIMES; i++)
                m->runtime_up[i] = -1;
}

static int runtime_index(const char *runtime) {
        for (int i = 0; i < METRICS_RUNTIMES; i++)
                if (streq_ptr(runtime, runtime_names[i]))
                        return i;
        return -1;
}

void metrics_pull_event(Metrics *m, const PullEvent *e) {
        int ri = runtime_index(e->runtime);
        MetricsResult res;

        if (e->client) { /* another client's pull: counted apart, it is not pullwatch's */
                if (e->kind == PULL_EVENT_VERDICT && e->verdict >= 0 && e->verdict < _VERDICT_MAX)
                        m->other_verdicts[e->verdict]++;
                else if (e->kind == PULL_EVENT_ACTION && streq_ptr(e->action, "kill-helper"))
                        m->other_helpers_ended++;
                else if (e->kind == PULL_EVENT_ACTION && streq_ptr(e->action, "cut-connection"))
                        m->other_connections_cut++;
                return;
        }
        switch (e->kind) {
        case PULL_EVENT_RETRY:
                m->retries++;
                break;
        case PULL_EVENT_VERDICT:
                if (e->verdict >= 0 && e->verdict < _VERDICT_MAX)
                        m->verdicts[e->verdict]++;
                break;
        case PULL_EVENT_RESULT:
                res = e->ok                          ? METRICS_RESULT_OK
                      : e->error == ERROR_PERMANENT ? METRICS_RESULT_PERMANENT
                      : e->error == ERROR_CANCELLED ? METRICS_RESULT_CANCELLED
                                                     : METRICS_RESULT_FAILED;
                if (ri >= 0)
                        m->pulls[ri][res]++;
                m->bytes += e->bytes;
                if (res != METRICS_RESULT_CANCELLED) {
                        m->duration_sum += e->elapsed_s;
                        m->duration_count++;
                }
                break;
        default:
                break;
        }
}

void metrics_set_other_watched(Metrics *m, uint64_t n) {
        m->other_watched = n;
}

void metrics_set_preheat(Metrics *m, const char *const *names, const unsigned *counts, size_t n) {
        n = MIN(n, (size_t) METRICS_PREHEAT_STATES);
        for (size_t i = 0; i < n; i++) {
                m->preheat_state_names[i] = names[i];
                m->preheat[i] = counts[i];
        }
        m->n_preheat_states = n;
}

void metrics_set_runtime_up(Metrics *m, const char *runtime, bool up) {
        int i = runtime_index(runtime);
        if (i >= 0)
                m->runtime_up[i] = up;
}

int metrics_format(const Metrics *m, char **ret) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        if (!f)
                return -ENOMEM;
        fputs("# HELP pullwatch_pulls_total Image pulls pullwatch finished, by runtime and result.\n"
              "# TYPE pullwatch_pulls_total counter\n", f);
        for (size_t i = 0; i < METRICS_RUNTIMES; i++)
                for (size_t k = 0; k < _METRICS_RESULT_MAX; k++)
                        fprintf(f, "pullwatch_pulls_total{runtime=\"%s\",result=\"%s\"} %" PRIu64 "\n", runtime_names[i],
                                result_names[k], m->pulls[i][k]);
        fprintf(f, "# HELP pullwatch_retries_total Attempts pullwatch cut or saw fail and retried.\n"
                   "# TYPE pullwatch_retries_total counter\n"
                   "pullwatch_retries_total %" PRIu64 "\n", m->retries);
        fputs("# HELP pullwatch_verdicts_total Layer and pull verdicts the detector gave, by verdict.\n"
              "# TYPE pullwatch_verdicts_total counter\n", f);
        for (Verdict v = 0; v < _VERDICT_MAX; v++)
                fprintf(f, "pullwatch_verdicts_total{verdict=\"%s\"} %" PRIu64 "\n", verdict_to_string(v),
                        m->verdicts[v]);
        fputs("# HELP pullwatch_preheat_images Images of the preheat list, by state.\n"
              "# TYPE pullwatch_preheat_images gauge\n", f);
        for (size_t i = 0; i < m->n_preheat_states; i++)
                fprintf(f, "pullwatch_preheat_images{state=\"%s\"} %u\n", m->preheat_state_names[i], m->preheat[i]);
        fprintf(f, "# HELP pullwatch_pull_duration_seconds Wall time of finished pulls, retries included.\n"
                   "# TYPE pullwatch_pull_duration_seconds summary\n"
                   "pullwatch_pull_duration_seconds_sum %.3f\n"
                   "pullwatch_pull_duration_seconds_count %" PRIu64 "\n", m->duration_sum, m->duration_count);
        fprintf(f, "# HELP pullwatch_pull_bytes_total Bytes the runtimes reported downloading, over all attempts.\n"
                   "# TYPE pullwatch_pull_bytes_total counter\n"
                   "pullwatch_pull_bytes_total %" PRIu64 "\n", m->bytes);
        fprintf(f, "# HELP pullwatch_guard_pulls_total Downloads and helpers of pulls other clients started (kubelet, docker pull, ctr) that the guard judged.\n"
                   "# TYPE pullwatch_guard_pulls_total counter\n"
                   "pullwatch_guard_pulls_total %" PRIu64 "\n", m->other_watched);
        fputs("# HELP pullwatch_guard_verdicts_total Verdicts on pulls other clients started, by verdict.\n"
              "# TYPE pullwatch_guard_verdicts_total counter\n", f);
        for (Verdict v = 0; v < _VERDICT_MAX; v++)
                if (v == VERDICT_STALLED || v == VERDICT_HUNG || v == VERDICT_DEGRADED)
                        fprintf(f, "pullwatch_guard_verdicts_total{verdict=\"%s\"} %" PRIu64 "\n", verdict_to_string(v),
                                m->other_verdicts[v]);
        fprintf(f, "# HELP pullwatch_guard_actions_total What pullwatch did on pulls other clients started, by action.\n"
                   "# TYPE pullwatch_guard_actions_total counter\n"
                   "pullwatch_guard_actions_total{action=\"kill-helper\"} %" PRIu64 "\n"
                   "pullwatch_guard_actions_total{action=\"cut-connection\"} %" PRIu64 "\n",
                m->other_helpers_ended, m->other_connections_cut);
        fputs("# HELP pullwatch_runtime_up Whether the container runtime answered its last ping.\n"
              "# TYPE pullwatch_runtime_up gauge\n", f);
        for (size_t i = 0; i < METRICS_RUNTIMES; i++)
                if (m->runtime_up[i] >= 0)
                        fprintf(f, "pullwatch_runtime_up{runtime=\"%s\"} %d\n", runtime_names[i], m->runtime_up[i]);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        *ret = buf;
        return 0;
}

int metrics_write(const Metrics *m, const char *path) {
        _cleanup_free_ char *text = NULL;
        int r = metrics_format(m, &text);
        if (r < 0)
                return r;
        return write_file_replace(path, text, strlen(text), 0644); /* no fsync: rebuilt at start */
}
