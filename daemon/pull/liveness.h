/* liveness.h: turns two /proc samples of the runtime's process tree into the detector's liveness
 * delta (helpers' CPU and I/O kept apart from the runtime's own) and ends a hung helper on request.
 * Owns the runtime's verified identity, the previous sample, the helper set and a pidfd per helper.
 * Signals nothing but a helper below the verified runtime, re-checked right before the signal. */
#pragma once

#include "daemon/pull/pull_job.h"
#include "probes/host/proc_sample.h"
#include "probes/host/disk_growth.h"
#include "probes/runtime/runtime_identity.h"

typedef struct RuntimeLiveness RuntimeLiveness;

/* How processes are held and signalled: pidfds by default. Tests inject their own. */
typedef struct ProcessOps {
        /* A handle on pid (a pidfd), or -errno; -ENOSYS: the kernel has none (signal by pid). */
        int (*open)(void *userdata, pid_t pid);
        /* Signal the process behind fd (>= 0), or pid when fd < 0. 0 or -errno. */
        int (*signal)(void *userdata, pid_t pid, int fd, int sig);
        void *userdata;
} ProcessOps;

/* The runtime to watch: its socket, pid file (may be NULL) and executable names; see
 * runtime_identity_resolve(). inprocess_extract: the runtime writes extracted files itself
 * (containerd), so its own I/O can be extraction output. proc_root NULL = /proc. */
int runtime_liveness_new(const char *proc_root, const char *socket, const char *pidfile, const char *const *exe_names,
                         bool inprocess_extract, RuntimeLiveness **ret);
/* The same for the runtime a driver talks to (driver->process). */
int runtime_liveness_new_for(const RuntimeDriver *driver, const Config *config, RuntimeLiveness **ret);
RuntimeLiveness *runtime_liveness_free(RuntimeLiveness *l);

/* Replace the pidfd operations (the pointers are copied). */
void runtime_liveness_set_process_ops(RuntimeLiveness *l, const ProcessOps *ops);

/* Also watch a second runtime process that does part of the pulls' work (the containerd that dockerd
 * pulls through on the containerd image store): its helpers count and may be cut, under the same
 * identity rules. Replaces an earlier companion with a different socket; same socket: a no-op. */
int runtime_liveness_add_companion(RuntimeLiveness *l, const RuntimeProcess *rp);

/* Also watch the extraction target: the newest entries of dir that hold subdir (dockerd's
 * <root>/overlay2 + "diff", containerd's overlayfs snapshots + "fs"). Optional. */
int runtime_liveness_watch_disk(RuntimeLiveness *l, const char *dir, const char *subdir);
/* The directory the disk probe watches (NULL when none), when a sample last saw it grow (0: never)
 * and in how many samples. */
const char *runtime_liveness_disk(const RuntimeLiveness *l, usec_t *ret_grew_at, unsigned *ret_grew_n);

/* Verifies the runtime's identity first (resolving it again after a restart); when none can be
 * verified, ret->available is false, ret->unverified true with the reason, and 0 is returned. */
int runtime_liveness_sample(RuntimeLiveness *l, usec_t now, LivenessDelta *ret);

/* The runtime as last verified (pid 0 when none), and why not when it could not be. */
const RuntimeIdentity *runtime_liveness_identity(const RuntimeLiveness *l, const char **ret_why);

/* SIGKILL pid and the helpers below it, only if pid was a helper (decompressor/untar or below one)
 * of the verified runtime in the last sample, still has the start time it had then and still
 * descends from the runtime. report (may be NULL) receives what was cut: pid, executable, start time,
 * parent, and whether by pidfd. -EPERM when not a proven helper, -ESRCH when it is gone. */
int runtime_liveness_kill_helper(RuntimeLiveness *l, pid_t pid, char *report, size_t report_size);

/* What each helper of the runtime did in the last sample's interval (the node guard judges them one
 * by one: one hung decompressor is hung even while another works). Valid until the next sample. */
typedef struct HelperActivity {
        pid_t pid;
        uint64_t start_ticks;
        char comm[16];
        char state;
        uint64_t cpu_usec;        /* in the interval */
        uint64_t io_chars;        /* read+write syscalls' bytes in the interval (pipes included) */
        usec_t interval;
        bool is_new;              /* first seen in this sample: the counters are its whole life */
        bool decompressor;        /* unpigz, igzip, xz, zstd... (else an untar helper) */
} HelperActivity;
void runtime_liveness_helpers(const RuntimeLiveness *l, const HelperActivity **ret, size_t *ret_n);

/* A LivenessSource for pull_job_set_liveness. */
LivenessSource runtime_liveness_source(RuntimeLiveness *l);
