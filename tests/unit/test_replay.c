/* Unit tests: the peer comparison. pullwatch must cancel no healthy pull and miss no hang on the
 * replayed matrix; each peer's documented failure must show (else the replay proves nothing). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "tests/bench/replay.h"

static ReplayRow run(const char *name) {
        WatchdogConfig cfg;
        usec_t deadlines[_PEER_KIND_MAX];
        replay_scaled_config(&cfg);
        replay_peer_deadlines(deadlines);
        for (size_t i = 0; i < replay_n_scenarios(); i++) {
                ReplayRow row;
                assert_int_equal(replay_run(i, &cfg, deadlines, &row), 0);
                if (strstr(row.name, name))
                        return row;
        }
        fail_msg("no scenario %s", name);
        return (ReplayRow) {};
}

static void test_pullwatch_no_false_cancel_no_miss(void **state) {
        WatchdogConfig cfg;
        usec_t deadlines[_PEER_KIND_MAX];
        replay_scaled_config(&cfg);
        replay_peer_deadlines(deadlines);
        for (size_t i = 0; i < replay_n_scenarios(); i++) {
                ReplayRow row;
                assert_int_equal(replay_run(i, &cfg, deadlines, &row), 0);
                if (row.healthy)
                        assert_false(row.pullwatch.cancelled);
                else {
                        assert_true(row.pullwatch.cancelled);
                        assert_true(row.pullwatch.at >= row.fault_since);
                }
        }
}

static void test_detection_latency_within_budget(void **state) {
        /* network_stall 6 s, hang_quiet 12 s, livelock 30 s, trickle window 30 s (+ one sample) */
        ReplayRow r = run("blob stalled");
        assert_true(r.pullwatch.at - r.fault_since <= 7 * USEC_PER_SEC);
        r = run("decompressor asleep");
        assert_true(r.pullwatch.at - r.fault_since <= 13 * USEC_PER_SEC);
        r = run("spinning");
        assert_true(r.pullwatch.at - r.fault_since <= 31 * USEC_PER_SEC);
        r = run("one layer stalled");
        assert_true(r.pullwatch.at - r.fault_since <= 7 * USEC_PER_SEC);
}

static void test_peers_documented_failures(void **state) {
        /* kubelet: any message resets one deadline, silent extraction is cancelled (report 001) */
        assert_true(run("slow but working").peers[PEER_KUBELET_DOCKERSHIM].cancelled);
        /* cri-dockerd: never cancels while Extracting, so a hung decompressor waits forever */
        assert_false(run("decompressor asleep").peers[PEER_CRI_DOCKERD].cancelled);
        /* containerd: summed bytes hide one stuck layer; a trickle keeps it alive; commit is cut */
        ReplayRow r = run("one layer stalled");
        assert_true(r.peers[PEER_CONTAINERD_CRI].at >= 100 * USEC_PER_SEC); /* only once the others end */
        assert_false(run("trickle").peers[PEER_CONTAINERD_CRI].cancelled);
        assert_true(run("content commit").peers[PEER_CONTAINERD_CRI].cancelled);
        assert_false(run("decompressor asleep").peers[PEER_CONTAINERD_CRI].cancelled);
        /* CRI-O at 10 s cancels anything silent */
        assert_true(run("slow but working").peers[PEER_CRIO].cancelled);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pullwatch_no_false_cancel_no_miss),
                cmocka_unit_test(test_detection_latency_within_budget),
                cmocka_unit_test(test_peers_documented_failures),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
