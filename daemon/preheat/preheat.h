/* preheat.h: the preheat scheduler: turns the list into targets (image x runtime), confirms what is
 * present, splays first pulls per node, runs at most preheat.concurrency watched pulls by priority and
 * rechecks for evictions and moved tags. Owns targets and their pulls; never logs, never removes images. */
#pragma once

#include <jansson.h>
#include "config/preheat_list.h"
#include "daemon/preheat/state.h"
#include "daemon/pull/watched_pull.h"

typedef enum PreheatState {
        PREHEAT_WAITING,          /* splay before its first pull, or its runtime is down */
        PREHEAT_QUEUED,           /* wants a pull slot */
        PREHEAT_PULLING,
        PREHEAT_READY,
        PREHEAT_FAILED,           /* last pull failed; retried at the next recheck */
        PREHEAT_EVICTED,          /* evicted twice within preheat.evict_window: held until usage < low */
        _PREHEAT_STATE_MAX,
        _PREHEAT_STATE_INVALID = -EINVAL,
} PreheatState;

const char *preheat_state_to_string(PreheatState s);

typedef struct PreheatHooks {
        /* Every event of every preheat pull, before the scheduler acts on it. */
        void (*pull_event)(void *userdata, const PullEvent *e);
        /* A target changed state, or the set of targets did. */
        void (*changed)(void *userdata);
        /* The runtime did not answer a presence check (not "absent": no answer). The scheduler treats
         * it as down until preheat_set_runtime_up() says otherwise; the owner should ping it now. */
        void (*runtime_trouble)(void *userdata, RuntimeKind k);
        /* A target's re-pulls stopped: evicted twice within preheat.evict_window (why: the figures). */
        void (*evicted)(void *userdata, const char *image, const char *runtime, const char *why);
        /* A target waited preheat.mirror_wait for the runtime's node-local mirror hop (host[:port]) for
         * waited_sec; fallback: it now goes past it (preheat.mirror_fallback), else it waits on. text:
         * all that in a sentence. Once per wait. */
        void (*mirror_wait)(void *userdata, const char *image, const char *runtime, const char *hop, uint64_t waited_sec,
                            bool fallback, const char *text);
} PreheatHooks;

typedef struct Preheat Preheat;

/* drivers[RUNTIME_DOCKER], drivers[RUNTIME_CONTAINERD]: NULL when that runtime is not supported. state
 * is the agent's, updated here. machine_id seeds the splay. */
int preheat_new(sd_event *event, CurlGlue *glue, SharedConfig *config, State *state,
                const RuntimeDriver *const drivers[_RUNTIME_KIND_MAX], const char *machine_id,
                const PreheatHooks *hooks, void *userdata, Preheat **ret);
/* Aborts running pulls (their results arrive as cancelled) and frees everything. */
Preheat *preheat_free(Preheat *p);
static inline void preheat_freep(Preheat **p) { preheat_free(*p); }

void preheat_set_config(Preheat *p, SharedConfig *config);
/* What items without a runtime mean while the config says auto. */
void preheat_set_auto_runtime(Preheat *p, RuntimeKind k);
/* Where the pulls record their registry probes (the owner's table, which outlives p); NULL = nowhere. */
void preheat_set_registry_seen(Preheat *p, RegistrySeen *seen);
/* Ask the registry whether a tag moved at each recheck (on by default). */
void preheat_set_registry_check(Preheat *p, bool on);
/* The new list: known targets keep their state, new ones start, missing ones are forgotten (a running
 * pull of one is cancelled; the image stays on the node). */
int preheat_set_list(Preheat *p, const PreheatList *l);
/* A runtime went away or came back: no pull starts on a runtime that is down. */
void preheat_set_runtime_up(Preheat *p, RuntimeKind k, bool up);
/* Shutdown: cancel running pulls, start nothing more. */
void preheat_stop(Preheat *p, const char *why);

/* Targets per state; returns the total. */
unsigned preheat_counts(const Preheat *p, unsigned counts[_PREHEAT_STATE_MAX]);
/* Every target ready (and at least one). */
bool preheat_complete(const Preheat *p);
/* "preheat 12/14 ready, 1 pulling, 1 failed" */
int preheat_summary(const Preheat *p, char *buf, size_t size);
/* [{"image","runtime","state","priority","digest","last_success","last_attempt","attempts","last_error",
 *   "next","next_in_s","pull":{...live layers...}}] */
json_t *preheat_status_json(const Preheat *p);
/* The same, at most max targets: those not ready first, then ready ones, in list order; *ret_omitted
 * (may be NULL): how many were left out. */
json_t *preheat_status_json_capped(const Preheat *p, size_t max, size_t *ret_omitted);

/* Deterministic delay in [0, splay) for image on the node with machine_id. Pure. */
usec_t preheat_splay_delay(const char *machine_id, const char *image, usec_t splay);
