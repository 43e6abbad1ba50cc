/* test_runtime_identity: the runtime found by the listening socket's inode in a fake /proc, when the
 * configured socket path goes through a symlinked directory (/var/run -> /run) and another socket of
 * the same name listens elsewhere; a socket nobody listens on proves nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "probes/runtime/runtime_identity.h"

static char tmpdir[] = "/tmp/test_runtime_identity.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }
static int teardown(void **s) { return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

/* tmpdir/name; four at a time */
static const char *at(const char *name) {
        static char p[4][512];
        static unsigned k;
        char *b = p[k++ % 4];
        snprintf(b, 512, "%s/%s", tmpdir, name);
        return b;
}

static void put(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

/* a process running dockerd that holds socket inode `inode` on fd 3 */
static void fake_dockerd(int pid, unsigned long inode) {
        char dir[256], buf[512];
        snprintf(dir, sizeof dir, "%s/proc/%d", tmpdir, pid);
        assert_int_equal(mkdir(dir, 0755), 0);
        snprintf(buf, sizeof buf, "%s/fd", dir);
        assert_int_equal(mkdir(buf, 0755), 0);
        snprintf(buf, sizeof buf, "%s/exe", dir);
        assert_int_equal(symlink("/usr/bin/dockerd", buf), 0);
        snprintf(buf, sizeof buf, "%s/fd/3", dir);
        char target[64];
        snprintf(target, sizeof target, "socket:[%lu]", inode);
        assert_int_equal(symlink(target, buf), 0);
        snprintf(buf, sizeof buf, "%s/stat", dir);
        char stat[512];
        snprintf(stat, sizeof stat,
                 "%d (dockerd) S 1 1 1 0 -1 4194304 97 0 0 0 10 20 0 0 20 0 1 0 %d 3133440 411 "
                 "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n", pid, 1000 + pid);
        put(buf, stat);
}

static int setup(void **s) {
        char unix_text[2048];
        if (!mkdtemp(tmpdir))
                return -1;
        assert_int_equal(mkdir(at("real"), 0755), 0);
        assert_int_equal(mkdir(at("other"), 0755), 0);
        assert_int_equal(symlink(at("real"), at("link")), 0);
        put(at("real/dock.sock"), "");
        put(at("other/dock.sock"), "");
        put(at("real/quiet.sock"), "");
        assert_int_equal(mkdir(at("proc"), 0755), 0);
        assert_int_equal(mkdir(at("proc/net"), 0755), 0);
        /* Num RefCount Protocol Flags Type St Inode Path; 00010000: a listener */
        snprintf(unix_text, sizeof unix_text,
                 "Num       RefCount Protocol Flags    Type St Inode Path\n"
                 "0000000000000000: 00000002 00000000 00010000 0001 01 111 %s/other/dock.sock\n"
                 "0000000000000000: 00000002 00000000 00000000 0001 03 444 %s/real/quiet.sock\n"
                 "0000000000000000: 00000002 00000000 00010000 0001 01 222 %s/real/dock.sock\n"
                 "0000000000000000: 00000002 00000000 00010000 0001 01 333 %s/real/else.sock\n",
                 tmpdir, tmpdir, tmpdir, tmpdir);
        put(at("proc/net/unix"), unix_text);
        fake_dockerd(100, 111);
        fake_dockerd(200, 222);
        return 0;
}

static int resolve(const char *socket, RuntimeIdentity *id) {
        char proc[512], *why = NULL;
        snprintf(proc, sizeof proc, "%s/proc", tmpdir);
        RuntimeIdentitySpec spec = { .proc_root = proc, .socket = socket, .exe_names = runtime_exe_names_docker };
        int r = runtime_identity_resolve(&spec, id, &why);
        free(why);
        return r;
}

static void test_through_symlinked_dir(void **s) {
        RuntimeIdentity id;
        assert_int_equal(resolve(at("link/dock.sock"), &id), 0);
        assert_int_equal(id.pid, 200); /* not 100, whose dock.sock is another directory's */
        assert_int_equal(id.source, IDENTITY_SOCKET_INODE);
        assert_int_equal(id.start_ticks, 1200);
}

static void test_as_bound(void **s) {
        RuntimeIdentity id;
        assert_int_equal(resolve(at("other/dock.sock"), &id), 0);
        assert_int_equal(id.pid, 100);
        assert_int_equal(id.source, IDENTITY_SOCKET_INODE);
}

static void test_not_listening(void **s) {
        RuntimeIdentity id;
        /* bound but not a listener, reached through the link: no inode, and nobody answers on it */
        assert_int_equal(resolve(at("link/quiet.sock"), &id), -ESRCH);
        assert_int_equal(id.pid, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_through_symlinked_dir),
                cmocka_unit_test(test_as_bound),
                cmocka_unit_test(test_not_listening),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
