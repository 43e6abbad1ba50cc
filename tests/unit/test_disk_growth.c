/* test_disk_growth: the bounded growth probe on real temp trees: growth shows, stillness does not,
 * a first pass over a big old tree is not growth, the cost stays under the budget, the hot set follows
 * an extraction that moves through a tree too big to sweep each sample, candidate choice. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "probes/host/disk_growth.h"

static char top[64];

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }

static int setup(void **state) {
        snprintf(top, sizeof(top), "/tmp/pullwatch-dg-XXXXXX");
        return mkdtemp(top) ? 0 : -1;
}

static int teardown(void **state) { return nftw(top, rm_one, 32, FTW_DEPTH | FTW_PHYS); }

/* Past the 4 ms tick the kernel stamps ctime with, so "after the sample" is visible. */
static void tick(void) { usleep(20 * 1000); }

static void mkdir_p(const char *rel) {
        char path[1024], *p;

        snprintf(path, sizeof(path), "%s/%s", top, rel);
        for (p = path + strlen(top) + 1; (p = strchr(p, '/')); p++) {
                *p = 0;
                (void) mkdir(path, 0755);
                *p = '/';
        }
        (void) mkdir(path, 0755);
}

static void append(const char *rel, size_t bytes) {
        static char block[65536];
        char path[1024];

        snprintf(path, sizeof(path), "%s/%s", top, rel);
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        assert_true(fd >= 0);
        for (size_t done = 0; done < bytes;) {
                size_t n = MIN(sizeof(block), bytes - done);
                memset(block, 'x', n);
                assert_int_equal(write(fd, block, n), (ssize_t) n);
                done += n;
        }
        assert_int_equal(fsync(fd), 0); /* st_blocks counts allocated blocks: allocate them now */
}

static const char *at(const char *rel) {
        static char path[1024];
        snprintf(path, sizeof(path), "%s/%s", top, rel);
        return path;
}

/* A tree of dirs x files_per_dir 4 KiB files under rel. */
static void make_tree(const char *rel, unsigned dirs, unsigned files_per_dir) {
        char path[512];

        for (unsigned i = 0; i < dirs; i++)
                for (unsigned j = 0; j < files_per_dir; j++) {
                        snprintf(path, sizeof(path), "%s/d%03u/sub", rel, i);
                        if (j == 0)
                                mkdir_p(path);
                        snprintf(path, sizeof(path), "%s/d%03u/sub/f%04u", rel, i, j);
                        _cleanup_close_ int fd = open(at(path), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
                        assert_true(fd >= 0);
                }
}

static uint64_t sample(DiskGrowth *d, uint64_t max_cost) {
        uint64_t signal = 0, cost = 0;
        assert_int_equal(disk_growth_sample(d, 0, &signal, &cost), 0);
        assert_true(cost <= max_cost);
        return signal;
}

static void test_growth_visible(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        uint64_t s0, s1, s2, s3, s4;
        const uint64_t cap = DISK_GROWTH_BUDGET_DEFAULT + 1 + 16;

        mkdir_p("overlay2/l");
        mkdir_p("overlay2/aaa/diff/usr/lib");
        append("overlay2/aaa/diff/usr/lib/libc.so", 8192);
        append("overlay2/aaa/diff/etc", 100);
        tick();

        assert_int_equal(disk_growth_new(at("overlay2"), "diff", &d), 0);
        s0 = sample(d, cap);
        s1 = sample(d, cap);
        assert_int_equal(s1, s0); /* nothing happened */

        tick();
        append("overlay2/aaa/diff/usr/lib/libc.so", 256 * 1024);
        s2 = sample(d, cap);
        assert_true(s2 >= s1 + 256 * 1024); /* grew, by about the bytes written */
        assert_true(s2 < s1 + 2 * 1024 * 1024);

        s3 = sample(d, cap);
        assert_int_equal(s3, s2);

        tick();
        mkdir_p("overlay2/aaa/diff/usr/share/doc"); /* entries alone, no bytes, count too */
        s4 = sample(d, cap);
        assert_true(s4 > s3);
        assert_int_equal(sample(d, cap), s4);

        DiskGrowthStats st;
        disk_growth_stats(d, &st);
        assert_int_equal(st.n_candidates, 1); /* "l" has no diff */
        assert_string_equal(st.newest, "aaa");
        assert_true(st.passes >= 2);
        assert_true(st.pass_entries >= 6);
        assert_true(st.pass_bytes >= 256 * 1024);
}

/* A tree bigger than the budget: the first pass takes several samples and is not growth; cost stays
 * capped; writing in a cold corner is found within a pass. */
static void test_big_tree_capped(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        const unsigned dirs = 50, files = 100; /* 5000 files + 100 dirs */
        const uint64_t cap = DISK_GROWTH_BUDGET_DEFAULT + 1 + 1 + 1; /* budget, dir, refresh */
        const unsigned pass_samples = (dirs * (files + 2)) / DISK_GROWTH_BUDGET_DEFAULT + 2;
        uint64_t s0, s, cost = 0;
        bool seen = false;

        mkdir_p("overlay2/big/diff");
        make_tree("overlay2/big/diff", dirs, files);
        tick();
        assert_int_equal(disk_growth_new(at("overlay2"), "diff", &d), 0);

        assert_int_equal(disk_growth_sample(d, 0, &s0, &cost), 0);
        assert_true(cost <= cap);
        assert_true(cost >= DISK_GROWTH_BUDGET_DEFAULT); /* the budget is used, not wasted */
        for (unsigned i = 0; i < 2 * pass_samples; i++) {
                assert_int_equal(disk_growth_sample(d, 0, &s, &cost), 0);
                assert_true(cost <= DISK_GROWTH_BUDGET_DEFAULT + 1);
                assert_int_equal(s, s0); /* old files met late are not growth */
        }
        DiskGrowthStats st;
        disk_growth_stats(d, &st);
        assert_true(st.passes >= 2);
        assert_int_equal(st.pass_entries, dirs * (files + 2));

        /* A file deep in a cold corner that keeps being written is found within a pass. */
        for (unsigned i = 0; i < pass_samples + 1 && !seen; i++) {
                tick();
                append("overlay2/big/diff/d037/sub/f0042", 4096);
                seen = sample(d, DISK_GROWTH_BUDGET_DEFAULT + 1) > s0;
        }
        assert_true(seen);
        /* From then on it is hot: every further write shows in the very next sample. */
        for (unsigned i = 0; i < 3; i++) {
                tick();
                append("overlay2/big/diff/d037/sub/f0042", 4096);
                s = sample(d, DISK_GROWTH_BUDGET_DEFAULT + 1);
                assert_true(s >= s0 + 4096);
                s0 = s;
        }
}

/* An extraction walking a tree far bigger than one sample can sweep: every sample sees it. */
static void test_hot_follows_extraction(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        static const char *const steps[] = {
                "new/a/1", "new/a/2", "new/a/2/deeper", "new/b", "new/b/x/y/z", "new/c", "other", "other/q",
        };
        const unsigned budget = 200;
        uint64_t prev;
        char path[512];

        mkdir_p("overlay2/layer/diff");
        make_tree("overlay2/layer/diff", 30, 100); /* 3000 files: 15+ samples per pass */
        tick();
        assert_int_equal(disk_growth_new(at("overlay2"), "diff", &d), 0);
        assert_int_equal(disk_growth_set_budget(d, budget), 0);
        prev = sample(d, budget + 2 + 1);
        prev = sample(d, budget + 1);

        for (size_t i = 0; i < ELEMENTSOF(steps); i++) {
                uint64_t s;

                tick();
                snprintf(path, sizeof(path), "overlay2/layer/diff/%s", steps[i]);
                mkdir_p(path);
                snprintf(path, sizeof(path), "overlay2/layer/diff/%s/file%zu", steps[i], i);
                append(path, 4096);
                s = sample(d, budget + 1);
                assert_true(s > prev);
                prev = s;

                /* Then one big file written over several samples, in place. */
                for (unsigned k = 0; k < 2; k++) {
                        tick();
                        append(path, 128 * 1024);
                        s = sample(d, budget + 1);
                        assert_true(s >= prev + 128 * 1024);
                        prev = s;
                }
                assert_int_equal(sample(d, budget + 1), prev);
        }
}

/* pullwatch (re)started in the middle of an extraction: the first pass seeds the hot set with the
 * newest entries, so the file being written shows in every sample once that pass is done. */
static void test_seeded_mid_extraction(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        const unsigned budget = 100;
        DiskGrowthStats st;
        uint64_t prev, s;

        mkdir_p("overlay2/layer/diff");
        make_tree("overlay2/layer/diff", 20, 50);
        tick();
        append("overlay2/layer/diff/d013/sub/active", 4096);
        tick();
        assert_int_equal(disk_growth_new(at("overlay2"), "diff", &d), 0);
        assert_int_equal(disk_growth_set_budget(d, budget), 0);
        prev = sample(d, budget + 3);
        for (disk_growth_stats(d, &st); st.passes < 2; disk_growth_stats(d, &st))
                assert_int_equal(sample(d, budget + 1), prev);
        for (unsigned i = 0; i < 4; i++) {
                tick();
                append("overlay2/layer/diff/d013/sub/active", 8192);
                s = sample(d, budget + 1);
                assert_true(s >= prev + 8192);
                prev = s;
        }
}

static void test_candidates(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        static const char *const old[] = { "old1", "old2", "old3", "old4", "old5" };
        char path[128];
        uint64_t s0, s;

        for (size_t i = 0; i < ELEMENTSOF(old); i++) {
                snprintf(path, sizeof(path), "overlay2/%s/diff", old[i]);
                mkdir_p(path);
                tick();
        }
        mkdir_p("overlay2/l");
        mkdir_p("overlay2/zzz-init/diff");
        tick();
        mkdir_p("overlay2/new/diff");
        mkdir_p("overlay2/new/work");
        append("overlay2/lower-file", 10); /* a plain file at the top is no candidate either */
        tick();

        assert_int_equal(disk_growth_new(at("overlay2"), "diff", &d), 0);
        s0 = sample(d, UINT64_MAX);
        DiskGrowthStats st;
        disk_growth_stats(d, &st);
        assert_int_equal(st.n_candidates, DISK_GROWTH_CANDIDATES);
        assert_string_equal(st.newest, "new");

        /* Writes outside the candidates' diff dirs are not seen. */
        tick();
        append("overlay2/old1/diff/f", 65536);    /* too old */
        append("overlay2/zzz-init/diff/f", 65536); /* a container's init layer */
        append("overlay2/l/ABCDEF", 10);           /* not a layer */
        append("overlay2/new/work/f", 65536);      /* not the subdir */
        s = sample(d, UINT64_MAX);
        assert_int_equal(s, s0);

        tick();
        append("overlay2/old3/diff/f", 4096); /* candidate 4 of 4: new, old5, old4, old3 */
        s = sample(d, UINT64_MAX);
        assert_true(s > s0);
}

static void test_new_layer_picked_up(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL;
        uint64_t s0, s = 0;
        unsigned n;
        DiskGrowthStats st;

        mkdir_p("snapshots/1/fs/bin");
        mkdir_p("snapshots/1/work");
        tick();
        assert_int_equal(disk_growth_new(at("snapshots"), "fs", &d), 0);
        s0 = sample(d, UINT64_MAX);
        s0 = sample(d, UINT64_MAX);

        tick();
        mkdir_p("snapshots/2/fs/usr");
        mkdir_p("snapshots/2/work");
        for (n = 1; n <= DISK_GROWTH_REFRESH_EVERY + 1; n++) { /* an extraction: writes keep coming */
                append("snapshots/2/fs/usr/big", 256 * 1024);
                tick();
                if ((s = sample(d, UINT64_MAX)) > s0)
                        break;
        }
        assert_true(n <= DISK_GROWTH_REFRESH_EVERY);
        assert_true(s >= s0 + 256 * 1024);
        disk_growth_stats(d, &st);
        assert_string_equal(st.newest, "2");
        assert_int_equal(st.n_candidates, 2);

        /* Layer removed: dropped at the next refresh, nothing breaks. */
        assert_int_equal(nftw(at("snapshots/2"), rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        for (n = 0; n < DISK_GROWTH_REFRESH_EVERY + 1; n++)
                (void) sample(d, UINT64_MAX);
        disk_growth_stats(d, &st);
        assert_string_equal(st.newest, "1");
        assert_int_equal(st.n_candidates, 1);
}

static void test_single_target_and_errors(void **state) {
        _cleanup_disk_growth_ DiskGrowth *d = NULL, *e = NULL;
        uint64_t s0, s1, cost;

        assert_int_equal(disk_growth_new(at("target"), NULL, &d), 0);
        assert_int_equal(disk_growth_sample(d, 0, &s0, &cost), -ENOENT);
        assert_int_equal(disk_growth_new(at("top"), "diff", &e), 0);
        assert_int_equal(disk_growth_sample(e, 0, &s0, &cost), -ENOENT);

        mkdir_p("target/a");
        tick();
        assert_int_equal(disk_growth_sample(d, 0, &s0, &cost), 0);
        assert_int_equal(disk_growth_sample(d, 5, &s1, &cost), 0);
        assert_int_equal(s1, s0);
        tick();
        append("target/a/f", 4096);
        assert_int_equal(disk_growth_sample(d, 10, &s1, NULL), 0);
        assert_true(s1 > s0);
        DiskGrowthStats st;
        disk_growth_stats(d, &st);
        assert_int_equal(st.at, 10);
        assert_string_equal(st.newest, "");

        /* The target is removed and made again: the new one is watched. */
        assert_int_equal(nftw(at("target"), rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
        mkdir_p("target");
        assert_int_equal(disk_growth_sample(d, 15, &s0, NULL), 0);
        tick();
        append("target/g", 4096);
        assert_int_equal(disk_growth_sample(d, 20, &s1, NULL), 0);
        assert_true(s1 > s0);

        assert_int_equal(disk_growth_set_budget(d, DISK_GROWTH_BUDGET_MIN - 1), -EINVAL);
        assert_int_equal(disk_growth_set_budget(d, DISK_GROWTH_BUDGET_MIN), 0);
        DiskGrowth *x = NULL;
        assert_int_equal(disk_growth_new(NULL, "diff", &x), -EINVAL);
        assert_int_equal(disk_growth_new(at("top"), "a/b", &x), -EINVAL);
        assert_int_equal(disk_growth_new(at("top"), "", &x), -EINVAL);
        assert_null(x);
        assert_null(disk_growth_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_growth_visible, setup, teardown),
                cmocka_unit_test_setup_teardown(test_big_tree_capped, setup, teardown),
                cmocka_unit_test_setup_teardown(test_hot_follows_extraction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_seeded_mid_extraction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_candidates, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_layer_picked_up, setup, teardown),
                cmocka_unit_test_setup_teardown(test_single_target_and_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
