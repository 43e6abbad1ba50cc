/* test_metrics: what pull events add up to, and the Prometheus text format: HELP and TYPE once per
 * family before its samples, every label set present from the start, valid sample lines, and the
 * atomic write to a textfile. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <regex.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "basic/atomic_file.h"
#include "daemon/agent/metrics.h"

static bool has_line(const char *text, const char *line) {
        size_t n = strlen(line);
        for (const char *p = text; (p = strstr(p, line)); p += n)
                if ((p == text || p[-1] == '\n') && (p[n] == '\n' || p[n] == 0))
                        return true;
        return false;
}

static void test_zeros_from_the_start(void **s) {
        _cleanup_free_ char *t = NULL;
        Metrics m;

        metrics_init(&m);
        assert_int_equal(metrics_format(&m, &t), 0);
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"docker\",result=\"ok\"} 0"));
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"containerd\",result=\"permanent\"} 0"));
        assert_true(has_line(t, "pullwatch_retries_total 0"));
        assert_true(has_line(t, "pullwatch_verdicts_total{verdict=\"stalled\"} 0"));
        assert_true(has_line(t, "pullwatch_pull_duration_seconds_count 0"));
        assert_true(has_line(t, "pullwatch_pull_bytes_total 0"));
        assert_null(strstr(t, "pullwatch_runtime_up{")); /* unknown until pinged */
}

static void test_events_add_up(void **s) {
        _cleanup_free_ char *t = NULL;
        Metrics m;
        static const char *const names[] = { "waiting", "queued", "pulling", "ready", "failed" };
        static const unsigned counts[] = { 1, 0, 2, 12, 1 };

        metrics_init(&m);
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_STALLED });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_STALLED });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .verdict = VERDICT_SILENT_ALIVE });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_RETRY });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_PROGRESS, .current = 99 });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_RESULT, .runtime = "docker", .ok = true,
                                              .elapsed_s = 12.5, .bytes = 1000 });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_RESULT, .runtime = "containerd",
                                              .error = ERROR_PERMANENT, .elapsed_s = 0.5, .bytes = 0 });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_RESULT, .runtime = "docker",
                                              .error = ERROR_TRANSIENT, .elapsed_s = 2, .bytes = 24 });
        metrics_pull_event(&m, &(PullEvent) { .kind = PULL_EVENT_RESULT, .runtime = "docker",
                                              .error = ERROR_CANCELLED, .elapsed_s = 100, .bytes = 1 });
        metrics_set_preheat(&m, names, counts, ELEMENTSOF(names));
        metrics_set_runtime_up(&m, "docker", true);
        metrics_set_runtime_up(&m, "containerd", false);
        metrics_set_runtime_up(&m, "podman", true); /* not ours: ignored */

        assert_int_equal(metrics_format(&m, &t), 0);
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"docker\",result=\"ok\"} 1"));
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"docker\",result=\"failed\"} 1"));
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"docker\",result=\"cancelled\"} 1"));
        assert_true(has_line(t, "pullwatch_pulls_total{runtime=\"containerd\",result=\"permanent\"} 1"));
        assert_true(has_line(t, "pullwatch_retries_total 1"));
        assert_true(has_line(t, "pullwatch_verdicts_total{verdict=\"stalled\"} 2"));
        assert_true(has_line(t, "pullwatch_verdicts_total{verdict=\"silent-alive\"} 1"));
        assert_true(has_line(t, "pullwatch_preheat_images{state=\"ready\"} 12"));
        assert_true(has_line(t, "pullwatch_preheat_images{state=\"pulling\"} 2"));
        /* cancelled pulls say nothing about how long a pull takes */
        assert_true(has_line(t, "pullwatch_pull_duration_seconds_sum 15.000"));
        assert_true(has_line(t, "pullwatch_pull_duration_seconds_count 3"));
        assert_true(has_line(t, "pullwatch_pull_bytes_total 1025"));
        assert_true(has_line(t, "pullwatch_runtime_up{runtime=\"docker\"} 1"));
        assert_true(has_line(t, "pullwatch_runtime_up{runtime=\"containerd\"} 0"));
}

/* Every line is a comment or "name{labels} value"; HELP and TYPE come once per family, before its
 * samples, and each sample belongs to the family last declared (textfile collector rules). */
static void test_exposition_format(void **s) {
        _cleanup_free_ char *t = NULL;
        regex_t sample, help, type;
        char family[128] = "", declared[64][128];
        size_t n_declared = 0;
        Metrics m;

        metrics_init(&m);
        metrics_set_runtime_up(&m, "docker", true);
        assert_int_equal(metrics_format(&m, &t), 0);
        assert_int_equal(regcomp(&sample, "^([a-z_]+)(\\{[a-z_]+=\"[^\"]*\"(,[a-z_]+=\"[^\"]*\")*\\})? [0-9]+(\\.[0-9]+)?$",
                                 REG_EXTENDED), 0);
        assert_int_equal(regcomp(&help, "^# HELP ([a-z_]+) [^ ].*$", REG_EXTENDED), 0);
        assert_int_equal(regcomp(&type, "^# TYPE ([a-z_]+) (counter|gauge|summary)$", REG_EXTENDED), 0);
        assert_true(t[strlen(t) - 1] == '\n');
        for (char *line = strtok(t, "\n"); line; line = strtok(NULL, "\n")) {
                regmatch_t mt[2];
                if (regexec(&help, line, 2, mt, 0) == 0) {
                        snprintf(family, sizeof family, "%.*s", (int) (mt[1].rm_eo - mt[1].rm_so), line + mt[1].rm_so);
                        for (size_t i = 0; i < n_declared; i++)
                                assert_string_not_equal(declared[i], family);
                        assert_true(n_declared < 64);
                        snprintf(declared[n_declared++], sizeof declared[0], "%s", family);
                } else if (regexec(&type, line, 2, mt, 0) == 0) {
                        assert_int_equal((size_t) (mt[1].rm_eo - mt[1].rm_so), strlen(family));
                        assert_memory_equal(line + mt[1].rm_so, family, strlen(family));
                } else {
                        assert_int_equal(regexec(&sample, line, 2, mt, 0), 0);
                        assert_true(startswith(line, family));
                }
        }
        assert_int_equal(n_declared, 10);
        regfree(&sample);
        regfree(&help);
        regfree(&type);
}

static void test_write(void **s) {
        char dir[] = "/tmp/test_metrics.XXXXXX", path[256];
        _cleanup_free_ char *back = NULL, *want = NULL;
        struct stat st;
        Metrics m;

        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/pullwatch.prom", dir);
        metrics_init(&m);
        m.retries = 7;
        assert_int_equal(metrics_write(&m, path), 0);
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644); /* node_exporter runs as another user */
        assert_int_equal(read_file_full(path, 1 << 20, &back, NULL), 0);
        assert_int_equal(metrics_format(&m, &want), 0);
        assert_string_equal(back, want);
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0);
        assert_int_equal(metrics_write(&m, "/nonexistent-dir/x.prom"), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_zeros_from_the_start),
                cmocka_unit_test(test_events_add_up),
                cmocka_unit_test(test_exposition_format),
                cmocka_unit_test(test_write),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
