/* preheat_model.h: the scheduler's targets, shared by preheat.c (the cycle), preheat_evict.c (the
 * eviction hold), preheat_pin.c (pin labels), preheat_mirror.c (the wait for a node-local mirror) and
 * preheat_status.c (counts, summary, status JSON). Nothing outside those five includes it; they call
 * into preheat.c's callees only, never back into preheat.c (preheat_mirror.c wakes its reap). */
#pragma once

#include "daemon/preheat/preheat.h"
#include "daemon/preheat/imagefs_cache.h"
#include "daemon/preheat/preheat_evict.h"
#include "daemon/preheat/wake_heap.h"
#include "probes/registry/registry.h"
#include "probes/drivers/registry_runtime.h"

typedef enum NextAction { NEXT_NONE, NEXT_BEGIN, NEXT_QUEUE, NEXT_RECHECK } NextAction;

/* Before a pull: is the runtime's node-local first mirror for the image's registry up? */
typedef enum MirrorGate {
        MIRROR_GATE_NONE,         /* not asked for this pull yet */
        MIRROR_GATE_ASKING,
        MIRROR_GATE_OPEN,         /* no node-local mirror first, or it answers: pull */
        MIRROR_GATE_HELD,         /* it does not answer: wait, ask again */
} MirrorGate;

typedef struct MirrorWait {
        MirrorGate gate;
        char *host;               /* the mirror, host[:port] */
        usec_t since;             /* CLOCK_MONOTONIC: found down first; 0 = not waiting */
        bool told;                /* journald heard of this wait */
        RuntimeRegistryFetch *fetch;
        RuntimeRegistry rt;       /* the runtime's settings, for the ask in flight */
        bool have_rt;
        RegistryOp *ask;
        sd_event_source *timer;   /* asks again */
} MirrorWait;
typedef struct PinJob PinJob;

typedef struct Target {
        Preheat *preheat;
        char *image;
        RuntimeKind runtime;
        char *platform;           /* NULL = the config's */
        char *namespace;          /* NULL = the config's */
        int priority;
        usec_t recheck;           /* item override; 0 = the config's */
        size_t order;             /* position in the list */
        PreheatState state;
        char *error;              /* why it waits or failed */
        bool seen, splayed, pull_done;
        WatchedPull *pull;
        RegistryOp *check;
        RuntimeRegistryFetch *check_rt; /* the runtime's registry settings, asked before the check */
        bool tag_moved;           /* preheat_tag_check.c: the tag is on another digest; the reap queues it */
        RuntimeOp *confirm;       /* a presence check in flight; its answer continues begin or recheck */
        bool confirm_recheck;
        uint64_t confirm_ticket;  /* waits for a place among the checks in flight, in this order; 0 = not */
        NextAction next;
        WakeEntry wake;           /* when next runs, on the scheduler's one timer; wake.at 0 = not armed */
        EvictTrack evict;
        bool pinned;              /* preheat.pin: its references carry the pinned label */
        PinJob *pin;              /* labelling them, in flight */
        char *pin_moved_from;     /* repo@digest the tag left in the last pull: the next pin unlabels it */
        MirrorWait mirror;        /* preheat_mirror.c */
} Target;

struct Preheat {
        sd_event *event;
        CurlGlue *glue;
        SharedConfig *config;
        State *state;
        const RuntimeDriver *drivers[_RUNTIME_KIND_MAX];
        bool up[_RUNTIME_KIND_MAX];
        char *machine_id;
        PreheatHooks hooks;
        void *userdata;
        RuntimeKind auto_runtime;
        bool registry_check;
        bool stopped;
        Target **targets;
        size_t n_targets;
        sd_event_source *reap;
        WakeHeap wake;            /* every target's next time (wake_heap.c) */
        unsigned n_confirming;    /* presence checks in flight (preheat.c: PREHEAT_CONFIRMS_MAX) */
        uint64_t confirm_tickets;
        ImageFsCache imagefs;     /* where each runtime keeps its images (preheat-evicted's figures) */
        RegistrySeen *seen;       /* the owner's table our pulls' registry probes go to; NULL = none */
};

static inline const char *preheat_runtime_name(const Target *t) { return runtime_kind_to_string(t->runtime); }

/* preheat_evict.c: the image left the runtime on its own. true: re-pulls stop, *ret_why says why
 * (the hook has been told); false: pull it again. */
bool preheat_evicted(Target *t, char **ret_why);
/* preheat_pin.c: preheat.pin on containerd: label (on) or unlabel every reference of t's image, on the
 * curl glue. A pin in flight belongs to t (t->pinned is set when every label is there); an unpin goes on
 * after t is freed. */
int preheat_pin(Target *t, bool on);
/* A pull of t succeeded: its references are new, so the ready state pins again; when the tag moved from
 * digest before to after, that pin first unlabels the old image's references. */
void preheat_pin_pulled(Target *t, const char *before, const char *after);
/* Cancel t's pin in flight (before t is freed). */
void preheat_pin_stop(Target *t);
/* preheat_tag_check.c: ask the registry whether t's tag moved (pinned by digest, or the check turned
 * off: nothing); stop: cancel a check in flight. */
void preheat_tag_check_start(Target *t);
void preheat_tag_check_stop(Target *t);
/* preheat_mirror.c: may t's pull start now? false while the runtime's first hop for the image's
 * registry is a mirror on this node that is being asked or does not answer: t then waits ("waiting
 * for mirror HOST"), asks it again every few seconds, and the scheduler's reap runs when that changes.
 * Only the mirror is asked, never the hops after it. */
bool preheat_mirror_pass(Target *t);
/* t waits for its mirror: a candidate for a pull slot again once the mirror answers. */
bool preheat_mirror_waiting(const Target *t);
void preheat_mirror_stop(Target *t);
/* A held target: may it be pulled again now (usage fell below the low threshold)? */
bool preheat_evict_retry(Target *t);
