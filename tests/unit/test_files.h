/* test_files.h: the temp-dir fixture and repo paths the file-reading unit tests share (header only;
 * include after cmocka.h). Owns nothing beyond one temp dir per test binary. */
#pragma once

#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <unistd.h>

/* Filled by setup: a fresh directory per test binary, removed whole by teardown. */
static char tmpdir[64];

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static int setup(void **state) {
        snprintf(tmpdir, sizeof tmpdir, "/tmp/pullwatch-unit.XXXXXX");
        return mkdtemp(tmpdir) ? 0 : -1;
}

static int teardown(void **state) {
        return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Write text to tmpdir/name; returns the path (static buffer, one at a time). */
static inline const char *write_file(const char *name, const char *text) {
        static char path[4096];
        FILE *f;

        snprintf(path, sizeof path, "%s/%s", tmpdir, name);
        f = fopen(path, "we");
        assert_non_null(f);
        fputs(text, f);
        assert_int_equal(fclose(f), 0);
        return path;
}

/* The repo root, found by a file it holds: from __FILE__ (relative to the root under `make unit`),
 * else upwards from the binary. */
static inline const char *srcdir_holding(const char *rel) {
        static char dir[4096];
        char file[] = __FILE__, probe[4200], exe[4096];
        ssize_t n;

        snprintf(dir, sizeof dir, "%s/../..", dirname(file));
        snprintf(probe, sizeof probe, "%s/%s", dir, rel);
        if (access(probe, R_OK) == 0)
                return dir;
        n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
                exe[n] = 0;
                for (char *d = dirname(exe); strlen(d) > 1; d = dirname(d)) {
                        snprintf(probe, sizeof probe, "%s/%s", d, rel);
                        if (access(probe, R_OK) == 0) {
                                snprintf(dir, sizeof dir, "%s", d);
                                return dir;
                        }
                }
        }
        return dir;
}
