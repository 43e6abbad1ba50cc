/* preheat.c: each target runs a small cycle, its next step on the scheduler's one timer (wake_heap.c):
 * begin (confirm; present = ready, absent = splay then queue), queue (dispatch by priority within the
 * concurrency), pull (a WatchedPull; result recorded in State), recheck (confirm again, ask the registry
 * whether the tag moved: preheat_tag_check.c). Finished pulls are freed from a defer source, never
 * inside their own callback. */
#include "daemon/preheat/preheat_model.h"

#include <assert.h>
#include "probes/drivers/runtime_drivers.h"

#include <stddef.h>
#include <stdio.h>

#define PREHEAT_CONFIRM_RETRY (10 * USEC_PER_SEC)
/* Presence checks in flight at once; the rest wait their turn (confirm()). One per target at once held a
 * request and its buffers each: 40 MiB for a 2,000-image list, and a burst of as many on the runtime. */
#define PREHEAT_CONFIRMS_MAX 8U

usec_t preheat_splay_delay(const char *machine_id, const char *image, usec_t splay) {
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a, then splitmix64's finalizer to spread the bits */
        const char *parts[2] = { machine_id ? machine_id : "", image ? image : "" };

        if (splay == 0)
                return 0;
        for (size_t i = 0; i < 2; i++) {
                for (const unsigned char *c = (const unsigned char *) parts[i]; *c; c++)
                        h = (h ^ *c) * 0x100000001b3ULL;
                h = (h ^ 0xff) * 0x100000001b3ULL; /* separator: ("ab","c") != ("a","bc") */
        }
        h ^= h >> 30;
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebULL;
        h ^= h >> 31;
        return h % splay;
}

static const Config *cfg(const Preheat *p) { return p->config->config; }

static void notify_changed(Preheat *p) {
        if (p->hooks.changed)
                p->hooks.changed(p->userdata);
}

static void schedule_reap(Preheat *p) {
        (void) sd_event_source_set_enabled(p->reap, SD_EVENT_ONESHOT);
}

static void set_state(Target *t, PreheatState s, const char *error) {
        char *e = error ? strdup(error) : NULL;
        bool changed = t->state != s || !streq_ptr(t->error, e);
        free(t->error);
        t->error = e;
        t->state = s;
        if (s == PREHEAT_READY && !t->pinned)
                (void) preheat_pin(t, true);
        /* the figures preheat-evicted and the retry below the low threshold need */
        if (s == PREHEAT_READY && !t->preheat->stopped)
                imagefs_cache_locate(&t->preheat->imagefs, t->preheat->glue, cfg(t->preheat), t->runtime);
        if (changed)
                notify_changed(t->preheat);
}

static void arm(Target *t, NextAction a, usec_t delay) {
        t->next = a;
        /* room for every target is reserved in target_new(): this cannot fail */
        (void) wake_heap_set(&t->preheat->wake, &t->wake, delay == USEC_INFINITY ? USEC_INFINITY : now_monotonic() + delay);
}

static usec_t recheck_interval(const Target *t) {
        usec_t r = t->recheck ? t->recheck : cfg(t->preheat)->preheat.recheck;
        return r ? r : USEC_INFINITY;
}

static PullRequest target_request(const Target *t) {
        const Config *c = cfg(t->preheat);
        return (PullRequest) {
                .image = t->image,
                .platform = t->platform ? t->platform : c->platform,
                .namespace = t->namespace ? t->namespace : c->containerd_namespace,
        };
}

static void dispatch(Preheat *p);
static void begin_confirmed(Target *t, int r);
static void recheck_confirmed(Target *t, int r);

/* The answer: 0 present (digest recorded), -ENOENT absent, other -errno: the runtime could not say. */
static void on_confirmed(RuntimeOp *op, int r, const char *digest, void *userdata) {
        Target *t = userdata;
        Preheat *p = t->preheat;

        t->confirm = NULL; /* the op frees itself */
        p->n_confirming--;
        schedule_reap(p); /* the next waiting check takes the free place */
        if (r >= 0)
                (void) state_record_present(p->state, t->image, preheat_runtime_name(t), digest, now_realtime());
        else if (r != -ENOENT && p->up[t->runtime]) {
                /* A hung runtime makes every check wait for its timeout: stop asking until it answers a
                 * ping again rather than keep a check per target in flight against it. */
                p->up[t->runtime] = false;
                if (p->hooks.runtime_trouble)
                        p->hooks.runtime_trouble(p->userdata, t->runtime);
        }
        if (p->stopped)
                return;
        if (t->confirm_recheck)
                recheck_confirmed(t, r);
        else
                begin_confirmed(t, r);
}

static void confirm_start(Target *t) {
        Preheat *p = t->preheat;
        const RuntimeDriver *d = p->drivers[t->runtime];
        PullRequest req = target_request(t);
        int r;

        t->confirm_ticket = 0;
        p->n_confirming++; /* on_confirmed() gives the place back */
        r = d->confirm ? d->confirm(p->glue, cfg(p), &req, on_confirmed, t, &t->confirm) : -ENOENT;
        if (r < 0)
                on_confirmed(NULL, r, NULL, t);
}

/* Ask the runtime whether the image is there; the answer continues begin or recheck. With
 * PREHEAT_CONFIRMS_MAX checks in flight, t waits its turn (its ticket; the reap starts it). */
static void confirm(Target *t, bool recheck) {
        Preheat *p = t->preheat;

        arm(t, NEXT_NONE, USEC_INFINITY); /* nothing else runs for this target meanwhile */
        t->confirm_recheck = recheck;
        if (p->n_confirming >= PREHEAT_CONFIRMS_MAX) {
                t->confirm_ticket = ++p->confirm_tickets;
                return;
        }
        confirm_start(t);
}

/* The waiting checks, oldest ticket first, into the free places. */
static void confirm_next(Preheat *p) {
        while (p->n_confirming < PREHEAT_CONFIRMS_MAX && !p->stopped) {
                Target *first = NULL;
                for (size_t i = 0; i < p->n_targets; i++)
                        if (p->targets[i]->confirm_ticket &&
                            (!first || p->targets[i]->confirm_ticket < first->confirm_ticket))
                                first = p->targets[i];
                if (!first)
                        return;
                confirm_start(first);
        }
}

static void confirm_cancel(Target *t) {
        if (t->confirm) {
                t->confirm = runtime_op_free(t->confirm);
                t->preheat->n_confirming--;
        }
        t->confirm_ticket = 0;
}

static void queue(Target *t) {
        arm(t, NEXT_NONE, USEC_INFINITY);
        set_state(t, PREHEAT_QUEUED, NULL);
        schedule_reap(t->preheat);
}

static void target_begin(Target *t) {
        Preheat *p = t->preheat;
        char buf[256];

        if (t->confirm || t->confirm_ticket)
                return; /* its answer decides */
        if (!p->drivers[t->runtime]) {
                snprintf(buf, sizeof(buf), "this pullwatch cannot drive %s", preheat_runtime_name(t));
                set_state(t, PREHEAT_FAILED, buf);
                return;
        }
        if (!p->up[t->runtime]) {
                arm(t, NEXT_BEGIN, USEC_INFINITY); /* preheat_set_runtime_up() begins it again */
                snprintf(buf, sizeof(buf), "%s is unreachable", preheat_runtime_name(t));
                set_state(t, PREHEAT_WAITING, buf);
                return;
        }
        confirm(t, false);
}

static void begin_confirmed(Target *t, int r) {
        Preheat *p = t->preheat;
        char buf[256];

        if (r >= 0) {
                set_state(t, PREHEAT_READY, NULL);
                arm(t, NEXT_RECHECK, recheck_interval(t));
        } else if (r == -ENOENT) {
                usec_t delay = t->splayed ? 0 : preheat_splay_delay(p->machine_id, t->image, cfg(p)->preheat.splay);
                t->splayed = true;
                if (delay == 0)
                        queue(t);
                else {
                        set_state(t, PREHEAT_WAITING, "splay before the first pull");
                        arm(t, NEXT_QUEUE, delay);
                }
        } else {
                snprintf(buf, sizeof(buf), "cannot ask %s whether the image is present: %s", preheat_runtime_name(t),
                         strerror(-r));
                set_state(t, PREHEAT_WAITING, buf);
                /* begun again by preheat_set_runtime_up() once the runtime answers */
                arm(t, NEXT_BEGIN, p->up[t->runtime] ? PREHEAT_CONFIRM_RETRY : USEC_INFINITY);
        }
}

static void target_recheck(Target *t) {
        if (t->confirm || t->confirm_ticket)
                return; /* its answer decides */
        if (t->state == PREHEAT_PULLING || t->state == PREHEAT_QUEUED)
                return; /* the pull's result re-arms the recheck */
        if (t->state == PREHEAT_WAITING) {
                target_begin(t);
                return;
        }
        if (!t->preheat->up[t->runtime]) {
                arm(t, NEXT_RECHECK, recheck_interval(t));
                return;
        }
        if (t->state == PREHEAT_FAILED || (t->state == PREHEAT_EVICTED && preheat_evict_retry(t))) {
                queue(t);
                return;
        }
        if (t->state == PREHEAT_EVICTED) {
                arm(t, NEXT_RECHECK, recheck_interval(t));
                return;
        }
        confirm(t, true);
}

static void recheck_confirmed(Target *t, int r) {
        if (r == -ENOENT) {
                _cleanup_free_ char *why = NULL;
                if (preheat_evicted(t, &why)) { /* churn with kubelet's image GC: stop feeding it */
                        set_state(t, PREHEAT_EVICTED, why);
                        arm(t, NEXT_RECHECK, recheck_interval(t));
                        return;
                }
                queue(t); /* evicted (kubelet's image GC, docker rmi): pull it again */
                return;
        }
        if (r >= 0)
                preheat_tag_check_start(t);
        arm(t, NEXT_RECHECK, recheck_interval(t));
}

static void on_wake(WakeEntry *e, void *userdata) {
        Target *t = (Target *) ((char *) e - offsetof(Target, wake));
        NextAction a = t->next;

        (void) userdata;
        t->next = NEXT_NONE;
        if (t->preheat->stopped)
                return;
        switch (a) {
        case NEXT_BEGIN: target_begin(t); break;
        case NEXT_QUEUE: queue(t); break;
        case NEXT_RECHECK: target_recheck(t); break;
        default: break;
        }
}

static void on_pull_event(PullJob *j, const PullEvent *e, void *userdata) {
        Target *t = userdata;
        Preheat *p = t->preheat;

        if (p->hooks.pull_event)
                p->hooks.pull_event(p->userdata, e);
        if (e->kind != PULL_EVENT_RESULT)
                return;
        t->pull_done = true;
        schedule_reap(p);
        if (e->ok) {
                const StateEntry *before = state_find(p->state, t->image, preheat_runtime_name(t));
                preheat_pin_pulled(t, before ? before->digest : NULL, e->digest);
                (void) state_record_success(p->state, t->image, preheat_runtime_name(t), e->digest, e->attempt, now_realtime());
                set_state(t, PREHEAT_READY, NULL);
                arm(t, NEXT_RECHECK, recheck_interval(t));
        } else if (e->error == ERROR_CANCELLED) {
                set_state(t, PREHEAT_WAITING, e->reason ? e->reason : "cancelled");
        } else {
                (void) state_record_failure(p->state, t->image, preheat_runtime_name(t), e->reason, e->attempt, now_realtime());
                set_state(t, PREHEAT_FAILED, e->reason ? e->reason : "failed");
                arm(t, NEXT_RECHECK, recheck_interval(t));
        }
}

static void start_pull(Target *t) {
        Preheat *p = t->preheat;
        WatchedPullSpec spec = { .image = t->image, .platform = t->platform, .namespace = t->namespace,
                                 .seen = p->seen };
        char buf[256];
        int r;

        t->mirror.gate = MIRROR_GATE_NONE; /* the next pull asks the mirror again */
        r = watched_pull_new(p->event, p->glue, p->config, p->drivers[t->runtime], &spec, on_pull_event, t, &t->pull);
        if (r >= 0) {
                set_state(t, PREHEAT_PULLING, NULL);
                r = watched_pull_start(t->pull);
        }
        if (r < 0) {
                t->pull = watched_pull_free(t->pull);
                snprintf(buf, sizeof(buf), "cannot start the pull: %s", strerror(-r));
                (void) state_record_failure(p->state, t->image, preheat_runtime_name(t), buf, 0, now_realtime());
                set_state(t, PREHEAT_FAILED, buf);
                arm(t, NEXT_RECHECK, recheck_interval(t));
        }
}

/* The best target for a free slot (priority, then list position): queued (or waiting for its mirror),
 * its runtime up, no pull, its mirror neither being asked nor held until the next ask (preheat_mirror.c);
 * unasked: only those whose mirror has not been asked for this pull. */
static Target *best_candidate(Preheat *p, bool unasked) {
        Target *best = NULL;

        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                if ((t->state != PREHEAT_QUEUED && !preheat_mirror_waiting(t)) || !p->up[t->runtime] || t->pull ||
                    t->mirror.gate == MIRROR_GATE_ASKING || t->mirror.gate == MIRROR_GATE_HELD ||
                    (unasked && t->mirror.gate != MIRROR_GATE_NONE))
                        continue;
                if (!best || t->priority > best->priority || (t->priority == best->priority && t->order < best->order))
                        best = t;
        }
        return best;
}

static void dispatch(Preheat *p) {
        unsigned running = 0, asking = 0, slots = cfg(p)->preheat.concurrency;

        if (p->stopped)
                return;
        for (size_t i = 0; i < p->n_targets; i++) {
                running += p->targets[i]->state == PREHEAT_PULLING;
                asking += p->targets[i]->mirror.gate == MIRROR_GATE_ASKING;
        }
        /* free slots to the best candidates their node-local mirror lets through */
        while (running < slots) {
                Target *best = best_candidate(p, false);
                if (!best || (best->mirror.gate != MIRROR_GATE_OPEN && asking >= slots))
                        break; /* its question waits for one in flight to end */
                if (preheat_mirror_pass(best)) {
                        start_pull(best);
                        running++;
                } else
                        asking++;
        }
        /* and as many questions ahead as there are slots, so a freed slot finds its pull's answered. Not one
         * per queued target at once: that held a request and its buffers each (25 MiB for 2,000 images). */
        for (unsigned i = 0; i < slots && asking < slots; i++) {
                Target *next = best_candidate(p, true);
                if (!next || preheat_mirror_pass(next))
                        break;
                asking++;
        }
}

static int on_reap(sd_event_source *s, void *userdata) {
        Preheat *p = userdata;

        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                if (t->pull_done) {
                        t->pull = watched_pull_free(t->pull);
                        t->pull_done = false;
                }
                if (t->tag_moved) { /* preheat_tag_check.c found the tag on another digest */
                        t->tag_moved = false;
                        if (t->state == PREHEAT_READY)
                                queue(t);
                }
        }
        confirm_next(p);
        dispatch(p);
        return 0;
}

static Target *target_free(Target *t) {
        if (!t)
                return NULL;
        if (t->pull) {
                watched_pull_abort(t->pull, "removed from the preheat list");
                watched_pull_free(t->pull);
        }
        preheat_tag_check_stop(t);
        confirm_cancel(t);
        preheat_pin_stop(t);
        preheat_mirror_stop(t);
        wake_heap_remove(&t->preheat->wake, &t->wake);
        free(t->image);
        free(t->platform);
        free(t->namespace);
        free(t->pin_moved_from);
        free(t->error);
        free(t);
        return NULL;
}

static int target_new(Preheat *p, const PreheatItem *item, RuntimeKind k, size_t order, Target **ret) {
        Target *t = calloc(1, sizeof(*t)), **n;
        int r;

        if (!t)
                return -ENOMEM;
        *t = (Target) { .preheat = p, .runtime = k, .priority = item->priority, .recheck = item->recheck,
                        .order = order, .state = PREHEAT_WAITING, .seen = true };
        t->image = strdup(item->image);
        t->platform = item->platform ? strdup(item->platform) : NULL;
        t->namespace = item->namespace ? strdup(item->namespace) : NULL;
        if (!t->image || (item->platform && !t->platform) || (item->namespace && !t->namespace)) {
                target_free(t);
                return -ENOMEM;
        }
        r = wake_heap_reserve(&p->wake, p->n_targets + 1);
        if (r < 0) {
                target_free(t);
                return r;
        }
        n = realloc(p->targets, (p->n_targets + 1) * sizeof(*n));
        if (!n) {
                target_free(t);
                return -ENOMEM;
        }
        p->targets = n;
        p->targets[p->n_targets++] = t;
        arm(t, NEXT_BEGIN, 0); /* from the loop: set_list may run before it does */
        *ret = t;
        return 0;
}

static Target *find_target(Preheat *p, const PreheatItem *item, RuntimeKind k) {
        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                if (t->runtime == k && streq(t->image, item->image) && streq_ptr(t->platform, item->platform) &&
                    streq_ptr(t->namespace, item->namespace))
                        return t;
        }
        return NULL;
}

int preheat_set_list(Preheat *p, const PreheatList *l) {
        _cleanup_free_ Target **removed = NULL;
        size_t kept = 0, n_removed = 0;
        int r;

        for (size_t i = 0; i < p->n_targets; i++)
                p->targets[i]->seen = false;
        for (size_t i = 0; l && i < l->n; i++) {
                RuntimeKind ks[_RUNTIME_KIND_MAX];
                size_t nk = runtime_kinds_of_preheat(l->items[i].runtime,
                                                     runtime_kind_resolve(cfg(p)->runtime, p->auto_runtime), ks);
                for (size_t k = 0; k < nk; k++) {
                        Target *t = find_target(p, &l->items[i], ks[k]);
                        if (t) {
                                t->seen = true;
                                t->priority = l->items[i].priority;
                                t->order = i;
                                if (t->recheck != l->items[i].recheck) {
                                        t->recheck = l->items[i].recheck;
                                        if (t->next == NEXT_RECHECK)
                                                arm(t, NEXT_RECHECK, recheck_interval(t));
                                }
                        } else if ((r = target_new(p, &l->items[i], ks[k], i, &t)) < 0)
                                return r;
                }
        }
        /* Forgotten, never deleted: the image stays on the node, only our bookkeeping goes. State entries
         * go first, while every target is still there to say whether another one shares the entry. */
        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                bool shared = false;
                if (t->seen)
                        continue;
                for (size_t k = 0; k < p->n_targets; k++)
                        shared = shared || (p->targets[k]->seen && p->targets[k]->runtime == t->runtime &&
                                            streq(p->targets[k]->image, t->image));
                if (!shared) {
                        state_remove(p->state, t->image, preheat_runtime_name(t));
                        (void) preheat_pin(t, false); /* left the list: kubelet's GC may have it */
                }
        }
        removed = calloc(MAX(p->n_targets, (size_t) 1), sizeof(*removed));
        if (!removed)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_targets; i++) {
                if (p->targets[i]->seen)
                        p->targets[kept++] = p->targets[i];
                else
                        removed[n_removed++] = p->targets[i];
        }
        /* Freed after the array is whole again: a cancelled pull's result runs hooks that may look. */
        p->n_targets = kept;
        for (size_t i = 0; i < n_removed; i++)
                target_free(removed[i]);
        schedule_reap(p);
        notify_changed(p);
        return 0;
}

int preheat_new(sd_event *event, CurlGlue *glue, SharedConfig *config, State *state,
                const RuntimeDriver *const drivers[_RUNTIME_KIND_MAX], const char *machine_id,
                const PreheatHooks *hooks, void *userdata, Preheat **ret) {
        _cleanup_(preheat_freep) Preheat *p = NULL;
        int r;

        assert(event);
        assert(config);
        assert(drivers);
        assert(ret);
        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(event);
        p->glue = glue;
        p->config = shared_config_ref(config);
        p->state = state;
        for (size_t i = 0; i < _RUNTIME_KIND_MAX; i++) {
                p->drivers[i] = drivers[i];
                p->up[i] = true;
        }
        p->machine_id = strdup(machine_id ? machine_id : "");
        if (hooks)
                p->hooks = *hooks;
        p->userdata = userdata;
        p->auto_runtime = RUNTIME_AUTO;
        p->registry_check = true;
        r = p->machine_id ? wake_heap_init(&p->wake, event, "preheat-targets", on_wake, p) : -ENOMEM;
        if (r >= 0)
                r = sd_event_add_defer(event, &p->reap, on_reap, p);
        /* Idle: every begin and recheck due now runs first, so what queued together starts by priority. */
        if (r >= 0)
                (void) sd_event_source_set_description(p->reap, "preheat-reap");
        if (r >= 0)
                r = sd_event_source_set_priority(p->reap, SD_EVENT_PRIORITY_IDLE);
        if (r >= 0)
                r = sd_event_source_set_enabled(p->reap, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

Preheat *preheat_free(Preheat *p) {
        if (!p)
                return NULL;
        p->stopped = true;
        for (size_t i = 0; i < p->n_targets; i++)
                target_free(p->targets[i]);
        free(p->targets);
        wake_heap_done(&p->wake);
        imagefs_cache_forget(&p->imagefs);
        sd_event_source_disable_unref(p->reap);
        shared_config_unref(p->config);
        sd_event_unref(p->event);
        free(p->machine_id);
        free(p);
        return NULL;
}

void preheat_set_config(Preheat *p, SharedConfig *config) {
        shared_config_unref(p->config);
        p->config = shared_config_ref(config);
        imagefs_cache_forget(&p->imagefs); /* the sockets may have moved */
        schedule_reap(p);
}

void preheat_set_auto_runtime(Preheat *p, RuntimeKind k) { p->auto_runtime = k; }
void preheat_set_registry_seen(Preheat *p, RegistrySeen *seen) { p->seen = seen; }
void preheat_set_registry_check(Preheat *p, bool on) { p->registry_check = on; }

void preheat_set_runtime_up(Preheat *p, RuntimeKind k, bool up) {
        if (k < 0 || k >= _RUNTIME_KIND_MAX || p->up[k] == up)
                return;
        p->up[k] = up;
        if (!up)
                return;
        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                if (t->runtime == k && t->state == PREHEAT_WAITING && t->next == NEXT_BEGIN && t->wake.at == 0)
                        arm(t, NEXT_BEGIN, 0);
        }
        schedule_reap(p);
}

void preheat_stop(Preheat *p, const char *why) {
        p->stopped = true;
        for (size_t i = 0; i < p->n_targets; i++) {
                Target *t = p->targets[i];
                if (t->pull) {
                        watched_pull_abort(t->pull, why ? why : "stopping");
                        t->pull = watched_pull_free(t->pull);
                        t->pull_done = false;
                }
                preheat_tag_check_stop(t);
                confirm_cancel(t);
                arm(t, NEXT_NONE, USEC_INFINITY);
        }
}
