/* test_preheat_list: the preheat list format (plain references and mappings), normalization, the
 * example file, and every error with its file:line:column and "[i].key". */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <ftw.h>
#include <libgen.h>
#include <sys/stat.h>
#include <cmocka.h>

#include "config/preheat_list.h"

#define HEX64 "0f3c7a9d2b1e4f5a6b7c8d9e0f1a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c"

#include "tests/unit/test_files.h"

static PreheatList *load_ok(const char *text) {
        const char *path = write_file("list.yaml", text);
        ErrorDetail e = {};
        PreheatList *l = NULL;

        if (preheat_list_load(path, false, &l, &e) < 0) {
                char *s = error_detail_format(&e);
                fail_msg("%s", s);
        }
        return l;
}

static void test_runtime_strings(void **state) {
        assert_string_equal(preheat_runtime_to_string(PREHEAT_RUNTIME_DEFAULT), "default");
        assert_string_equal(preheat_runtime_to_string(PREHEAT_RUNTIME_BOTH), "both");
        assert_null(preheat_runtime_to_string(_PREHEAT_RUNTIME_MAX));
        assert_int_equal(preheat_runtime_from_string("docker"), PREHEAT_RUNTIME_DOCKER);
        assert_int_equal(preheat_runtime_from_string("containerd"), PREHEAT_RUNTIME_CONTAINERD);
        assert_int_equal(preheat_runtime_from_string("both"), PREHEAT_RUNTIME_BOTH);
        assert_int_equal(preheat_runtime_from_string("default"), -EINVAL);
        assert_int_equal(preheat_runtime_from_string(NULL), -EINVAL);
}

static void test_example_file(void **state) {
        char path[4200];
        ErrorDetail e = {};
        PreheatList *l = NULL;

        snprintf(path, sizeof path, "%s/config/preheat.yaml.example", srcdir_holding("config/preheat.yaml.example"));
        if (preheat_list_load(path, false, &l, &e) < 0) {
                char *s = error_detail_format(&e);
                fail_msg("example does not load: %s", s);
        }
        assert_int_equal(l->n, 5);

        assert_string_equal(l->items[0].image, "docker.io/library/busybox:1.36");
        assert_string_equal(l->items[0].image_raw, "busybox:1.36");
        assert_int_equal(l->items[0].runtime, PREHEAT_RUNTIME_DEFAULT);
        assert_null(l->items[0].platform);
        assert_null(l->items[0].namespace);
        assert_int_equal(l->items[0].priority, 0);
        assert_int_equal(l->items[0].recheck, 0);
        assert_int_equal(l->items[0].line, 10);

        assert_string_equal(l->items[2].image, "registry.example.com/legacy/erp-app:7.4");
        assert_int_equal(l->items[2].priority, 10);
        assert_int_equal(l->items[2].recheck, 600 * USEC_PER_SEC);
        assert_int_equal(l->items[2].line, 12);

        assert_string_equal(l->items[3].image, "ghcr.io/example/agent@sha256:" HEX64);
        assert_int_equal(l->items[3].runtime, PREHEAT_RUNTIME_CONTAINERD);
        assert_string_equal(l->items[3].namespace, "k8s.io");

        assert_string_equal(l->items[4].image, "docker.io/library/nginx:1.27");
        assert_int_equal(l->items[4].runtime, PREHEAT_RUNTIME_BOTH);
        assert_string_equal(l->items[4].platform, "linux/arm64");
        assert_null(preheat_list_free(l));
}

static void test_items(void **state) {
        PreheatList *l = load_ok("- busybox\n"
                                 "- image: Registry.Local:5000/team/app:v2\n"
                                 "  runtime: docker\n"
                                 "  platform: linux/amd64\n"
                                 "  priority: -5\n"
                                 "  recheck: 1h30m\n"
                                 "- {image: busybox, platform: linux/arm64, namespace: null, priority: \"7\"}\n"
                                 "- image: busybox\n"
                                 "  runtime: containerd\n"
                                 "  namespace: moby\n");

        assert_int_equal(l->n, 4);
        assert_string_equal(l->items[0].image, "docker.io/library/busybox:latest");
        assert_string_equal(l->items[0].image_raw, "busybox");
        assert_int_equal(l->items[0].line, 1);

        assert_string_equal(l->items[1].image, "Registry.Local:5000/team/app:v2");
        assert_int_equal(l->items[1].runtime, PREHEAT_RUNTIME_DOCKER);
        assert_string_equal(l->items[1].platform, "linux/amd64");
        assert_int_equal(l->items[1].priority, -5);
        assert_int_equal(l->items[1].recheck, 5400 * USEC_PER_SEC);
        assert_int_equal(l->items[1].line, 2);

        assert_string_equal(l->items[2].platform, "linux/arm64");
        assert_null(l->items[2].namespace);
        assert_int_equal(l->items[2].priority, 7);
        assert_int_equal(l->items[2].line, 7);

        assert_int_equal(l->items[3].runtime, PREHEAT_RUNTIME_CONTAINERD);
        assert_string_equal(l->items[3].namespace, "moby");
        preheat_list_free(l);
}

static void test_empty_and_missing(void **state) {
        static const char *const texts[] = { "", "# nothing yet\n", "[]\n", "~\n" };
        char path[4200];
        ErrorDetail e = {};
        PreheatList *l = NULL;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                l = load_ok(texts[i]);
                assert_int_equal(l->n, 0);
                preheat_list_free(l);
        }

        snprintf(path, sizeof path, "%s/absent.yaml", tmpdir);
        assert_int_equal(preheat_list_load(path, true, &l, &e), 0);
        assert_int_equal(l->n, 0);
        preheat_list_free(l);
        l = NULL;

        assert_int_equal(preheat_list_load(path, false, &l, &e), -ENOENT);
        assert_null(l);
        assert_string_equal(e.source, path);
        assert_string_equal(e.message, "cannot open: No such file or directory");
        error_detail_done(&e);
        assert_null(preheat_list_free(NULL));
}

static void test_not_duplicates(void **state) {
        /* same image on different platforms or disjoint runtimes is two different pulls */
        PreheatList *l = load_ok("- busybox\n"
                                 "- {image: busybox, platform: linux/arm64}\n"
                                 "- {image: busybox:1.36}\n"
                                 "- {image: registry.example.com/busybox}\n"
                                 "- {image: nginx, runtime: docker}\n"
                                 "- {image: nginx, runtime: containerd}\n");
        assert_int_equal(l->n, 6);
        preheat_list_free(l);
}

typedef struct ErrorCase {
        const char *yaml;
        unsigned line, column;
        const char *key;
        const char *message;
} ErrorCase;

static void check_errors(const ErrorCase *t, size_t n) {
        for (size_t i = 0; i < n; i++) {
                const char *path = write_file("bad.yaml", t[i].yaml);
                ErrorDetail e = {};
                PreheatList *l = NULL;
                int r = preheat_list_load(path, false, &l, &e);

                if (r != -EINVAL || !e.message || !streq_ptr(e.field, t[i].key) || e.line != t[i].line ||
                    e.column != t[i].column || !streq(e.message, t[i].message) || !streq_ptr(e.source, path)) {
                        char *s = error_detail_format(&e);
                        fail_msg("for:\n%s\ngot %d \"%s\"\nexpected %u:%u %s: %s", t[i].yaml, r, s, t[i].line,
                                 t[i].column, t[i].key ?: "(no key)", t[i].message);
                }
                assert_null(l);
                error_detail_done(&e);
        }
}

static void test_error_structure(void **state) {
        static const ErrorCase t[] = {
                { "images:\n  - busybox\n", 1, 1, NULL, "expected a list of images at the top level, got a mapping" },
                { "busybox\n", 1, 1, NULL, "expected a list of images at the top level, got \"busybox\"" },
                { "- busybox\n- [nginx]\n", 2, 3, "[1]", "expected an image reference or a mapping with \"image\", "
                                                        "got a list" },
                { "- busybox\n-\n", 2, 2, "[1]",
                  "expected an image reference or a mapping with \"image\", got nothing" },
                { "- busybox\n- runtime: docker\n  priority: 3\n", 2, 3, "[1]", "missing required key \"image\"" },
                { "- image: busybox\n  tag: latest\n", 2, 3, "[0].tag",
                  "unknown key; known keys here: image, runtime, platform, namespace, priority, recheck" },
                { "- image: busybox\n  priority: 1\n  priority: 2\n", 3, 3, "[0].priority",
                  "duplicate key, first set at line 2" },
                { "- image: [busybox]\n", 1, 10, "[0].image",
                  "expected an image reference like busybox:1.36 or registry.local/app:v2, got a list" },
                /* the same words as pullwatch.yaml's (one scalar reader, config_yaml_scalar) */
                { "- \"busy\\0box\"\n", 1, 3, "[0]",
                  "expected an image reference like busybox:1.36 or registry.local/app:v2, got a value with a NUL "
                  "character" },
                { "- a\n- b\n- c: [\n", 4, 1, NULL,
                  "invalid YAML: did not find expected node content (while parsing a flow node at line 4 column 1)" },
        };
        check_errors(t, ELEMENTSOF(t));
}

static void test_error_values(void **state) {
        static const ErrorCase t[] = {
                { "- busybox\n- Busybox:1\n", 2, 3, "[1]",
                  "invalid image reference \"Busybox:1\": repository name must be lowercase" },
                { "- image: nginx@sha256:abc\n", 1, 10, "[0].image",
                  "invalid image reference \"nginx@sha256:abc\": invalid digest (expected sha256: and 64 lowercase "
                  "hex digits)" },
                { "- image: nginx\n  runtime: podman\n", 2, 12, "[0].runtime",
                  "expected one of docker, containerd, both, got \"podman\"" },
                { "- image: nginx\n  runtime: default\n", 2, 12, "[0].runtime",
                  "expected one of docker, containerd, both, got \"default\"" },
                { "- image: nginx\n  platform: arm64\n", 2, 13, "[0].platform",
                  "expected a platform like linux/amd64 or linux/arm64/v8, got \"arm64\"" },
                { "- image: nginx\n  namespace: \"a b\"\n", 2, 14, "[0].namespace",
                  "expected a containerd namespace like k8s.io, got \"a b\"" },
                { "- image: nginx\n  runtime: docker\n  namespace: k8s.io\n", 3, 14, "[0].namespace",
                  "expected no namespace: it applies to containerd only, and runtime is docker" },
                { "- image: nginx\n  priority: high\n", 2, 13, "[0].priority",
                  "expected a whole number like 10 or -5, got \"high\"" },
                { "- image: nginx\n  priority: 1.5\n", 2, 13, "[0].priority",
                  "expected a whole number like 10 or -5, got \"1.5\"" },
                { "- image: nginx\n  priority: 3000000000\n", 2, 13, "[0].priority",
                  "expected a whole number between -2147483648 and 2147483647, got \"3000000000\"" },
                { "- image: nginx\n  recheck: daily\n", 2, 12, "[0].recheck",
                  "expected a duration like 30m, 2h or 1d, got \"daily\"" },
                { "- image: nginx\n  recheck: infinity\n", 2, 12, "[0].recheck",
                  "expected a duration like 30m, 2h or 1d, got \"infinity\"" },
        };
        check_errors(t, ELEMENTSOF(t));
}

static void test_error_duplicates(void **state) {
        static const ErrorCase t[] = {
                { "- busybox\n- nginx\n- docker.io/library/busybox:latest\n", 3, 3, "[2]",
                  "listed twice: lines 1 and 3 both preheat docker.io/library/busybox:latest for the same runtime "
                  "and platform" },
                { "- nginx\n- image: busybox:1\n  runtime: docker\n- image: busybox:1\n  priority: 3\n"
                  "  runtime: both\n",
                  4, 10, "[2].image",
                  "listed twice: lines 2 and 4 both preheat docker.io/library/busybox:1 for the same runtime and "
                  "platform" },
                { "- {image: 'nginx', platform: linux/arm64}\n- {platform: linux/arm64, image: index.docker.io/nginx}\n",
                  2, 34, "[1].image",
                  "listed twice: lines 1 and 2 both preheat docker.io/library/nginx:latest for the same runtime and "
                  "platform" },
        };
        check_errors(t, ELEMENTSOF(t));
}

static void test_parse_from_memory(void **state) {
        static const char text[] = "- busybox\n";
        ErrorDetail e = {};
        PreheatList *l = NULL;

        assert_int_equal(preheat_list_parse("configmap", text, strlen(text), &l, &e), 0);
        assert_int_equal(l->n, 1);
        preheat_list_free(l);
        l = NULL;
        assert_int_equal(preheat_list_parse("configmap", "- Busybox\n", 10, &l, &e), -EINVAL);
        assert_string_equal(e.source, "configmap");
        assert_string_equal(e.field, "[0]");
        error_detail_done(&e);
        assert_int_equal(preheat_list_parse("configmap", "- Busybox\n", 10, &l, NULL), -EINVAL);
        assert_null(l);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_runtime_strings),
                cmocka_unit_test(test_example_file),
                cmocka_unit_test(test_items),
                cmocka_unit_test(test_empty_and_missing),
                cmocka_unit_test(test_not_duplicates),
                cmocka_unit_test(test_error_structure),
                cmocka_unit_test(test_error_values),
                cmocka_unit_test(test_error_duplicates),
                cmocka_unit_test(test_parse_from_memory),
        };

        return cmocka_run_group_tests_name("preheat_list", tests, setup, teardown);
}
