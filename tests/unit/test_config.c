/* test_config: durations and sizes (parse, format, round trip), defaults, loading every key, the example
 * file, and dump -> load round trips. The error classes are in test_config_errors.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <inttypes.h>
#include <libgen.h>
#include <sys/stat.h>
#include <yaml.h>
#include <cmocka.h>

#include "config/config.h"

#include "tests/unit/test_files.h"

/* ---- durations and sizes ---- */

static void test_parse_duration_valid(void **state) {
        static const struct { const char *s; usec_t u; } t[] = {
                { "90s", 90 * USEC_PER_SEC },
                { "5m", 300 * USEC_PER_SEC },
                { "1h30m", 5400 * USEC_PER_SEC },
                { "250ms", 250 * USEC_PER_MSEC },
                { "1.5s", 1500 * USEC_PER_MSEC },
                { "2", 2 * USEC_PER_SEC },
                { "0.25", 250 * USEC_PER_MSEC },
                { "0", 0 },
                { "0s", 0 },
                { "1d", 86400 * USEC_PER_SEC },
                { ".5s", 500 * USEC_PER_MSEC },
                { "1.5h", 5400 * USEC_PER_SEC },
                { "1d2h3m4s5ms6us", ((((86400ULL + 7200 + 180 + 4) * 1000) + 5) * 1000) + 6 },
                { "30m1h", 5400 * USEC_PER_SEC },
                { "1.0000004s", 1000000 },
                { "1.0000006s", 1000001 },
                { "infinity", USEC_INFINITY },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                usec_t u = 42;
                int r = parse_duration(t[i].s, &u);
                if (r != 0 || u != t[i].u)
                        fail_msg("parse_duration(\"%s\") = %d, %" PRIu64 "; expected %" PRIu64, t[i].s, r, u, t[i].u);
        }
}

static void test_parse_duration_invalid(void **state) {
        static const struct { const char *s; int r; } t[] = {
                { "", -EINVAL },        { "-5s", -EINVAL },  { "fast", -EINVAL },  { "5x", -EINVAL },
                { "1h30", -EINVAL },    { "s", -EINVAL },    { "1.5.2s", -EINVAL }, { " 5s", -EINVAL },
                { "5 s", -EINVAL },     { "+5s", -EINVAL },  { "5S", -EINVAL },    { "5sec", -EINVAL },
                { ".s", -EINVAL },      { "1e3s", -EINVAL }, { "0x10s", -EINVAL }, { "5s ", -EINVAL },
                { "99999999999999999999s", -ERANGE },
                { "300000000d", -ERANGE },
                { "213503983d", -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                usec_t u = 42;
                int r = parse_duration(t[i].s, &u);
                if (r != t[i].r || u != 42)
                        fail_msg("parse_duration(\"%s\") = %d; expected %d", t[i].s, r, t[i].r);
        }
}

static void test_parse_size_valid(void **state) {
        static const struct { const char *s; uint64_t b; } t[] = {
                { "64KiB", 65536 },          { "10MB", 10000000 },       { "1.5GiB", 1610612736 },
                { "100", 100 },              { "100B", 100 },            { "20MiB", 20971520 },
                { "1K", 1024 },              { "1M", 1048576 },          { "1G", 1073741824 },
                { "2TiB", 2199023255552ULL }, { "1TB", 1000000000000ULL }, { "0", 0 },
                { "0.5KiB", 512 },           { "1 MiB", 1048576 },       { "32kib", 32768 },
                { "1kb", 1000 },             { "1.0001KB", 1000 },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t b = 42;
                int r = parse_size(t[i].s, &b);
                if (r != 0 || b != t[i].b)
                        fail_msg("parse_size(\"%s\") = %d, %" PRIu64 "; expected %" PRIu64, t[i].s, r, b, t[i].b);
        }
}

static void test_parse_size_invalid(void **state) {
        static const struct { const char *s; int r; } t[] = {
                { "", -EINVAL },   { "-1", -EINVAL },  { "lots", -EINVAL }, { "1XB", -EINVAL },
                { "1.5.5", -EINVAL }, { "MiB", -EINVAL }, { "1MiBs", -EINVAL }, { "1 ", -EINVAL },
                { "20000000TiB", -ERANGE }, { "18446744073709551616", -ERANGE },
        };

        for (size_t i = 0; i < ELEMENTSOF(t); i++) {
                uint64_t b = 42;
                int r = parse_size(t[i].s, &b);
                if (r != t[i].r || b != 42)
                        fail_msg("parse_size(\"%s\") = %d; expected %d", t[i].s, r, t[i].r);
        }
}

static void check_format_duration(usec_t u, const char *expected) {
        char *s = format_duration(u);
        assert_non_null(s);
        assert_string_equal(s, expected);
        free(s);
}

static void check_format_size(uint64_t b, const char *expected) {
        char *s = format_size(b);
        assert_non_null(s);
        assert_string_equal(s, expected);
        free(s);
}

static void test_format(void **state) {
        check_format_duration(0, "0s");
        check_format_duration(90 * USEC_PER_SEC, "1m30s");
        check_format_duration(300 * USEC_PER_SEC, "5m");
        check_format_duration(5400 * USEC_PER_SEC, "1h30m");
        check_format_duration(250 * USEC_PER_MSEC, "250ms");
        check_format_duration(1500 * USEC_PER_MSEC, "1s500ms");
        check_format_duration(86400 * USEC_PER_SEC + 1, "1d1us");
        check_format_duration(USEC_INFINITY, "infinity");

        check_format_size(0, "0B");
        check_format_size(100, "100B");
        check_format_size(1024, "1KiB");
        check_format_size(1000, "1KB");
        check_format_size(32768, "32KiB");
        check_format_size(20971520, "20MiB");
        check_format_size(10000000, "10MB");
        check_format_size(1610612736, "1536MiB");
        check_format_size(2048000, "2048KB");
        check_format_size(1025, "1025B");
}

static uint64_t lcg(uint64_t *x) {
        *x = *x * 6364136223846793005ULL + 1442695040888963407ULL;
        return *x;
}

static void test_format_round_trip(void **state) {
        uint64_t seed = 12345;

        for (unsigned i = 0; i < 20000; i++) {
                /* every magnitude: shift a random value down by a random amount */
                uint64_t v = lcg(&seed) >> (lcg(&seed) % 64), back = 0;
                char *s;

                if (v == UINT64_MAX)
                        v--;
                s = format_duration(v);
                assert_non_null(s);
                if (parse_duration(s, &back) != 0 || back != v)
                        fail_msg("duration %" PRIu64 " -> \"%s\" -> %" PRIu64, v, s, back);
                free(s);

                s = format_size(v);
                assert_non_null(s);
                if (parse_size(s, &back) != 0 || back != v)
                        fail_msg("size %" PRIu64 " -> \"%s\" -> %" PRIu64, v, s, back);
                free(s);
        }
        check_format_duration(UINT64_MAX - 1, "213503982d8h1m49s551ms614us");
}

/* ---- defaults and loading ---- */

static void test_runtime_kind_strings(void **state) {
        assert_string_equal(runtime_kind_to_string(RUNTIME_AUTO), "auto");
        assert_string_equal(runtime_kind_to_string(RUNTIME_DOCKER), "docker");
        assert_string_equal(runtime_kind_to_string(RUNTIME_CONTAINERD), "containerd");
        assert_null(runtime_kind_to_string(_RUNTIME_KIND_MAX));
        assert_null(runtime_kind_to_string(_RUNTIME_KIND_INVALID));
        assert_int_equal(runtime_kind_from_string("containerd"), RUNTIME_CONTAINERD);
        assert_int_equal(runtime_kind_from_string("Docker"), -EINVAL);
        assert_int_equal(runtime_kind_from_string(NULL), -EINVAL);
}

static void check_defaults(const Config *c) {
        assert_int_equal(c->runtime, RUNTIME_AUTO);
        assert_string_equal(c->docker_socket, "/var/run/docker.sock");
        assert_string_equal(c->docker_pidfile, "/var/run/docker.pid");
        assert_string_equal(c->containerd_socket, "/run/containerd/containerd.sock");
        assert_string_equal(c->containerd_namespace, "k8s.io");
        assert_null(c->containerd_pidfile);
        assert_int_equal(strv_length(c->credentials), 2);
        assert_string_equal(c->credentials[0], "/root/.docker/config.json");
        assert_string_equal(c->credentials[1], "/var/lib/kubelet/config.json");
        assert_null(c->platform);
        assert_string_equal(c->preheat.list, "/etc/pullwatch/preheat.yaml");
        assert_int_equal(c->preheat.concurrency, 2);
        assert_int_equal(c->preheat.splay, 120 * USEC_PER_SEC);
        assert_int_equal(c->preheat.recheck, 1800 * USEC_PER_SEC);
        assert_string_equal(c->state_dir, "/var/lib/pullwatch");
        assert_string_equal(c->control_socket, "/run/pullwatch/control.sock");
        assert_null(c->metrics_textfile);
        assert_int_equal(c->alert_rate_limit, 600 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.sample_interval, 2 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.network_stall, 60 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.silent_min, 120 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.silent_min_rate, 20 * 1024 * 1024);
        assert_int_equal(c->watchdog.hang_quiet, 120 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.livelock_window, 300 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.trickle_rate, 32 * 1024);
        assert_int_equal(c->watchdog.trickle_window, 300 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.waiting_max, 120 * USEC_PER_SEC);
        assert_int_equal(c->retry.attempts, 5);
        assert_int_equal(c->retry.backoff, 2 * USEC_PER_SEC);
        assert_int_equal(c->retry.backoff_max, 300 * USEC_PER_SEC);
        assert_non_null(c->registry.insecure);
        assert_null(c->registry.insecure[0]);
        assert_non_null(c->registry.mirrors);
        assert_null(c->registry.mirrors[0]);
}

static void test_defaults(void **state) {
        Config *c = NULL;

        assert_int_equal(config_new_default(&c), 0);
        check_defaults(c);
        assert_null(c->path);
        assert_null(config_free(c));
        assert_null(config_free(NULL));
}

static void test_empty_file_is_defaults(void **state) {
        static const char *const texts[] = { "", "# only a comment\n\n", "---\n", "~\n", "\n\n\n" };

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                const char *path = write_file("empty.yaml", texts[i]);
                ErrorDetail e = {};
                Config *c = NULL;

                assert_int_equal(config_load(path, false, &c, &e), 0);
                check_defaults(c);
                assert_string_equal(c->path, path);
                config_free(c);
        }
}

static void test_missing_file(void **state) {
        char path[4200];
        ErrorDetail e = {};
        Config *c = NULL;

        snprintf(path, sizeof path, "%s/does-not-exist.yaml", tmpdir);
        assert_int_equal(config_load(path, true, &c, &e), 0);
        check_defaults(c);
        assert_null(c->path);
        config_free(c);
        c = NULL;

        assert_int_equal(config_load(path, false, &c, &e), -ENOENT);
        assert_null(c);
        assert_string_equal(e.source, path);
        assert_int_equal(e.line, 0);
        assert_null(e.field);
        assert_string_equal(e.message, "cannot open: No such file or directory");
        error_detail_done(&e);
}

static void test_unreadable_file(void **state) {
        ErrorDetail e = {};
        Config *c = NULL;

        /* A directory opens but does not read: root can read anything else. */
        assert_int_equal(config_load(tmpdir, false, &c, &e), -EISDIR);
        assert_null(c);
        assert_string_equal(e.source, tmpdir);
        assert_string_equal(e.message, "is a directory, expected a YAML file");
        error_detail_done(&e);
}

static const char full_yaml[] =
        "runtime: containerd\n"
        "docker:\n"
        "  socket: /d.sock\n"
        "  pidfile: null\n"
        "containerd:\n"
        "  socket: /c.sock\n"
        "  namespace: moby\n"
        "  pidfile: /run/containerd.pid\n"
        "credentials: /etc/one.json\n"
        "platform: linux/arm64/v8\n"
        "preheat: {list: /p.yaml, concurrency: 8, splay: 0, recheck: 1h}\n"
        "state_dir: /s\n"
        "control_socket: /ctl.sock\n"
        "metrics:\n"
        "  textfile: /m.prom\n"
        "alerts: {rate_limit: 0s}\n"
        "watchdog:\n"
        "  sample_interval: 500ms\n"
        "  network_stall: 90s\n"
        "  silent_min: 3m\n"
        "  silent_min_rate: 10MB\n"
        "  hang_quiet: 4m\n"
        "  livelock_window: 6m\n"
        "  trickle_rate: 1KiB\n"
        "  trickle_window: 7m\n"
        "  waiting_max: 1h\n"
        "retry:\n"
        "  attempts: \"3\"\n"
        "  backoff: 0\n"
        "  backoff_max: 1m\n"
        "registry:\n"
        "  insecure: [registry.local:5000, \"[fd00::1]:5000\", mirror]\n"
        "  mirrors:\n"
        "    - http://127.0.0.1:5001\n"
        "    - https://mirror.example.com/v2/\n";

static void test_load_every_key(void **state) {
        const char *path = write_file("full.yaml", full_yaml);
        ErrorDetail e = {};
        Config *c = NULL;

        assert_int_equal(config_load(path, false, &c, &e), 0);
        assert_int_equal(c->runtime, RUNTIME_CONTAINERD);
        assert_string_equal(c->docker_socket, "/d.sock");
        assert_null(c->docker_pidfile);
        assert_string_equal(c->containerd_socket, "/c.sock");
        assert_string_equal(c->containerd_namespace, "moby");
        assert_string_equal(c->containerd_pidfile, "/run/containerd.pid");
        assert_int_equal(strv_length(c->credentials), 1);
        assert_string_equal(c->credentials[0], "/etc/one.json");
        assert_string_equal(c->platform, "linux/arm64/v8");
        assert_string_equal(c->preheat.list, "/p.yaml");
        assert_int_equal(c->preheat.concurrency, 8);
        assert_int_equal(c->preheat.splay, 0);
        assert_int_equal(c->preheat.recheck, 3600 * USEC_PER_SEC);
        assert_string_equal(c->state_dir, "/s");
        assert_string_equal(c->control_socket, "/ctl.sock");
        assert_string_equal(c->metrics_textfile, "/m.prom");
        assert_int_equal(c->alert_rate_limit, 0);
        assert_int_equal(c->watchdog.sample_interval, 500 * USEC_PER_MSEC);
        assert_int_equal(c->watchdog.network_stall, 90 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.silent_min, 180 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.silent_min_rate, 10000000);
        assert_int_equal(c->watchdog.hang_quiet, 240 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.livelock_window, 360 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.trickle_rate, 1024);
        assert_int_equal(c->watchdog.trickle_window, 420 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.waiting_max, 3600 * USEC_PER_SEC);
        assert_int_equal(c->retry.attempts, 3);
        assert_int_equal(c->retry.backoff, 0);
        assert_int_equal(c->retry.backoff_max, 60 * USEC_PER_SEC);
        assert_int_equal(strv_length(c->registry.insecure), 3);
        assert_string_equal(c->registry.insecure[1], "[fd00::1]:5000");
        assert_int_equal(strv_length(c->registry.mirrors), 2);
        assert_string_equal(c->registry.mirrors[1], "https://mirror.example.com/v2/");
        config_free(c);
}

static void test_partial_sections(void **state) {
        const char *path = write_file("partial.yaml", "metrics:\ncredentials: []\nwatchdog:\n  hang_quiet: 5m\n");
        ErrorDetail e = {};
        Config *c = NULL;

        assert_int_equal(config_load(path, false, &c, &e), 0);
        assert_null(c->metrics_textfile);
        assert_int_equal(strv_length(c->credentials), 0);
        assert_non_null(c->credentials);
        assert_int_equal(c->watchdog.hang_quiet, 300 * USEC_PER_SEC);
        assert_int_equal(c->watchdog.network_stall, 60 * USEC_PER_SEC);
        config_free(c);
}

static void test_parse_from_memory(void **state) {
        static const char text[] = "runtime: docker\n";
        ErrorDetail e = {};
        Config *c = NULL;

        assert_int_equal(config_parse("<stdin>", text, strlen(text), &c, &e), 0);
        assert_int_equal(c->runtime, RUNTIME_DOCKER);
        assert_null(c->path);
        config_free(c);

        assert_int_equal(config_parse("<stdin>", "foo: 1", 6, &c, &e), -EINVAL);
        assert_string_equal(e.source, "<stdin>");
        error_detail_done(&e);
}

/* ---- dump and the example ---- */

static Config *dump_and_reload(const Config *c) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        ErrorDetail e = {};
        Config *back = NULL;
        int r;

        assert_non_null(f);
        assert_int_equal(config_dump(c, f), 0);
        assert_int_equal(fclose(f), 0);
        r = config_parse("dump", text, size, &back, &e);
        if (r < 0) {
                char *s = error_detail_format(&e);
                fail_msg("dump does not load back: %s\n%s", s, text);
        }
        free(text);
        return back;
}

static void test_dump_round_trip_defaults(void **state) {
        Config *c = NULL, *back;

        assert_int_equal(config_new_default(&c), 0);
        back = dump_and_reload(c);
        assert_true(config_equal(c, back));
        config_free(back);
        config_free(c);
}

static void test_dump_round_trip_custom(void **state) {
        static const char weird[] =
                "docker:\n"
                "  socket: \"/run/we \\\"ird\\\\ path\\n\\ttab\\x01: #x\"\n"
                "  pidfile: '/ü/ñ/日本'\n"
                "containerd: {pidfile: \"/null\", namespace: a-b_c.d}\n"
                "credentials: [\"/x: y\", \"/- z\", \"/'q'\"]\n"
                "platform: windows/amd64\n"
                "watchdog: {sample_interval: 1.5s, silent_min_rate: 1.5GB, trickle_rate: 1025}\n"
                "retry: {backoff: 1h1us, backoff_max: 1d1h}\n"
                "metrics: {textfile: \"/null\"}\n"
                "registry: {insecure: [\"[::1]:1\"], mirrors: [\"https://m.example/a?b=c&d\"]}\n";
        ErrorDetail e = {};
        Config *c = NULL, *back;

        assert_int_equal(config_load(write_file("weird.yaml", weird), false, &c, &e), 0);
        assert_string_equal(c->docker_socket, "/run/we \"ird\\ path\n\ttab\x01: #x");
        assert_string_equal(c->containerd_pidfile, "/null");
        back = dump_and_reload(c);
        assert_true(config_equal(c, back));
        assert_string_equal(back->docker_pidfile, "/ü/ñ/日本");
        assert_string_equal(back->metrics_textfile, "/null");
        config_free(back);

        back = NULL;
        assert_int_equal(config_load(write_file("full.yaml", full_yaml), false, &back, &e), 0);
        assert_false(config_equal(c, back));
        config_free(c);
        c = dump_and_reload(back);
        assert_true(config_equal(c, back));
        config_free(back);
        config_free(c);
}

/* Escapes that decode to characters YAML will not read back raw: C1 controls (found by fuzz_config),
 * NEL and the Unicode line and paragraph separators (folded as line breaks), BOM and non-characters. */
static void test_dump_round_trip_unicode_escapes(void **state) {
        static const char text[] = "docker: {socket: \"/a\\x81b\\x85c\\u2028d\\u2029e\\uFEFFf\\uFFFEg\\uFFFF\\x9F\"}\n";
        ErrorDetail e = {};
        Config *c = NULL, *back;

        assert_int_equal(config_parse("t.yaml", text, strlen(text), &c, &e), 0);
        assert_string_equal(c->docker_socket, "/a\xC2\x81" "b\xC2\x85" "c\xE2\x80\xA8" "d\xE2\x80\xA9" "e\xEF\xBB\xBF"
                                              "f\xEF\xBF\xBE" "g\xEF\xBF\xBF\xC2\x9F");
        back = dump_and_reload(c);
        assert_true(config_equal(c, back));
        config_free(back);
        config_free(c);
}

/* Every leaf key of a YAML file as "section.key", for comparing key sets. */
static void collect_keys(yaml_document_t *d, yaml_node_t *map, const char *prefix, char ***keys, size_t *n) {
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(d, p->key), *v = yaml_document_get_node(d, p->value);
                char *path;

                assert_int_equal(k->type, YAML_SCALAR_NODE);
                assert_true(asprintf(&path, "%s%s%s", prefix ?: "", prefix ? "." : "",
                                     (const char *) k->data.scalar.value) > 0);
                if (v->type == YAML_MAPPING_NODE && v->data.mapping.pairs.top > v->data.mapping.pairs.start) {
                        collect_keys(d, v, path, keys, n);
                        free(path);
                } else {
                        *keys = realloc(*keys, (*n + 2) * sizeof(char *));
                        assert_non_null(*keys);
                        (*keys)[(*n)++] = path;
                        (*keys)[*n] = NULL;
                }
        }
}

static char **keys_of(const char *text, size_t size) {
        yaml_parser_t p;
        yaml_document_t d;
        char **keys = NULL;
        size_t n = 0;

        assert_true(yaml_parser_initialize(&p));
        yaml_parser_set_input_string(&p, (const unsigned char *) text, size);
        assert_true(yaml_parser_load(&p, &d));
        collect_keys(&d, yaml_document_get_root_node(&d), NULL, &keys, &n);
        yaml_document_delete(&d);
        yaml_parser_delete(&p);
        return keys;
}

static void test_example_file(void **state) {
        char path[4200], *text = NULL, *dumped = NULL;
        size_t size = 0, dsize = 0;
        char **ekeys, **dkeys;
        ErrorDetail e = {};
        Config *c = NULL, *d = NULL;
        FILE *f;
        int r;

        snprintf(path, sizeof path, "%s/config/pullwatch.yaml.example", srcdir_holding("config/pullwatch.yaml.example"));
        r = config_load(path, false, &c, &e);
        if (r < 0) {
                char *s = error_detail_format(&e);
                fail_msg("example does not load: %s", s);
        }
        /* The example documents the defaults: it must equal them. */
        assert_int_equal(config_new_default(&d), 0);
        assert_true(config_equal(c, d));

        /* ... and list every key the dump (which walks the whole schema) prints. */
        f = fopen(path, "re");
        assert_non_null(f);
        assert_int_equal(getdelim(&text, &size, 0, f) > 0, 1);
        size = strlen(text);
        fclose(f);
        f = open_memstream(&dumped, &dsize);
        assert_int_equal(config_dump(d, f), 0);
        fclose(f);

        ekeys = keys_of(text, size);
        dkeys = keys_of(dumped, dsize);
        assert_int_equal(strv_length(ekeys), strv_length(dkeys));
        for (size_t i = 0; dkeys[i]; i++)
                if (!streq(ekeys[i], dkeys[i]))
                        fail_msg("example key %zu is %s, the schema's is %s", i, ekeys[i], dkeys[i]);
        assert_int_equal(strv_length(dkeys), 42);

        strv_free(ekeys);
        strv_free(dkeys);
        free(text);
        free(dumped);
        config_free(c);
        config_free(d);
}

static void test_config_equal(void **state) {
        Config *a = NULL, *b = NULL;

        assert_int_equal(config_new_default(&a), 0);
        assert_int_equal(config_new_default(&b), 0);
        assert_true(config_equal(a, b));
        assert_true(config_equal(NULL, NULL));
        assert_false(config_equal(a, NULL));
        b->watchdog.trickle_rate++;
        assert_false(config_equal(a, b));
        b->watchdog.trickle_rate--;
        free(b->credentials[1]);
        b->credentials[1] = NULL;
        assert_false(config_equal(a, b));
        config_free(a);
        config_free(b);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_duration_valid),
                cmocka_unit_test(test_parse_duration_invalid),
                cmocka_unit_test(test_parse_size_valid),
                cmocka_unit_test(test_parse_size_invalid),
                cmocka_unit_test(test_format),
                cmocka_unit_test(test_format_round_trip),
                cmocka_unit_test(test_runtime_kind_strings),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_empty_file_is_defaults),
                cmocka_unit_test(test_missing_file),
                cmocka_unit_test(test_unreadable_file),
                cmocka_unit_test(test_load_every_key),
                cmocka_unit_test(test_partial_sections),
                cmocka_unit_test(test_parse_from_memory),
                cmocka_unit_test(test_dump_round_trip_defaults),
                cmocka_unit_test(test_dump_round_trip_custom),
                cmocka_unit_test(test_dump_round_trip_unicode_escapes),
                cmocka_unit_test(test_example_file),
                cmocka_unit_test(test_config_equal),
        };

        return cmocka_run_group_tests_name("config", tests, setup, teardown);
}
