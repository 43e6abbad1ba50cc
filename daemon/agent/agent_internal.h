/* agent_internal.h: the Agent's fields, shared by agent.c (lifecycle, reload, flush), agent_control.c
 * (control socket, status, pulls on request), agent_runtime.c (runtimes, auto) and agent_report.c (pull
 * events to alerts and metrics). Nothing outside those four includes it. */
#pragma once

#include "daemon/agent/runtime_describe.h"

#include <jansson.h>
#include <systemd/sd-event.h>

#include "config/preheat_list.h"
#include "basic/log.h"
#include "daemon/agent/agent.h"
#include "daemon/imageservice/cri_service.h"
#include "daemon/guard/node_guard.h"
#include "daemon/agent/alerts.h"
#include "daemon/agent/control.h"
#include "daemon/preheat/list_watch.h"
#include "daemon/agent/metrics.h"
#include "daemon/preheat/preheat.h"
#include "daemon/preheat/state.h"
#include "daemon/preheat/state_writer.h"
#include "daemon/pull/watched_pull.h"

typedef struct RuntimeMonitor {
        struct Agent *agent;
        RuntimeKind kind;
        RuntimeOp *ping;          /* in flight; the next ping is armed from its answer */
        bool wanted;              /* the config or the list needs this runtime */
        bool known, up;
        bool alerted;             /* unreachable alert sent for this outage */
        usec_t backoff;
        unsigned failures;        /* failed pings in this outage */
        uint64_t down_since;      /* CLOCK_REALTIME usec; 0 while up */
        char *error;
        sd_event_source *timer;
} RuntimeMonitor;

typedef struct ControlPull {
        struct Agent *agent;
        ControlConn *conn;        /* NULL once the client left or got its result */
        WatchedPull *pull;
        usec_t started;
        bool done;
        struct ControlPull *next;
} ControlPull;

struct Agent {
        sd_event *event;
        CurlGlue *glue;
        char *config_path;
        bool config_missing_ok;
        SharedConfig *config;
        char *machine_id;
        RegistrySeen *registries; /* the registry hosts our pulls probed, for status */

        State *state;
        bool state_error_logged;
        Alerts *alerts;
        Metrics metrics;
        Preheat *preheat;
        ListWatch *list_watch;
        ControlServer *control;
        CriService *cri;          /* kubelet's image service; NULL when off */
        NodeGuard *guard;         /* other clients' pulls; NULL when off */
        char **own_repos;         /* repositories of pullwatch's own pulls in flight (one per pull) */
        size_t n_own_repos;

        const RuntimeDriver *drivers[_RUNTIME_KIND_MAX];
        RuntimeMonitor runtimes[_RUNTIME_KIND_MAX];
        RuntimeKind auto_runtime; /* what auto means here; RUNTIME_AUTO until the first probe answered */
        RuntimeOp *auto_probe;    /* does containerd answer? (auto picks it then) */
        RuntimeDescriber *describer; /* what each runtime said of itself, for status (runtime_describe.c) */

        PreheatList *list;
        char *list_text;          /* raw text of the list in force, to skip reloads that change nothing */
        bool list_loaded;
        char *list_error;         /* the error of the last rejected version, NULL when it is valid */

        ControlPull *pulls;
        sd_event_source *pull_reap;

        sd_event_source *flush_timer;
        StateWriter *state_writer; /* state.json written off the loop (agent_report.c) */
        sd_event_source *state_timer; /* the next save, STATE_SAVE_EVERY after the last one */
        usec_t state_saved_at;    /* CLOCK_MONOTONIC: the last save began; 0 = none yet */
        sd_event_source *trim_timer; /* gives the heap's free pages back (agent_report.c) */
        char *last_status;
        bool was_complete;
        bool ready, stopping;
};

/* agent_cri.c: the CRI image service (cri.listen, or the socket systemd passes as "cri"). Start: 0 when
 * serving or off; -errno (logged) when the socket cannot be had. */
int agent_cri_start(struct Agent *a);
void agent_cri_stop(struct Agent *a);
void agent_cri_reload(struct Agent *a);

/* agent_guard.c: the node guard (guard.enabled) and the repositories pullwatch pulls itself. */
int agent_guard_start(struct Agent *a);
void agent_guard_stop(struct Agent *a);
void agent_guard_reload(struct Agent *a);

/* agent_report.c */
/* Is image (any spelling, containerd's portless source included) a repository pullwatch pulls now, on
 * any runtime? image NULL: does pullwatch pull anything now? (runtime: the asker's, for the record) */
bool agent_is_own_image(struct Agent *a, const char *runtime, const char *image);
/* Save state, write metrics, update STATUS= now; agent_schedule_flush: soon, coalesced. */
void agent_flush(struct Agent *a);
void agent_schedule_flush(struct Agent *a);
/* The flush timer's callback. */
int agent_on_flush(sd_event_source *s, uint64_t usec, void *userdata);
/* Soon, coalesced: the heap's free pages back to the kernel, after work that left many freed. */
void agent_schedule_trim(struct Agent *a);
/* Alerts, metrics and log lines for one event of any pull the daemon runs. */
void agent_observe_pull_event(struct Agent *a, const PullEvent *e);

/* agent_runtime.c */
/* The driver for a runtime name ("auto", "docker", "containerd", NULL = the config's). */
int agent_pick_driver(struct Agent *a, const char *runtime, const RuntimeDriver **ret, ErrorDetail *ret_error);
/* PreheatHooks.runtime_trouble: the runtime did not answer a presence check; ask it now. */
void agent_runtime_trouble(void *userdata, RuntimeKind k);
/* The timer of each RuntimeMonitor. */
int agent_ping_timer(sd_event_source *s, uint64_t usec, void *userdata);
/* Which runtimes are wanted, now; pings the ones not known yet. */
void agent_resolve_runtimes(struct Agent *a);
/* Ask (again) what runtime: auto means on this node; the answer re-applies the list if it changed. */
void agent_probe_auto_runtime(struct Agent *a);
/* runtime: auto and no answer yet: the list waits for it. */
bool agent_auto_undecided(const struct Agent *a);

/* agent_control.c */
int agent_control_start(struct Agent *a);
void agent_control_stop(struct Agent *a);
void agent_control_abort_pulls(struct Agent *a, const char *why);
void agent_control_free_pulls(struct Agent *a);
json_t *agent_status_json(struct Agent *a);
