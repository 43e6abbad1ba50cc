/* Unit tests: the /images/create streams of dockerd 26.1.5 and 28.5.2 (classic store and containerd
 * image store), captured on the bed's trixie and unstable rows by tests/fuzz/capture_seeds.sh into
 * the fuzz corpus, go through the stream parser message by message: every message is one of dockerd's,
 * every layer status maps to a phase, every layer of a finished pull ends done, and the retry, error
 * and seconds-counter messages those versions send are told apart. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <glob.h>
#include <stdio.h>

#include "probes/docker/docker_stream.h"
#include "probes/docker/docker.h"
#include "tests/unit/test_files.h"

#define SEEDS "tests/fuzz/corpus/fuzz_docker_stream"
#define MAX_LAYERS 16

typedef struct Tally {
        const char *file;
        unsigned messages, layer_msgs, retries, errors, image_msgs, seconds_counters, extracting;
        bool digest;
        const char *error;        /* the last error text (owned by the last message: copied) */
        char error_buf[512];
        struct {
                char id[80];
                Phase last;
        } layers[MAX_LAYERS];
        unsigned n_layers;
} Tally;

static int tally(json_t *msg, void *userdata) {
        Tally *t = userdata;
        DockerMessage m;
        char *dump = json_dumps(msg, JSON_COMPACT);

        t->messages++;
        if (docker_message_parse(msg, &m) < 0)
                fail_msg("%s: message %u is none of dockerd's: %s", t->file, t->messages, dump);
        switch (m.kind) {
        case DOCKER_MSG_LAYER: {
                unsigned k;
                t->layer_msgs++;
                if (m.phase < 0 || m.phase >= _PHASE_MAX)
                        fail_msg("%s: no phase for %s", t->file, dump);
                if (m.units && streq(m.units, "s")) {
                        /* dockerd 28 on the containerd store: seconds, never bytes */
                        t->seconds_counters++;
                        assert_int_equal(m.current, 0);
                        assert_int_equal(m.total, 0);
                }
                if (m.phase == PHASE_EXTRACTING)
                        t->extracting++;
                for (k = 0; k < t->n_layers && !streq(t->layers[k].id, m.id); k++)
                        ;
                if (k == t->n_layers) {
                        assert_true(t->n_layers < MAX_LAYERS);
                        snprintf(t->layers[t->n_layers++].id, 80, "%s", m.id);
                } else if (t->layers[k].last == PHASE_DONE && m.phase != PHASE_DONE)
                        fail_msg("%s: layer %s moved on after done: %s", t->file, m.id, dump);
                t->layers[k].last = m.phase;
                break;
        }
        case DOCKER_MSG_RETRY:
                t->retries++;
                break;
        case DOCKER_MSG_ERROR:
                t->errors++;
                snprintf(t->error_buf, sizeof(t->error_buf), "%s", m.error);
                t->error = t->error_buf;
                break;
        case DOCKER_MSG_IMAGE:
                t->image_msgs++;
                t->digest |= m.digest != NULL;
                break;
        default:
                fail_msg("%s: a message the parser does not place: %s", t->file, dump);
        }
        free(dump);
        return 0;
}

static char *slurp(const char *path, size_t *ret_len) {
        FILE *f = fopen(path, "re");
        char *buf;
        long n;

        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n > 0);
        rewind(f);
        buf = malloc((size_t) n + 1);
        assert_non_null(buf);
        assert_int_equal(fread(buf, 1, (size_t) n, f), (size_t) n);
        buf[n] = 0;
        fclose(f);
        *ret_len = (size_t) n;
        return buf;
}

/* One captured file through the stream parser, fed in 7-byte reads (the split does not matter). */
static void run_file(const char *path, Tally *t) {
        DockerStream *ds = NULL;
        size_t len;
        char *data = slurp(path, &len);

        *t = (Tally) { .file = strrchr(path, '/') + 1 };
        assert_int_equal(docker_stream_new(tally, t, &ds), 0);
        for (size_t off = 0; off < len; off += 7)
                assert_int_equal(docker_stream_feed(ds, data + off, MIN((size_t) 7, len - off)), 0);
        assert_int_equal(docker_stream_finish(ds), 0);
        docker_stream_free(ds);
        free(data);
}

static bool has(const char *file, const char *part) { return strstr(file, part) != NULL; }

static void test_captured_streams(void **state) {
        char pattern[4200];
        glob_t g = {};
        unsigned versions26 = 0, versions28 = 0, cstore = 0;

        snprintf(pattern, sizeof pattern, "%s/" SEEDS "/dockerd2[0-9].*.jsonl", srcdir_holding(SEEDS));
        assert_int_equal(glob(pattern, 0, NULL, &g), 0);
        for (size_t i = 0; i < g.gl_pathc; i++) {
                const char *path = g.gl_pathv[i], *file = strrchr(path, '/') + 1;
                Tally t;

                versions26 += startswith(file, "dockerd26.");
                versions28 += startswith(file, "dockerd28.");
                cstore += has(file, "-cstore-");
                if (has(file, "-not-found")) {
                        /* an HTTP error body, not a stream: {"message": ...}, a permanent failure */
                        size_t len;
                        char *body = slurp(path, &len);
                        json_t *j = json_loads(body, 0, NULL);
                        const char *m = json_string_value(json_object_get(j, "message"));
                        assert_non_null(m);
                        if (docker_classify_error(m) != ERROR_PERMANENT)
                                fail_msg("%s: \"%s\" is not classified permanent", file, m);
                        json_decref(j);
                        free(body);
                        continue;
                }
                run_file(path, &t);
                assert_true(t.messages > 0);
                if (has(file, "-cstore-reset-retry")) {
                        /* on the containerd store a reset fails the whole pull: an error, worth a retry */
                        assert_int_equal(t.errors, 1);
                        assert_int_equal(t.retries, 0);
                        if (docker_classify_error(t.error) != ERROR_TRANSIENT)
                                fail_msg("%s: \"%s\" is not classified transient", file, t.error);
                        continue;
                }
                /* every other capture is a pull that finished: no error, a digest, every layer done */
                if (t.errors)
                        fail_msg("%s: error in a finished pull: %s", file, t.error);
                assert_true(t.digest);
                assert_true(t.n_layers > 0 || has(file, "-up-to-date"));
                for (unsigned k = 0; k < t.n_layers; k++)
                        if (t.layers[k].last != PHASE_DONE)
                                fail_msg("%s: layer %s ends in %s, not done", file, t.layers[k].id,
                                         phase_to_string(t.layers[k].last));
                if (has(file, "-reset-retry"))
                        assert_true(t.retries > 0); /* the classic store retries the layer itself */
                if (has(file, "-slow-extract")) {
                        assert_true(t.extracting > 0);
                        /* the containerd store counts extraction in seconds; the classic store in bytes */
                        if (has(file, "-cstore-"))
                                assert_true(t.seconds_counters > 1);
                        else
                                assert_int_equal(t.seconds_counters, 0);
                }
        }
        globfree(&g);
        /* the captures are there: the test cannot pass on an empty corpus */
        assert_true(versions26 >= 4);
        assert_true(versions28 >= 8);
        assert_true(cstore >= 4);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_captured_streams),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
