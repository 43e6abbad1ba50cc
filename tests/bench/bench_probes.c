/* bench_probes: what one liveness sample costs on this machine, for `make bench`.
 *   bench_probes [-n N] PID [DIR [SUBDIR]]
 * times N proc_tree_sample() calls on the real /proc rooted at PID (plus proc_tree_delta), and, with
 * DIR, N disk_growth_sample() calls on DIR (SUBDIR "diff" for .../overlay2, "fs" for .../snapshots;
 * none: DIR itself is the target). Prints mean microseconds per sample and what each one read.
 * Build (after `make`):
 *   gcc -std=gnu11 -O2 -D_GNU_SOURCE -I. -o build/bench_probes tests/bench/bench_probes.c build/libpullwatch.a
 * Exit: 0 done, 1 a probe failed, 2 usage. */
#include <time.h>

#include "probes/host/disk_growth.h"
#include "probes/host/proc_sample.h"

static usec_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static int bench_proc(pid_t pid, unsigned n) {
        ProcTree *prev = NULL;
        usec_t total = 0, delta_total = 0;
        size_t scanned = 0, desc = 0;
        int r = 0;

        for (unsigned i = 0; i < n; i++) {
                ProcTree *t = NULL;
                usec_t start = now_usec();

                r = proc_tree_sample(NULL, pid, start, &t);
                total += now_usec() - start;
                if (r < 0) {
                        fprintf(stderr, "proc_tree_sample(%d): %s\n", (int) pid, strerror(-r));
                        break;
                }
                scanned += t->n_scanned;
                desc += t->n_desc;
                if (prev) {
                        ProcDelta *d = NULL;
                        size_t nd = 0;

                        start = now_usec();
                        r = proc_tree_delta(prev, t, &d, &nd);
                        delta_total += now_usec() - start;
                        free(d);
                        if (r < 0)
                                break;
                }
                proc_tree_free(prev);
                prev = t;
        }
        proc_tree_free(prev);
        if (r < 0)
                return r;
        printf("proc_tree_sample: %u samples, %.1f us/sample, %.0f /proc entries read, %.1f descendants; "
               "proc_tree_delta: %.2f us\n",
               n, (double) total / n, (double) scanned / n, (double) desc / n,
               n > 1 ? (double) delta_total / (n - 1) : 0.0);
        return 0;
}

static int bench_disk(const char *dir, const char *subdir, unsigned n) {
        DiskGrowth *d = NULL;
        usec_t total = 0, first = 0;
        uint64_t cost_sum = 0, cost_max = 0, signal = 0, signal0 = 0;
        DiskGrowthStats st;
        int r;

        r = disk_growth_new(dir, subdir, &d);
        if (r < 0)
                return r;
        for (unsigned i = 0; i < n; i++) {
                uint64_t cost = 0;
                usec_t start = now_usec();

                r = disk_growth_sample(d, start, &signal, &cost);
                if (i == 0) {
                        first = now_usec() - start;
                        signal0 = signal;
                } else
                        total += now_usec() - start;
                if (r < 0) {
                        fprintf(stderr, "disk_growth_sample(%s): %s\n", dir, strerror(-r));
                        disk_growth_free(d);
                        return r;
                }
                cost_sum += cost;
                cost_max = MAX(cost_max, cost);
        }
        disk_growth_stats(d, &st);
        printf("disk_growth_sample: %u samples, first (refresh) %llu us, then %.1f us/sample, %.0f entries/sample "
               "(max %llu), %u candidates, newest %s, %llu passes, last pass %llu entries %llu bytes, "
               "signal +%llu\n",
               n, (unsigned long long) first, n > 1 ? (double) total / (n - 1) : 0.0, (double) cost_sum / n,
               (unsigned long long) cost_max, st.n_candidates, st.newest ?: "-", (unsigned long long) st.passes,
               (unsigned long long) st.pass_entries, (unsigned long long) st.pass_bytes,
               (unsigned long long) (signal - signal0));
        disk_growth_free(d);
        return 0;
}

int main(int argc, char *argv[]) {
        unsigned n = 200;
        int a = 1;
        long pid;

        if (argc > 2 && streq(argv[1], "-n")) {
                n = (unsigned) strtoul(argv[2], NULL, 10);
                a = 3;
        }
        if (argc - a < 1 || argc - a > 3 || n == 0) {
                fprintf(stderr, "usage: %s [-n N] PID [DIR [SUBDIR]]\n", argv[0]);
                return 2;
        }
        pid = strtol(argv[a], NULL, 10);
        if (pid <= 0) {
                fprintf(stderr, "bad pid: %s\n", argv[a]);
                return 2;
        }
        if (bench_proc((pid_t) pid, n) < 0)
                return 1;
        if (argc - a >= 2 && bench_disk(argv[a + 1], argc - a == 3 ? argv[a + 2] : NULL, n) < 0)
                return 1;
        return 0;
}
