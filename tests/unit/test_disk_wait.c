/* test_disk_wait: the disk gate and the wait for space on a real event loop and curl glue. Where the
 * image filesystem is comes from a locate function: a fake one answering from the loop (a directory of
 * this test, a refusal), and the real imagefs_locate against a dockerd socket that accepts and never
 * answers. Checks that the gate never decides before it knows where to measure, goes on when the
 * runtime cannot say, does not block the loop on a hung runtime, and that the space wait polls statvfs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "daemon/pull/disk_wait.h"
#include "probes/runtime/runtime_op.h"
#include "probes/drivers/runtime_drivers.h"

static char tmpdir[] = "/tmp/test_disk_wait.XXXXXX";

static struct {
        unsigned located;         /* locate calls */
        int error;                /* != 0: the runtime cannot say */
} fake;

/* Answers from the loop, as a runtime's answer arrives. */
static int fake_locate(CurlGlue *glue, const Config *config, RuntimeKind runtime, runtime_op_done_t done,
                       void *userdata, RuntimeOp **ret) {
        fake.located++;
        return runtime_op_result(glue, fake.error, fake.error ? "ImageFsInfo: connection refused" : tmpdir, done,
                                 userdata, ret);
}

typedef struct World {
        sd_event *event;
        CurlGlue *glue;
        Config *config;
        DiskWait *wait;
        unsigned verdicts, ticks, ticks_at_verdict;
        DiskFit fit;
        char *text;
        sd_event_source *tick;
} World;

static void on_verdict(DiskWait *w, DiskFit fit, char *text, void *userdata) {
        World *world = userdata;
        world->verdicts++;
        world->ticks_at_verdict = world->ticks;
        world->fit = fit;
        free(world->text);
        world->text = text;
}

static int on_tick(sd_event_source *s, uint64_t usec, void *userdata) {
        World *w = userdata;
        w->ticks++;
        (void) sd_event_source_set_time_relative(s, 20 * USEC_PER_MSEC);
        return sd_event_source_set_enabled(s, SD_EVENT_ON);
}

static void world_start(World *w, imagefs_locate_t locate, RuntimeKind kind) {
        *w = (World) {};
        fake.located = 0;
        fake.error = 0;
        assert_int_equal(sd_event_new(&w->event), 0);
        assert_int_equal(curl_glue_new(w->event, &w->glue), 0);
        assert_int_equal(config_new_default(&w->config), 0);
        w->config->kubelet.image_gc_high_threshold = 100;
        assert_int_equal(disk_wait_new(w->glue, w->config, kind, locate, "reg.local/app:v1", on_verdict, w,
                                       &w->wait),
                         0);
        assert_int_equal(sd_event_add_time_relative(w->event, &w->tick, CLOCK_MONOTONIC, 20 * USEC_PER_MSEC, 0,
                                                    on_tick, w),
                         0);
}

static void world_stop(World *w) {
        disk_wait_free(w->wait);
        sd_event_source_disable_unref(w->tick);
        curl_glue_free(w->glue);
        sd_event_unref(w->event);
        config_free(w->config);
        free(w->text);
}

static void run_until_verdict(World *w, usec_t timeout) {
        usec_t end = now_monotonic() + timeout;
        while (w->verdicts == 0) {
                if (now_monotonic() > end)
                        fail_msg("no verdict");
                (void) sd_event_run(w->event, 10 * USEC_PER_MSEC);
        }
}

/* The size arrives before the runtime said where its images are: the verdict waits for the location,
 * then measures it (1 EiB cannot fit anywhere): not started, with the directory and the numbers. */
static void test_gate_waits_for_location(void **s) {
        World w;

        world_start(&w, fake_locate, RUNTIME_CONTAINERD);
        disk_wait_gate(w.wait, 30 * USEC_PER_SEC);
        disk_wait_set_size(w.wait, UINT64_C(1) << 60);
        assert_int_equal(w.verdicts, 0); /* never inside a disk_wait_* call */
        assert_null(disk_wait_path(w.wait));
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, DISK_NO_ROOM);
        assert_non_null(w.text);
        assert_non_null(strstr(w.text, tmpdir));
        assert_non_null(strstr(w.text, "needs"));
        assert_string_equal(disk_wait_path(w.wait), tmpdir);
        assert_int_equal(fake.located, 1);
        world_stop(&w);
}

/* An image that fits is let through; the location is asked once and kept for the ENOSPC wait. */
static void test_gate_fits_then_space(void **s) {
        World w;

        world_start(&w, fake_locate, RUNTIME_DOCKER);
        disk_wait_gate(w.wait, 30 * USEC_PER_SEC);
        disk_wait_set_size(w.wait, 1);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, DISK_FITS);
        /* after ENOSPC: the rest fits now, found by statvfs alone */
        w.verdicts = 0;
        disk_wait_space(w.wait, 1, 20 * USEC_PER_MSEC, 30 * USEC_PER_SEC);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, DISK_FITS);
        /* the rest never fits: polled until the give-up, then no room */
        w.verdicts = 0;
        disk_wait_space(w.wait, UINT64_C(1) << 60, 20 * USEC_PER_MSEC, 100 * USEC_PER_MSEC);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, DISK_NO_ROOM);
        assert_non_null(strstr(w.text, "gave up waiting for space on"));
        assert_int_equal(fake.located, 1);
        world_stop(&w);
}

/* The manifest failed (a 404: no size will ever come): the gate goes on as soon as it knows where to
 * measure, not at its deadline. It used to wait the deadline out (10 s in pull_job.c), holding every
 * missing image of a preheat list in its slot for those 10 s before the runtime was even asked. */
static void test_gate_no_size_goes_on(void **s) {
        World w;

        world_start(&w, fake_locate, RUNTIME_DOCKER);
        disk_wait_gate(w.wait, 3600 * USEC_PER_SEC);
        disk_wait_set_size(w.wait, 0);
        assert_int_equal(w.verdicts, 0);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, DISK_FITS);
        assert_null(w.text);
        assert_string_equal(disk_wait_path(w.wait), tmpdir);
        world_stop(&w);
}

/* A runtime that cannot say where its images are does not hold the pull up: go on unmeasured as soon
 * as it has answered, long before the gate's own deadline. */
static void test_gate_unlocatable_goes_on(void **s) {
        World w;

        world_start(&w, fake_locate, RUNTIME_CONTAINERD);
        fake.error = -ECONNREFUSED;
        disk_wait_gate(w.wait, 3600 * USEC_PER_SEC);
        assert_int_equal(w.verdicts, 0);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, _DISK_FIT_MAX);
        assert_null(w.text);
        world_stop(&w);
}

/* dockerd accepts the connection and never answers /info: the gate returns at once, the loop keeps
 * running (other timers fire) while the question is out, and at the gate's deadline it goes on
 * unmeasured. With the old synchronous /info the loop stood still for the whole call timeout. */
static void test_hung_runtime_does_not_block(void **s) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        char sock[sizeof(tmpdir) + 16];
        World w;
        int fd;

        snprintf(sock, sizeof(sock), "%s/docker.sock", tmpdir);
        snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", sock);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof(sa)), 0);
        assert_int_equal(listen(fd, 8), 0); /* never accepted: the kernel queues the connection */

        world_start(&w, imagefs_locate, RUNTIME_DOCKER);
        free(w.config->docker_socket);
        w.config->docker_socket = strdup(sock);
        disk_wait_gate(w.wait, 300 * USEC_PER_MSEC);
        disk_wait_set_size(w.wait, 1);
        assert_int_equal(w.verdicts, 0);
        run_until_verdict(&w, 5 * USEC_PER_SEC);
        assert_int_equal(w.fit, _DISK_FIT_MAX);
        assert_null(disk_wait_path(w.wait));
        assert_true(w.ticks_at_verdict >= 2); /* the loop ran on while the question was out */
        world_stop(&w);             /* cancels the question still out */
        close(fd);
        unlink(sock);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_gate_waits_for_location),
                cmocka_unit_test(test_gate_fits_then_space),
                cmocka_unit_test(test_gate_no_size_goes_on),
                cmocka_unit_test(test_gate_unlocatable_goes_on),
                cmocka_unit_test(test_hung_runtime_does_not_block),
        };
        int r;

        assert_non_null(mkdtemp(tmpdir));
        r = cmocka_run_group_tests(tests, NULL, NULL);
        rmdir(tmpdir);
        return r;
}
