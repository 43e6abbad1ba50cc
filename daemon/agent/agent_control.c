/* agent_control.c: what the control socket's requests do: "status" answers with the whole picture,
 * "pull" runs a WatchedPull and streams the same JSON lines as `pullwatch pull --json` until the result.
 * A client that leaves takes its pull with it, as Ctrl-C does to a standalone pull. */
#include "daemon/agent/agent_internal.h"
#include "daemon/pull/registry_seen.h"
#include "daemon/pull/pull_event_json.h"
#include "basic/reference.h"

#include <syslog.h>

static void pull_free(ControlPull *cp) {
        watched_pull_free(cp->pull);
        free(cp);
}

static int on_reap(sd_event_source *s, void *userdata) {
        Agent *a = userdata;

        for (ControlPull **p = &a->pulls; *p;) {
                ControlPull *cp = *p;
                if (cp->done) {
                        *p = cp->next;
                        pull_free(cp);
                } else
                        p = &cp->next;
        }
        return 0;
}

static void on_pull_event(PullJob *j, const PullEvent *e, void *userdata) {
        ControlPull *cp = userdata;
        Agent *a = cp->agent;

        agent_observe_pull_event(a, e);
        if (cp->conn) {
                json_t *o = pull_event_to_json(e, (double) (now_monotonic() - cp->started) / USEC_PER_SEC);
                int r = o ? control_conn_send(cp->conn, o) : -ENOMEM;
                json_decref(o);
                if (r == -ENOBUFS && e->kind != PULL_EVENT_RESULT) {
                        /* The client stopped reading; the pull goes on without it, like a detached one. */
                        log_line(LOG_WARNING, "%s: control client stopped reading; no more events sent to it", e->image);
                        control_conn_finish(cp->conn);
                        cp->conn = NULL;
                }
        }
        if (e->kind != PULL_EVENT_RESULT)
                return;
        if (cp->conn) {
                control_conn_finish(cp->conn);
                cp->conn = NULL;
        }
        cp->done = true;
        (void) sd_event_source_set_enabled(a->pull_reap, SD_EVENT_ONESHOT);
}

static int handle_pull(void *userdata, ControlConn *c, const ControlRequest *req, ErrorDetail *ret_error) {
        Agent *a = userdata;
        _cleanup_reference_ ImageRef *ref = NULL;
        const RuntimeDriver *driver = NULL;
        const char *why = NULL;
        ControlPull *cp;
        uid_t uid;
        pid_t pid;
        int r;

        if (a->stopping)
                return error_detail_setf(ret_error, ESHUTDOWN, "pullwatch is stopping");
        if (reference_parse_reason(req->image, &ref, &why) < 0)
                return error_detail_setf(ret_error, EINVAL, "invalid image reference \"%s\": %s", req->image, why ? why : "-");
        r = agent_pick_driver(a, req->runtime, &driver, ret_error);
        if (r < 0)
                return r;
        cp = calloc(1, sizeof(*cp));
        if (!cp)
                return -ENOMEM;
        cp->agent = a;
        cp->conn = c;
        cp->started = now_monotonic();
        r = watched_pull_new(a->event, a->glue, a->config, driver,
                             &(WatchedPullSpec) { .image = req->image, .platform = req->platform, .namespace = req->namespace,
                                                  .seen = a->registries },
                             on_pull_event, cp, &cp->pull);
        if (r < 0) {
                free(cp);
                return r;
        }
        cp->next = a->pulls;
        a->pulls = cp;
        control_conn_peer(c, &uid, &pid);
        log_line(LOG_INFO, "%s (%s): pull requested by pid %d (uid %u)", req->image, driver->name, (int) pid,
                  (unsigned) uid);
        if (watched_pull_credential_warning(cp->pull))
                log_line(LOG_WARNING, "%s: pulling anonymously: %s", req->image, watched_pull_credential_warning(cp->pull));
        r = watched_pull_start(cp->pull);
        if (r < 0) {
                /* Nothing was streamed yet: the client gets an error object instead. */
                cp->conn = NULL;
                cp->done = true;
                (void) sd_event_source_set_enabled(a->pull_reap, SD_EVENT_ONESHOT);
                return error_detail_setf(ret_error, r, "cannot start the pull: %s", strerror(-r));
        }
        return 0;
}

static void handle_closed(void *userdata, ControlConn *c) {
        Agent *a = userdata;

        for (ControlPull *cp = a->pulls; cp; cp = cp->next)
                if (cp->conn == c) {
                        cp->conn = NULL; /* before the abort: its result must not go to a closed client */
                        if (!cp->done)
                                watched_pull_abort(cp->pull, "the client went away");
                }
}

static int handle_status(void *userdata, json_t **ret) {
        json_t *o = agent_status_json(userdata);
        if (!o)
                return -ENOMEM;
        agent_schedule_trim(userdata); /* the answer's tree and text: ~1 MiB at 1,000 entries, soon freed */
        *ret = o;
        return 0;
}

int agent_control_start(Agent *a) {
        static const ControlHandlers handlers = {
                .status = handle_status,
                .pull = handle_pull,
                .closed = handle_closed,
        };
        int r;

        if (!a->pull_reap) {
                r = sd_event_add_defer(a->event, &a->pull_reap, on_reap, a);
                if (r < 0)
                        return r;
                (void) sd_event_source_set_description(a->pull_reap, "agent-pull-reap");
                (void) sd_event_source_set_enabled(a->pull_reap, SD_EVENT_OFF);
        }
        return control_server_new(a->event, a->config->config->control_socket, NULL, 0, &handlers, a, &a->control);
}

void agent_control_stop(Agent *a) {
        a->control = control_server_free(a->control);
}

void agent_control_abort_pulls(Agent *a, const char *why) {
        for (ControlPull *cp = a->pulls; cp; cp = cp->next)
                if (!cp->done)
                        watched_pull_abort(cp->pull, why);
}

void agent_control_free_pulls(Agent *a) {
        agent_control_abort_pulls(a, "pullwatch is stopping");
        while (a->pulls) {
                ControlPull *cp = a->pulls;
                a->pulls = cp->next;
                pull_free(cp);
        }
}

/* Which process is proven to be the runtime (the one liveness watches and whose helpers may be
 * ended), or why none is: {"pid", "exe", "source"} or {"pid": null, "error"}. */
static json_t *runtime_process_json(const RuntimeDriver *d, const Config *c) {
        RuntimeProcess rp = {};
        RuntimeIdentity id;
        _cleanup_free_ char *why = NULL;

        if (!d->process)
                return json_null();
        d->process(c, &rp);
        if (runtime_identity_resolve(&(RuntimeIdentitySpec) { .socket = rp.socket, .pidfile = rp.pidfile,
                                                              .exe_names = rp.exe_names },
                                     &id, &why) < 0)
                return json_pack("{s:n, s:s}", "pid", "error", why ?: "not found");
        return json_pack("{s:i, s:s, s:s}", "pid", (int) id.pid, "exe", id.exe, "source",
                         runtime_identity_source_to_string(id.source));
}

/* .preheat[] lists this many targets at most (those not ready first): a 20,000-image list would pass
 * the control socket's 4 MiB output limit; "preheat_omitted" says how many were left out. */
#define STATUS_PREHEAT_MAX 1000

json_t *agent_status_json(Agent *a) {
        json_t *o, *runtimes, *pulls, *preheat;
        char summary[256] = "";
        size_t omitted = 0;

        (void) preheat_summary(a->preheat, summary, sizeof(summary));
        preheat = preheat_status_json_capped(a->preheat, STATUS_PREHEAT_MAX, &omitted);
        runtimes = json_object();
        pulls = json_array();
        o = json_pack("{s:s, s:i, s:s, s:s, s:s, s:{s:s, s:b, s:s?, s:I}}", "version", PULLWATCH_VERSION, "pid",
                      (int) getpid(), "state", a->stopping ? "stopping" : a->ready ? "running" : "starting", "summary",
                      summary, "config", a->config_path, "list", "path", a->config->config->preheat.list, "valid",
                      a->list_error == NULL, "error", a->list_error, "items", (json_int_t) (a->list ? a->list->n : 0));
        if (!o || !runtimes || !pulls || !preheat) {
                json_decref(o);
                json_decref(runtimes);
                json_decref(pulls);
                json_decref(preheat);
                return NULL;
        }
        for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++) {
                const RuntimeMonitor *m = &a->runtimes[k];
                if (!m->wanted)
                        continue;
                char since[32];
                if (!m->down_since || format_timestamp(m->down_since, since, sizeof(since)) < 0)
                        since[0] = 0;
                json_t *rt = json_pack("{s:o, s:s?, s:I, s:s?}", "up", m->known ? json_boolean(m->up) : json_null(),
                                       "error", m->error, "failed_pings", (json_int_t) m->failures, "down_since",
                                       since[0] ? since : NULL);
                if (rt && a->drivers[k])
                        json_object_set_new(rt, "process", runtime_process_json(a->drivers[k], a->config->config));
                if (rt && m->known && m->up)
                        (void) runtime_describer_add(a->describer, k, rt); /* what it said, and how long ago */
                json_object_set_new(runtimes, runtime_kind_to_string(k), rt);
        }
        for (ControlPull *cp = a->pulls; cp; cp = cp->next)
                if (!cp->done) {
                        json_t *p = watched_pull_status_json(cp->pull);
                        if (p)
                                json_object_set_new(p, "owner", json_string("pullwatch"));
                        json_array_append_new(pulls, p);
                }
        /* and the node's other pulls: other clients' that the guard sees */
        (void) node_guard_pulls_json(a->guard, pulls);
        json_object_set_new(o, "runtimes", runtimes);
        json_object_set_new(o, "preheat", preheat);
        if (omitted > 0)
                json_object_set_new(o, "preheat_omitted", json_integer((json_int_t) omitted));
        json_object_set_new(o, "pulls", pulls);
        json_object_set_new(o, "registries", registry_seen_json(a->registries));
        json_object_set_new(o, "state_file", json_string(a->state->path));
        if (a->cri)
                json_object_set_new(o, "cri", cri_service_status_json(a->cri));
        if (a->guard)
                json_object_set_new(o, "guard", node_guard_status_json(a->guard));
        if (a->config->config->metrics_textfile)
                json_object_set_new(o, "metrics_textfile", json_string(a->config->config->metrics_textfile));
        return o;
}
