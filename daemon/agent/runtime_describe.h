/* runtime_describe.h: what each runtime's driver describes of it (version, image store, settings: the
 * driver's describe, blocking) asked on a thread of its own, off the loop, and kept with its time, so
 * `pullwatch status` answers from the daemon instead of asking a busy runtime itself. It never decides
 * when a runtime is up: the runtime monitor (agent_runtime.c) asks it to describe one. */
#pragma once

#include <jansson.h>
#include <systemd/sd-event.h>

#include "daemon/pull/watched_pull.h"
#include "probes/runtime/runtime.h"

/* A description older than this is asked again at the next ping that answers. */
#define RUNTIME_DESCRIBE_MAX_AGE (5 * 60 * USEC_PER_SEC)

typedef struct RuntimeDescriber RuntimeDescriber;

int runtime_describer_new(sd_event *event, RuntimeDescriber **ret);
/* Waits for a describe in flight (the driver's own timeouts bound it). */
RuntimeDescriber *runtime_describer_free(RuntimeDescriber *d);
/* Describe k with driver (whose describe may be NULL: nothing to do) off the loop, when nothing of k is
 * kept, what is kept is older than RUNTIME_DESCRIBE_MAX_AGE, or again (it came back: it may be another
 * version). One runtime at a time; the others wait their turn. */
void runtime_describer_ask(RuntimeDescriber *d, RuntimeKind k, const RuntimeDriver *driver, SharedConfig *config,
                           bool again);
/* Copy what is kept of k into into, with "described_age_s" (seconds since it answered): false when
 * nothing is kept yet. */
bool runtime_describer_add(RuntimeDescriber *d, RuntimeKind k, json_t *into);
