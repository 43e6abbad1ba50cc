/* proc_sample.h: one cheap pass over /proc that samples a runtime's process and its descendants
 * (CPU, I/O) and diffs two samples. Owns only its snapshots; never signals, traces or logs. */
#pragma once

#include <sys/types.h>
#include "basic/macro.h"

/* Descendants kept per sample, nearest generations first (breadth-first); the rest are dropped and
 * ProcTree.truncated is set. dockerd + unpigz + untar is a handful; this only bounds a fork bomb. */
#define PROC_TREE_MAX_DESC 256

typedef struct ProcInfo {
        pid_t pid, ppid;
        char comm[16];           /* kernel comm; a "/proc/self/exe" re-exec ("exe") shows argv[0]'s
                                  * basename instead, so dockerd's "docker-untar" is recognisable */
        char state;              /* R, S, D, Z, ... */
        uint64_t start_ticks;    /* stat field 22: tells a reused pid from the process before it */
        uint64_t cpu_usec;       /* utime + stime of the whole process (all threads) */
        uint64_t rchar, wchar;   /* every read/write syscall, pipes included */
        uint64_t read_bytes, write_bytes; /* what reached the block layer */
        bool io_ok;              /* /proc/PID/io was readable (it needs ptrace access) */
} ProcInfo;

typedef struct ProcTree {
        usec_t at;               /* the caller's clock, as passed in */
        ProcInfo root;
        ProcInfo *desc;          /* children, grandchildren, ... breadth-first */
        size_t n_desc;
        bool truncated;          /* more than PROC_TREE_MAX_DESC descendants existed */
        size_t n_scanned;        /* /proc entries whose stat was read (the cost of this sample) */
} ProcTree;

/* Cost: the subtree's, not the node's: a stat of the root, then for each process of the subtree a
 * readdir of its task/ and a read of each thread's task/TID/children (CONFIG_PROC_CHILDREN; a child is
 * listed under the thread that forked it), a stat per child, then io (and for an "exe" comm, cmdline)
 * per kept process. Where the kernel has no children files: one readdir of proc_root and a stat of
 * every process on the node instead. n_scanned counts the stats read. proc_root NULL means "/proc".
 * -ESRCH: root_pid is not there; -EBADMSG: its stat could not be parsed. */
int proc_tree_sample(const char *proc_root, pid_t root_pid, usec_t now, ProcTree **ret);
ProcTree *proc_tree_free(ProcTree *t);
static inline void proc_tree_freep(ProcTree **t) { proc_tree_free(*t); }
#define _cleanup_proc_tree_ _cleanup_(proc_tree_freep)

/* What one process of the newer sample did since the older one. */
typedef struct ProcDelta {
        pid_t pid;
        char comm[16];
        char state;
        uint64_t cpu_usec;       /* CPU consumed in the interval */
        uint64_t io_chars;       /* rchar + wchar consumed in the interval */
        uint64_t io_bytes;       /* read_bytes + write_bytes in the interval */
        bool io_ok;              /* io readable in both samples (or in the new one, when is_new) */
        bool is_root;
        bool is_new;             /* no process with this pid and start time in the older sample: the
                                  * counters are its whole life, i.e. work done since it started (or
                                  * since before, if the older sample dropped it for the cap) */
} ProcDelta;

/* One entry per process of new (root first, then its descendants in order). Matching is by pid and
 * start time, so a reused pid counts as new. old may be NULL (everything is new). Processes that
 * exited between the two samples are absent: their last interval is lost. Counters that went back
 * (impossible for one process) give 0. The array always holds at least the root; free() it. */
int proc_tree_delta(const ProcTree *old, const ProcTree *new, ProcDelta **ret, size_t *ret_n);

/* One process's stat (pid, ppid, comm, state, start time, CPU; no io): 0, -ESRCH when it is gone,
 * -EBADMSG when unparsable. proc_root NULL = /proc. */
int proc_read_info(const char *proc_root, pid_t pid, ProcInfo *ret);
/* readlink of /proc/PID/exe into buf (NUL-terminated), a trailing " (deleted)" dropped (the runtime's
 * package was upgraded under it). -ENAMETOOLONG when it does not fit. */
int proc_read_exe(const char *proc_root, pid_t pid, char *buf, size_t size);

/* Helpers a runtime pipes layers through: gzip family and xz/zstd (dockerd: unpigz, xz; containerd:
 * unpigz or igzip). Names include the un* aliases because comm is the name that was executed. */
bool proc_is_decompressor(const char *comm);
/* docker-untar (older dockerd re-execs itself for chrooted untar) and plain tar. */
bool proc_is_untar_helper(const char *comm);
