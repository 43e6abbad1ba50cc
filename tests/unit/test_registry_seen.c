/* test_registry_seen.c: the table of probed registry hosts is its owner's: two tables do not share
 * entries, a host probed again replaces its entry (per runtime), and a pull with no table records
 * nothing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/pull/registry_seen.h"

static void test_owned_tables(void **state) {
        _cleanup_(registry_seen_freep) RegistrySeen *a = NULL, *b = NULL;
        ErrorDetail e = { .message = (char *) "connection refused" };
        json_t *j;

        assert_int_equal(registry_seen_new(&a), 0);
        assert_int_equal(registry_seen_new(&b), 0);
        registry_seen_note(a, "reg:5000", RUNTIME_DOCKER, NULL, NULL, &e);
        registry_seen_note(a, "reg:5000", RUNTIME_DOCKER, NULL, "reg:5000", NULL); /* replaces */
        registry_seen_note(a, "reg:5000", RUNTIME_CONTAINERD, NULL, NULL, &e);     /* another runtime */
        registry_seen_note(NULL, "other:5000", RUNTIME_DOCKER, NULL, NULL, &e);    /* nowhere */

        j = registry_seen_json(a);
        assert_int_equal(json_array_size(j), 2);
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0), "runtime")), "docker");
        assert_true(json_is_true(json_object_get(json_array_get(j, 0), "reached")));
        assert_string_equal(json_string_value(json_object_get(json_array_get(j, 1), "runtime")), "containerd");
        assert_false(json_is_true(json_object_get(json_array_get(j, 1), "reached")));
        json_decref(j);

        j = registry_seen_json(b);
        assert_int_equal(json_array_size(j), 0);
        json_decref(j);

        registry_seen_clear(a);
        j = registry_seen_json(a);
        assert_int_equal(json_array_size(j), 0);
        json_decref(j);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_owned_tables),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
