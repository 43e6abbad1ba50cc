/* agent.c: the daemon's lifecycle on one sd-event loop, after systemd-timesyncd's manager: signals
 * (SIGTERM/SIGINT stop, SIGHUP reloads), the sd-event watchdog, READY/STATUS/RELOADING/STOPPING, list
 * reloads that keep the last good list. The runtime monitor lives in agent_runtime.c, the pulls on
 * request in agent_control.c, what is made of events (alerts, metrics, log lines, the flush) in
 * agent_report.c. */
#include "daemon/agent/agent_internal.h"
#include "probes/drivers/runtime_drivers.h"
#include "basic/atomic_file.h"
#include "basic/escape.h"

#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>
#include <systemd/sd-daemon.h>

#define LIST_DEBOUNCE (400 * USEC_PER_MSEC)
#define LIST_MAX (4U * 1024U * 1024U)
#define STOP_SETTLE_MAX (2 * USEC_PER_SEC)

static const Config *config(const Agent *a) { return a->config->config; }

static void on_preheat_event(void *userdata, const PullEvent *e) { agent_observe_pull_event(userdata, e); }
static void on_preheat_changed(void *userdata) { agent_schedule_flush(userdata); }

static void on_preheat_evicted(void *userdata, const char *image, const char *runtime, const char *why) {
        Agent *a = userdata;
        log_line(LOG_WARNING, "%s (%s): %s", image, runtime, why);
        (void) alerts_send(a->alerts, ALERT_PREHEAT_EVICTED,
                           &(AlertFields) { .image = image, .runtime = runtime, .evidence = why }, why, now_monotonic());
}

static void on_preheat_mirror_wait(void *userdata, const char *image, const char *runtime, const char *hop,
                                   uint64_t waited_sec, bool fallback, const char *text) {
        Agent *a = userdata;
        _cleanup_free_ char *m = NULL;

        log_line(LOG_WARNING, "preheat of %s (%s): %s", image, runtime, text);
        if (asprintf(&m, "Preheat of %s (%s): %s", image, runtime, text) < 0)
                m = NULL;
        (void) alerts_send(a->alerts, ALERT_PREHEAT_MIRROR_WAIT,
                           &(AlertFields) { .image = image, .runtime = runtime, .hop = hop, .evidence = text,
                                            .waited_sec = waited_sec ?: 1, .next = fallback ? "origin" : "wait" },
                           m ?: text, now_monotonic());
}

/* ---- the preheat list ---- */

static void reload_list(Agent *a) {
        _cleanup_preheat_list_ PreheatList *l = NULL;
        _cleanup_free_ char *text = NULL, *msg = NULL;
        const char *path = config(a)->preheat.list;
        ErrorDetail err = {};
        size_t size = 0;
        int r;

        r = read_file_full(path, LIST_MAX, &text, &size);
        if (r == -ENOENT) {
                text = strdup(""); /* no list file: nothing to preheat */
                if (!text)
                        return;
        } else if (r < 0) {
                (void) error_detail_set(&err, r, path, 0, 0, NULL, "%s", strerror(-r));
                goto invalid;
        }
        if (a->list_loaded && !a->list_error && streq_ptr(a->list_text, text))
                return; /* an editor's temp file came and went; the list itself did not change */
        r = preheat_list_parse(path, text, size, &l, &err);
        if (r < 0)
                goto invalid;
        if (a->list_error)
                log_line(LOG_INFO, "preheat list %s is valid again", path);
        log_line(LOG_INFO, "preheat list %s: %zu image%s", path, l->n, l->n == 1 ? "" : "s");
        a->list_error = mfree(a->list_error);
        free(a->list_text);
        a->list_text = TAKE_PTR(text);
        preheat_list_free(a->list);
        a->list = TAKE_PTR(l);
        a->list_loaded = true;
        agent_resolve_runtimes(a);
        r = agent_auto_undecided(a) ? 0 : preheat_set_list(a->preheat, a->list); /* else once auto is known */
        if (r < 0)
                log_line(LOG_ERR, "cannot apply the preheat list: %s", strerror(-r));
        agent_schedule_flush(a);
        return;

invalid:
        msg = error_detail_format(&err);
        error_detail_done(&err);
        if (!msg)
                return;
        if (!streq_ptr(a->list_error, msg)) {
                char sentence[1024];
                log_line(LOG_ERR, "preheat list rejected, %s: %s", a->list_loaded ? "keeping the last good one" : "nothing to preheat", msg);
                snprintf(sentence, sizeof(sentence), "Preheat list rejected, the last good list stays in force: %s", msg);
                (void) alerts_send(a->alerts, ALERT_LIST_INVALID, &(AlertFields) { .evidence = msg, .rate_key = msg },
                                   sentence, now_monotonic());
                free(a->list_error);
                a->list_error = TAKE_PTR(msg);
        }
        agent_schedule_flush(a);
}

static void on_list_changed(ListWatch *w, void *userdata) { reload_list(userdata); }

static int watch_list(Agent *a) {
        if (a->list_watch && streq(list_watch_path(a->list_watch), config(a)->preheat.list))
                return 0;
        a->list_watch = list_watch_free(a->list_watch);
        return list_watch_new(a->event, config(a)->preheat.list, LIST_DEBOUNCE, on_list_changed, a, &a->list_watch);
}

/* ---- config, reload, signals ---- */

static int load_config(Agent *a, SharedConfig **ret) {
        _cleanup_config_ Config *c = NULL;
        ErrorDetail err = {};
        int r;

        r = config_load(a->config_path, a->config_missing_ok, &c, &err);
        if (r < 0) {
                _cleanup_free_ char *msg = error_detail_format(&err);
                log_line(LOG_ERR, "%s", msg ? msg : strerror(-r));
                error_detail_done(&err);
                return -EINVAL;
        }
        r = shared_config_new(c, ret);
        if (r >= 0)
                TAKE_PTR(c);
        return r;
}

static void reload(Agent *a) {
        _cleanup_(shared_config_unrefp) SharedConfig *n = NULL;
        int r;

        (void) sd_notifyf(false, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64 "\nSTATUS=Reloading", now_monotonic());
        log_line(LOG_INFO, "reloading %s", a->config_path);
        if (load_config(a, &n) < 0)
                log_line(LOG_ERR, "keeping the running configuration");
        else {
                bool socket_moved = !streq(config(a)->control_socket, n->config->control_socket);
                bool state_moved = !streq(config(a)->state_dir, n->config->state_dir);
                shared_config_unref(a->config);
                a->config = TAKE_PTR(n);
                preheat_set_config(a->preheat, a->config);
                agent_cri_reload(a);
                agent_guard_reload(a);
                alerts_set_rate_limit(a->alerts, config(a)->alert_rate_limit);
                if (state_moved && state_set_dir(a->state, config(a)->state_dir) >= 0)
                        log_line(LOG_INFO, "state now in %s", a->state->path);
                if (socket_moved) {
                        agent_control_stop(a);
                        r = agent_control_start(a);
                        if (r < 0)
                                log_line(LOG_ERR, "control socket %s: %s", config(a)->control_socket, strerror(-r));
                }
                r = watch_list(a);
                if (r < 0)
                        log_line(LOG_ERR, "cannot watch %s: %s", config(a)->preheat.list, strerror(-r));
                for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++) {
                        a->runtimes[k].known = false; /* sockets may have moved: ask again */
                        a->runtimes[k].ping = runtime_op_free(a->runtimes[k].ping);
                }
                agent_probe_auto_runtime(a); /* the answer re-applies the list if auto now means another runtime */
                agent_resolve_runtimes(a);
        }
        free(a->list_text);
        a->list_text = NULL; /* re-read even when unchanged: SIGHUP means "look again" */
        reload_list(a);
        agent_flush(a);
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", a->last_status ? a->last_status : "running");
}

static void stop(Agent *a, const char *why) {
        if (a->stopping)
                return;
        a->stopping = true;
        a->ready = false; /* no STATUS= after STOPPING=1 */
        (void) sd_notify(false, "STOPPING=1\nSTATUS=Stopping");
        log_line(LOG_INFO, "stopping (%s)", why);
        preheat_stop(a->preheat, "pullwatch is stopping");
        agent_control_abort_pulls(a, "pullwatch is stopping");
        agent_cri_stop(a); /* kubelet's calls end; its retry reaches the next pullwatch through the socket */
        if (a->control)
                control_server_drain(a->control);
        agent_flush(a);
        /* abandoned pulls' lease releases may still be on their way to containerd */
        (void) curl_glue_exit_when_settled(a->glue, 0, STOP_SETTLE_MAX);
}

static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata) {
        Agent *a = userdata;
        if (si->ssi_signo == SIGHUP)
                reload(a);
        else
                stop(a, si->ssi_signo == SIGINT ? "SIGINT" : "SIGTERM");
        return 0;
}

static int read_machine_id(const char *path, char **ret) {
        _cleanup_free_ char *s = NULL;
        int r = read_file_full(path ? path : "/etc/machine-id", 4096, &s, NULL);
        if (r < 0)
                return r;
        s[strcspn(s, "\r\n")] = 0;
        *ret = TAKE_PTR(s);
        return 0;
}

static int load_state(Agent *a) {
        int r = state_load(config(a)->state_dir, &a->state);
        if (r >= 0)
                return 0;
        if (r == -EBADMSG) {
                _cleanup_free_ char *bad = NULL;
                State *tmp = NULL;
                if (state_new(config(a)->state_dir, &tmp) < 0)
                        return -ENOMEM;
                /* Keep the bad file for a post-mortem, out of the way of the next save. */
                if (asprintf(&bad, "%s.corrupt", tmp->path) >= 0)
                        (void) rename(tmp->path, bad);
                log_line(LOG_WARNING, "%s is not a valid state file (kept as %s); starting afresh", tmp->path,
                          bad ? bad : "-");
                a->state = tmp;
                return 0;
        }
        log_line(LOG_WARNING, "cannot read state from %s: %s; starting afresh", config(a)->state_dir, strerror(-r));
        return state_new(config(a)->state_dir, &a->state);
}

/* For the life of the loop (a floating source), named so a stuck loop can be read. */
static int add_signal(Agent *a, int sig, const char *description) {
        _cleanup_(sd_event_source_unrefp) sd_event_source *s = NULL;
        int r;

        r = sd_event_add_signal(a->event, &s, sig, on_signal, a);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(s, description);
        return sd_event_source_set_floating(s, true);
}

int agent_new(const AgentOptions *opts, Agent **ret) {
        _cleanup_(agent_freep) Agent *a = calloc(1, sizeof(*a));
        static const PreheatHooks hooks = {
                .pull_event = on_preheat_event,
                .changed = on_preheat_changed,
                .runtime_trouble = agent_runtime_trouble,
                .evicted = on_preheat_evicted,
                .mirror_wait = on_preheat_mirror_wait,
        };
        sigset_t mask;
        int r;

        if (!a)
                return -ENOMEM;
        a->auto_runtime = RUNTIME_AUTO;
        a->config_missing_ok = !opts->config_path;
        a->config_path = strdup(opts->config_path ? opts->config_path : PULLWATCH_DEFAULT_CONFIG);
        if (!a->config_path)
                return -ENOMEM;
        r = load_config(a, &a->config);
        if (r < 0)
                return r;
        metrics_init(&a->metrics);
        for (const RuntimeDriver *const *d = runtime_drivers; *d; d++)
                a->drivers[(*d)->kind] = *d;

        r = read_machine_id(opts->machine_id_path, &a->machine_id);
        if (r < 0) {
                log_line(LOG_WARNING, "cannot read the machine id (%s): the splay is the same on every node",
                          strerror(-r));
                a->machine_id = strdup("");
        }
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return -errno;
        if ((r = sd_event_new(&a->event)) < 0 || (r = curl_glue_new(a->event, &a->glue)) < 0 ||
            (r = add_signal(a, SIGTERM, "agent-sigterm")) < 0 || (r = add_signal(a, SIGINT, "agent-sigint")) < 0 ||
            (r = add_signal(a, SIGHUP, "agent-sighup")) < 0 ||
            (r = sd_event_set_watchdog(a->event, true)) < 0 ||
            (r = runtime_describer_new(a->event, &a->describer)) < 0 ||
            (r = sd_event_add_time(a->event, &a->flush_timer, CLOCK_MONOTONIC, USEC_INFINITY, 50 * USEC_PER_MSEC,
                                   agent_on_flush, a)) < 0)
                return r;
        (void) sd_event_source_set_description(a->flush_timer, "agent-flush");
        (void) sd_event_source_set_enabled(a->flush_timer, SD_EVENT_OFF);
        for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++) {
                a->runtimes[k].agent = a;
                a->runtimes[k].kind = k;
                r = sd_event_add_time(a->event, &a->runtimes[k].timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_SEC / 10,
                                      agent_ping_timer, a);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(a->runtimes[k].timer, "agent-runtime-ping");
                (void) sd_event_source_set_enabled(a->runtimes[k].timer, SD_EVENT_OFF);
        }
        if ((r = load_state(a)) < 0 || (r = alerts_new(config(a)->alert_rate_limit, &a->alerts)) < 0 ||
            (r = alerts_attach_event(a->alerts, a->event)) < 0 ||
            (r = registry_seen_new(&a->registries)) < 0 ||
            (r = preheat_new(a->event, a->glue, a->config, a->state, a->drivers, a->machine_id, &hooks, a,
                             &a->preheat)) < 0)
                return r;
        preheat_set_registry_seen(a->preheat, a->registries);
        agent_resolve_runtimes(a);
        reload_list(a);
        r = watch_list(a);
        if (r < 0)
                log_line(LOG_ERR, "cannot watch %s: %s; changes need SIGHUP", config(a)->preheat.list, strerror(-r));
        r = agent_control_start(a);
        if (r < 0) {
                log_line(LOG_ERR, "control socket %s: %s", config(a)->control_socket,
                          r == -EADDRINUSE ? "another pullwatch daemon answers there" : strerror(-r));
                return r;
        }
        /* neither is worth not preheating for: each says why it is missing */
        (void) agent_cri_start(a);
        (void) agent_guard_start(a);
        *ret = TAKE_PTR(a);
        return 0;
}

Agent *agent_free(Agent *a) {
        if (!a)
                return NULL;
        a->stopping = true;
        agent_guard_stop(a);
        agent_cri_stop(a);
        agent_control_stop(a);
        agent_control_free_pulls(a);
        preheat_free(a->preheat);
        registry_seen_free(a->registries); /* after every pull that wrote to it */
        list_watch_free(a->list_watch);
        runtime_op_free(a->auto_probe);
        runtime_describer_free(a->describer);
        for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++) {
                runtime_op_free(a->runtimes[k].ping);
                sd_event_source_disable_unref(a->runtimes[k].timer);
                free(a->runtimes[k].error);
        }
        sd_event_source_disable_unref(a->flush_timer);
        sd_event_source_disable_unref(a->state_timer);
        sd_event_source_disable_unref(a->trim_timer);
        state_writer_free(a->state_writer); /* what it still holds reaches the disk first */
        sd_event_source_disable_unref(a->pull_reap);
        curl_glue_free(a->glue);
        alerts_free(a->alerts);
        state_free(a->state);
        preheat_list_free(a->list);
        shared_config_unref(a->config);
        sd_event_unref(a->event);
        free(a->config_path);
        free(a->machine_id);
        free(a->list_text);
        free(a->list_error);
        free(a->last_status);
        free(a);
        return NULL;
}

int agent_run(Agent *a) {
        int r;

        a->ready = true;
        agent_flush(a);
        log_line(LOG_INFO, "running: %s", a->last_status ? a->last_status : "");
        (void) sd_notifyf(false, "READY=1\nSTATUS=%s", a->last_status ? a->last_status : "running");
        r = sd_event_loop(a->event);
        return r < 0 ? r : 0;
}
