/* agent_guard.c: the daemon's guard of other clients' pulls (daemon/guard/) and its events to the
 * agent's reporting; the repositories pullwatch pulls itself (agent_report.c) are left to their pull jobs. */
#include "daemon/agent/agent_internal.h"

#include <syslog.h>

static bool is_own(void *userdata, const char *runtime, const char *image) {
        return agent_is_own_image(userdata, runtime, image);
}

static void on_guard_event(void *userdata, const PullEvent *e) {
        Agent *a = userdata;
        agent_observe_pull_event(a, e);
        switch (e->kind) {
        case PULL_EVENT_VERDICT:
                log_line(LOG_WARNING, "another client's (%s) pull of %s (%s): %s %s: %s", e->client ?: "unknown",
                         e->image ?: "(image not known yet)", e->runtime, e->layer ?: "-", verdict_to_string(e->verdict),
                         e->evidence ?: "-");
                break;
        case PULL_EVENT_ACTION:
                log_line(LOG_WARNING, "another client's (%s) pull of %s (%s): %s %s: %s", e->client ?: "unknown",
                         e->image ?: "(image not known yet)", e->runtime, e->action, e->layer ?: "-",
                         e->reason ?: e->evidence ?: "-");
                break;
        case PULL_EVENT_DIAGNOSIS:
                log_line(LOG_WARNING, "another client's (%s) pull of %s (%s): %s", e->client ?: "unknown",
                         e->image ?: "(image not known yet)", e->runtime, e->remedy ?: e->diagnosis);
                break;
        default:
                break;
        }
}

static void on_guard_seen(void *userdata) {
        agent_schedule_flush(userdata); /* metrics count what the guard watches */
}

int agent_guard_start(Agent *a) {
        const Config *c = a->config->config;
        int r;

        if (!c->guard.enabled)
                return 0;
        r = node_guard_new(a->event, a->glue, a->config, a->drivers, _RUNTIME_KIND_MAX,
                           &(NodeGuardHooks) { .event = on_guard_event, .is_own = is_own, .seen = on_guard_seen, .userdata = a }, &a->guard);
        if (r < 0) {
                log_line(LOG_ERR, "cannot guard the node's pulls: %s", strerror(-r));
                return r;
        }
        log_line(LOG_INFO, "guarding every pull on the node (%s)", c->guard.act ? "act" : "report only");
        return 0;
}

void agent_guard_stop(Agent *a) {
        a->guard = node_guard_free(a->guard);
        for (size_t i = 0; i < a->n_own_repos; i++)
                free(a->own_repos[i]);
        a->own_repos = mfree(a->own_repos);
        a->n_own_repos = 0;
}

void agent_guard_reload(Agent *a) {
        if (a->guard)
                node_guard_set_config(a->guard, a->config);
}
