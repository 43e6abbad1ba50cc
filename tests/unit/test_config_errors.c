/* test_config_errors: every class of pullwatch.yaml error, each with its exact file:line:column, dotted
 * key and message; error formatting; ErrorDetail reuse. Runs under ASan to prove no path leaks. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config/config.h"

#include "tests/unit/test_files.h"

typedef struct ErrorCase {
        const char *yaml;
        int r;
        unsigned line, column;
        const char *key;      /* NULL = no key expected */
        const char *message;  /* exact */
} ErrorCase;

static void check_error(const ErrorCase *t) {
        const char *path = write_file("bad.yaml", t->yaml);
        ErrorDetail e = {};
        Config *c = NULL;
        int r;

        r = config_load(path, false, &c, &e);
        if (r != t->r || !e.message || !streq_ptr(e.field, t->key) || e.line != t->line || e.column != t->column ||
            !streq(e.message, t->message) || !streq_ptr(e.source, path)) {
                char *s = error_detail_format(&e);
                fail_msg("for:\n%s\ngot %d \"%s\"\nexpected %d %u:%u %s: %s", t->yaml, r, s, t->r, t->line, t->column,
                         t->key ?: "(no key)", t->message);
        }
        assert_null(c);
        error_detail_done(&e);
}

static void run_errors(const ErrorCase *t, size_t n) {
        for (size_t i = 0; i < n; i++)
                check_error(&t[i]);
}

static void test_error_unknown_key(void **state) {
        static const ErrorCase t[] = {
                { "runtime: docker\nfoo: 1\n", -EINVAL, 2, 1, "foo",
                  "unknown key; known keys here: runtime, docker, containerd, credentials, platform, preheat, "
                  "kubelet, state_dir, control_socket, guard, cri, metrics, alerts, watchdog, retry, registry" },
                { "docker:\n  sockett: /x\n", -EINVAL, 2, 3, "docker.sockett",
                  "unknown key; known keys here: socket, pidfile, certs_dir" },
                { "watchdog:\n  sample_interval: 1s\n  hang: 2m\n", -EINVAL, 3, 3, "watchdog.hang",
                  "unknown key; known keys here: sample_interval, network_stall, silent_min, silent_min_rate, "
                  "hang_quiet, livelock_window, trickle_rate, trickle_window, waiting_max" },
                { "{runtime: auto, registry: {mirrors: [], proxy: x}}\n", -EINVAL, 1, 41, "registry.proxy",
                  "unknown key; known keys here: insecure, mirrors" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_wrong_type(void **state) {
        static const ErrorCase t[] = {
                { "runtime:\n  kind: docker\n", -EINVAL, 2, 3, "runtime",
                  "expected one of auto, docker, containerd, got a mapping" },
                { "watchdog:\n  hang_quiet: [1m, 2m]\n", -EINVAL, 2, 15, "watchdog.hang_quiet",
                  "expected a duration like 90s, 5m or 1h30m, got a list" },
                { "docker: /var/run/docker.sock\n", -EINVAL, 1, 9, "docker",
                  "expected a mapping of docker settings, got \"/var/run/docker.sock\"" },
                { "watchdog:\n  - hang_quiet: 1m\n", -EINVAL, 2, 3, "watchdog",
                  "expected a mapping of watchdog settings, got a list" },
                { "credentials:\n  - /a.json\n  - {path: /b.json}\n", -EINVAL, 3, 5, "credentials[1]",
                  "expected an absolute path, got a mapping" },
                { "credentials: {a: b}\n", -EINVAL, 1, 14, "credentials",
                  "expected an absolute path or a list of them, got a mapping" },
                { "- runtime: docker\n", -EINVAL, 1, 1, NULL,
                  "expected a mapping of settings at the top level, got a list" },
                { "just a string\n", -EINVAL, 1, 1, NULL,
                  "expected a mapping of settings at the top level, got \"just a string\"" },
                { "[a, b]: 1\n", -EINVAL, 1, 1, NULL, "expected a plain key, got a list" },
                { "docker:\n  socket:\n", -EINVAL, 2, 10, "docker.socket", "expected an absolute path, got nothing" },
                { "preheat:\n  concurrency: ~\n", -EINVAL, 2, 16, "preheat.concurrency",
                  "expected a whole number like 2, got null" },
                { "docker:\n  socket: \"/a\\0b\"\n", -EINVAL, 2, 11, "docker.socket",
                  "expected an absolute path, got a value with a NUL character" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_bad_values(void **state) {
        static const ErrorCase t[] = {
                { "watchdog:\n  hang_quiet: fast\n", -EINVAL, 2, 15, "watchdog.hang_quiet",
                  "expected a duration like 90s, 5m or 1h30m, got \"fast\"" },
                { "watchdog:\n  hang_quiet: -5s\n", -EINVAL, 2, 15, "watchdog.hang_quiet",
                  "expected a duration like 90s, 5m or 1h30m, got \"-5s\"" },
                { "watchdog:\n  hang_quiet: 999999999999d\n", -ERANGE, 2, 15, "watchdog.hang_quiet",
                  "expected a duration like 90s, 5m or 1h30m, got \"999999999999d\" (too large)" },
                { "watchdog:\n  hang_quiet: infinity\n", -EINVAL, 2, 15, "watchdog.hang_quiet",
                  "expected a finite duration, got \"infinity\"" },
                { "watchdog:\n  trickle_rate: 32kbit\n", -EINVAL, 2, 17, "watchdog.trickle_rate",
                  "expected a size like 64KiB, 20MiB or 1GB, got \"32kbit\"" },
                { "preheat:\n  concurrency: two\n", -EINVAL, 2, 16, "preheat.concurrency",
                  "expected a whole number like 2, got \"two\"" },
                { "preheat:\n  concurrency: -1\n", -EINVAL, 2, 16, "preheat.concurrency",
                  "expected a whole number like 2, got \"-1\"" },
                { "retry:\n  attempts: 99999999999\n", -ERANGE, 2, 13, "retry.attempts",
                  "expected a whole number like 2, got \"99999999999\" (too large)" },
                { "kubelet:\n  image_gc_high_threshold: 101\n", -ERANGE, 2, 28, "kubelet.image_gc_high_threshold",
                  "expected a percentage from 1 to 100, got \"101\"" },
                { "kubelet:\n  image_gc_high_threshold: 0\n", -EINVAL, 2, 28, "kubelet.image_gc_high_threshold",
                  "expected a percentage from 1 to 100, got \"0\"" },
                { "preheat:\n  pin: yes\n", -EINVAL, 2, 8, "preheat.pin", "expected true or false, got \"yes\"" },
                { "runtime: podman\n", -EINVAL, 1, 10, "runtime",
                  "expected one of auto, docker, containerd, got \"podman\"" },
                { "state_dir: var/lib/pullwatch\n", -EINVAL, 1, 12, "state_dir",
                  "expected an absolute path, got \"var/lib/pullwatch\"" },
                { "platform: linux\n", -EINVAL, 1, 11, "platform",
                  "expected a platform like linux/amd64 or linux/arm64/v8, got \"linux\"" },
                { "containerd:\n  namespace: k8s..io\n", -EINVAL, 2, 14, "containerd.namespace",
                  "expected a containerd namespace like k8s.io (letters and digits joined by '.', '_' or '-'), "
                  "got \"k8s..io\"" },
                { "registry:\n  mirrors: [\"ftp://m\"]\n", -EINVAL, 2, 13, "registry.mirrors[0]",
                  "expected an http:// or https:// URL, got \"ftp://m\"" },
                { "registry:\n  insecure:\n    - ok.local\n    - http://bad.local\n", -EINVAL, 4, 7,
                  "registry.insecure[1]",
                  "expected a registry host like registry.local or 10.0.0.5:5000, got \"http://bad.local\"" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_zero(void **state) {
        static const ErrorCase t[] = {
                { "preheat:\n  concurrency: 0\n", -EINVAL, 2, 16, "preheat.concurrency",
                  "expected a number greater than 0, got \"0\"" },
                { "retry:\n  attempts: 0\n", -EINVAL, 2, 13, "retry.attempts",
                  "expected a number greater than 0, got \"0\"" },
                { "watchdog:\n  sample_interval: 0s\n", -EINVAL, 2, 20, "watchdog.sample_interval",
                  "expected a duration greater than 0, got \"0s\"" },
                { "watchdog:\n  silent_min_rate: 0\n", -EINVAL, 2, 20, "watchdog.silent_min_rate",
                  "expected a size greater than 0, got \"0\"" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_relations(void **state) {
        static const ErrorCase t[] = {
                { "retry:\n  backoff: 10m\n", -EINVAL, 2, 12, "retry.backoff",
                  "expected at most retry.backoff_max (5m), got 10m" },
                { "retry:\n  backoff_max: 1s\n", -EINVAL, 2, 16, "retry.backoff_max",
                  "expected at least retry.backoff (2s), got 1s" },
                { "retry:\n  backoff_max: 1m\n  backoff: 2m\n", -EINVAL, 3, 12, "retry.backoff",
                  "expected at most retry.backoff_max (1m), got 2m" },
                { "retry:\n  backoff: 2m\n  backoff_max: 1m\n", -EINVAL, 3, 16, "retry.backoff_max",
                  "expected at least retry.backoff (2m), got 1m" },
                { "kubelet:\n  image_gc_low_threshold: 90\n", -EINVAL, 2, 27, "kubelet.image_gc_low_threshold",
                  "expected at most kubelet.image_gc_high_threshold (85), got 90" },
                { "watchdog:\n  network_stall: 1s\n", -EINVAL, 2, 18, "watchdog.network_stall",
                  "expected at least watchdog.sample_interval (2s), got 1s" },
                { "watchdog:\n  sample_interval: 3m\n", -EINVAL, 2, 20, "watchdog.sample_interval",
                  "expected at most watchdog.network_stall (1m), got 3m" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_duplicate_key(void **state) {
        static const ErrorCase t[] = {
                { "runtime: auto\nstate_dir: /a\nruntime: docker\n", -EINVAL, 3, 1, "runtime",
                  "duplicate key, first set at line 1" },
                { "retry:\n  attempts: 3\n  backoff: 1s\n  attempts: 4\n", -EINVAL, 4, 3, "retry.attempts",
                  "duplicate key, first set at line 2" },
                { "watchdog: {}\nwatchdog:\n  hang_quiet: 1m\n", -EINVAL, 2, 1, "watchdog",
                  "duplicate key, first set at line 1" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_yaml_syntax(void **state) {
        static const ErrorCase t[] = {
                { "runtime: auto\ndocker:\n  socket: [/a\n", -EINVAL, 4, 1, NULL,
                  "invalid YAML: did not find expected ',' or ']' (while parsing a flow sequence at line 3 "
                  "column 11)" },
                { "runtime: auto\n  state_dir: /x\n", -EINVAL, 2, 12, NULL,
                  "invalid YAML: mapping values are not allowed in this context" },
                { "runtime: \"auto\n", -EINVAL, 2, 1, NULL,
                  "invalid YAML: found unexpected end of stream (while scanning a quoted scalar at line 1 "
                  "column 10)" },
                { "runtime: *nope\n", -EINVAL, 1, 10, NULL,
                  "invalid YAML: found undefined alias" },
                { "runtime: auto\n---\nruntime: docker\n", -EINVAL, 3, 1, NULL,
                  "expected a single YAML document, found a second one here" },
                { "runtime: auto\nstate_dir: /\xff\n", -EINVAL, 2, 13, NULL,
                  "invalid YAML: invalid leading UTF-8 octet (byte 0xFF)" },
                { "runtime: auto\x01\n", -EINVAL, 1, 14, NULL,
                  "invalid YAML: control characters are not allowed (byte 0x01)" },
        };
        run_errors(t, ELEMENTSOF(t));
}

static void test_error_format(void **state) {
        ErrorDetail e = { .source = (char *) "/etc/pullwatch/pullwatch.yaml", .line = 3, .column = 15,
                          .field = (char *) "watchdog.hang_quiet", .message = (char *) "expected a duration" };
        char *s;

        s = error_detail_format(&e);
        assert_string_equal(s, "/etc/pullwatch/pullwatch.yaml:3:15: watchdog.hang_quiet: expected a duration");
        free(s);

        e.field = NULL;
        s = error_detail_format(&e);
        assert_string_equal(s, "/etc/pullwatch/pullwatch.yaml:3:15: expected a duration");
        free(s);

        e.line = e.column = 0;
        s = error_detail_format(&e);
        assert_string_equal(s, "/etc/pullwatch/pullwatch.yaml: expected a duration");
        free(s);

        e.source = NULL;
        e.field = (char *) "retry";
        s = error_detail_format(&e);
        assert_string_equal(s, "retry: expected a duration");
        free(s);

        assert_null(error_detail_format(NULL));
        error_detail_done(NULL);
}

static void test_error_is_replaced(void **state) {
        ErrorDetail e = {};
        Config *c = NULL;

        /* A second failure with the same ErrorDetail frees the first one's strings (ASan would tell). */
        assert_int_equal(config_load(write_file("a.yaml", "runtime: x\n"), false, &c, &e), -EINVAL);
        assert_int_equal(config_load(write_file("b.yaml", "foo: 1\n"), false, &c, &e), -EINVAL);
        assert_string_equal(e.field, "foo");
        error_detail_done(&e);
        assert_null(e.message);

        /* And no ErrorDetail at all is fine. */
        assert_int_equal(config_load(write_file("c.yaml", "runtime: x\n"), false, &c, NULL), -EINVAL);
        assert_int_equal(config_parse("mem", "runtime: [\n", 11, &c, NULL), -EINVAL);
        assert_null(c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_error_unknown_key),
                cmocka_unit_test(test_error_wrong_type),
                cmocka_unit_test(test_error_bad_values),
                cmocka_unit_test(test_error_zero),
                cmocka_unit_test(test_error_relations),
                cmocka_unit_test(test_error_duplicate_key),
                cmocka_unit_test(test_error_yaml_syntax),
                cmocka_unit_test(test_error_format),
                cmocka_unit_test(test_error_is_replaced),
        };

        return cmocka_run_group_tests_name("config_errors", tests, setup, teardown);
}
