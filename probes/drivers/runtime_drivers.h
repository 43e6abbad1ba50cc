/* runtime_drivers.h: the one place that maps a runtime kind (or a preheat item's runtime) to its driver
 * (runtime.h) and walks all drivers. Callers ask the driver; none of them compares kinds or names. */
#pragma once

#include "config/preheat_list.h"
#include "probes/drivers/imagefs.h"
#include "probes/runtime/runtime.h"

extern const RuntimeDriver docker_driver;
extern const RuntimeDriver containerd_driver;

/* The driver of kind; NULL for RUNTIME_AUTO and for a kind this build cannot drive. */
const RuntimeDriver *runtime_driver_get(RuntimeKind kind);
/* The driver named name ("docker"); NULL for "auto" and unknown names. */
const RuntimeDriver *runtime_driver_by_name(const char *name);
/* Every driver, in kind order: for (const RuntimeDriver *const *d = runtime_drivers; *d; d++). */
extern const RuntimeDriver *const runtime_drivers[];

/* auto: the driver asked first (the runtime kubelet talks to when its socket answers), and the one
 * taken when it does not answer or before it was asked. */
const RuntimeDriver *runtime_driver_auto_probe(void);
const RuntimeDriver *runtime_driver_auto_fallback(void);
/* What auto means once known: configured unless it is auto, else detected unless that is auto too,
 * else the fallback's kind. */
RuntimeKind runtime_kind_resolve(RuntimeKind configured, RuntimeKind detected);

/* The kinds a preheat item pulls into ("both": every driver), into ret; their count. default_kind
 * is the kind an item without a runtime takes. */
size_t runtime_kinds_of_preheat(PreheatRuntime r, RuntimeKind default_kind, RuntimeKind ret[static _RUNTIME_KIND_MAX]);

/* Where a kind's images live: its driver's imagefs_dir (an imagefs_locate_t). -EOPNOTSUPP for a kind
 * without a driver. */
int imagefs_locate(CurlGlue *glue, const Config *config, RuntimeKind kind, runtime_op_done_t done, void *userdata,
                   RuntimeOp **ret);
