/* test_disk_gate.c: the disk-pressure arithmetic: an image that cannot fit, one that fits but would
 * pass kubelet's image GC high threshold, one that fits, and the image size from a manifest. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include "daemon/pull/disk_gate.h"

#define MiB (1024ULL * 1024ULL)

static void test_no_room(void **state) {
        /* the case: a 120 MB image against 80 MB free */
        ImageFs fs = { .path = (char *) "/var/lib/containerd", .capacity = 80 * MiB, .available = 78 * MiB,
                       .used = 2 * MiB };
        char *text = NULL;
        assert_int_equal(disk_gate_judge(&fs, 120 * MiB, 85, "reg/app:v1", &text), DISK_NO_ROOM);
        assert_non_null(text);
        assert_non_null(strstr(text, "reg/app:v1 needs 120"));
        assert_non_null(strstr(text, "78"));
        assert_non_null(strstr(text, "/var/lib/containerd"));
        free(text);
}

static void test_over_high(void **state) {
        ImageFs fs = { .path = (char *) "/d", .capacity = 100 * MiB, .available = 50 * MiB, .used = 50 * MiB };
        char *text = NULL;
        /* 50 % + 40 % = 90 % > 85 % */
        assert_int_equal(disk_gate_judge(&fs, 40 * MiB, 85, "img", &text), DISK_OVER_HIGH);
        assert_non_null(strstr(text, "from 50% to 90%"));
        assert_non_null(strstr(text, "85%"));
        free(text);
        /* the same at a threshold of 95 fits */
        assert_int_equal(disk_gate_judge(&fs, 40 * MiB, 95, "img", &text), DISK_FITS);
        assert_null(text);
        /* exactly at the threshold fits */
        assert_int_equal(disk_gate_judge(&fs, 35 * MiB, 85, "img", NULL), DISK_FITS);
}

static void test_unmeasured_fits(void **state) {
        ImageFs fs = {};
        assert_int_equal(disk_gate_judge(&fs, 1000 * MiB, 85, "img", NULL), DISK_FITS);
        assert_int_equal(disk_gate_judge(NULL, 1000 * MiB, 85, "img", NULL), DISK_FITS);
}

static void test_image_size(void **state) {
        RegistryLayer layers[2] = { { .size = 3 * MiB }, { .size = 5 * MiB } };
        RegistryManifest m = { .config_size = 1234, .layers = layers, .n_layers = 2 };
        assert_int_equal(disk_gate_image_size(&m), 8 * MiB + 1234);
        assert_int_equal(disk_gate_image_size(NULL), 0);
        m.n_layers = 0;
        assert_int_equal(disk_gate_image_size(&m), 0);
}

static void test_percent(void **state) {
        assert_int_equal(imagefs_percent(0, 0), 0);
        assert_int_equal(imagefs_percent(1, 100), 1);
        assert_int_equal(imagefs_percent(101, 10000), 2); /* rounded up, as a threshold check needs */
        assert_int_equal(imagefs_percent(100, 100), 100);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_no_room),
                cmocka_unit_test(test_over_high),
                cmocka_unit_test(test_unmeasured_fits),
                cmocka_unit_test(test_image_size),
                cmocka_unit_test(test_percent),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
