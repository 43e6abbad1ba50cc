/* test_runtime_drivers.c: the runtime driver table: every row is complete and found by its kind and its
 * name, auto resolves as `pullwatch pull` and the daemon pick, "both" in the preheat list means every
 * driver, and each runtime's registry defaults say which hosts files it reads. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "probes/drivers/runtime_drivers.h"

static void test_rows_complete_and_found(void **state) {
        size_t n = 0;

        for (const RuntimeDriver *const *d = runtime_drivers; *d; d++, n++) {
                assert_ptr_equal(runtime_driver_get((*d)->kind), *d);
                assert_ptr_equal(runtime_driver_by_name((*d)->name), *d);
                assert_string_equal(runtime_kind_to_string((*d)->kind), (*d)->name);
                /* what every caller asks without checking */
                assert_non_null((*d)->wording);
                assert_non_null((*d)->wording->process);
                assert_non_null((*d)->wording->storage_root);
                assert_non_null((*d)->wording->scheme_remedy);
                assert_non_null((*d)->registry_defaults);
                assert_non_null((*d)->imagefs_dir);
                assert_non_null((*d)->start);
                assert_non_null((*d)->cancel);
                assert_non_null((*d)->free);
                assert_non_null((*d)->process);
                assert_non_null((*d)->ping);
                assert_non_null((*d)->ping_async);
                assert_true(!(*d)->extraction_dir || (*d)->extract_subdir);
        }
        assert_int_equal(n, _RUNTIME_KIND_MAX - 1); /* every kind but auto has a driver */
        assert_null(runtime_driver_get(RUNTIME_AUTO));
        assert_null(runtime_driver_get(_RUNTIME_KIND_MAX));
        assert_null(runtime_driver_get(_RUNTIME_KIND_INVALID));
        assert_null(runtime_driver_by_name("auto"));
        assert_null(runtime_driver_by_name("podman"));
}

static void test_auto(void **state) {
        RuntimeKind fallback = runtime_driver_auto_fallback()->kind;

        assert_ptr_not_equal(runtime_driver_auto_probe(), runtime_driver_auto_fallback());
        assert_int_equal(runtime_kind_resolve(RUNTIME_CONTAINERD, RUNTIME_DOCKER), RUNTIME_CONTAINERD);
        assert_int_equal(runtime_kind_resolve(RUNTIME_AUTO, RUNTIME_CONTAINERD), RUNTIME_CONTAINERD);
        assert_int_equal(runtime_kind_resolve(RUNTIME_AUTO, RUNTIME_AUTO), fallback);
}

static void test_preheat_runtimes(void **state) {
        RuntimeKind ks[_RUNTIME_KIND_MAX];
        size_t n;

        n = runtime_kinds_of_preheat(PREHEAT_RUNTIME_BOTH, RUNTIME_DOCKER, ks);
        assert_int_equal(n, _RUNTIME_KIND_MAX - 1);
        for (size_t i = 0; i < n; i++)
                assert_ptr_equal(runtime_driver_get(ks[i]), runtime_drivers[i]);
        n = runtime_kinds_of_preheat(PREHEAT_RUNTIME_CONTAINERD, RUNTIME_DOCKER, ks);
        assert_int_equal(n, 1);
        assert_int_equal(ks[0], RUNTIME_CONTAINERD);
        n = runtime_kinds_of_preheat(PREHEAT_RUNTIME_DEFAULT, RUNTIME_CONTAINERD, ks);
        assert_int_equal(n, 1);
        assert_int_equal(ks[0], RUNTIME_CONTAINERD);
}

static void test_registry_defaults(void **state) {
        RuntimeRegistry rt;

        assert_int_equal(runtime_driver_get(RUNTIME_DOCKER)->registry_defaults(&rt, NULL), 0);
        assert_int_equal(rt.hop_style, REGISTRY_HOPS_CERTS_D);
        assert_string_equal(rt.certs_dir, "/etc/docker/certs.d");
        assert_non_null(rt.insecure);
        assert_string_equal(rt.insecure[0], "127.0.0.0/8");
        runtime_registry_done(&rt);
        assert_int_equal(runtime_driver_get(RUNTIME_CONTAINERD)->registry_defaults(&rt, NULL), 0);
        assert_int_equal(rt.hop_style, REGISTRY_HOPS_HOSTS_TOML);
        assert_string_equal(rt.certs_dir, "/etc/containerd/certs.d");
        assert_null(rt.insecure);
        runtime_registry_done(&rt);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rows_complete_and_found),
                cmocka_unit_test(test_auto),
                cmocka_unit_test(test_preheat_runtimes),
                cmocka_unit_test(test_registry_defaults),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
