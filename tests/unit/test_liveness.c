/* test_liveness: runtime identity and the kill path against fake /proc trees with an injected
 * signal function: PID 1 as the socket's peer and listener, decoys named like helpers outside the
 * runtime's tree, a helper pid reused between sample and cut, a runtime restart, stale pid files,
 * no pidfds, and no verifiable runtime at all. Nothing here may ever reach a real process. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "daemon/pull/liveness.h"

#define SOCK "/run/pullwatch-test/docker.sock"
#define DOCKERD_INODE 424242UL

static char root[64];

typedef struct Fake {
        pid_t pid, ppid;
        const char *comm, *exe;
        uint64_t start, cpu;
        unsigned long sock_inode;       /* 0: holds no socket */
} Fake;

static void put(const Fake *p) {
        char dir[256], path[320], buf[1024];
        FILE *f;

        snprintf(dir, sizeof(dir), "%s/%d", root, (int) p->pid);
        (void) mkdir(dir, 0755);
        snprintf(path, sizeof(path), "%s/stat", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fprintf(f, "%d (%s) S %d 1 1 0 -1 4194304 97 0 0 0 %llu 0 0 0 20 0 1 0 %llu 3133440 411 0\n", (int) p->pid,
                p->comm, (int) p->ppid, (unsigned long long) p->cpu, (unsigned long long) p->start);
        fclose(f);
        snprintf(path, sizeof(path), "%s/io", dir);
        f = fopen(path, "we");
        assert_non_null(f);
        fprintf(f, "rchar: 1\nwchar: 1\nread_bytes: 0\nwrite_bytes: 0\n");
        fclose(f);
        snprintf(path, sizeof(path), "%s/exe", dir);
        (void) unlink(path);
        assert_int_equal(symlink(p->exe, path), 0);
        snprintf(path, sizeof(path), "%s/fd", dir);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/fd/3", dir);
        (void) unlink(path);
        if (p->sock_inode) {
                snprintf(buf, sizeof(buf), "socket:[%lu]", p->sock_inode);
                assert_int_equal(symlink(buf, path), 0);
        }
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

static void drop(pid_t pid) {
        char dir[256];
        snprintf(dir, sizeof(dir), "%s/%d", root, (int) pid);
        assert_int_equal(nftw(dir, rm_entry, 8, FTW_DEPTH | FTW_PHYS), 0);
}

#define CD_SOCK "/run/pullwatch-test/containerd.sock"
#define CONTAINERD_INODE 434343UL

/* /proc/net/unix with the runtime socket listening (flags 00010000) at inode, plus noise; and
 * containerd's socket, listening at CONTAINERD_INODE. */
static void net_unix(unsigned long inode) {
        char path[256];
        FILE *f;
        snprintf(path, sizeof(path), "%s/net", root);
        (void) mkdir(path, 0755);
        snprintf(path, sizeof(path), "%s/net/unix", root);
        f = fopen(path, "we");
        assert_non_null(f);
        fprintf(f, "Num       RefCount Protocol Flags    Type St Inode Path\n");
        fprintf(f, "0000000000000000: 00000002 00000000 00010000 0001 01 1111 /run/systemd/notify\n");
        fprintf(f, "0000000000000000: 00000003 00000000 00000000 0001 03 2222 " SOCK "\n");
        if (inode)
                fprintf(f, "0000000000000000: 00000002 00000000 00010000 0001 01 %lu " SOCK "\n", inode);
        fprintf(f, "0000000000000000: 00000002 00000000 00010000 0001 01 %lu " CD_SOCK "\n", CONTAINERD_INODE);
        fclose(f);
}

/* The node: systemd (PID 1) holds docker.socket's listener; decoys named like helpers sit under it
 * and under an unrelated shell; dockerd (100) serves the socket and runs one real helper (101). */
static const Fake systemd_ = { 1, 0, "systemd", "/usr/lib/systemd/systemd", 5, 0, DOCKERD_INODE };
static const Fake decoy_gzip = { 201, 1, "gzip", "/usr/bin/gzip", 50, 0, 0 };
static const Fake decoy_tar = { 202, 1, "tar", "/usr/bin/tar", 51, 0, 0 };
static const Fake shell = { 300, 1, "bash", "/usr/bin/bash", 52, 0, 0 };
static const Fake decoy_unpigz = { 301, 300, "unpigz", "/usr/bin/unpigz", 53, 0, 0 };
static const Fake dockerd = { 100, 1, "dockerd", "/usr/sbin/dockerd", 60, 0, DOCKERD_INODE };
static const Fake helper = { 101, 100, "unpigz", "/usr/bin/unpigz", 70, 0, 0 };
static const Fake helper_child = { 102, 101, "sleep", "/usr/bin/sleep", 71, 0, 0 };

typedef struct Signals {
        unsigned n;
        pid_t pid[16];
        int fd[16];
        int open_result;                /* 0: hand out a real fd (of /dev/null) */
        unsigned opened;
} Signals;

static int fake_open(void *userdata, pid_t pid) {
        Signals *s = userdata;
        s->opened++;
        return s->open_result < 0 ? s->open_result : open("/dev/null", O_RDONLY | O_CLOEXEC);
}

static int fake_signal(void *userdata, pid_t pid, int fd, int sig) {
        Signals *s = userdata;
        assert_int_equal(sig, SIGKILL);
        assert_true(s->n < 16);
        s->pid[s->n] = pid;
        s->fd[s->n] = fd;
        s->n++;
        return 0;
}

static bool signalled(const Signals *s, pid_t pid) {
        for (unsigned i = 0; i < s->n; i++)
                if (s->pid[i] == pid)
                        return true;
        return false;
}

static RuntimeLiveness *new_liveness(const char *pidfile, Signals *s) {
        RuntimeLiveness *l = NULL;
        assert_int_equal(runtime_liveness_new(root, SOCK, pidfile, runtime_exe_names_docker, false, &l), 0);
        runtime_liveness_set_process_ops(l, &(ProcessOps) { .open = fake_open, .signal = fake_signal, .userdata = s });
        return l;
}

static void sample(RuntimeLiveness *l, usec_t at, LivenessDelta *lv) {
        assert_int_equal(runtime_liveness_sample(l, at, lv), 0);
}

static void node(void) {
        put(&systemd_);
        put(&decoy_gzip);
        put(&decoy_tar);
        put(&shell);
        put(&decoy_unpigz);
        put(&dockerd);
        put(&helper);
        put(&helper_child);
        net_unix(DOCKERD_INODE);
}

static int setup(void **state) {
        snprintf(root, sizeof(root), "/tmp/pullwatch-live-XXXXXX");
        return mkdtemp(root) ? 0 : -1;
}

static int teardown(void **state) { return nftw(root, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* docker.socket: PID 1 listens too, and would be the SO_PEERCRED answer. dockerd is found by the
 * listening inode; the decoys are neither evidence nor targets; the helper and its child are cut. */
static void test_socket_activated_runtime_and_decoys(void **state) {
        Signals s = {};
        LivenessDelta lv;
        const RuntimeIdentity *id;
        char report[256];
        node();
        RuntimeLiveness *l = new_liveness(NULL, &s);

        sample(l, 1 * USEC_PER_SEC, &lv);
        id = runtime_liveness_identity(l, NULL);
        assert_int_equal(id->pid, 100);
        assert_int_equal(id->source, IDENTITY_SOCKET_INODE);
        assert_string_equal(id->exe, "/usr/sbin/dockerd");
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_true(lv.available);
        assert_false(lv.unverified);
        assert_int_equal(lv.n_helpers, 2);          /* unpigz and the sleep below it; no decoy */
        assert_int_equal(lv.busiest_pid, 101);

        for (pid_t decoy = 201; decoy <= 301; decoy++)
                assert_int_equal(runtime_liveness_kill_helper(l, decoy, NULL, 0), -EPERM);
        assert_int_equal(runtime_liveness_kill_helper(l, 1, NULL, 0), -EPERM);
        assert_int_equal(runtime_liveness_kill_helper(l, 100, NULL, 0), -EPERM); /* the runtime itself */
        assert_int_equal(s.n, 0);

        assert_int_equal(runtime_liveness_kill_helper(l, 101, report, sizeof(report)), 0);
        assert_int_equal(s.n, 2);
        assert_int_equal(s.pid[0], 102);            /* the child first */
        assert_int_equal(s.pid[1], 101);
        assert_true(s.fd[0] >= 0 && s.fd[1] >= 0);  /* by pidfd */
        assert_non_null(strstr(report, "unpigz pid 101"));
        assert_non_null(strstr(report, "exe /usr/bin/unpigz"));
        assert_non_null(strstr(report, "start tick 70"));
        assert_non_null(strstr(report, "parent 100"));
        assert_non_null(strstr(report, "pidfd"));
        assert_false(signalled(&s, 201) || signalled(&s, 202) || signalled(&s, 301));
        runtime_liveness_free(l);
}

/* Only PID 1 holds the listener and answers the socket: nothing is the runtime. Blind, no signal. */
static void test_pid1_only_is_unverified(void **state) {
        Signals s = {};
        LivenessDelta lv;
        const char *why = NULL;
        Fake d = dockerd;
        node();
        d.sock_inode = 0;                           /* dockerd no longer holds the listener */
        put(&d);
        RuntimeLiveness *l = new_liveness(NULL, &s);

        sample(l, 1 * USEC_PER_SEC, &lv);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_false(lv.available);
        assert_true(lv.unverified);
        assert_non_null(strstr(lv.why, "no process running dockerd holds it"));
        assert_int_equal(runtime_liveness_identity(l, &why)->pid, 0);
        assert_non_null(why);
        for (pid_t p = 1; p <= 301; p++)
                (void) runtime_liveness_kill_helper(l, p, NULL, 0);
        assert_int_equal(s.n, 0);
        assert_int_equal(s.opened, 0);

        /* dockerd serves its socket again: not looked for on every sample (a /proc-wide scan), but
         * found once the retry interval has passed */
        put(&dockerd);
        sample(l, 3 * USEC_PER_SEC, &lv);
        assert_true(lv.unverified);
        sample(l, 13 * USEC_PER_SEC, &lv);
        assert_false(lv.unverified);
        assert_int_equal(runtime_liveness_identity(l, NULL)->pid, 100);
        runtime_liveness_free(l);
}

/* The helper exits after the sample and an unrelated process gets its pid: no signal at all. */
static void test_pid_reused_between_sample_and_cut(void **state) {
        Signals s = {};
        LivenessDelta lv;
        Fake reused = { 101, 1, "unpigz", "/usr/bin/unpigz", 999, 0, 0 };
        node();
        drop(102);
        RuntimeLiveness *l = new_liveness(NULL, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_int_equal(lv.busiest_pid, 101);

        put(&reused);
        assert_int_equal(runtime_liveness_kill_helper(l, 101, NULL, 0), -ESRCH);
        assert_int_equal(s.n, 0);
        runtime_liveness_free(l);
}

/* Same process, but no longer below the runtime (reparented to init): refused. */
static void test_reparented_helper_refused(void **state) {
        Signals s = {};
        LivenessDelta lv;
        Fake orphan = helper;
        node();
        drop(102);
        RuntimeLiveness *l = new_liveness(NULL, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        sample(l, 2 * USEC_PER_SEC, &lv);
        orphan.ppid = 1;
        put(&orphan);
        assert_int_equal(runtime_liveness_kill_helper(l, 101, NULL, 0), -EPERM);
        assert_int_equal(s.n, 0);
        runtime_liveness_free(l);
}

/* dockerd restarts under a new pid: followed; the old helper is no target any more. */
static void test_runtime_restart_followed(void **state) {
        Signals s = {};
        LivenessDelta lv;
        Fake d2 = { 400, 1, "dockerd", "/usr/sbin/dockerd", 800, 0, DOCKERD_INODE };
        Fake h2 = { 401, 400, "unpigz", "/usr/bin/unpigz", 801, 0, 0 };
        node();
        RuntimeLiveness *l = new_liveness(NULL, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        assert_int_equal(runtime_liveness_identity(l, NULL)->pid, 100);

        drop(102);
        drop(101);
        drop(100);
        put(&d2);
        put(&h2);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_int_equal(runtime_liveness_identity(l, NULL)->pid, 400);
        assert_int_equal(runtime_liveness_identity(l, NULL)->start_ticks, 800);
        assert_false(lv.available);                 /* first sample of the new process: a baseline */
        sample(l, 3 * USEC_PER_SEC, &lv);
        assert_true(lv.available);
        assert_int_equal(lv.busiest_pid, 401);
        assert_int_equal(runtime_liveness_kill_helper(l, 101, NULL, 0), -EPERM);
        assert_int_equal(runtime_liveness_kill_helper(l, 401, NULL, 0), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.pid[0], 401);

        /* Same pid, new start time (pid wrapped around to a new dockerd): a new identity too. */
        d2.start = 900;
        put(&d2);
        sample(l, 4 * USEC_PER_SEC, &lv);
        assert_int_equal(runtime_liveness_identity(l, NULL)->start_ticks, 900);
        runtime_liveness_free(l);
}

/* Pid files: one naming PID 1, one naming a dockerd that does not serve this socket, one stale;
 * none is believed. A good one is. A binary replaced by an upgrade still counts. */
static void test_pidfiles(void **state) {
        Signals s = {};
        LivenessDelta lv;
        char pidfile[256];
        Fake other = { 500, 1, "dockerd", "/usr/sbin/dockerd", 90, 0, 0 };
        Fake upgraded = dockerd;
        RuntimeLiveness *l;
        FILE *f;
        node();
        put(&other);
        snprintf(pidfile, sizeof(pidfile), "%s/docker.pid", root);

        static const char *const bad[] = { "1", "500", "77777", "garbage" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                f = fopen(pidfile, "we");
                fprintf(f, "%s\n", bad[i]);
                fclose(f);
                l = new_liveness(pidfile, &s);
                sample(l, 1 * USEC_PER_SEC, &lv);
                assert_int_equal(runtime_liveness_identity(l, NULL)->pid, 100);
                assert_int_equal(runtime_liveness_identity(l, NULL)->source, IDENTITY_SOCKET_INODE);
                runtime_liveness_free(l);
        }

        upgraded.exe = "/usr/sbin/dockerd (deleted)";
        put(&upgraded);
        f = fopen(pidfile, "we");
        fprintf(f, "100\n");
        fclose(f);
        l = new_liveness(pidfile, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        assert_int_equal(runtime_liveness_identity(l, NULL)->pid, 100);
        assert_int_equal(runtime_liveness_identity(l, NULL)->source, IDENTITY_PIDFILE);
        assert_string_equal(runtime_liveness_identity(l, NULL)->exe, "/usr/sbin/dockerd");
        runtime_liveness_free(l);
        assert_int_equal(s.n, 0);
}

/* A kernel without pidfds: signal by pid, but only after the same re-verification. */
static void test_no_pidfd_reverifies(void **state) {
        Signals s = { .open_result = -ENOSYS };
        LivenessDelta lv;
        Fake reused = { 101, 1, "bash", "/usr/bin/bash", 999, 0, 0 };
        node();
        drop(102);
        RuntimeLiveness *l = new_liveness(NULL, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_int_equal(runtime_liveness_kill_helper(l, 101, NULL, 0), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.fd[0], -1);

        sample(l, 3 * USEC_PER_SEC, &lv);
        put(&reused);
        assert_int_equal(runtime_liveness_kill_helper(l, 101, NULL, 0), -ESRCH);
        assert_int_equal(s.n, 1);
        runtime_liveness_free(l);
}

/* dockerd on the containerd image store: the decompressor is a child of the containerd service
 * dockerd pulls through, not of dockerd. Watched and cut through the companion; when that
 * containerd is dockerd's own child it is counted once. */
static void test_companion_runtime(void **state) {
        Signals s = {};
        LivenessDelta lv;
        Fake cd = { 600, 1, "containerd", "/usr/bin/containerd", 80, 0, CONTAINERD_INODE };
        Fake cd_helper = { 601, 600, "unpigz", "/usr/bin/unpigz", 81, 0, 0 };
        RuntimeProcess rp = { .socket = CD_SOCK, .exe_names = runtime_exe_names_containerd, .inprocess_extract = true };
        node();
        drop(102);
        drop(101);
        put(&cd);
        put(&cd_helper);
        RuntimeLiveness *l = new_liveness(NULL, &s);
        sample(l, 1 * USEC_PER_SEC, &lv);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_int_equal(lv.n_helpers, 0);
        assert_int_equal(runtime_liveness_kill_helper(l, 601, NULL, 0), -EPERM);

        assert_int_equal(runtime_liveness_add_companion(l, &rp), 0);
        assert_int_equal(runtime_liveness_add_companion(l, &rp), 0); /* again: a no-op */
        sample(l, 3 * USEC_PER_SEC, &lv);
        sample(l, 4 * USEC_PER_SEC, &lv);
        assert_true(lv.available);
        assert_int_equal(lv.n_helpers, 1);
        assert_int_equal(lv.busiest_pid, 601);
        for (pid_t decoy = 201; decoy <= 301; decoy++)
                assert_int_equal(runtime_liveness_kill_helper(l, decoy, NULL, 0), -EPERM);
        assert_int_equal(runtime_liveness_kill_helper(l, 601, NULL, 0), 0);
        assert_int_equal(s.n, 1);
        assert_int_equal(s.pid[0], 601);

        /* containerd as dockerd's child (dockerd's managed containerd): one helper, not two */
        cd.ppid = 100;
        put(&cd);
        sample(l, 5 * USEC_PER_SEC, &lv);
        sample(l, 6 * USEC_PER_SEC, &lv);
        assert_int_equal(lv.n_helpers, 1);
        runtime_liveness_free(l);
}

/* The extraction target's probe as status reports it: none until watched, then the directory, and a
 * count and time of the samples that saw it grow (a file written into the newest layer's diff). */
static void test_disk_probe_reported(void **state) {
        Signals s = {};
        LivenessDelta lv;
        char ovl[128], diff[192], file[256];
        usec_t at = 1;
        unsigned n = 7;
        FILE *f;

        node();
        RuntimeLiveness *l = new_liveness(NULL, &s);
        assert_null(runtime_liveness_disk(l, &at, &n));
        assert_int_equal(at, 0);
        assert_int_equal(n, 0);

        snprintf(ovl, sizeof(ovl), "%s/overlay2", root);
        snprintf(diff, sizeof(diff), "%s/layer1", ovl);
        assert_int_equal(mkdir(ovl, 0755), 0);
        assert_int_equal(mkdir(diff, 0755), 0);
        strcat(diff, "/diff");
        assert_int_equal(mkdir(diff, 0755), 0);
        assert_int_equal(runtime_liveness_watch_disk(l, ovl, "diff"), 0);
        assert_string_equal(runtime_liveness_disk(l, &at, &n), ovl);
        assert_int_equal(n, 0);

        sample(l, 1 * USEC_PER_SEC, &lv); /* the baseline */
        assert_false(lv.disk_grew);
        snprintf(file, sizeof(file), "%s/usr-bin-tool", diff);
        f = fopen(file, "we");
        assert_non_null(f);
        fputs("extracted bytes\n", f);
        fclose(f);
        sample(l, 2 * USEC_PER_SEC, &lv);
        assert_true(lv.disk_grew);
        assert_string_equal(runtime_liveness_disk(l, &at, &n), ovl);
        assert_int_equal(at, 2 * USEC_PER_SEC);
        assert_int_equal(n, 1);
        sample(l, 3 * USEC_PER_SEC, &lv); /* nothing written since */
        assert_false(lv.disk_grew);
        runtime_liveness_disk(l, &at, &n);
        assert_int_equal(at, 2 * USEC_PER_SEC);
        assert_int_equal(n, 1);
        runtime_liveness_free(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_socket_activated_runtime_and_decoys, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pid1_only_is_unverified, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pid_reused_between_sample_and_cut, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reparented_helper_refused, setup, teardown),
                cmocka_unit_test_setup_teardown(test_runtime_restart_followed, setup, teardown),
                cmocka_unit_test_setup_teardown(test_pidfiles, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_pidfd_reverifies, setup, teardown),
                cmocka_unit_test_setup_teardown(test_companion_runtime, setup, teardown),
                cmocka_unit_test_setup_teardown(test_disk_probe_reported, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
