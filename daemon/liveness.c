/* liveness.c: helper attribution. A helper is a decompressor or untar process under the runtime, or
 * anything below one (a wrapper script's children). The runtime's managed containerd and its shims
 * are neither helper nor runtime work: they idle along and would only blur the signal. */
#include "daemon/liveness.h"

#include <signal.h>
#include <stdio.h>

struct RuntimeLiveness {
        char *proc_root;
        pid_t pid;
        bool inprocess_extract;
        ProcTree *last;
        bool *last_helper;        /* per last->desc entry */
        DiskGrowth *disk;
        uint64_t disk_signal;
        bool disk_primed;
};

int runtime_liveness_watch_disk(RuntimeLiveness *l, const char *dir, const char *subdir) {
        DiskGrowth *d = NULL;
        int r = disk_growth_new(dir, subdir, &d);
        if (r < 0)
                return r;
        disk_growth_free(l->disk);
        l->disk = d;
        l->disk_primed = false;
        return 0;
}

int runtime_liveness_new(const char *proc_root, pid_t pid, bool inprocess_extract, RuntimeLiveness **ret) {
        RuntimeLiveness *l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->proc_root = proc_root ? strdup(proc_root) : NULL;
        l->pid = pid;
        l->inprocess_extract = inprocess_extract;
        *ret = l;
        return 0;
}

RuntimeLiveness *runtime_liveness_free(RuntimeLiveness *l) {
        if (!l)
                return NULL;
        proc_tree_free(l->last);
        free(l->last_helper);
        free(l->proc_root);
        disk_growth_free(l->disk);
        free(l);
        return NULL;
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

int runtime_liveness_sample(RuntimeLiveness *l, usec_t now, LivenessDelta *ret) {
        _cleanup_proc_tree_ ProcTree *t = NULL;
        _cleanup_free_ ProcDelta *d = NULL;
        _cleanup_free_ bool *helper = NULL, *side = NULL;
        size_t n = 0;
        uint64_t best_cpu = 0;
        bool have_best = false, best_decomp = false;
        int r;

        *ret = (LivenessDelta) { .at = now };
        r = proc_tree_sample(l->proc_root, l->pid, now, &t);
        if (r < 0)
                return r; /* available stays false: the detector falls back to budgets */
        helper = calloc(t->n_desc + 1, sizeof(bool));
        side = calloc(t->n_desc + 1, sizeof(bool));
        if (!helper || !side)
                return -ENOMEM;
        classify(t, helper, side);
        r = proc_tree_delta(l->last, t, &d, &n);
        if (r < 0)
                return r;

        ret->available = l->last != NULL && t->root.io_ok;
        ret->interval = l->last ? now - l->last->at : 0;
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
                        l->disk_signal = sig;
                        l->disk_primed = true;
                }
        }
        proc_tree_free(l->last);
        free(l->last_helper);
        l->last = TAKE_PTR(t);
        l->last_helper = TAKE_PTR(helper);
        return 0;
}

int runtime_liveness_kill_helper(RuntimeLiveness *l, pid_t pid) {
        bool found = false;
        if (!l->last)
                return -EPERM;
        for (size_t i = 0; i < l->last->n_desc; i++)
                if (l->last->desc[i].pid == pid && l->last_helper[i])
                        found = true;
        if (!found)
                return -EPERM;
        /* The helper's own children first (a wrapper's sleep holding the pipe open), then itself. */
        for (size_t i = l->last->n_desc; i-- > 0;) {
                const ProcInfo *p = &l->last->desc[i];
                bool below = false;
                for (pid_t anc = p->ppid; anc > 1 && !below;) {
                        if (anc == pid)
                                below = true;
                        pid_t next = 0;
                        for (size_t k = 0; k < l->last->n_desc; k++)
                                if (l->last->desc[k].pid == anc)
                                        next = l->last->desc[k].ppid;
                        anc = next;
                }
                if (below && l->last_helper[i])
                        (void) kill(p->pid, SIGKILL);
        }
        return kill(pid, SIGKILL) < 0 ? -errno : 0;
}

static int source_sample(void *userdata, usec_t now, LivenessDelta *ret) {
        return runtime_liveness_sample(userdata, now, ret);
}
static int source_kill(void *userdata, pid_t pid) { return runtime_liveness_kill_helper(userdata, pid); }

LivenessSource runtime_liveness_source(RuntimeLiveness *l) {
        return (LivenessSource) { .sample = source_sample, .kill_helper = source_kill, .userdata = l };
}
