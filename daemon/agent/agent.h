/* agent.h: `pullwatch daemon`: one sd-event loop that owns the config, the preheat scheduler, the list
 * watch, the runtime monitor, alerts, metrics, state and the control socket, and speaks sd_notify. The
 * daemon's top layer: it logs and decides; the modules under it only report. */
#pragma once

#include "basic/macro.h"

typedef struct AgentOptions {
        const char *config_path;      /* NULL = /etc/pullwatch/pullwatch.yaml, missing = defaults */
        const char *machine_id_path;  /* NULL = /etc/machine-id (seeds the splay) */
} AgentOptions;

typedef struct Agent Agent;

/* Load the config and set everything up. -EINVAL: the config is bad (already reported on stderr). */
int agent_new(const AgentOptions *opts, Agent **ret);
Agent *agent_free(Agent *a);
static inline void agent_freep(Agent **a) { agent_free(*a); }

/* READY=1, the loop, STOPPING=1 on SIGTERM/SIGINT. Returns 0 on a clean stop or -errno. */
int agent_run(Agent *a);
