/* registry_seen.h: the registry hosts this process has probed, with the runtime settings found for
 * each and whether the probe reached it, for `pullwatch status`. Process-wide table; never logs. */
#pragma once

#include <jansson.h>

#include "probes/registry/registry.h"

/* After a probe of domain: reached_hop is the hop that answered (NULL when none did), e the failure. */
void registry_seen_note(const char *domain, RuntimeKind runtime, const RegistryHosts *hosts, const char *reached_hop,
                        const ErrorDetail *e);
/* [{"host", "runtime", "settings", "source", "ca", "hops": [...], "reached", "via", "error", "error_file"}] */
json_t *registry_seen_json(void);
void registry_seen_clear(void);
