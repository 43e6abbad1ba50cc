/* test_state_writer: the worker thread writes the newest text submitted, in order; the loop hears of
 * each finished write (its result and path) through the writer's event source; sync writes what waits
 * on the caller's thread; a failed write is reported, not lost; free writes what is left. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "basic/read_file.h"
#include "daemon/preheat/state_writer.h"

static char tmpdir[] = "/tmp/test_state_writer.XXXXXX";

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) { return remove(path); }
static int setup(void **s) { return mkdtemp(tmpdir) ? 0 : -1; }
static int teardown(void **s) { return nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS); }

static char *sub(const char *name) {
        char *p;
        assert_true(asprintf(&p, "%s/%s", tmpdir, name) > 0);
        return p;
}

static char *dup_text(const char *t) {
        char *c = strdup(t);
        assert_non_null(c);
        return c;
}

static char *file_text(const char *path) {
        char *text = NULL;
        size_t size;
        assert_int_equal(read_file_full(path, 1 << 20, &text, &size), 0);
        return text;
}

typedef struct Heard {
        unsigned n;
        int last_r;
        char last_path[4096];
} Heard;

static void on_done(int r, const char *path, void *userdata) {
        Heard *h = userdata;
        h->n++;
        h->last_r = r;
        snprintf(h->last_path, sizeof h->last_path, "%s", path ? path : "");
}

/* Run the loop until the writer has been heard from `want` times in all (or 5 s passed). */
static void run_until(sd_event *e, Heard *h, unsigned want) {
        for (int i = 0; i < 500 && h->n < want; i++)
                assert_true(sd_event_run(e, 10 * 1000) >= 0);
}

static void test_newest_text_wins(void **s) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        StateWriter *w = NULL;
        Heard h = {};
        _cleanup_free_ char *path = sub("a/state.json"), *got = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(state_writer_new(e, on_done, &h, &w), 0);
        /* one write, by the worker: the loop hears of it */
        assert_int_equal(state_writer_submit(w, dup_text(path), dup_text("one")), 0);
        run_until(e, &h, 1);
        assert_int_equal(h.n, 1);
        assert_int_equal(h.last_r, 0);
        assert_string_equal(h.last_path, path);
        /* many: whichever the worker or sync writes, the last one ends on disk */
        for (unsigned i = 0; i < 50; i++) {
                char t[32];
                snprintf(t, sizeof t, "{\"n\": %u}\n", i);
                assert_int_equal(state_writer_submit(w, dup_text(path), dup_text(t)), 0);
        }
        assert_int_equal(state_writer_sync(w), 0);
        assert_false(state_writer_busy(w));
        got = file_text(path);
        assert_string_equal(got, "{\"n\": 49}\n"); /* never an older text after a newer one */
        state_writer_free(w);
}

static void test_failure_reported(void **s) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        StateWriter *w = NULL;
        Heard h = {};
        _cleanup_free_ char *file = sub("plain"), *bad = sub("plain/under/state.json");
        FILE *f = fopen(file, "we");

        assert_non_null(f);
        fclose(f);
        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(state_writer_new(e, on_done, &h, &w), 0);
        assert_int_equal(state_writer_submit(w, dup_text(bad), dup_text("{}")), 0);
        run_until(e, &h, 1);
        assert_int_equal(h.n, 1);
        assert_true(h.last_r < 0); /* a directory under a plain file: ENOTDIR */
        assert_string_equal(h.last_path, bad);
        state_writer_free(w);
}

static void test_free_writes_what_waits(void **s) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        StateWriter *w = NULL;
        _cleanup_free_ char *path = sub("b/state.json"), *got = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(state_writer_new(e, NULL, NULL, &w), 0);
        assert_int_equal(state_writer_submit(w, dup_text(path), dup_text("first")), 0);
        assert_int_equal(state_writer_submit(w, dup_text(path), dup_text("last")), 0);
        assert_null(state_writer_free(w)); /* the loop never ran: the file is there anyway */
        got = file_text(path);
        assert_string_equal(got, "last");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_newest_text_wins),
                cmocka_unit_test(test_failure_reported),
                cmocka_unit_test(test_free_writes_what_waits),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
