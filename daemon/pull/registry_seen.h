/* registry_seen.h: the registry hosts a process's pulls have probed, with the runtime settings found
 * for each and whether the probe reached it, for `pullwatch status`. An object its owner (the agent)
 * hands to the pulls that should fill it; no global. Never logs. */
#pragma once

#include <jansson.h>

#include "probes/registry/registry.h"

typedef struct RegistrySeen RegistrySeen;

int registry_seen_new(RegistrySeen **ret);
RegistrySeen *registry_seen_free(RegistrySeen *s);
static inline void registry_seen_freep(RegistrySeen **s) { registry_seen_free(*s); }

/* After a probe of domain: reached_hop is the hop that answered (NULL when none did), e the failure.
 * s NULL: nothing is recorded (a pull nobody shows). */
void registry_seen_note(RegistrySeen *s, const char *domain, RuntimeKind runtime, const RegistryHosts *hosts,
                        const char *reached_hop, const ErrorDetail *e);
/* [{"host", "runtime", "settings", "source", "ca", "hops": [...], "reached", "via", "error", "error_file"}] */
json_t *registry_seen_json(const RegistrySeen *s);
void registry_seen_clear(RegistrySeen *s);
