/* agent_report.c: what the daemon makes of what happens: alerts, metrics and log lines for each event
 * of any pull it runs, and one coalesced flush of state, metrics and STATUS= after changes. It calls
 * nothing of agent.c, agent_control.c or agent_runtime.c: they call it. */
#include "daemon/agent/agent_internal.h"

#include <malloc.h>
#include <stdio.h>

#include "basic/reference.h"
#include <systemd/sd-daemon.h>

#define FLUSH_DELAY (200 * USEC_PER_MSEC)
/* While the list is busy, state.json is written at most this often: each save serializes every entry
 * (2,000 of them: 650 KB) and a flush ran after every pull's result, five times a second. The bound of
 * what a kill -9 can lose: what settled in the last STATE_SAVE_EVERY plus one write's time. A settled
 * list (nothing pulling or queued), a stop and a reload save at once. */
#define STATE_SAVE_EVERY (5 * USEC_PER_SEC)
/* The heap's free pages go back to the kernel this long after a flush or a status answer, at most
 * once per this time. Pulls, status answers and state saves leave many small chunks freed between live
 * ones, which glibc keeps: at 2,000 images 3 of the heap's 6 MiB were free (malloc_stats), and
 * malloc_trim(0) gave 2.4 MiB of RSS back. */
#define HEAP_TRIM_AFTER (2 * USEC_PER_SEC)

static const Config *config(const Agent *a) { return a->config->config; }

/* ---- flush: state, metrics, STATUS=, preheat-complete ---- */

static void update_status(Agent *a) {
        char buf[256], down[96] = "";

        for (RuntimeKind k = RUNTIME_DOCKER; k < _RUNTIME_KIND_MAX; k++)
                if (a->runtimes[k].wanted && a->runtimes[k].known && !a->runtimes[k].up)
                        snprintf(down + strlen(down), sizeof(down) - strlen(down), "; %s unreachable",
                                 runtime_kind_to_string(k));
        if (preheat_summary(a->preheat, buf, sizeof(buf)) < 0)
                return;
        snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", down, a->list_error ? "; list invalid" : "");
        if (streq_ptr(a->last_status, buf))
                return;
        free(a->last_status);
        a->last_status = strdup(buf);
        (void) sd_notifyf(false, "STATUS=%s", buf);
}

static void state_saved(Agent *a, int r, const char *path) {
        if (r < 0) {
                state_mark_dirty(a->state); /* the next flush tries again */
                if (!a->state_error_logged)
                        log_line(LOG_ERR, "cannot save %s: %s", path, strerror(-r));
        }
        a->state_error_logged = r < 0;
}

static void on_state_written(int r, const char *path, void *userdata) {
        state_saved(userdata, r, path);
}

static int on_state_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Agent *a = userdata;
        agent_schedule_flush(a);
        return 0;
}

/* now: on this thread, at once (stop, reload, a settled list); else at most every STATE_SAVE_EVERY, the
 * write on the state writer's thread. */
static void save_state(Agent *a, bool now) {
        _cleanup_free_ char *text = NULL, *path = NULL;
        usec_t t = now_monotonic();
        int r;

        if (!a->state->dirty)
                return;
        if (!a->state_writer && state_writer_new(a->event, on_state_written, a, &a->state_writer) < 0)
                now = true; /* no writer: the old way, on the loop */
        if (!now && a->state_saved_at && t < a->state_saved_at + STATE_SAVE_EVERY) {
                if (!a->state_timer) {
                        if (sd_event_add_time(a->event, &a->state_timer, CLOCK_MONOTONIC, USEC_INFINITY,
                                              100 * USEC_PER_MSEC, on_state_timer, a) < 0)
                                now = true;
                        else
                                (void) sd_event_source_set_description(a->state_timer, "agent-state-save");
                }
                if (!now) {
                        if (sd_event_source_get_enabled(a->state_timer, NULL) <= 0) {
                                (void) sd_event_source_set_time(a->state_timer, a->state_saved_at + STATE_SAVE_EVERY);
                                (void) sd_event_source_set_enabled(a->state_timer, SD_EVENT_ONESHOT);
                        }
                        return;
                }
        }
        r = state_serialize(a->state, false, &text);
        if (r < 0 || !text) {
                if (r < 0)
                        state_saved(a, r, a->state->path);
                return;
        }
        a->state_saved_at = t;
        if (a->state_timer)
                (void) sd_event_source_set_enabled(a->state_timer, SD_EVENT_OFF);
        path = strdup(a->state->path);
        if (!path) {
                state_saved(a, -ENOMEM, a->state->path);
                return;
        }
        if (now) {
                /* after the write in flight, or that older text would land last */
                if (a->state_writer)
                        (void) state_writer_sync(a->state_writer);
                state_saved(a, state_write_text(path, text), path);
                return;
        }
        r = state_writer_submit(a->state_writer, TAKE_PTR(path), TAKE_PTR(text));
        if (r < 0)
                state_saved(a, r, a->state->path);
}

static void flush(Agent *a, bool now) {
        unsigned counts[_PREHEAT_STATE_MAX];
        const char *names[_PREHEAT_STATE_MAX];
        unsigned n;
        int r;

        n = preheat_counts(a->preheat, counts);
        /* settled: what the list did is on disk before STATUS= and the preheat-complete alert say so */
        save_state(a, now || (counts[PREHEAT_PULLING] == 0 && counts[PREHEAT_QUEUED] == 0));

        for (PreheatState s = 0; s < _PREHEAT_STATE_MAX; s++)
                names[s] = preheat_state_to_string(s);
        metrics_set_preheat(&a->metrics, names, counts, _PREHEAT_STATE_MAX);
        if (a->guard) {
                NodeGuardStats gs;
                node_guard_stats(a->guard, &gs);
                metrics_set_other_watched(&a->metrics, gs.pulls_seen + gs.helpers_seen);
        }
        if (config(a)->metrics_textfile) {
                r = metrics_write(&a->metrics, config(a)->metrics_textfile);
                if (r < 0)
                        log_line(LOG_WARNING, "cannot write metrics to %s: %s", config(a)->metrics_textfile, strerror(-r));
        }
        if (a->ready)
                update_status(a);

        bool complete = preheat_complete(a->preheat);
        if (complete && !a->was_complete) {
                char msg[128];
                snprintf(msg, sizeof(msg), "All %u images of the preheat list are present.", n);
                log_line(LOG_INFO, "%s", msg);
                (void) alerts_send(a->alerts, ALERT_PREHEAT_COMPLETE, &(AlertFields) { .rate_key = "preheat" }, msg,
                                   now_monotonic());
        }
        a->was_complete = complete;
        agent_schedule_trim(a);
}

static int on_trim(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) malloc_trim(0);
        return 0;
}

void agent_schedule_trim(Agent *a) {
        if (a->trim_timer && sd_event_source_get_enabled(a->trim_timer, NULL) > 0)
                return;
        if (!a->trim_timer) {
                if (sd_event_add_time_relative(a->event, &a->trim_timer, CLOCK_MONOTONIC, HEAP_TRIM_AFTER,
                                               100 * USEC_PER_MSEC, on_trim, a) < 0)
                        return;
                (void) sd_event_source_set_description(a->trim_timer, "agent-heap-trim");
                (void) sd_event_source_set_priority(a->trim_timer, SD_EVENT_PRIORITY_IDLE);
                return;
        }
        (void) sd_event_source_set_time_relative(a->trim_timer, HEAP_TRIM_AFTER);
        (void) sd_event_source_set_enabled(a->trim_timer, SD_EVENT_ONESHOT);
}

void agent_flush(Agent *a) {
        flush(a, true);
}

int agent_on_flush(sd_event_source *s, uint64_t usec, void *userdata) {
        flush(userdata, false);
        return 0;
}

void agent_schedule_flush(Agent *a) {
        if (sd_event_source_get_enabled(a->flush_timer, NULL) > 0)
                return;
        (void) sd_event_source_set_time_relative(a->flush_timer, FLUSH_DELAY);
        (void) sd_event_source_set_enabled(a->flush_timer, SD_EVENT_ONESHOT);
}

/* ---- pullwatch's own pulls in flight, by repository (the node guard leaves them alone) ---- */

/* "host/path" with the port dropped: containerd names an image's source without its port. */
/* "host/path", the port dropped: containerd names an image's source without its port. */
static char *repo_key(const char *image) {
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_free_ char *repo = NULL;
        char *slash, *colon, *k = NULL;

        if (!image || reference_parse(image, &ref) < 0 || reference_repository(ref, &repo) < 0)
                return NULL;
        slash = strchr(repo, '/');
        colon = strchr(repo, ':');
        if (colon && slash && colon < slash)
                return asprintf(&k, "%.*s%s", (int) (colon - repo), repo, slash) < 0 ? NULL : k;
        return TAKE_PTR(repo);
}

/* pullwatch's own pulls, as they start and end (every own pull's events pass here) */
static void own_pulls_follow(Agent *a, const PullEvent *e) {
        /* an own pull's first attempt adds its repository, its result removes it */
        if (e->client || !((e->kind == PULL_EVENT_ATTEMPT && e->attempt == 1) || e->kind == PULL_EVENT_RESULT))
                return;
        _cleanup_free_ char *k = repo_key(e->image);
        if (!k)
                return;
        if (e->kind == PULL_EVENT_ATTEMPT) {
                char **v = realloc(a->own_repos, (a->n_own_repos + 1) * sizeof(char *));
                if (!v)
                        return;
                a->own_repos = v;
                a->own_repos[a->n_own_repos++] = TAKE_PTR(k);
                return;
        }
        for (size_t i = 0; i < a->n_own_repos; i++)
                if (streq(a->own_repos[i], k)) {
                        free(a->own_repos[i]);
                        a->own_repos[i] = a->own_repos[--a->n_own_repos];
                        return;
                }
}

bool agent_is_own_image(Agent *a, const char *runtime, const char *image) {
        /* any runtime: dockerd on the containerd image store pulls through containerd, whose
         * downloads and helpers then serve pullwatch's docker pull */
        _cleanup_free_ char *k = image ? repo_key(image) : NULL;

        if (!image)
                return a->n_own_repos > 0;
        for (size_t i = 0; k && i < a->n_own_repos; i++)
                if (streq(a->own_repos[i], k))
                        return true;
        return false;
}

/* ---- pull events: alerts, metrics, log lines ---- */

void agent_observe_pull_event(Agent *a, const PullEvent *e) {
        own_pulls_follow(a, e);
        int r = alerts_pull_event(a->alerts, e, now_monotonic());
        if (r < 0)
                log_line(LOG_WARNING, "cannot send an alert to journald: %s", strerror(-r));
        metrics_pull_event(&a->metrics, e);
        switch (e->kind) {
        case PULL_EVENT_RETRY:
                log_line(LOG_WARNING, "%s (%s): attempt %u failed (%s); retrying in %.1fs", e->image, e->runtime,
                          e->attempt, e->reason ? e->reason : "-", (double) e->delay / USEC_PER_SEC);
                break;
        case PULL_EVENT_ACTION:
                if (startswith(e->action, "kill-helper") && !e->client) /* another client's: agent_guard.c says it */
                        log_line(LOG_WARNING, "%s (%s): %s", e->image, e->runtime, e->reason ? e->reason : e->action);
                break;
        case PULL_EVENT_DIAGNOSIS:
                if (!e->client) /* another client's: agent_guard.c says it */
                        log_line(LOG_WARNING, "%s (%s): %s", e->image, e->runtime, e->remedy ? e->remedy : e->diagnosis);
                break;
        case PULL_EVENT_RESULT:
                if (e->ok)
                        log_line(LOG_INFO, "%s (%s): pulled in %.1fs, %u attempt%s, %s", e->image, e->runtime, e->elapsed_s,
                                  e->attempt, e->attempt == 1 ? "" : "s", e->digest ? e->digest : "digest unknown");
                else if (e->error != ERROR_CANCELLED)
                        log_line(LOG_ERR, "%s (%s): pull failed (%s): %s", e->image, e->runtime,
                                  error_class_to_string(e->error), e->reason ? e->reason : "-");
                agent_schedule_flush(a);
                break;
        case PULL_EVENT_VERDICT:
                agent_schedule_flush(a);
                break;
        default:
                break;
        }
}
