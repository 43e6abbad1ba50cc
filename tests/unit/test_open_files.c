/* test_open_files: the files a process holds open under a directory, with their sizes: a real child
 * holding dockerd-shaped blob downloads (one growing, one unlinked) among decoys, and fake /proc
 * trees for the prefix boundary, the name filter and a vanished pid. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <cmocka.h>

#include "probes/host/open_files.h"
#include "probes/host/tcp_conn.h"

static char root[64]; /* holds tmp/ (the watched dir), tmpx/ (a sibling) and proc/ (a fake tree) */

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        char p[256];
        snprintf(root, sizeof(root), "/tmp/pullwatch-open-XXXXXX");
        if (!mkdtemp(root))
                return -1;
        snprintf(p, sizeof(p), "%s/tmp", root);
        if (mkdir(p, 0755) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/tmp/sub", root);
        if (mkdir(p, 0755) < 0)
                return -1;
        snprintf(p, sizeof(p), "%s/tmpx", root);
        return mkdir(p, 0755);
}

static int teardown(void **state) {
        return nftw(root, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static int make_file(const char *rel, size_t size) {
        char p[256], buf[512] = {};
        int fd;

        snprintf(p, sizeof(p), "%s/%s", root, rel);
        fd = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        for (size_t done = 0; done < size;) {
                ssize_t n = write(fd, buf, MIN(sizeof(buf), size - done));
                assert_true(n > 0);
                done += (size_t) n;
        }
        return fd;
}

static const OpenFile *find_fd(const OpenFile *v, size_t n, int fd) {
        for (size_t i = 0; i < n; i++)
                if (v[i].fd == fd)
                        return &v[i];
        return NULL;
}

/* A child that opens what a downloading dockerd holds (plus decoys), reports its fds, and waits. */
static void test_real_child(void **state) {
        int ready[2], go[2], fds[6], status;
        char dir[256], want[512];
        OpenFile *v = NULL;
        size_t n = 0;
        pid_t child;

        assert_int_equal(pipe2(ready, O_CLOEXEC), 0);
        assert_int_equal(pipe2(go, O_CLOEXEC), 0);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                char p[256], c;
                (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
                close(ready[0]);
                close(go[1]);
                fds[0] = make_file("tmp/GetImageBlob123456", 1000);
                fds[1] = make_file("tmp/GetImageBlob777", 77);
                snprintf(p, sizeof(p), "%s/tmp/GetImageBlob777", root);
                if (unlink(p) < 0) /* dropped by name, still being written */
                        _exit(2);
                fds[2] = make_file("tmp/other.json", 5);
                fds[3] = make_file("tmp/sub/GetImageBlob9", 9);
                fds[4] = make_file("tmpx/GetImageBlob1", 1); /* a sibling dir sharing the prefix */
                snprintf(p, sizeof(p), "%s/tmp", root);
                fds[5] = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC); /* the dir itself: not a file */
                if (fds[5] < 0 || write(ready[1], fds, sizeof(fds)) != (ssize_t) sizeof(fds))
                        _exit(3);
                (void) read(go[0], &c, 1); /* until the parent closes it */
                _exit(0);
        }
        close(ready[1]);
        close(go[0]);
        struct pollfd pf = { .fd = ready[0], .events = POLLIN };
        assert_int_equal(poll(&pf, 1, 5000), 1);
        assert_int_equal(read(ready[0], fds, sizeof(fds)), (ssize_t) sizeof(fds));

        snprintf(dir, sizeof(dir), "%s/tmp", root);
        assert_int_equal(open_files_under(NULL, child, dir, OPEN_FILES_DOCKER_BLOB_PREFIX, &v, &n), 0);
        assert_int_equal(n, 3);
        const OpenFile *a = find_fd(v, n, fds[0]), *b = find_fd(v, n, fds[1]), *s = find_fd(v, n, fds[3]);
        assert_non_null(a);
        snprintf(want, sizeof(want), "%s/tmp/GetImageBlob123456", root);
        assert_string_equal(a->path, want);
        assert_int_equal(a->size, 1000);
        assert_false(a->deleted);
        assert_non_null(b);
        snprintf(want, sizeof(want), "%s/tmp/GetImageBlob777", root);
        assert_string_equal(b->path, want);
        assert_true(b->deleted);
        assert_int_equal(b->size, 77);
        assert_non_null(s); /* below the dir, in a sub-dir */
        assert_int_equal(s->size, 9);
        assert_true(v[0].fd < v[1].fd && v[1].fd < v[2].fd);
        v = open_files_free(v, n);

        /* Every file under the dir; the trailing slash does not matter. */
        snprintf(dir, sizeof(dir), "%s/tmp/", root);
        assert_int_equal(open_files_under(NULL, child, dir, NULL, &v, &n), 0);
        assert_int_equal(n, 4);
        assert_non_null(find_fd(v, n, fds[2]));
        assert_null(find_fd(v, n, fds[4]));
        assert_null(find_fd(v, n, fds[5]));
        v = open_files_free(v, n);

        /* The download grows: the size is read now, not remembered. */
        snprintf(want, sizeof(want), "%s/tmp/GetImageBlob123456", root);
        {
                _cleanup_close_ int w = open(want, O_WRONLY | O_APPEND | O_CLOEXEC);
                assert_true(w >= 0);
                assert_int_equal(write(w, "0123456789", 10), 10);
        }
        assert_int_equal(open_files_under(NULL, child, dir, "GetImageBlob1", &v, &n), 0);
        assert_int_equal(n, 1);
        assert_int_equal(v[0].size, 1010);
        v = open_files_free(v, n);

        close(go[1]);
        close(ready[0]);
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
        assert_int_equal(open_files_under(NULL, child, dir, NULL, &v, &n), -ESRCH);
}

static void fake_fd(const char *name, const char *target) {
        char p[512];
        snprintf(p, sizeof(p), "%s/proc/77/fd/%s", root, name);
        assert_int_equal(symlink(target, p), 0);
}

/* A fake tree: links to real files (stat follows them), to non-files, and to nothing. */
static void test_fake_proc(void **state) {
        char p[512], proc[256], dir[256];
        OpenFile *v = NULL;
        size_t n = 0;

        snprintf(proc, sizeof(proc), "%s/proc", root);
        assert_int_equal(mkdir(proc, 0755), 0);
        snprintf(p, sizeof(p), "%s/77", proc);
        assert_int_equal(mkdir(p, 0755), 0);
        snprintf(p, sizeof(p), "%s/77/fd", proc);
        assert_int_equal(mkdir(p, 0755), 0);
        close(make_file("tmp/GetImageBlob5", 5));
        close(make_file("tmp/GetImageBlob6", 6));

        snprintf(p, sizeof(p), "%s/tmp/GetImageBlob6", root);
        fake_fd("12", p);
        snprintf(p, sizeof(p), "%s/tmp/GetImageBlob5", root);
        fake_fd("3", p);
        fake_fd("4", "socket:[1234]");
        snprintf(p, sizeof(p), "%s/tmp/GetImageBlobGone", root);
        fake_fd("5", p); /* closed between readdir and stat */
        snprintf(p, sizeof(p), "%s/tmp", root);
        fake_fd("6", p); /* a directory */
        fake_fd("x", p); /* not an fd */

        snprintf(dir, sizeof(dir), "%s/tmp", root);
        assert_int_equal(open_files_under(proc, 77, dir, "GetImageBlob", &v, &n), 0);
        assert_int_equal(n, 2);
        assert_int_equal(v[0].fd, 3); /* in fd order whatever the readdir order */
        assert_int_equal(v[0].size, 5);
        assert_int_equal(v[1].fd, 12);
        assert_int_equal(v[1].size, 6);
        v = open_files_free(v, n);

        assert_int_equal(open_files_under(proc, 77, dir, "Nothing", &v, &n), 0);
        assert_int_equal(n, 0);
        v = open_files_free(v, n);
        /* A prefix of a path component is not "under": <root>/tm does not hold <root>/tmp/... */
        snprintf(dir, sizeof(dir), "%s/tm", root);
        assert_int_equal(open_files_under(proc, 77, dir, NULL, &v, &n), 0);
        assert_int_equal(n, 0);
        v = open_files_free(v, n);

        assert_int_equal(open_files_under(proc, 78, dir, NULL, &v, &n), -ESRCH);
        assert_int_equal(open_files_under(proc, 77, NULL, NULL, &v, &n), -EINVAL);

        /* the one walk for both callers: the same files, and the socket fds beside them */
        TcpSockFd *socks = NULL;
        size_t n_socks = 0;
        fake_fd("9", "socket:[5678]");
        fake_fd("10", "pipe:[99]");
        snprintf(dir, sizeof(dir), "%s/tmp", root);
        assert_int_equal(open_files_and_sockets(proc, 77, dir, "GetImageBlob", &v, &n, &socks, &n_socks), 0);
        assert_int_equal(n, 2);
        assert_int_equal(v[0].fd, 3);
        assert_int_equal(v[1].fd, 12);
        v = open_files_free(v, n);
        assert_int_equal(n_socks, 2);
        uint64_t seen = 0;
        for (size_t i = 0; i < n_socks; i++)
                seen += socks[i].fd == 4 && socks[i].inode == 1234 ? 1 : socks[i].fd == 9 && socks[i].inode == 5678 ? 10 : 100;
        assert_int_equal(seen, 11);
        free(socks);
        assert_int_equal(open_files_and_sockets(proc, 78, dir, NULL, &v, &n, &socks, &n_socks), -ESRCH);
        assert_int_equal(open_files_and_sockets(proc, 77, dir, NULL, &v, &n, NULL, &n_socks), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_real_child, setup, teardown),
                cmocka_unit_test_setup_teardown(test_fake_proc, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
