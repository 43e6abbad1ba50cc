/* Unit tests: the detector on scripted timelines (time is an input, nothing sleeps). Each field
 * report and each peer's known false cancel / missed hang is a timeline; the tests assert the
 * verdict and the second it flips. Budgets are scaled down as in the integration config. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <stdio.h>

#include "daemon/pull/detector.h"

#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define T0 S(1000)

static WatchdogConfig cfg(void) {
        return (WatchdogConfig) {
                .sample_interval = S(1),
                .network_stall = S(10),
                .silent_min = S(5),
                .silent_min_rate = 1000000,   /* 1 MB/s */
                .hang_quiet = S(8),
                .livelock_window = S(12),
                .trickle_rate = 10000,        /* 10 KB/s */
                .trickle_window = S(20),
                .waiting_max = S(15),
        };
}

static Detector *mk(void) {
        WatchdogConfig c = cfg();
        Detector *d = NULL;
        assert_int_equal(detector_new(&c, T0, &d), 0);
        return d;
}

static LivenessDelta lv_at(usec_t t) {
        return (LivenessDelta) { .at = t, .interval = S(1), .available = true };
}

/* A helper (decompressor) present with the given CPU share (0..100) and I/O in the last second. */
static LivenessDelta helper(usec_t t, unsigned cpu_pct, uint64_t io, char state) {
        LivenessDelta l = lv_at(t);
        l.n_helpers = 1;
        l.busiest_pid = 4242;
        snprintf(l.busiest_comm, sizeof(l.busiest_comm), "unpigz");
        l.busiest_state = state;
        l.helper_cpu = S(1) * cpu_pct / 100;
        l.busiest_cpu = l.helper_cpu;
        l.helper_io = io;
        return l;
}

static Verdict layer_verdict(Detector *d, const char *id) {
        const LayerTrack *l = detector_find(d, id);
        assert_non_null(l);
        return l->verdict;
}

/* Report 000 / dockerd's stalled body read: bytes stop mid-layer; stalled exactly network_stall later. */
static void test_blob_stalled_mid_layer(void **state) {
        Detector *d = mk();
        uint64_t total = 1378000000ULL;
        for (int s = 0; s <= 30; s++) {
                assert_int_equal(detector_layer(d, "2a57ddc33014", PHASE_DOWNLOADING, (uint64_t) s * 30000000ULL,
                                                total, T0 + S(s)), 0);
                assert_int_equal(detector_evaluate(d, T0 + S(s)), VERDICT_PROGRESSING);
        }
        for (int s = 31; s < 40; s++)
                assert_int_equal(detector_evaluate(d, T0 + S(s)), VERDICT_PROGRESSING);
        assert_int_equal(detector_evaluate(d, T0 + S(40)), VERDICT_STALLED);
        const char *layer, *ev;
        detector_pull_verdict(d, &layer, &ev);
        assert_string_equal(layer, "2a57ddc33014");
        assert_non_null(strstr(ev, "no bytes for 10s at 65% of 1.3GiB"));
        detector_free(d);
}

/* Report 001 / kubelet's deadline: a 3 GB layer extracting silently for 74 s while the helper works.
 * kubelet cancelled at 60 s; pullwatch must stay silent-alive throughout. */
static void test_silent_extract_with_liveness_never_cancelled(void **state) {
        Detector *d = mk();
        uint64_t size = 3000000000ULL;
        detector_layer(d, "big", PHASE_DOWNLOADING, size, size, T0);
        detector_layer(d, "big", PHASE_VERIFYING, 0, 0, T0 + S(1));
        detector_layer(d, "big", PHASE_WAITING, 0, 0, T0 + S(2));
        detector_layer(d, "big", PHASE_EXTRACTING, 0, size, T0 + S(3));
        for (int s = 4; s < 3 + 74; s++) {
                /* Extraction output through the untar helper, at a slow 100% of a core. */
                LivenessDelta l = helper(T0 + S(s), 100, 4000000, 'R');
                detector_liveness(d, &l);
                Verdict v = detector_evaluate(d, T0 + S(s));
                assert_false(verdict_is_fault(v));
                if (s > 5)
                        assert_int_equal(layer_verdict(d, "big"), VERDICT_SILENT_ALIVE);
        }
        detector_layer(d, "big", PHASE_DONE, 0, 0, T0 + S(77));
        assert_int_equal(detector_evaluate(d, T0 + S(77)), VERDICT_DONE);
        detector_free(d);
}

/* Report 002: unpigz asleep; extraction stuck at 294.9kB of 26.66MB. Hung hang_quiet after the last
 * sign of work, and the evidence names the helper. */
static void test_decompressor_asleep_is_hung(void **state) {
        Detector *d = mk();
        detector_layer(d, "7c0b344a74c2", PHASE_EXTRACTING, 0, 26660000, T0);
        detector_layer(d, "7c0b344a74c2", PHASE_EXTRACTING, 294900, 26660000, T0 + S(1));
        for (int s = 2; s < 9; s++) {
                LivenessDelta l = helper(T0 + S(s), 0, 0, 'S');
                detector_liveness(d, &l);
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        LivenessDelta l = helper(T0 + S(9), 0, 0, 'S');
        detector_liveness(d, &l);
        assert_int_equal(detector_evaluate(d, T0 + S(9)), VERDICT_HUNG);
        const char *ev;
        detector_pull_verdict(d, NULL, &ev);
        assert_non_null(strstr(ev, "unpigz pid 4242 asleep"));
        detector_free(d);
}

/* A decompressor spinning without output: CPU is not life. Hung livelock_window after it began. */
static void test_decompressor_spinning_is_livelock(void **state) {
        Detector *d = mk();
        detector_layer(d, "l", PHASE_EXTRACTING, 1000, 5000000, T0);
        for (int s = 1; s <= 12; s++) {
                LivenessDelta l = helper(T0 + S(s), 100, 0, 'R');
                detector_liveness(d, &l);
                Verdict v = detector_evaluate(d, T0 + S(s));
                /* busy since T0 (interval start of the first sample): hung at exactly 12 s */
                if (s < 12)
                        assert_false(verdict_is_fault(v));
                else
                        assert_int_equal(v, VERDICT_HUNG);
        }
        const char *ev;
        detector_pull_verdict(d, NULL, &ev);
        assert_non_null(strstr(ev, "unpigz pid 4242 at 100% CPU, 0 bytes written for 12s"));
        detector_free(d);
}

/* A slow decompressor that works (reads, burns CPU, writes) is alive however long it takes. */
static void test_slow_working_decompressor_alive(void **state) {
        Detector *d = mk();
        detector_layer(d, "l", PHASE_EXTRACTING, 5000000, 5000000, T0);
        for (int s = 1; s <= 200; s++) {
                LivenessDelta l = helper(T0 + S(s), 90, s % 3 == 0 ? 65536 : 0, 'R');
                detector_liveness(d, &l);
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        assert_int_equal(layer_verdict(d, "l"), VERDICT_SILENT_ALIVE);
        detector_free(d);
}

/* containerd #12811: one layer stuck while three others download; summed bytes hide it from
 * containerd, pullwatch flags that layer network_stall after its last byte. */
static void test_one_layer_stuck_among_moving(void **state) {
        Detector *d = mk();
        const char *ids[] = { "a", "b", "c", "stuck" };
        for (int s = 0; s <= 15; s++) {
                for (int i = 0; i < 3; i++)
                        detector_layer(d, ids[i], PHASE_DOWNLOADING, (uint64_t) s * 100000, 10000000, T0 + S(s));
                detector_layer(d, "stuck", PHASE_DOWNLOADING, MIN(s, 2) * 100000ULL, 10000000, T0 + S(s));
                Verdict v = detector_evaluate(d, T0 + S(s));
                if (s < 12)
                        assert_int_equal(v, VERDICT_PROGRESSING);
                else
                        assert_int_equal(v, VERDICT_STALLED);
        }
        const char *layer;
        detector_pull_verdict(d, &layer, NULL);
        assert_string_equal(layer, "stuck");
        assert_int_equal(layer_verdict(d, "a"), VERDICT_PROGRESSING);
        detector_free(d);
}

/* containerd #11650: a trickle of bytes keeps a useless pull alive for an hour. Degraded once the
 * rate over a full trickle_window stays under the floor; never "stalled". */
static void test_trickle_is_degraded(void **state) {
        Detector *d = mk();
        Verdict v = VERDICT_PROGRESSING;
        int flipped = -1;
        for (int s = 0; s <= 40 && flipped < 0; s++) {
                detector_layer(d, "t", PHASE_DOWNLOADING, (uint64_t) s * 2000, 50000000, T0 + S(s));
                v = detector_evaluate(d, T0 + S(s));
                assert_true(v == VERDICT_PROGRESSING || v == VERDICT_DEGRADED);
                if (v == VERDICT_DEGRADED)
                        flipped = s;
        }
        assert_int_equal(v, VERDICT_DEGRADED);
        assert_int_equal(flipped, 20);
        detector_free(d);
}

/* A fast download is never degraded. */
static void test_fast_download_not_degraded(void **state) {
        Detector *d = mk();
        for (int s = 0; s <= 60; s++) {
                detector_layer(d, "f", PHASE_DOWNLOADING, (uint64_t) s * 1000000, 100000000, T0 + S(s));
                assert_int_equal(detector_evaluate(d, T0 + S(s)), VERDICT_PROGRESSING);
        }
        detector_free(d);
}

/* dockerd's max-concurrent-downloads: layers "Waiting" for a slot while others download are no stall. */
static void test_waiting_behind_slots_no_false_stall(void **state) {
        Detector *d = mk();
        for (int s = 0; s <= 60; s++) {
                for (int i = 0; i < 3; i++) {
                        char id[8];
                        snprintf(id, sizeof(id), "d%d", i);
                        detector_layer(d, id, PHASE_DOWNLOADING, (uint64_t) s * 50000, 10000000, T0 + S(s));
                }
                detector_layer(d, "w1", PHASE_WAITING, 0, 0, T0);
                detector_layer(d, "w2", PHASE_WAITING, 0, 0, T0);
                assert_int_equal(detector_evaluate(d, T0 + S(s)), VERDICT_PROGRESSING);
        }
        assert_int_equal(layer_verdict(d, "w1"), VERDICT_WAITING);
        detector_free(d);
}

/* Downloaded layers wait silently for their parent's extraction; alive parent = no stall. */
static void test_waiting_for_parent_extraction(void **state) {
        Detector *d = mk();
        detector_layer(d, "parent", PHASE_EXTRACTING, 0, 50000000, T0);
        detector_layer(d, "child", PHASE_WAITING, 0, 0, T0);
        for (int s = 1; s <= 60; s++) {
                LivenessDelta l = helper(T0 + S(s), 80, 100000, 'R');
                detector_liveness(d, &l);
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        detector_free(d);
}

/* Everything queued and nothing moving: the pull as a whole is stalled after waiting_max (15 s
 * here, not network_stall's 10 s). */
static void test_all_waiting_nothing_moves(void **state) {
        Detector *d = mk();
        detector_layer(d, "w1", PHASE_WAITING, 0, 0, T0);
        detector_layer(d, "w2", PHASE_WAITING, 0, 0, T0);
        assert_int_equal(detector_evaluate(d, T0 + S(14)), VERDICT_WAITING);
        assert_int_equal(detector_evaluate(d, T0 + S(15)), VERDICT_STALLED);
        const char *layer, *ev;
        detector_pull_verdict(d, &layer, &ev);
        assert_null(layer);
        assert_non_null(strstr(ev, "2 waiting"));
        detector_free(d);
}

/* containerd #9369/#13438: content commit (fsync) is silent on the wire; containerd's own writes are
 * the evidence when it extracts in-process and no download is moving. */
static void test_commit_with_runtime_io_alive(void **state) {
        Detector *d = mk();
        detector_layer(d, "c", PHASE_VERIFYING, 0, 0, T0);
        for (int s = 1; s <= 40; s++) {
                LivenessDelta l = lv_at(T0 + S(s));
                l.runtime_io = 8 << 20;
                l.runtime_cpu = S(1) / 10;
                detector_liveness(d, &l);
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        assert_int_equal(layer_verdict(d, "c"), VERDICT_SILENT_ALIVE);
        detector_free(d);
}

/* The runtime's own I/O is not evidence for a silent layer while another layer's download moves:
 * those bytes are the download's. */
/* Samples 1..max of a silent extracting layer "x" (100 of 30 MB): each sample's liveness from
 * sample(d, s) (which may move other layers too); the first sample x is hung at, -1 if none. */
static int first_hung_sample(int max, LivenessDelta (*sample)(Detector *d, int s)) {
        Detector *d = mk();
        int flipped = -1;

        detector_layer(d, "x", PHASE_EXTRACTING, 100, 30000000, T0);
        for (int s = 1; s <= max && flipped < 0; s++) {
                LivenessDelta l = sample(d, s);
                detector_liveness(d, &l);
                detector_evaluate(d, T0 + S(s));
                if (layer_verdict(d, "x") == VERDICT_HUNG)
                        flipped = s;
        }
        detector_free(d);
        return flipped;
}

static LivenessDelta download_moves_runtime_writes(Detector *d, int s) {
        detector_layer(d, "dl", PHASE_DOWNLOADING, (uint64_t) s * 1000000, 90000000, T0 + S(s));
        LivenessDelta l = lv_at(T0 + S(s));
        l.runtime_io = 1 << 20;
        return l;
}

static void test_runtime_io_during_download_not_evidence(void **state) {
        assert_int_equal(first_hung_sample(12, download_moves_runtime_writes), 8);
}

/* A decompressor asleep while the runtime writes now and then on its own account (containerd's GC
 * committing to its metadata after an earlier removal): hung hang_quiet after the helper's last
 * output, not hang_quiet after the runtime's last write. */
static LivenessDelta helper_asleep_runtime_writes_now_and_then(Detector *d, int s) {
        LivenessDelta l = helper(T0 + S(s), 0, 0, 'S');
        if (s % 6 == 0)
                l.runtime_io = 64 << 10;
        return l;
}

static void test_runtime_io_with_helper_asleep_not_evidence(void **state) {
        assert_int_equal(first_hung_sample(20, helper_asleep_runtime_writes_now_and_then), 8);
}

/* Blind (no /proc access): only the size-scaled silent budget applies. */
static void test_blind_uses_size_budget(void **state) {
        WatchdogConfig c = cfg();
        Detector *d = mk();
        assert_int_equal(detector_silent_budget(&c, 20000000), S(20));
        assert_int_equal(detector_silent_budget(&c, 1000), S(5));
        detector_layer(d, "b", PHASE_DOWNLOADING, 20000000, 20000000, T0);
        detector_layer(d, "b", PHASE_EXTRACTING, 0, 20000000, T0 + S(1));
        for (int s = 2; s < 21; s++)
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        assert_int_equal(detector_evaluate(d, T0 + S(21)), VERDICT_HUNG);
        detector_free(d);
}

/* Output after CPU-only stretches resets the livelock clock: a bursty decompressor is alive. */
static void test_bursty_output_resets_livelock(void **state) {
        Detector *d = mk();
        detector_layer(d, "l", PHASE_EXTRACTING, 0, 1000000, T0);
        for (int s = 1; s <= 100; s++) {
                LivenessDelta l = helper(T0 + S(s), 100, s % 10 == 0 ? 4096 : 0, 'R');
                detector_liveness(d, &l);
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        detector_free(d);
}

/* No answer while resolving: the pull is stalled before any layer is known. */
static void test_resolve_stall(void **state) {
        Detector *d = mk();
        detector_activity(d, T0 + S(2));
        assert_int_equal(detector_evaluate(d, T0 + S(11)), VERDICT_PROGRESSING);
        assert_int_equal(detector_evaluate(d, T0 + S(12)), VERDICT_STALLED);
        detector_free(d);
}

/* A restart (next attempt) forgets layers and starts the clocks again. */
static void test_restart(void **state) {
        Detector *d = mk();
        detector_layer(d, "a", PHASE_DOWNLOADING, 10, 100, T0);
        assert_int_equal(detector_evaluate(d, T0 + S(30)), VERDICT_STALLED);
        detector_restart(d, T0 + S(31));
        assert_int_equal(detector_n_layers(d), 0);
        assert_int_equal(detector_evaluate(d, T0 + S(32)), VERDICT_PROGRESSING);
        detector_free(d);
}

/* Verdict changes are flagged once, when they happen. */
static void test_verdict_changed_flag(void **state) {
        Detector *d = mk();
        detector_layer(d, "a", PHASE_DOWNLOADING, 10, 100, T0);
        detector_evaluate(d, T0 + S(1));
        assert_true(detector_find(d, "a")->verdict_changed);
        detector_evaluate(d, T0 + S(2));
        assert_false(detector_find(d, "a")->verdict_changed);
        detector_evaluate(d, T0 + S(11));
        assert_true(detector_find(d, "a")->verdict_changed);
        assert_int_equal(detector_find(d, "a")->verdict_since, T0 + S(11));
        detector_free(d);
}

/* dockerd's own retry ("Retrying in N seconds", one message a second, up to 5 tries): the runtime
 * is handling the layer, so it waits; once the countdown stops and nothing resumes, it is a stall. */
static void test_runtime_retry_countdown_is_waiting(void **state) {
        Detector *d = mk();
        detector_layer(d, "r", PHASE_DOWNLOADING, 0, 5000000, T0);
        detector_layer(d, "r", PHASE_DOWNLOADING, 1000000, 5000000, T0 + S(2));
        for (int s = 3; s <= 25; s++) {
                detector_runtime_retry(d, "r", T0 + S(s));
                assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(s))));
        }
        assert_int_equal(detector_find(d, "r")->verdict, VERDICT_WAITING);
        assert_int_equal(detector_find(d, "r")->runtime_retries, 1);
        assert_false(verdict_is_fault(detector_evaluate(d, T0 + S(39))));
        assert_int_equal(detector_evaluate(d, T0 + S(40)), VERDICT_STALLED);
        /* a resumed download is progress again, and a new countdown counts as a second retry */
        detector_restart(d, T0 + S(40));
        detector_layer(d, "r", PHASE_DOWNLOADING, 0, 5000000, T0 + S(40));
        detector_runtime_retry(d, "r", T0 + S(41));
        detector_layer(d, "r", PHASE_DOWNLOADING, 100, 5000000, T0 + S(46));
        detector_runtime_retry(d, "r", T0 + S(47));
        assert_int_equal(detector_find(d, "r")->runtime_retries, 2);
        detector_free(d);
}

static void test_bad_input(void **state) {
        Detector *d = mk();
        assert_int_equal(detector_layer(d, NULL, PHASE_DOWNLOADING, 0, 0, T0), -EINVAL);
        assert_int_equal(detector_layer(d, "a", (Phase) 99, 0, 0, T0), -EINVAL);
        /* time going backwards is clamped, never a negative duration */
        detector_layer(d, "a", PHASE_DOWNLOADING, 10, 100, T0 + S(5));
        detector_layer(d, "a", PHASE_DOWNLOADING, 20, 100, T0 + S(1));
        assert_int_equal(detector_evaluate(d, T0 + S(6)), VERDICT_PROGRESSING);
        detector_free(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_blob_stalled_mid_layer),
                cmocka_unit_test(test_silent_extract_with_liveness_never_cancelled),
                cmocka_unit_test(test_decompressor_asleep_is_hung),
                cmocka_unit_test(test_decompressor_spinning_is_livelock),
                cmocka_unit_test(test_slow_working_decompressor_alive),
                cmocka_unit_test(test_one_layer_stuck_among_moving),
                cmocka_unit_test(test_trickle_is_degraded),
                cmocka_unit_test(test_fast_download_not_degraded),
                cmocka_unit_test(test_waiting_behind_slots_no_false_stall),
                cmocka_unit_test(test_waiting_for_parent_extraction),
                cmocka_unit_test(test_all_waiting_nothing_moves),
                cmocka_unit_test(test_commit_with_runtime_io_alive),
                cmocka_unit_test(test_runtime_io_during_download_not_evidence),
                cmocka_unit_test(test_runtime_io_with_helper_asleep_not_evidence),
                cmocka_unit_test(test_blind_uses_size_budget),
                cmocka_unit_test(test_bursty_output_resets_livelock),
                cmocka_unit_test(test_resolve_stall),
                cmocka_unit_test(test_restart),
                cmocka_unit_test(test_verdict_changed_flag),
                cmocka_unit_test(test_runtime_retry_countdown_is_waiting),
                cmocka_unit_test(test_bad_input),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
