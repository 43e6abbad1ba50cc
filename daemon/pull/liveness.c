/* liveness.c: helper attribution and the only kill path. A helper is a decompressor or untar process
 * under the verified runtime, or anything below one (a wrapper script's children). The runtime's
 * managed containerd and its shims are neither helper nor runtime work: they idle along and would
 * only blur the signal. A name match anywhere else on the node is never evidence and never a target. */
#include "daemon/pull/liveness.h"

#include <signal.h>
#include <stdio.h>
#include <sys/syscall.h>

#ifndef SYS_pidfd_open
#define SYS_pidfd_open 434
#endif
#ifndef SYS_pidfd_send_signal
#define SYS_pidfd_send_signal 424
#endif

/* While no runtime can be proven, look again at most this often: finding it reads every process's
 * executable link, too much for every sample of every pull. */
#define RESOLVE_RETRY (10 * USEC_PER_SEC)

/* Ancestors walked from a helper up to the runtime before giving up. */
#define LINEAGE_MAX 64

typedef struct HelperHandle {
        pid_t pid;
        uint64_t start_ticks;
        int fd;                   /* pidfd, or -1 */
        int open_r;               /* why fd is -1: -ENOSYS = no pidfds here, signal by pid */
} HelperHandle;

struct RuntimeLiveness {
        char *proc_root, *socket, *pidfile;
        const char *const *exe_names;
        RuntimeIdentity id;
        char *unverified_why;
        usec_t unverified_at;     /* when the last resolve failed (0: it did not, or never ran) */
        bool inprocess_extract;
        ProcTree *last;
        bool *last_helper;        /* per last->desc entry */
        HelperHandle *handles;    /* one per helper of last */
        size_t n_handles;
        ProcessOps ops;
        DiskGrowth *disk;
        char *disk_dir;
        uint64_t disk_signal;
        bool disk_primed;
        usec_t disk_grew_at;      /* the end of the last sample that saw growth, 0 = none yet */
        unsigned disk_grew_n;     /* samples that saw growth */
        RuntimeLiveness *companion; /* another runtime process doing part of the work, or NULL */
        HelperActivity *helpers;  /* each helper's interval in the last sample */
        size_t n_helpers;
};

static int pidfd_open_op(void *userdata, pid_t pid) {
        int fd = (int) syscall(SYS_pidfd_open, pid, 0);
        return fd < 0 ? -errno : fd;
}

static int pidfd_signal_op(void *userdata, pid_t pid, int fd, int sig) {
        int r = fd >= 0 ? (int) syscall(SYS_pidfd_send_signal, fd, sig, NULL, 0) : kill(pid, sig);
        return r < 0 ? -errno : 0;
}

static RuntimeIdentitySpec spec_of(const RuntimeLiveness *l) {
        return (RuntimeIdentitySpec) { .proc_root = l->proc_root, .pidfile = l->pidfile, .socket = l->socket,
                                       .exe_names = l->exe_names };
}

int runtime_liveness_new(const char *proc_root, const char *socket, const char *pidfile, const char *const *exe_names,
                         bool inprocess_extract, RuntimeLiveness **ret) {
        RuntimeLiveness *l;

        if (!socket || !exe_names || !ret)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->proc_root = proc_root ? strdup(proc_root) : NULL;
        l->socket = strdup(socket);
        l->pidfile = pidfile ? strdup(pidfile) : NULL;
        if ((proc_root && !l->proc_root) || !l->socket || (pidfile && !l->pidfile)) {
                runtime_liveness_free(l);
                return -ENOMEM;
        }
        l->exe_names = exe_names;
        l->inprocess_extract = inprocess_extract;
        l->ops = (ProcessOps) { .open = pidfd_open_op, .signal = pidfd_signal_op };
        *ret = l;
        return 0;
}

int runtime_liveness_new_for(const RuntimeDriver *driver, const Config *config, RuntimeLiveness **ret) {
        RuntimeProcess rp = {};
        if (!driver->process)
                return -EOPNOTSUPP;
        driver->process(config, &rp);
        return runtime_liveness_new(NULL, rp.socket, rp.pidfile, rp.exe_names, rp.inprocess_extract, ret);
}

void runtime_liveness_set_process_ops(RuntimeLiveness *l, const ProcessOps *ops) {
        l->ops = *ops;
        if (l->companion)
                l->companion->ops = *ops;
}

static void handles_drop(RuntimeLiveness *l) {
        for (size_t i = 0; i < l->n_handles; i++)
                if (l->handles[i].fd >= 0)
                        close(l->handles[i].fd);
        free(l->handles);
        l->handles = NULL;
        l->n_handles = 0;
}

/* Forget the previous sample: a new runtime process has nothing in common with the old one's. */
static void forget_sample(RuntimeLiveness *l) {
        handles_drop(l);
        l->helpers = mfree(l->helpers);
        l->n_helpers = 0;
        l->last = proc_tree_free(l->last);
        free(l->last_helper);
        l->last_helper = NULL;
}

RuntimeLiveness *runtime_liveness_free(RuntimeLiveness *l) {
        if (!l)
                return NULL;
        forget_sample(l);
        free(l->proc_root);
        free(l->socket);
        free(l->pidfile);
        free(l->unverified_why);
        disk_growth_free(l->disk);
        free(l->disk_dir);
        runtime_liveness_free(l->companion);
        free(l);
        return NULL;
}

int runtime_liveness_add_companion(RuntimeLiveness *l, const RuntimeProcess *rp) {
        RuntimeLiveness *c = NULL;
        int r;

        if (!rp || !rp->socket || !rp->exe_names)
                return -EINVAL;
        if (l->companion && streq(l->companion->socket, rp->socket))
                return 0;
        r = runtime_liveness_new(l->proc_root, rp->socket, rp->pidfile, rp->exe_names, rp->inprocess_extract, &c);
        if (r < 0)
                return r;
        c->ops = l->ops;
        runtime_liveness_free(l->companion);
        l->companion = c;
        return 0;
}

int runtime_liveness_watch_disk(RuntimeLiveness *l, const char *dir, const char *subdir) {
        DiskGrowth *d = NULL;
        char *copy = strdup(dir);
        int r = copy ? disk_growth_new(dir, subdir, &d) : -ENOMEM;
        if (r < 0) {
                free(copy);
                return r;
        }
        disk_growth_free(l->disk);
        free(l->disk_dir);
        l->disk = d;
        l->disk_dir = copy;
        l->disk_primed = false;
        l->disk_grew_at = 0;
        l->disk_grew_n = 0;
        return 0;
}

const char *runtime_liveness_disk(const RuntimeLiveness *l, usec_t *ret_grew_at, unsigned *ret_grew_n) {
        if (ret_grew_at)
                *ret_grew_at = l->disk ? l->disk_grew_at : 0;
        if (ret_grew_n)
                *ret_grew_n = l->disk ? l->disk_grew_n : 0;
        return l->disk ? l->disk_dir : NULL;
}

const RuntimeIdentity *runtime_liveness_identity(const RuntimeLiveness *l, const char **ret_why) {
        if (ret_why)
                *ret_why = l->unverified_why;
        return &l->id;
}

/* Keep the verified runtime, or find it again (first sample, restart, exec of a new binary). */
static int ensure_identity(RuntimeLiveness *l, usec_t now) {
        RuntimeIdentitySpec spec = spec_of(l);
        RuntimeIdentity id;
        char *why = NULL;
        int r;

        if (l->id.pid > 0 && runtime_identity_check(&spec, &l->id) >= 0)
                return 0;
        if (l->id.pid <= 0 && l->unverified_at && now < l->unverified_at + RESOLVE_RETRY)
                return -ESRCH;
        r = runtime_identity_resolve(&spec, &id, &why);
        l->unverified_at = r < 0 ? MAX(now, (usec_t) 1) : 0;
        if (r < 0 || id.pid != l->id.pid || id.start_ticks != l->id.start_ticks)
                forget_sample(l);
        free(l->unverified_why);
        l->unverified_why = why;
        l->id = r < 0 ? (RuntimeIdentity) {} : id;
        return r;
}

static bool is_side_daemon(const char *comm) {
        return startswith(comm, "containerd") || streq(comm, "runc") || streq(comm, "docker-proxy");
}

/* Mark helpers and side daemons; desc is breadth-first so a parent is always marked first. */
static void classify(const ProcTree *t, bool *helper, bool *side) {
        for (size_t i = 0; i < t->n_desc; i++) {
                const ProcInfo *p = &t->desc[i];
                helper[i] = proc_is_decompressor(p->comm) || proc_is_untar_helper(p->comm);
                side[i] = is_side_daemon(p->comm);
                for (size_t k = 0; k < i; k++)
                        if (t->desc[k].pid == p->ppid) {
                                helper[i] = helper[i] || helper[k];
                                side[i] = side[i] || side[k];
                                break;
                        }
                if (helper[i])
                        side[i] = false;
        }
}

static HelperHandle *handle_find(HelperHandle *v, size_t n, pid_t pid, uint64_t start) {
        for (size_t i = 0; i < n; i++)
                if (v[i].pid == pid && v[i].start_ticks == start)
                        return &v[i];
        return NULL;
}

/* A pidfd for every helper of t, reusing those already held. A pidfd opened after the sample may
 * name a process that took a dead helper's pid: the start time read after opening tells. */
static int handles_update(RuntimeLiveness *l, const ProcTree *t, const bool *helper) {
        HelperHandle *v = calloc(t->n_desc + 1, sizeof(HelperHandle));
        size_t n = 0;

        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_desc; i++) {
                const ProcInfo *p = &t->desc[i];
                HelperHandle *old, h = { .pid = p->pid, .start_ticks = p->start_ticks, .fd = -1 };
                ProcInfo now;

                if (!helper[i])
                        continue;
                old = handle_find(l->handles, l->n_handles, p->pid, p->start_ticks);
                if (old) {
                        h = *old;
                        old->fd = -1; /* moved */
                } else {
                        h.open_r = l->ops.open(l->ops.userdata, p->pid);
                        if (h.open_r >= 0) {
                                h.fd = h.open_r;
                                h.open_r = 0;
                                if (proc_read_info(l->proc_root, p->pid, &now) < 0 || now.start_ticks != p->start_ticks) {
                                        close(h.fd);
                                        h.fd = -1;
                                        h.open_r = -ESRCH;
                                }
                        }
                }
                v[n++] = h;
        }
        handles_drop(l);
        l->handles = v;
        l->n_handles = n;
        return 0;
}

static int sample_one(RuntimeLiveness *l, usec_t now, LivenessDelta *ret) {
        _cleanup_proc_tree_ ProcTree *t = NULL;
        _cleanup_free_ ProcDelta *d = NULL;
        _cleanup_free_ bool *helper = NULL, *side = NULL;
        size_t n = 0;
        uint64_t best_cpu = 0;
        bool have_best = false, best_decomp = false;
        int r;

        *ret = (LivenessDelta) { .at = now };
        if (ensure_identity(l, now) < 0) {
                /* Blind, not guessing: the detector falls back to size budgets, nothing is signalled. */
                ret->unverified = true;
                snprintf(ret->why, sizeof(ret->why), "%s", l->unverified_why ?: "runtime process not found");
                return 0;
        }
        r = proc_tree_sample(l->proc_root, l->id.pid, now, &t);
        if (r >= 0 && t->root.start_ticks != l->id.start_ticks)
                r = -ESTALE; /* restarted between the check and the sample: verify again next time */
        if (r < 0) {
                forget_sample(l);
                l->id = (RuntimeIdentity) {};
                return r; /* available stays false: the detector falls back to budgets */
        }
        helper = calloc(t->n_desc + 1, sizeof(bool));
        side = calloc(t->n_desc + 1, sizeof(bool));
        if (!helper || !side)
                return -ENOMEM;
        classify(t, helper, side);
        r = proc_tree_delta(l->last, t, &d, &n);
        if (r < 0)
                return r;
        r = handles_update(l, t, helper);
        if (r < 0)
                return r;

        ret->available = l->last != NULL && t->root.io_ok;
        ret->interval = l->last ? now - l->last->at : 0;
        HelperActivity *acts = calloc(n + 1, sizeof(HelperActivity));
        size_t n_acts = 0;
        if (!acts)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                const ProcDelta *p = &d[i];
                /* Entries follow the new tree: root first, then desc in order. */
                size_t k = i - 1;
                if (p->is_root) {
                        /* Block-level bytes only: rchar/wchar of a runtime count every gRPC call,
                         * ours included, so they would keep any extraction looking alive. */
                        if (l->inprocess_extract) {
                                ret->runtime_io += p->io_bytes;
                                ret->runtime_cpu += p->cpu_usec;
                        }
                        continue;
                }
                if (k >= t->n_desc)
                        continue;
                if (helper[k]) {
                        bool decomp = proc_is_decompressor(p->comm);
                        acts[n_acts++] = (HelperActivity) {
                                .pid = p->pid, .start_ticks = t->desc[k].start_ticks, .state = p->state,
                                .cpu_usec = p->cpu_usec, .io_chars = p->io_chars, .is_new = p->is_new,
                                .interval = ret->interval, .decompressor = decomp,
                        };
                        snprintf(acts[n_acts - 1].comm, sizeof(acts[n_acts - 1].comm), "%s", p->comm);
                        ret->n_helpers++;
                        ret->helper_io += p->io_chars;
                        ret->helper_cpu += p->cpu_usec;
                        /* Name the decompressor over its children or the untar side. */
                        if (!have_best || (decomp && !best_decomp) ||
                            (decomp == best_decomp && p->cpu_usec > best_cpu)) {
                                have_best = true;
                                best_decomp = decomp;
                                best_cpu = p->cpu_usec;
                                ret->busiest_pid = p->pid;
                                ret->busiest_state = p->state;
                                ret->busiest_cpu = p->cpu_usec;
                                snprintf(ret->busiest_comm, sizeof(ret->busiest_comm), "%s", p->comm);
                        }
                } else if (!side[k] && l->inprocess_extract) {
                        ret->runtime_io += p->io_bytes;
                        ret->runtime_cpu += p->cpu_usec;
                }
        }
        if (l->disk) {
                uint64_t sig = 0, cost = 0;
                if (disk_growth_sample(l->disk, now, &sig, &cost) >= 0) {
                        ret->disk_grew = l->disk_primed && sig != l->disk_signal;
                        if (ret->disk_grew) {
                                l->disk_grew_at = now;
                                l->disk_grew_n++;
                        }
                        l->disk_signal = sig;
                        l->disk_primed = true;
                }
        }
        proc_tree_free(l->last);
        free(l->last_helper);
        l->last = TAKE_PTR(t);
        l->last_helper = TAKE_PTR(helper);
        free(l->helpers);
        l->helpers = acts;
        l->n_helpers = n_acts;
        return 0;
}

void runtime_liveness_helpers(const RuntimeLiveness *l, const HelperActivity **ret, size_t *ret_n) {
        *ret = l ? l->helpers : NULL;
        *ret_n = l ? l->n_helpers : 0;
}

static bool tree_has(const ProcTree *t, pid_t pid) {
        for (size_t i = 0; t && i < t->n_desc; i++)
                if (t->desc[i].pid == pid)
                        return true;
        return false;
}

/* The companion's interval added to the main one's: helpers of either count, the busiest named. */
static void merge(LivenessDelta *into, const LivenessDelta *c) {
        if (c->n_helpers > 0 && (into->n_helpers == 0 || c->busiest_cpu > into->busiest_cpu)) {
                into->busiest_pid = c->busiest_pid;
                into->busiest_state = c->busiest_state;
                into->busiest_cpu = c->busiest_cpu;
                memcpy(into->busiest_comm, c->busiest_comm, sizeof(into->busiest_comm));
        }
        into->n_helpers += c->n_helpers;
        into->helper_io += c->helper_io;
        into->helper_cpu += c->helper_cpu;
        into->runtime_io += c->runtime_io;
        into->runtime_cpu += c->runtime_cpu;
        into->disk_grew = into->disk_grew || c->disk_grew;
        if (c->available && !into->available) {
                into->available = true;
                into->interval = c->interval;
        }
        /* Blind only when neither process could be proven: then say why for both. */
        if (into->unverified && !c->unverified)
                into->unverified = false;
        else if (into->unverified && c->unverified) {
                size_t n = strlen(into->why);
                snprintf(into->why + n, sizeof(into->why) - n, "; %s", c->why);
        }
}

int runtime_liveness_sample(RuntimeLiveness *l, usec_t now, LivenessDelta *ret) {
        LivenessDelta c;
        int r = sample_one(l, now, ret);

        if (!l->companion)
                return r;
        if (sample_one(l->companion, now, &c) < 0)
                return r;
        /* A containerd that dockerd runs itself is already in dockerd's tree: counted once. */
        if (r >= 0 && l->id.pid > 0 && tree_has(l->last, l->companion->id.pid))
                return r;
        if (r < 0) {
                *ret = c;
                return 0;
        }
        merge(ret, &c);
        return 0;
}

/* Right before a signal: pid is still the process sampled (same start time) and its parent chain
 * still reaches the verified runtime, which is still itself. */
static int verify_lineage(RuntimeLiveness *l, pid_t pid, uint64_t start, ProcInfo *ret) {
        RuntimeIdentitySpec spec = spec_of(l);
        ProcInfo p;
        pid_t cur;
        int r;

        r = proc_read_info(l->proc_root, pid, &p);
        if (r < 0)
                return -ESRCH;
        if (p.start_ticks != start)
                return -ESRCH; /* the pid now names another process */
        if (runtime_identity_check(&spec, &l->id) < 0)
                return -EPERM;
        *ret = p;
        cur = p.ppid;
        for (unsigned i = 0; i < LINEAGE_MAX && cur > 1; i++) {
                ProcInfo a;
                if (cur == l->id.pid)
                        return 0;
                if (proc_read_info(l->proc_root, cur, &a) < 0)
                        return -EPERM;
                cur = a.ppid;
        }
        return -EPERM; /* reparented to init or a subreaper: no longer the runtime's */
}

static int signal_helper(RuntimeLiveness *l, const ProcInfo *sampled, ProcInfo *ret_now, bool *ret_by_pidfd) {
        HelperHandle *h = handle_find(l->handles, l->n_handles, sampled->pid, sampled->start_ticks);
        int r;

        if (!h)
                return -EPERM;
        if (h->fd < 0 && h->open_r != -ENOSYS)
                return h->open_r < 0 ? h->open_r : -ESRCH;
        r = verify_lineage(l, sampled->pid, sampled->start_ticks, ret_now);
        if (r < 0)
                return r;
        *ret_by_pidfd = h->fd >= 0;
        return l->ops.signal(l->ops.userdata, sampled->pid, h->fd, SIGKILL);
}

static bool is_below(const ProcTree *t, const ProcInfo *p, pid_t pid) {
        for (pid_t anc = p->ppid; anc > 1;) {
                pid_t next = 0;
                if (anc == pid)
                        return true;
                for (size_t k = 0; k < t->n_desc; k++)
                        if (t->desc[k].pid == anc)
                                next = t->desc[k].ppid;
                anc = next;
        }
        return false;
}

static int kill_one(RuntimeLiveness *l, pid_t pid, char *report, size_t report_size);

int runtime_liveness_kill_helper(RuntimeLiveness *l, pid_t pid, char *report, size_t report_size) {
        int r = kill_one(l, pid, report, report_size);
        if (r == -EPERM && l->companion)
                r = kill_one(l->companion, pid, report, report_size);
        return r;
}

static int kill_one(RuntimeLiveness *l, pid_t pid, char *report, size_t report_size) {
        const ProcInfo *target = NULL;
        ProcInfo now = {};
        char exe[256] = "?";
        bool by_pidfd = false;
        int r;

        if (report && report_size > 0)
                report[0] = 0;
        if (!l->last || l->id.pid <= 0)
                return -EPERM;
        for (size_t i = 0; i < l->last->n_desc; i++)
                if (l->last->desc[i].pid == pid && l->last_helper[i])
                        target = &l->last->desc[i];
        if (!target)
                return -EPERM;
        (void) proc_read_exe(l->proc_root, pid, exe, sizeof(exe));
        /* The helper's own children first (a wrapper's sleep holding the pipe open), then itself. */
        for (size_t i = l->last->n_desc; i-- > 0;) {
                const ProcInfo *p = &l->last->desc[i];
                ProcInfo ignored;
                bool ignored_pidfd;
                if (l->last_helper[i] && is_below(l->last, p, pid))
                        (void) signal_helper(l, p, &ignored, &ignored_pidfd);
        }
        r = signal_helper(l, target, &now, &by_pidfd);
        if (r >= 0 && report && report_size > 0)
                snprintf(report, report_size, "%s pid %d (exe %s, start tick %llu, parent %d) killed by %s", target->comm,
                         (int) pid, exe, (unsigned long long) target->start_ticks, (int) now.ppid,
                         by_pidfd ? "pidfd" : "pid after re-verification");
        return r;
}

static int source_sample(void *userdata, usec_t now, LivenessDelta *ret) {
        return runtime_liveness_sample(userdata, now, ret);
}
static int source_kill(void *userdata, pid_t pid, char *report, size_t size) {
        return runtime_liveness_kill_helper(userdata, pid, report, size);
}

static int source_add_runtime(void *userdata, const RuntimeProcess *rp) {
        return runtime_liveness_add_companion(userdata, rp);
}

LivenessSource runtime_liveness_source(RuntimeLiveness *l) {
        return (LivenessSource) { .sample = source_sample, .kill_helper = source_kill,
                                  .add_runtime = source_add_runtime, .userdata = l };
}
