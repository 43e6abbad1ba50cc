/* liveness.h: turns two /proc samples of the runtime's process tree into the detector's liveness
 * delta (helpers' CPU and I/O kept apart from the runtime's own) and ends a hung helper on request.
 * Owns the previous sample and the helper set; signals nothing but helpers of the runtime it watches. */
#pragma once

#include "daemon/pull_job.h"
#include "probes/proc_sample.h"
#include "probes/disk_growth.h"

typedef struct RuntimeLiveness RuntimeLiveness;

/* pid: the runtime's main process. inprocess_extract: the runtime writes extracted files itself
 * (containerd), so its own I/O can be extraction output. proc_root NULL = /proc. */
int runtime_liveness_new(const char *proc_root, pid_t pid, bool inprocess_extract, RuntimeLiveness **ret);
RuntimeLiveness *runtime_liveness_free(RuntimeLiveness *l);

/* Also watch the extraction target: the newest entries of dir that hold subdir (dockerd's
 * <root>/overlay2 + "diff", containerd's overlayfs snapshots + "fs"). Optional. */
int runtime_liveness_watch_disk(RuntimeLiveness *l, const char *dir, const char *subdir);

int runtime_liveness_sample(RuntimeLiveness *l, usec_t now, LivenessDelta *ret);
/* SIGKILL pid and its descendants, only if pid was a helper (decompressor/untar or below one) of
 * the runtime in the last sample. -EPERM otherwise. */
int runtime_liveness_kill_helper(RuntimeLiveness *l, pid_t pid);

/* A LivenessSource for pull_job_set_liveness. */
LivenessSource runtime_liveness_source(RuntimeLiveness *l);
