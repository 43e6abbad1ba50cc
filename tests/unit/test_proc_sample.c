/* test_proc_sample: the /proc sampler against fake /proc trees (tricky comms, missing io, vanished
 * pids, pid reuse, the descendant cap) and against the real /proc with children that really work. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <cmocka.h>

#include "probes/host/proc_sample.h"

typedef struct FakeProc {
        pid_t pid, ppid;
        const char *comm;
        char state;
        uint64_t utime, stime, start;
        bool io;                        /* write an io file */
        uint64_t rchar, wchar, read_bytes, write_bytes;
} FakeProc;

static char proc_root[64];

static void write_file(const char *dir, const char *name, const char *data, size_t len) {
        char path[512];
        snprintf(path, sizeof(path), "%s/%s", dir, name);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
}

static void fake_put(const FakeProc *p) {
        char dir[256], buf[1024];
        int n;

        snprintf(dir, sizeof(dir), "%s/%d", proc_root, (int) p->pid);
        (void) mkdir(dir, 0755);
        n = snprintf(buf, sizeof(buf),
                     "%d (%s) %c %d 1 1 0 -1 4194304 97 0 0 0 %llu %llu 0 0 20 0 1 0 %llu 3133440 411 "
                     "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n",
                     (int) p->pid, p->comm, p->state ?: 'S', (int) p->ppid, (unsigned long long) p->utime,
                     (unsigned long long) p->stime, (unsigned long long) p->start);
        write_file(dir, "stat", buf, (size_t) n);

        snprintf(buf, sizeof(buf), "%s/io", dir);
        (void) unlink(buf);
        if (!p->io)
                return;
        n = snprintf(buf, sizeof(buf),
                     "rchar: %llu\nwchar: %llu\nsyscr: 3\nsyscw: 4\nread_bytes: %llu\nwrite_bytes: %llu\n"
                     "cancelled_write_bytes: 0\n",
                     (unsigned long long) p->rchar, (unsigned long long) p->wchar,
                     (unsigned long long) p->read_bytes, (unsigned long long) p->write_bytes);
        write_file(dir, "io", buf, (size_t) n);
}

static void fake_remove(pid_t pid) {
        char path[256];
        snprintf(path, sizeof(path), "%s/%d/stat", proc_root, (int) pid);
        (void) unlink(path);
        snprintf(path, sizeof(path), "%s/%d/io", proc_root, (int) pid);
        (void) unlink(path);
        snprintf(path, sizeof(path), "%s/%d", proc_root, (int) pid);
        assert_int_equal(rmdir(path), 0);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        snprintf(proc_root, sizeof(proc_root), "/tmp/pullwatch-proc-XXXXXX");
        return mkdtemp(proc_root) ? 0 : -1;
}

static int teardown(void **state) {
        return nftw(proc_root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static uint64_t ticks_usec(uint64_t ticks) { return ticks * USEC_PER_SEC / (uint64_t) sysconf(_SC_CLK_TCK); }

/* The shape most tests use: dockerd 100 -> "(a) b)" 101 -> unpigz 102 -> ") S 1 (" 104, plus init,
 * an unrelated 103, a pid dir whose process vanished (no stat), a garbage stat and non-pid entries. */
static const FakeProc base[] = {
        { .pid = 1, .ppid = 0, .comm = "init", .start = 1, .io = true },
        { .pid = 100, .ppid = 1, .comm = "dockerd", .utime = 150, .stime = 50, .start = 1000, .io = true,
          .rchar = 10, .wchar = 20, .read_bytes = 4096, .write_bytes = 8192 },
        { .pid = 101, .ppid = 100, .comm = "(a) b)", .state = 'R', .utime = 7, .start = 2000, .io = true,
          .rchar = 1, .wchar = 2 },
        { .pid = 102, .ppid = 101, .comm = "unpigz", .state = 'D', .utime = 3, .start = 2100, .io = false },
        { .pid = 103, .ppid = 1, .comm = "sshd", .start = 50, .io = true },
        /* A first-')' parser would read this as state 'S' and ppid 1. */
        { .pid = 104, .ppid = 102, .comm = ") S 1 (", .state = 'R', .start = 2200, .io = true },
};

static void fake_base(void) {
        char path[256];

        for (size_t i = 0; i < ELEMENTSOF(base); i++)
                fake_put(&base[i]);
        snprintf(path, sizeof(path), "%s/105", proc_root); /* exited between readdir and open */
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/106", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
        write_file(path, "stat", "106 no-parens S 100\n", 20);
        snprintf(path, sizeof(path), "%s/self", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
        snprintf(path, sizeof(path), "%s/sys", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
}

static void test_descendants(void **state) {
        _cleanup_proc_tree_ ProcTree *t = NULL;

        fake_base();
        assert_int_equal(proc_tree_sample(proc_root, 100, 42, &t), 0);
        assert_int_equal(t->at, 42);
        assert_int_equal(t->root.pid, 100);
        assert_int_equal(t->root.ppid, 1);
        assert_string_equal(t->root.comm, "dockerd");
        assert_int_equal(t->root.cpu_usec, ticks_usec(200));
        assert_int_equal(t->root.start_ticks, 1000);
        assert_true(t->root.io_ok);
        assert_int_equal(t->root.rchar, 10);
        assert_int_equal(t->root.wchar, 20);
        assert_int_equal(t->root.read_bytes, 4096);
        assert_int_equal(t->root.write_bytes, 8192);
        assert_false(t->truncated);
        assert_int_equal(t->n_scanned, 7); /* 1, 100-104, 106; not 105 (no stat), self, sys */

        assert_int_equal(t->n_desc, 3); /* breadth-first: 101, then 102, then 104 */
        assert_int_equal(t->desc[0].pid, 101);
        assert_string_equal(t->desc[0].comm, "(a) b)");
        assert_int_equal(t->desc[0].state, 'R');
        assert_int_equal(t->desc[0].ppid, 100);
        assert_true(t->desc[0].io_ok);
        assert_int_equal(t->desc[1].pid, 102);
        assert_string_equal(t->desc[1].comm, "unpigz");
        assert_int_equal(t->desc[1].state, 'D');
        assert_false(t->desc[1].io_ok); /* no io file: e.g. not ours to read */
        assert_int_equal(t->desc[2].pid, 104);
        assert_string_equal(t->desc[2].comm, ") S 1 (");
        assert_int_equal(t->desc[2].state, 'R');
        assert_int_equal(t->desc[2].ppid, 102);
        assert_int_equal(t->desc[2].start_ticks, 2200);

        /* A subtree root works the same; a leaf has no descendants. */
        t = proc_tree_free(t);
        assert_int_equal(proc_tree_sample(proc_root, 102, 0, &t), 0);
        assert_int_equal(t->n_desc, 1);
        assert_null(proc_tree_free(t));
        t = NULL;
        assert_int_equal(proc_tree_sample(proc_root, 104, 0, &t), 0);
        assert_int_equal(t->n_desc, 0);
        assert_null(t->desc);
}

static void test_errors(void **state) {
        ProcTree *t = NULL;
        char path[256];

        fake_base();
        assert_int_equal(proc_tree_sample(proc_root, 999, 0, &t), -ESRCH);
        assert_int_equal(proc_tree_sample(proc_root, 105, 0, &t), -ESRCH);  /* vanished */
        assert_int_equal(proc_tree_sample(proc_root, 106, 0, &t), -EBADMSG); /* unparsable */
        assert_int_equal(proc_tree_sample(proc_root, 0, 0, &t), -EINVAL);
        snprintf(path, sizeof(path), "%s/nope", proc_root);
        assert_int_equal(proc_tree_sample(path, 1, 0, &t), -ENOENT);
        assert_null(t);
        assert_null(proc_tree_free(NULL));

        /* Root vanishes "mid-scan": its directory is there, its stat is not. */
        fake_remove(104);
        snprintf(path, sizeof(path), "%s/104", proc_root);
        assert_int_equal(mkdir(path, 0755), 0);
        assert_int_equal(proc_tree_sample(proc_root, 104, 0, &t), -ESRCH);
}

static void test_exe_comm(void **state) {
        _cleanup_proc_tree_ ProcTree *t = NULL;
        char dir[256];

        fake_base();
        fake_put(&(FakeProc) { .pid = 107, .ppid = 100, .comm = "exe", .start = 3000, .io = true });
        snprintf(dir, sizeof(dir), "%s/107", proc_root);
        write_file(dir, "cmdline", "docker-untar\0/var/lib/docker/overlay2/x/diff\0", 45);
        fake_put(&(FakeProc) { .pid = 108, .ppid = 100, .comm = "exe", .start = 3001 }); /* no cmdline */

        assert_int_equal(proc_tree_sample(proc_root, 100, 0, &t), 0);
        assert_int_equal(t->n_desc, 5);
        for (size_t i = 0; i < t->n_desc; i++) {
                if (t->desc[i].pid == 107) {
                        assert_string_equal(t->desc[i].comm, "docker-untar");
                        assert_true(proc_is_untar_helper(t->desc[i].comm));
                } else if (t->desc[i].pid == 108)
                        assert_string_equal(t->desc[i].comm, "exe");
        }
}

static void test_cap(void **state) {
        _cleanup_proc_tree_ ProcTree *t = NULL;

        fake_put(&(FakeProc) { .pid = 10, .ppid = 1, .comm = "containerd", .start = 5 });
        /* A grandchild listed before most children: breadth-first keeps the children instead. */
        fake_put(&(FakeProc) { .pid = 20, .ppid = 1000, .comm = "grandchild", .start = 6 });
        for (pid_t pid = 1000; pid < 1000 + PROC_TREE_MAX_DESC + 44; pid++)
                fake_put(&(FakeProc) { .pid = pid, .ppid = 10, .comm = "child", .start = 7 });

        assert_int_equal(proc_tree_sample(proc_root, 10, 0, &t), 0);
        assert_int_equal(t->n_desc, PROC_TREE_MAX_DESC);
        assert_true(t->truncated);
        for (size_t i = 0; i < t->n_desc; i++)
                assert_int_equal(t->desc[i].ppid, 10);
}

static void test_cycle_through_root(void **state) {
        _cleanup_proc_tree_ ProcTree *t = NULL;

        /* Impossible in a kernel, possible in a fake tree: must terminate and not list root. */
        fake_put(&(FakeProc) { .pid = 10, .ppid = 11, .comm = "a", .start = 1 });
        fake_put(&(FakeProc) { .pid = 11, .ppid = 10, .comm = "b", .start = 1 });
        assert_int_equal(proc_tree_sample(proc_root, 10, 0, &t), 0);
        assert_int_equal(t->n_desc, 1);
        assert_int_equal(t->desc[0].pid, 11);
}

static const ProcDelta *find_delta(const ProcDelta *d, size_t n, pid_t pid) {
        for (size_t i = 0; i < n; i++)
                if (d[i].pid == pid)
                        return &d[i];
        return NULL;
}

static void test_delta(void **state) {
        _cleanup_proc_tree_ ProcTree *a = NULL, *b = NULL;
        _cleanup_free_ ProcDelta *d = NULL;
        const ProcDelta *x;
        size_t n = 0;
        FakeProc p;

        fake_base();
        assert_int_equal(proc_tree_sample(proc_root, 100, 1 * USEC_PER_SEC, &a), 0);

        p = base[1]; /* dockerd: +100 ticks, +1 MiB written */
        p.utime += 100;
        p.wchar += 1 << 20;
        p.write_bytes += 1 << 20;
        fake_put(&p);
        p = base[2]; /* "(a) b)": only reads */
        p.rchar += 5000;
        fake_put(&p);
        p = base[3]; /* unpigz exited and its pid was reused by a new process */
        p.comm = "tar";
        p.start = 2500;
        p.utime = 2;
        p.io = true;
        p.rchar = 300;
        p.wchar = 400;
        fake_put(&p);
        fake_put(&(FakeProc) { .pid = 109, .ppid = 100, .comm = "xz", .utime = 9, .start = 2600 });
        assert_int_equal(proc_tree_sample(proc_root, 100, 2 * USEC_PER_SEC, &b), 0);

        assert_int_equal(proc_tree_delta(a, b, &d, &n), 0);
        assert_int_equal(n, 1 + b->n_desc);
        assert_int_equal(n, 5);

        assert_int_equal(d[0].pid, 100);
        assert_true(d[0].is_root);
        assert_false(d[0].is_new);
        assert_int_equal(d[0].cpu_usec, ticks_usec(100));
        assert_true(d[0].io_ok);
        assert_int_equal(d[0].io_chars, 1 << 20);
        assert_int_equal(d[0].io_bytes, 1 << 20);

        assert_non_null(x = find_delta(d, n, 101));
        assert_false(x->is_root);
        assert_false(x->is_new);
        assert_int_equal(x->cpu_usec, 0);
        assert_int_equal(x->io_chars, 5000);
        assert_int_equal(x->io_bytes, 0);

        assert_non_null(x = find_delta(d, n, 102)); /* same pid, other start time: a new process */
        assert_true(x->is_new);
        assert_string_equal(x->comm, "tar");
        assert_int_equal(x->cpu_usec, ticks_usec(2));
        assert_true(x->io_ok);
        assert_int_equal(x->io_chars, 700);

        assert_non_null(x = find_delta(d, n, 104));
        assert_false(x->is_new);
        assert_int_equal(x->cpu_usec, 0);
        assert_int_equal(x->io_chars, 0);

        assert_non_null(x = find_delta(d, n, 109));
        assert_true(x->is_new);
        assert_true(proc_is_decompressor(x->comm));
        assert_int_equal(x->cpu_usec, ticks_usec(9));
        assert_false(x->io_ok);

        /* A process gone since the older sample is simply absent; no old sample means all new. */
        _cleanup_proc_tree_ ProcTree *c = NULL;
        free(d);
        d = NULL;
        fake_remove(104);
        assert_int_equal(proc_tree_sample(proc_root, 100, 3 * USEC_PER_SEC, &c), 0);
        assert_int_equal(proc_tree_delta(b, c, &d, &n), 0);
        assert_int_equal(n, 4);
        assert_null(find_delta(d, n, 104));
        for (size_t i = 0; i < n; i++)
                assert_false(d[i].is_new);
        free(d);
        d = NULL;
        assert_int_equal(proc_tree_delta(NULL, c, &d, &n), 0);
        assert_int_equal(n, 4);
        for (size_t i = 0; i < n; i++)
                assert_true(d[i].is_new);
        assert_int_equal(d[0].cpu_usec, c->root.cpu_usec);
        assert_int_equal(proc_tree_delta(a, NULL, &d, &n), -EINVAL);
}

/* The root restarted under the same pid (a runtime restart): is_new, whole counters. */
static void test_delta_root_restarted(void **state) {
        _cleanup_proc_tree_ ProcTree *a = NULL, *b = NULL;
        _cleanup_free_ ProcDelta *d = NULL;
        size_t n = 0;
        FakeProc p = base[1];

        fake_base();
        assert_int_equal(proc_tree_sample(proc_root, 100, 0, &a), 0);
        p.start = 9000;
        p.utime = 1;
        p.stime = 0;
        fake_put(&p);
        assert_int_equal(proc_tree_sample(proc_root, 100, 0, &b), 0);
        assert_int_equal(proc_tree_delta(a, b, &d, &n), 0);
        assert_true(d[0].is_root);
        assert_true(d[0].is_new);
        assert_int_equal(d[0].cpu_usec, ticks_usec(1));
}

static void test_classify(void **state) {
        static const char *const yes[] = { "unpigz", "pigz", "igzip", "gzip", "gunzip", "zstd", "xz", "unxz" };
        for (size_t i = 0; i < ELEMENTSOF(yes); i++)
                assert_true(proc_is_decompressor(yes[i]));
        assert_false(proc_is_decompressor("dockerd"));
        assert_false(proc_is_decompressor("gzi"));
        assert_false(proc_is_decompressor("unpigz2"));
        assert_false(proc_is_decompressor(""));
        assert_false(proc_is_decompressor(NULL));
        assert_true(proc_is_untar_helper("docker-untar"));
        assert_true(proc_is_untar_helper("tar"));
        assert_false(proc_is_untar_helper("containerd-shim"));
        assert_false(proc_is_untar_helper("unpigz"));
        assert_false(proc_is_untar_helper(NULL));
}

/* Real /proc, real work: a child that spins and a child that writes a file, sampled as descendants
 * of this test process 300 ms apart. */
static pid_t spawn(int kind, const char *file) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid > 0)
                return pid;

        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (kind == 0) {
                volatile uint64_t x = 0;
                for (;;)
                        x++;
        }
        char block[4096];
        memset(block, 'x', sizeof(block));
        int fd = open(file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                _exit(1);
        for (unsigned i = 0;; i++) {
                if (pwrite(fd, block, sizeof(block), (off_t) (i % 64) * sizeof(block)) < 0)
                        _exit(1);
                usleep(1000);
        }
}

static usec_t now_usec(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

static void test_real_proc(void **state) {
        _cleanup_proc_tree_ ProcTree *a = NULL, *b = NULL;
        _cleanup_free_ ProcDelta *d = NULL;
        const ProcDelta *spin, *writer, *self;
        char file[256];
        pid_t spinner_pid, writer_pid;
        size_t n = 0;
        int r;

        snprintf(file, sizeof(file), "%s/written", proc_root);
        spinner_pid = spawn(0, NULL);
        writer_pid = spawn(1, file);

        r = proc_tree_sample(NULL, getpid(), now_usec(), &a);
        if (r >= 0) {
                usleep(300 * 1000);
                r = proc_tree_sample("/proc", getpid(), now_usec(), &b);
        }
        kill(spinner_pid, SIGKILL);
        kill(writer_pid, SIGKILL);
        assert_int_equal(waitpid(spinner_pid, NULL, 0), spinner_pid);
        assert_int_equal(waitpid(writer_pid, NULL, 0), writer_pid);
        assert_int_equal(r, 0);

        assert_true(b->n_scanned >= 3);
        assert_true(b->n_desc >= 2);
        assert_int_equal(proc_tree_delta(a, b, &d, &n), 0);
        assert_non_null(self = find_delta(d, n, getpid()));
        assert_true(self->is_root);
        assert_true(self->io_ok); /* our own io is always readable */
        assert_non_null(spin = find_delta(d, n, spinner_pid));
        assert_non_null(writer = find_delta(d, n, writer_pid));
        assert_false(spin->is_new);
        assert_false(writer->is_new);
        print_message("spinner cpu %llu us, writer wchar+rchar %llu B in 300 ms, %zu /proc entries\n",
                      (unsigned long long) spin->cpu_usec, (unsigned long long) writer->io_chars,
                      b->n_scanned);
        assert_true(spin->cpu_usec > 0);
        assert_true(writer->io_ok);
        assert_true(writer->io_chars > 0);
}

/* task/TID/children of each thread, as CONFIG_PROC_CHILDREN shows them (NULL text: the thread dir only) */
static void fake_children(pid_t pid, pid_t tid, const char *text) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%d/task", proc_root, (int) pid);
        (void) mkdir(dir, 0755);
        snprintf(dir, sizeof(dir), "%s/%d/task/%d", proc_root, (int) pid, (int) tid);
        (void) mkdir(dir, 0755);
        if (text)
                write_file(dir, "children", text, strlen(text));
}

/* With children files only the runtime's subtree is read, whatever else the node runs: a child is
 * found under the thread that forked it, a process not listed is not looked at, one reparented since
 * its listing is left out. Without them (an old kernel), /proc is walked as before. */
static void test_subtree(void **state) {
        static const FakeProc procs[] = {
                { .pid = 300, .ppid = 1, .comm = "containerd", .start = 10, .io = true },
                { .pid = 301, .ppid = 300, .comm = "unpigz", .start = 20, .io = true },
                { .pid = 302, .ppid = 300, .comm = "unpigz", .start = 21, .io = true },
                { .pid = 303, .ppid = 301, .comm = "tar", .start = 22, .io = true },
                { .pid = 304, .ppid = 1, .comm = "reparented", .start = 23 },
                { .pid = 401, .ppid = 300, .comm = "unlisted", .start = 24 },
        };
        ProcTree *t = NULL;

        for (size_t i = 0; i < ELEMENTSOF(procs); i++)
                fake_put(&procs[i]);
        for (pid_t pid = 500; pid < 540; pid++) /* the rest of a busy node */
                fake_put(&(FakeProc) { .pid = pid, .ppid = 1, .comm = "other", .start = 5 });
        fake_children(300, 300, "304 ");
        fake_children(300, 305, "302 301 ");
        fake_children(301, 301, "303");
        fake_children(302, 302, "");
        fake_children(303, 303, "");

        assert_int_equal(proc_tree_sample(proc_root, 300, 0, &t), 0);
        assert_int_equal(t->n_desc, 3);
        assert_int_equal(t->desc[0].pid, 301);
        assert_int_equal(t->desc[1].pid, 302);
        assert_int_equal(t->desc[2].pid, 303);
        assert_true(t->desc[2].io_ok);
        assert_int_equal(t->n_scanned, 5); /* 300, 304 (left out), 301, 302, 303: not the 40 others */
        t = proc_tree_free(t);

        /* a kernel without the files: the thread is there, its children file is not */
        char path[256];
        snprintf(path, sizeof(path), "%s/300/task/300/children", proc_root);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(proc_tree_sample(proc_root, 300, 0, &t), 0);
        assert_int_equal(t->n_desc, 4); /* 401 too: found by its ppid */
        assert_true(t->n_scanned >= 46);
        t = proc_tree_free(t);

        /* a runtime with no child at all (the usual idle containerd): nothing to sort, no descendant.
         * Under UBSan this caught qsort() handed the NULL of a children list never allocated. */
        fake_put(&(FakeProc) { .pid = 600, .ppid = 1, .comm = "containerd", .start = 30 });
        fake_children(600, 600, "");
        assert_int_equal(proc_tree_sample(proc_root, 600, 0, &t), 0);
        assert_int_equal(t->n_desc, 0);
        t = proc_tree_free(t);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_descendants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_errors, setup, teardown),
                cmocka_unit_test_setup_teardown(test_exe_comm, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cap, setup, teardown),
                cmocka_unit_test_setup_teardown(test_cycle_through_root, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delta, setup, teardown),
                cmocka_unit_test_setup_teardown(test_delta_root_restarted, setup, teardown),
                cmocka_unit_test(test_classify),
                cmocka_unit_test_setup_teardown(test_subtree, setup, teardown),
                cmocka_unit_test_setup_teardown(test_real_proc, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
