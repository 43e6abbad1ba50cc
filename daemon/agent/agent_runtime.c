/* agent_runtime.c: the daemon's runtime monitor: which runtimes are wanted (the config, the list, what
 * runtime: auto means here), an asynchronous ping of each with backoff while it is down, one alert per
 * outage, and the preheat scheduler told when a runtime comes and goes. Never blocks on a runtime. */
#include "daemon/agent/agent_internal.h"
#include "probes/drivers/runtime_drivers.h"

#include <stdio.h>
#include <syslog.h>

#define RUNTIME_PING_INTERVAL (30 * USEC_PER_SEC)
#define RUNTIME_BACKOFF_MIN USEC_PER_SEC
#define RUNTIME_BACKOFF_MAX (60 * USEC_PER_SEC)

static const Config *config(const Agent *a) { return a->config->config; }

static void arm_ping(Agent *a, RuntimeKind k, usec_t delay);

void agent_runtime_trouble(void *userdata, RuntimeKind k) {
        Agent *a = userdata;
        log_line(LOG_WARNING, "%s did not answer a presence check; asking it again", runtime_kind_to_string(k));
        a->runtimes[k].up = false; /* the ping that follows tells the scheduler when it is back */
        arm_ping(a, k, 0);
}

int agent_pick_driver(Agent *a, const char *runtime, const RuntimeDriver **ret, ErrorDetail *ret_error) {
        RuntimeKind k = runtime ? runtime_kind_from_string(runtime) : config(a)->runtime;

        if (k < 0)
                return error_detail_setf(ret_error, EINVAL, "unknown runtime \"%s\"", runtime);
        k = runtime_kind_resolve(k, a->auto_runtime);
        if (!a->drivers[k])
                return error_detail_setf(ret_error, EOPNOTSUPP, "this pullwatch cannot drive %s", runtime_kind_to_string(k));
        if (a->runtimes[k].known && !a->runtimes[k].up)
                return error_detail_setf(ret_error, EHOSTDOWN, "%s",
                                         a->runtimes[k].error ? a->runtimes[k].error : "runtime unreachable");
        *ret = a->drivers[k];
        return 0;
}

static void arm_ping(Agent *a, RuntimeKind k, usec_t delay) {
        (void) sd_event_source_set_time_relative(a->runtimes[k].timer, delay);
        (void) sd_event_source_set_enabled(a->runtimes[k].timer, SD_EVENT_ONESHOT);
}

static void ping_result(Agent *a, RuntimeKind k, int r, const char *error) {
        RuntimeMonitor *m = &a->runtimes[k];
        const char *name = runtime_kind_to_string(k);

        if (r >= 0) {
                if (!m->known || !m->up)
                        log_line(LOG_INFO, "%s answers", name);
                /* for status, off the loop; again when it came back: it may be another version */
                runtime_describer_ask(a->describer, k, a->drivers[k], a->config, !m->known || !m->up);
                if (m->alerted) {
                        char msg[128];
                        snprintf(msg, sizeof(msg), "Container runtime %s is reachable again.", name);
                        (void) alerts_send(a->alerts, ALERT_RUNTIME_RECOVERED,
                                           &(AlertFields) { .runtime = name, .rate_key = name }, msg, now_monotonic());
                }
                m->known = m->up = true;
                m->alerted = false;
                m->backoff = 0;
                m->failures = 0;
                m->down_since = 0;
                m->error = mfree(m->error);
                arm_ping(a, k, RUNTIME_PING_INTERVAL);
        } else {
                if (!m->known || m->up)
                        log_line(LOG_ERR, "%s", error ? error : "runtime unreachable");
                free(m->error);
                m->error = strdup(error ? error : "runtime unreachable");
                if (!m->alerted) {
                        char msg[512];
                        snprintf(msg, sizeof(msg), "Container runtime %s is unreachable (%s); pullwatch keeps retrying.", name,
                                 m->error ? m->error : "-");
                        (void) alerts_send(a->alerts, ALERT_RUNTIME_UNREACHABLE,
                                           &(AlertFields) { .runtime = name, .evidence = m->error, .rate_key = name }, msg,
                                           now_monotonic());
                        m->alerted = true;
                }
                m->known = true;
                m->up = false;
                m->failures++;
                if (!m->down_since)
                        m->down_since = now_realtime();
                m->backoff = m->backoff ? MIN(m->backoff * 2, RUNTIME_BACKOFF_MAX) : RUNTIME_BACKOFF_MIN;
                arm_ping(a, k, m->backoff);
        }
        metrics_set_runtime_up(&a->metrics, name, m->up);
        if (a->preheat)
                preheat_set_runtime_up(a->preheat, k, m->up);
        agent_schedule_flush(a);
}

static void on_ping(RuntimeOp *op, int r, const char *error, void *userdata) {
        RuntimeMonitor *m = userdata;
        m->ping = NULL; /* the op frees itself */
        if (m->wanted && !m->agent->stopping)
                ping_result(m->agent, m->kind, r, error);
}

/* Asynchronous: a runtime socket that accepts and never answers costs a timeout, never the loop. */
static void ping_runtime(Agent *a, RuntimeKind k) {
        RuntimeMonitor *m = &a->runtimes[k];
        int r;

        if (!m->wanted || !a->drivers[k]) {
                (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
                return;
        }
        if (m->ping)
                return; /* its answer arms the next one */
        if (!a->drivers[k]->ping_async) {
                ping_result(a, k, 0, NULL);
                return;
        }
        r = a->drivers[k]->ping_async(a->glue, config(a), on_ping, m, &m->ping);
        if (r < 0) {
                _cleanup_free_ char *error = NULL;
                if (asprintf(&error, "cannot ask %s: %s", runtime_kind_to_string(k), strerror(-r)) < 0)
                        error = NULL;
                ping_result(a, k, r, error);
        }
}

int agent_ping_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++)
                if (a->runtimes[k].timer == s)
                        ping_runtime(a, k);
        return 0;
}

bool agent_auto_undecided(const Agent *a) {
        return config(a)->runtime == RUNTIME_AUTO && a->auto_runtime == RUNTIME_AUTO;
}

static void on_auto_probe(RuntimeOp *op, int r, const char *error, void *userdata) {
        Agent *a = userdata;
        RuntimeKind k = r >= 0 ? runtime_driver_auto_probe()->kind : runtime_driver_auto_fallback()->kind;
        bool changed = a->auto_runtime != k;

        a->auto_probe = NULL; /* the op frees itself */
        a->auto_runtime = k;
        if (a->stopping || config(a)->runtime != RUNTIME_AUTO || !changed)
                return;
        log_line(LOG_INFO, "runtime auto: %s", runtime_kind_to_string(k));
        agent_resolve_runtimes(a);
        /* The list waited for this answer (or its items without a runtime now mean another one). */
        if (a->list_loaded && preheat_set_list(a->preheat, a->list) < 0)
                log_line(LOG_ERR, "cannot apply the preheat list");
        agent_schedule_flush(a);
}

/* auto: containerd when its socket answers (kubelet's runtime), else Docker, as `pullwatch pull` picks.
 * Asked asynchronously; until the first answer, nothing is wanted on auto's account. */
void agent_probe_auto_runtime(Agent *a) {
        const RuntimeDriver *d = a->drivers[runtime_driver_auto_probe()->kind];
        int r;

        a->auto_probe = runtime_op_free(a->auto_probe);
        if (config(a)->runtime != RUNTIME_AUTO)
                return;
        r = d && d->ping_async ? d->ping_async(a->glue, config(a), on_auto_probe, a, &a->auto_probe) : -EOPNOTSUPP;
        if (r < 0)
                on_auto_probe(NULL, r, NULL, a);
}

void agent_resolve_runtimes(Agent *a) {
        RuntimeKind k = config(a)->runtime;

        if (k == RUNTIME_AUTO) {
                if (a->auto_runtime == RUNTIME_AUTO && !a->auto_probe)
                        agent_probe_auto_runtime(a);
                k = a->auto_runtime;
        }
        for (RuntimeKind i = RUNTIME_DOCKER; i < _RUNTIME_KIND_MAX; i++)
                a->runtimes[i].wanted = i == k;
        for (size_t i = 0; a->list && i < a->list->n; i++) {
                RuntimeKind ks[_RUNTIME_KIND_MAX];
                /* an item without a runtime follows k, wanted above already */
                size_t n = runtime_kinds_of_preheat(a->list->items[i].runtime, k, ks);
                for (size_t j = 0; j < n; j++)
                        if (ks[j] != RUNTIME_AUTO)
                                a->runtimes[ks[j]].wanted = true;
        }
        if (a->preheat && a->auto_runtime != RUNTIME_AUTO)
                preheat_set_auto_runtime(a->preheat, a->auto_runtime);
        for (RuntimeKind i = RUNTIME_DOCKER; i < _RUNTIME_KIND_MAX; i++) {
                RuntimeMonitor *m = &a->runtimes[i];
                if (m->wanted && !m->known)
                        ping_runtime(a, i);
                else if (!m->wanted) {
                        (void) sd_event_source_set_enabled(m->timer, SD_EVENT_OFF);
                        m->known = m->alerted = false;
                }
        }
}
