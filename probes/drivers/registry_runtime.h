/* registry_runtime.h: asks the runtime, on the event loop, for its version and registry settings
 * (dockerd: GET /version and /info; containerd: Version and CRI Status verbose, and on 2.x, whose
 * Status has no registry config_path, the proven containerd's own config file). Reports facts only;
 * a runtime that does not answer leaves its defaults in place, never an error. */
#pragma once

#include "probes/transport/curl_glue.h"
#include "probes/registry/registry_trust.h"

typedef struct RuntimeRegistryFetch RuntimeRegistryFetch;

/* rt is valid during the call: copy or steal what is needed. */
typedef void (*runtime_registry_done_t)(RuntimeRegistryFetch *f, RuntimeRegistry *rt, void *userdata);

/* kind: a runtime with a driver (runtime_drivers.h), else -EINVAL; its defaults come from the driver,
 * sockets from c. done runs once from the loop. */
int runtime_registry_fetch(CurlGlue *g, RuntimeKind kind, const Config *c, runtime_registry_done_t done,
                           void *userdata, RuntimeRegistryFetch **ret);
RuntimeRegistryFetch *runtime_registry_fetch_free(RuntimeRegistryFetch *f);
