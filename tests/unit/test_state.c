/* test_state: state.json round trip, the index behind state_find(), the atomic write (no temp file left, mode 0600, a crash between
 * write and rename leaves the old file), corrupt files refused with -EBADMSG, bad entries dropped. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <dirent.h>
#include <ftw.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "basic/atomic_file.h"
#include "daemon/preheat/state.h"

static char tmpdir[] = "/tmp/test_state.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }
static int setup(void **s) { return mkdtemp(tmpdir) ? 0 : -1; }
static int teardown(void **s) { return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static const char *sub(const char *name) {
        static char p[4096];
        snprintf(p, sizeof p, "%s/%s", tmpdir, name);
        return p;
}

static void write_text(const char *path, const char *text) {
        FILE *f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
}

static unsigned count_entries(const char *dir) {
        DIR *d = opendir(dir);
        struct dirent *e;
        unsigned n = 0;
        assert_non_null(d);
        while ((e = readdir(d)))
                n += e->d_name[0] != '.';
        closedir(d);
        return n;
}

static void test_missing_file_is_empty(void **s) {
        _cleanup_state_ State *st = NULL;
        assert_int_equal(state_load(sub("nothing-here"), &st), 0);
        assert_int_equal(st->n, 0);
        assert_false(st->dirty);
}

static void test_round_trip(void **s) {
        _cleanup_state_ State *st = NULL, *back = NULL;
        const char *dir = sub("rt");
        uint64_t t = 1795691762ULL * USEC_PER_SEC;
        const StateEntry *e;
        struct stat sb;

        assert_int_equal(state_new(dir, &st), 0);
        assert_int_equal(state_record_success(st, "127.0.0.1:5000/a:v1", "docker", "sha256:aaaa", 2, t), 0);
        assert_int_equal(state_record_failure(st, "127.0.0.1:5000/b:v1", "containerd", "not found\nsecond line", 1, t + USEC_PER_SEC), 0);
        assert_int_equal(state_record_present(st, "127.0.0.1:5000/c:v1", "docker", NULL, t), 0);
        assert_true(st->dirty);
        /* the directory is created on the first save, 0700 */
        assert_int_equal(state_save(st, false), 0);
        assert_false(st->dirty);
        assert_int_equal(stat(dir, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0700);
        assert_int_equal(stat(st->path, &sb), 0);
        assert_int_equal(sb.st_mode & 0777, 0600);
        assert_int_equal(count_entries(dir), 1); /* no temp file left */

        assert_int_equal(state_load(dir, &back), 0);
        assert_int_equal(back->n, 3);
        e = state_find(back, "127.0.0.1:5000/a:v1", "docker");
        assert_non_null(e);
        assert_string_equal(e->digest, "sha256:aaaa");
        assert_int_equal(e->attempts, 2);
        assert_true(e->last_success == t && e->last_attempt == t);
        assert_null(e->last_error);
        e = state_find(back, "127.0.0.1:5000/b:v1", "containerd");
        assert_non_null(e);
        assert_string_equal(e->last_error, "not found\nsecond line");
        assert_true(e->last_success == 0);
        assert_null(e->digest);
        assert_null(state_find(back, "127.0.0.1:5000/b:v1", "docker"));
        e = state_find(back, "127.0.0.1:5000/c:v1", "docker");
        assert_non_null(e);
        assert_true(e->last_success == t); /* present without our pull counts as a success */

        /* a success after a failure clears the error; removal forgets */
        assert_int_equal(state_record_success(back, "127.0.0.1:5000/b:v1", "containerd", "sha256:bbbb", 3, t), 0);
        assert_null(state_find(back, "127.0.0.1:5000/b:v1", "containerd")->last_error);
        state_remove(back, "127.0.0.1:5000/a:v1", "docker");
        assert_int_equal(back->n, 2);
        assert_null(state_find(back, "127.0.0.1:5000/a:v1", "docker"));
}

static void test_save_only_when_dirty(void **s) {
        _cleanup_state_ State *st = NULL;
        const char *dir = sub("clean");
        struct stat sb;

        assert_int_equal(state_new(dir, &st), 0);
        assert_int_equal(state_save(st, false), 0);
        assert_int_equal(stat(st->path, &sb), -1); /* nothing changed: nothing written */
        assert_int_equal(state_save(st, true), 0);
        assert_int_equal(stat(st->path, &sb), 0);
}

static void test_atomic_replace(void **s) {
        _cleanup_free_ char *path = strdup(sub("atomic.txt")), *dir = strdup(sub("adir")), *back = NULL;
        unsigned before;
        size_t n;

        assert_int_equal(write_file_atomic(path, "old", 3, 0644), 0);
        assert_int_equal(write_file_atomic(path, "new content", 11, 0640), 0);
        assert_int_equal(read_file_full(path, 1024, &back, &n), 0);
        assert_int_equal(n, 11);
        assert_string_equal(back, "new content");
        /* a rename that fails (a non-empty directory is in the way) leaves no temp file behind */
        assert_int_equal(mkdir_p(dir, 0755), 0);
        write_text(sub("adir/keep"), "x");
        before = count_entries(tmpdir);
        assert_true(write_file_atomic(dir, "new", 3, 0644) < 0);
        assert_int_equal(count_entries(tmpdir), before);
        assert_int_equal(count_entries(dir), 1);
        /* and a missing directory is an error, not a crash */
        assert_int_equal(write_file_atomic(sub("no-such-dir/x"), "new", 3, 0644), -ENOENT);
}

static void test_read_limit(void **s) {
        _cleanup_free_ char *b = NULL;
        size_t n;
        write_text(sub("big"), "0123456789");
        assert_int_equal(read_file_full(sub("big"), 4, &b, &n), -EFBIG);
        assert_null(b);
}

static void test_corrupt(void **s) {
        static const char *const bad[] = {
                "{not json",
                "",
                "[]",
                "{\"version\":2,\"images\":[]}",
                "{\"version\":\"1\",\"images\":[]}",
                "{\"version\":1}",
                "{\"version\":1,\"images\":{}}",
                "{\"version\":1,\"images\":[],\"version\":1}", /* duplicate key */
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char name[32];
                State *st = (State *) 0x1;
                snprintf(name, sizeof name, "corrupt%zu", i);
                assert_int_equal(mkdir_p(sub(name), 0700), 0);
                snprintf(name, sizeof name, "corrupt%zu/state.json", i);
                write_text(sub(name), bad[i]);
                snprintf(name, sizeof name, "corrupt%zu", i);
                assert_int_equal(state_load(sub(name), &st), -EBADMSG);
                assert_ptr_equal(st, (State *) 0x1); /* untouched on failure */
        }
}

static void test_bad_entries_dropped(void **s) {
        _cleanup_state_ State *st = NULL;
        assert_int_equal(mkdir_p(sub("partial"), 0700), 0);
        write_text(sub("partial/state.json"),
                   "{\"version\":1,\"images\":["
                   "{\"image\":\"a\",\"runtime\":\"docker\",\"digest\":\"sha256:1\",\"last_success\":\"2026-11-26T11:16:02Z\",\"attempts\":1},"
                   "{\"image\":\"b\"},"                                              /* no runtime */
                   "{\"image\":\"c\",\"runtime\":\"docker\",\"last_success\":\"yesterday\"}," /* bad time */
                   "{\"image\":\"d\",\"runtime\":\"docker\",\"attempts\":-3},"        /* bad count */
                   "{\"image\":\"e\",\"runtime\":\"docker\",\"digest\":42},"          /* bad type */
                   "{\"image\":\"a\",\"runtime\":\"docker\",\"digest\":\"sha256:dup\"}," /* duplicate: first wins */
                   "7,"
                   "{\"image\":\"f\",\"runtime\":\"containerd\",\"future_field\":true}"
                   "]}");
        assert_int_equal(state_load(sub("partial"), &st), 0);
        assert_int_equal(st->n, 2);
        assert_string_equal(state_find(st, "a", "docker")->digest, "sha256:1");
        assert_non_null(state_find(st, "f", "containerd"));
}

static void test_timestamps(void **s) {
        char buf[32];
        uint64_t t;
        assert_int_equal(format_timestamp(1795691762ULL * USEC_PER_SEC + 999999, buf, sizeof buf), 0);
        assert_string_equal(buf, "2026-11-26T11:16:02Z");
        assert_int_equal(parse_timestamp(buf, &t), 0);
        assert_true(t == 1795691762ULL * USEC_PER_SEC);
        assert_int_equal(parse_timestamp("2026-11-26 11:16:02", &t), -EINVAL);
        assert_int_equal(parse_timestamp("2026-11-26T11:16:02Zjunk", &t), -EINVAL);
        assert_int_equal(parse_timestamp(NULL, &t), -EINVAL);
}

static void test_set_dir(void **s) {
        _cleanup_state_ State *st = NULL, *back = NULL;
        assert_int_equal(state_new(sub("one"), &st), 0);
        assert_int_equal(state_record_success(st, "x", "docker", "sha256:x", 1, USEC_PER_SEC), 0);
        assert_int_equal(state_set_dir(st, sub("two/deeper")), 0);
        assert_int_equal(state_save(st, false), 0);
        assert_int_equal(state_load(sub("two/deeper"), &back), 0);
        assert_int_equal(back->n, 1);
}

/* The index behind state_find(): thousands of entries on two runtimes, found by key after growth, after
 * removals (which shift positions), and after a load; a second ensure of a key finds, never adds. */
static void test_index(void **s) {
        _cleanup_state_ State *st = NULL, *back = NULL;
        const char *rt[2] = { "docker", "containerd" };
        char img[64];
        StateEntry *e;
        json_t *j;
        enum { N = 3000 };

        assert_int_equal(state_new(sub("index"), &st), 0);
        assert_null(state_find(st, "none", "docker"));
        for (unsigned i = 0; i < N; i++) {
                snprintf(img, sizeof img, "127.0.0.1:5000/load/img:t%04u", i);
                assert_int_equal(state_record_success(st, img, rt[i % 2], "sha256:d", 1, USEC_PER_SEC * (1 + i)), 0);
        }
        assert_int_equal(st->n, N);
        for (unsigned i = 0; i < N; i++) {
                snprintf(img, sizeof img, "127.0.0.1:5000/load/img:t%04u", i);
                e = state_find(st, img, rt[i % 2]);
                assert_non_null(e);
                assert_string_equal(e->image, img);
                assert_int_equal(e->last_success, USEC_PER_SEC * (1 + i));
                assert_null(state_find(st, img, rt[(i + 1) % 2])); /* same image, other runtime: not there */
                assert_int_equal(state_ensure(st, img, rt[i % 2], &e), 0);
        }
        assert_int_equal(st->n, N);
        for (unsigned i = 0; i < N; i += 3) {
                snprintf(img, sizeof img, "127.0.0.1:5000/load/img:t%04u", i);
                state_remove(st, img, rt[i % 2]);
        }
        assert_int_equal(st->n, N - N / 3);
        for (unsigned i = 0; i < N; i++) {
                snprintf(img, sizeof img, "127.0.0.1:5000/load/img:t%04u", i);
                e = state_find(st, img, rt[i % 2]);
                if (i % 3 == 0)
                        assert_null(e);
                else {
                        assert_non_null(e);
                        assert_int_equal(e->last_success, USEC_PER_SEC * (1 + i));
                }
        }
        j = state_to_json(st);
        assert_non_null(j);
        assert_int_equal(state_new(sub("index"), &back), 0);
        assert_int_equal(state_from_json(j, back), 0);
        json_decref(j);
        assert_int_equal(back->n, N - N / 3);
        snprintf(img, sizeof img, "127.0.0.1:5000/load/img:t%04u", N - 1);
        e = state_find(back, img, rt[(N - 1) % 2]);
        assert_non_null(e);
        assert_int_equal(e->last_success, USEC_PER_SEC * N); /* the file keeps seconds */
}

/* state_serialize() hands the text out and counts the state as saved; a failed write marks it dirty. */
static void test_serialize(void **s) {
        _cleanup_state_ State *st = NULL, *back = NULL;
        _cleanup_free_ char *text = NULL, *none = NULL;

        assert_int_equal(state_new(sub("ser"), &st), 0);
        assert_int_equal(state_record_failure(st, "y", "docker", "manifest unknown", 1, USEC_PER_SEC), 0);
        assert_int_equal(state_serialize(st, false, &text), 0);
        assert_non_null(text);
        assert_false(st->dirty);
        assert_int_equal(state_serialize(st, false, &none), 0);
        assert_null(none);
        assert_int_equal(state_write_text(sub("ser/deeper/state.json"), text), 0);
        assert_int_equal(state_load(sub("ser/deeper"), &back), 0);
        assert_int_equal(back->n, 1);
        assert_string_equal(back->entries[0].last_error, "manifest unknown");
        assert_true(state_write_text(sub("ser/deeper/state.json/x"), text) < 0); /* under a file */
        state_mark_dirty(st);
        assert_true(st->dirty);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_missing_file_is_empty),
                cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_save_only_when_dirty),
                cmocka_unit_test(test_atomic_replace),
                cmocka_unit_test(test_read_limit),
                cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_bad_entries_dropped),
                cmocka_unit_test(test_timestamps),
                cmocka_unit_test(test_set_dir),
                cmocka_unit_test(test_index),
                cmocka_unit_test(test_serialize),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
