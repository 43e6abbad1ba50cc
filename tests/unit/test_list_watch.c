/* test_list_watch: every way a list file changes reaches the owner, debounced, through real inotify:
 * an editor's write-to-temp-and-rename, an in-place write, delete + re-create, a Kubernetes ConfigMap
 * `..data` symlink swap, a directory that is missing at first (watched through its parent), and a
 * directory removed and made again. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "daemon/preheat/list_watch.h"

#define DEBOUNCE (60 * USEC_PER_MSEC)

static char tmpdir[] = "/tmp/test_list_watch.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }
static int setup(void **s) { return mkdtemp(tmpdir) ? 0 : -1; }
static int teardown(void **s) { return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

typedef struct World {
        sd_event *event;
        ListWatch *watch;
        unsigned changes;
} World;

static void on_changed(ListWatch *w, void *userdata) { ((World *) userdata)->changes++; }

static char *path_of(const char *rel) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmpdir, rel) > 0);
        return p;
}

static void world_start(World *w, const char *rel) {
        _cleanup_free_ char *p = path_of(rel);
        *w = (World) {};
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(list_watch_new(w->event, p, DEBOUNCE, on_changed, w, &w->watch), 0);
}

static void world_stop(World *w) {
        w->watch = list_watch_free(w->watch);
        sd_event_unref(w->event);
}

/* Run until a change is reported (within 2 s), then long enough to see any second report. */
static unsigned settle(World *w) {
        unsigned before = w->changes;
        usec_t end = now_monotonic() + 2 * USEC_PER_SEC;
        while (w->changes == before && now_monotonic() < end)
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
        end = now_monotonic() + 3 * DEBOUNCE;
        while (now_monotonic() < end)
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
        return w->changes - before;
}

static void write_at(const char *rel, const char *text, int flags) {
        _cleanup_free_ char *p = path_of(rel);
        int fd = open(p, O_WRONLY | O_CREAT | O_CLOEXEC | flags, 0644);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, text, strlen(text)), (ssize_t) strlen(text));
        assert_int_equal(close(fd), 0);
}

static void do_rename(const char *from, const char *to) {
        _cleanup_free_ char *a = path_of(from), *b = path_of(to);
        assert_int_equal(rename(a, b), 0);
}

static void do_symlink(const char *target, const char *rel) {
        _cleanup_free_ char *p = path_of(rel);
        assert_int_equal(symlink(target, p), 0);
}

static void do_mkdir(const char *rel) {
        _cleanup_free_ char *p = path_of(rel);
        assert_int_equal(mkdir(p, 0755), 0);
}

static void test_editor_rename(void **s) {
        World w;
        do_mkdir("ed");
        write_at("ed/preheat.yaml", "- a:1\n", O_TRUNC);
        world_start(&w, "ed/preheat.yaml");
        assert_int_equal(settle(&w), 0); /* nothing happened: nothing reported */
        write_at("ed/.preheat.yaml.swp", "- a:1\n- b:1\n", O_TRUNC);
        do_rename("ed/.preheat.yaml.swp", "ed/preheat.yaml");
        assert_int_equal(settle(&w), 1);
        world_stop(&w);
}

static void test_in_place_write_debounced(void **s) {
        World w;
        do_mkdir("inplace");
        write_at("inplace/preheat.yaml", "- a:1\n", O_TRUNC);
        world_start(&w, "inplace/preheat.yaml");
        /* truncate, then a burst of appends: one report */
        write_at("inplace/preheat.yaml", "- a:1\n", O_TRUNC);
        for (int i = 0; i < 20; i++)
                write_at("inplace/preheat.yaml", "- b:1\n", O_APPEND);
        assert_int_equal(settle(&w), 1);
        world_stop(&w);
}

static void test_delete_and_recreate(void **s) {
        World w;
        _cleanup_free_ char *p = path_of("del/preheat.yaml");
        do_mkdir("del");
        write_at("del/preheat.yaml", "- a:1\n", O_TRUNC);
        world_start(&w, "del/preheat.yaml");
        assert_int_equal(unlink(p), 0);
        assert_int_equal(settle(&w), 1);
        write_at("del/preheat.yaml", "- c:1\n", O_TRUNC);
        assert_int_equal(settle(&w), 1);
        world_stop(&w);
}

static void test_configmap_symlink_swap(void **s) {
        World w;
        /* how the kubelet lays out a ConfigMap volume */
        do_mkdir("cm");
        do_mkdir("cm/..2026_01_01_00_00_00.1");
        write_at("cm/..2026_01_01_00_00_00.1/preheat.yaml", "- a:1\n", O_TRUNC);
        do_symlink("..2026_01_01_00_00_00.1", "cm/..data");
        do_symlink("..data/preheat.yaml", "cm/preheat.yaml");
        world_start(&w, "cm/preheat.yaml");
        /* the update: a new timestamped dir, a new ..data_tmp link renamed over ..data */
        do_mkdir("cm/..2026_01_01_00_05_00.2");
        write_at("cm/..2026_01_01_00_05_00.2/preheat.yaml", "- a:1\n- b:1\n", O_TRUNC);
        do_symlink("..2026_01_01_00_05_00.2", "cm/..data_tmp");
        do_rename("cm/..data_tmp", "cm/..data");
        assert_int_equal(settle(&w), 1);
        world_stop(&w);
}

static void test_missing_directory(void **s) {
        World w;
        _cleanup_free_ char *parent = path_of("later"), *dir = path_of("later/etc");

        world_start(&w, "later/etc/preheat.yaml");
        assert_string_equal(list_watch_watched_dir(w.watch), tmpdir); /* nearest existing parent */
        do_mkdir("later");
        assert_int_equal(settle(&w), 0); /* not our directory yet */
        assert_string_equal(list_watch_watched_dir(w.watch), parent);
        do_mkdir("later/etc");
        assert_int_equal(settle(&w), 1);
        assert_string_equal(list_watch_watched_dir(w.watch), dir);
        write_at("later/etc/preheat.yaml", "- a:1\n", O_TRUNC);
        assert_int_equal(settle(&w), 1);
        /* the directory goes away and comes back */
        _cleanup_free_ char *file = path_of("later/etc/preheat.yaml");
        assert_int_equal(unlink(file), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_true(settle(&w) >= 1);
        assert_string_equal(list_watch_watched_dir(w.watch), parent);
        do_mkdir("later/etc");
        write_at("later/etc/preheat.yaml", "- b:1\n", O_TRUNC);
        assert_true(settle(&w) >= 1);
        assert_string_equal(list_watch_watched_dir(w.watch), dir);
        world_stop(&w);
}

static void test_bad_path(void **s) {
        ListWatch *w = NULL;
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(list_watch_new(e, "relative/preheat.yaml", DEBOUNCE, on_changed, NULL, &w), -EINVAL);
        assert_null(w);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_editor_rename),
                cmocka_unit_test(test_in_place_write_debounced),
                cmocka_unit_test(test_delete_and_recreate),
                cmocka_unit_test(test_configmap_symlink_swap),
                cmocka_unit_test(test_missing_directory),
                cmocka_unit_test(test_bad_path),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
