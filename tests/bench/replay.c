/* replay.c: each scenario says, for every second, what each layer shows (phase, bytes) and what the
 * liveness probes would see; the same ticks drive the detector and the peer policies. */
#include "tests/bench/replay.h"

#include <stdio.h>
#include "daemon/pull/detector.h"

#define S(x) ((usec_t) (x) * USEC_PER_SEC)
#define HORIZON 240
#define MAX_LAYERS 6

typedef struct Tick {
        unsigned n;
        struct {
                const char *id;
                Phase phase;
                uint64_t current, total;
        } layer[MAX_LAYERS];
        LivenessDelta lv;         /* at/interval filled by the engine */
        bool done;
} Tick;

typedef void (*scenario_fn)(int t, Tick *k);

static void L(Tick *k, const char *id, Phase p, uint64_t cur, uint64_t tot) {
        k->layer[k->n].id = id;
        k->layer[k->n].phase = p;
        k->layer[k->n].current = cur;
        k->layer[k->n].total = tot;
        k->n++;
}

static void helper(Tick *k, unsigned cpu_pct, uint64_t io, char state) {
        k->lv.n_helpers = 1;
        k->lv.busiest_pid = 100;
        snprintf(k->lv.busiest_comm, sizeof(k->lv.busiest_comm), "unpigz");
        k->lv.busiest_state = state;
        k->lv.helper_cpu = S(1) * cpu_pct / 100;
        k->lv.helper_io = io;
}

#define MB 1000000ULL

/* Report 000 / dockerd's stalled body read: bytes stop at 20 s, the connection held open. */
static void sc_blob_stall(int t, Tick *k) {
        L(k, "big", PHASE_DOWNLOADING, (uint64_t) MIN(t, 20) * 10 * MB, 1400 * MB);
}

/* containerd #12811: one layer stuck at 5 s while three others download for 100 s. */
static void sc_one_stuck(int t, Tick *k) {
        L(k, "stuck", PHASE_DOWNLOADING, (uint64_t) MIN(t, 5) * MB, 500 * MB);
        for (int i = 0; i < 3; i++) {
                static const char *ids[] = { "a", "b", "c" };
                L(k, ids[i], t < 100 ? PHASE_DOWNLOADING : PHASE_WAITING, (uint64_t) MIN(t, 100) * MB, 100 * MB);
        }
}

/* Report 001: a 3 GB layer, downloaded by 10 s, then 74 s of silent extraction with real output. */
static void sc_silent_extract(int t, Tick *k) {
        if (t < 10)
                L(k, "big", PHASE_DOWNLOADING, (uint64_t) t * 300 * MB, 3000 * MB);
        else if (t < 84) {
                L(k, "big", PHASE_EXTRACTING, 3000 * MB, 3000 * MB);
                helper(k, 100, 40 * MB, 'R');
        } else {
                L(k, "big", PHASE_DONE, 0, 0);
                k->done = true;
        }
}

/* Report 002: unpigz asleep from the start of extraction at 10 s. */
static void sc_decomp_asleep(int t, Tick *k) {
        if (t < 10)
                L(k, "l", PHASE_DOWNLOADING, (uint64_t) t * 3 * MB, 27 * MB);
        else {
                L(k, "l", PHASE_EXTRACTING, 294900, 27 * MB);
                helper(k, 0, 0, 'S');
        }
}

/* A decompressor spinning without output from 10 s. */
static void sc_decomp_spin(int t, Tick *k) {
        if (t < 10)
                L(k, "l", PHASE_DOWNLOADING, (uint64_t) t * 3 * MB, 27 * MB);
        else {
                L(k, "l", PHASE_EXTRACTING, 294900, 27 * MB);
                helper(k, 100, 0, 'R');
        }
}

/* containerd #11650: a trickle of 2 KB/s that would take hours; useless from the start. */
static void sc_trickle(int t, Tick *k) {
        L(k, "t", PHASE_DOWNLOADING, (uint64_t) t * 2000, 800 * MB);
}

/* Six layers, three download slots: three wait 50 s, then all extract with visible bytes. */
static void sc_slots(int t, Tick *k) {
        static const char *ids[] = { "l0", "l1", "l2", "l3", "l4", "l5" };
        for (int i = 0; i < 6; i++) {
                int start = i < 3 ? 0 : 50, end = start + 50;
                if (t < start)
                        L(k, ids[i], PHASE_WAITING, 0, 0);
                else if (t < end)
                        L(k, ids[i], PHASE_DOWNLOADING, (uint64_t) (t - start) * MB, 50 * MB);
                else if (t < 100 + 5 * (i + 1))
                        L(k, ids[i], i == 0 || t >= 100 + 5 * i ? PHASE_EXTRACTING : PHASE_WAITING,
                          (uint64_t) (t - 100) * 10 * MB, 50 * MB);
                else
                        L(k, ids[i], PHASE_DONE, 0, 0);
        }
        k->done = t >= 130;
}

/* containerd #9369: content commit (fsync) silent on the wire for 50 s, containerd writing. */
static void sc_commit(int t, Tick *k) {
        if (t < 10)
                L(k, "c", PHASE_DOWNLOADING, (uint64_t) t * 100 * MB, 1000 * MB);
        else if (t < 60) {
                L(k, "c", PHASE_VERIFYING, 0, 0);
                k->lv.runtime_io = 50 * MB;
                k->lv.runtime_cpu = S(1) / 5;
        } else {
                L(k, "c", PHASE_DONE, 0, 0);
                k->done = true;
        }
}

static const struct {
        const char *name;
        scenario_fn fn;
        bool healthy;
        int fault_since;
} scenarios[] = {
        { "blob stalled forever mid-layer", sc_blob_stall, false, 20 },
        { "one layer stalled while three others download", sc_one_stuck, false, 5 },
        { "slow but working decompressor (silent 74 s)", sc_silent_extract, true, 0 },
        { "decompressor asleep", sc_decomp_asleep, false, 10 },
        { "decompressor spinning without output", sc_decomp_spin, false, 10 },
        { "trickle below the floor rate", sc_trickle, false, 0 },
        { "layers waiting behind download slots", sc_slots, true, 0 },
        { "content commit silent on the wire (containerd #9369)", sc_commit, true, 0 },
};

size_t replay_n_scenarios(void) { return ELEMENTSOF(scenarios); }

void replay_scaled_config(WatchdogConfig *ret) {
        *ret = (WatchdogConfig) {
                .sample_interval = S(1),
                .network_stall = S(6),
                .silent_min = S(12),
                .silent_min_rate = 200 * MB,
                .hang_quiet = S(12),
                .livelock_window = S(30),
                .trickle_rate = 32 * 1024,
                .trickle_window = S(30),
                .waiting_max = S(60),
        };
}

void replay_peer_deadlines(usec_t ret[_PEER_KIND_MAX]) {
        ret[PEER_KUBELET_DOCKERSHIM] = S(6);  /* --image-pull-progress-deadline 1m */
        ret[PEER_CRI_DOCKERD] = S(6);         /* the same flag, kept by cri-dockerd */
        ret[PEER_CONTAINERD_CRI] = S(30);     /* image_pull_progress_timeout 5m */
        ret[PEER_CRIO] = S(1);                /* pull_progress_timeout 10s (before it was disabled) */
}

int replay_run(size_t i, const WatchdogConfig *cfg, const usec_t deadlines[_PEER_KIND_MAX], ReplayRow *ret) {
        const usec_t t0 = S(1000);
        Detector *d = NULL;
        PeerPolicy peers[_PEER_KIND_MAX];
        Tick prev = {};
        int r;

        if (i >= ELEMENTSOF(scenarios))
                return -EINVAL;
        *ret = (ReplayRow) { .name = scenarios[i].name, .healthy = scenarios[i].healthy,
                             .fault_since = S(scenarios[i].fault_since) };
        r = detector_new(cfg, t0, &d);
        if (r < 0)
                return r;
        for (int p = 0; p < _PEER_KIND_MAX; p++)
                peer_policy_init(&peers[p], p, deadlines[p], t0);

        for (int t = 0; t <= HORIZON; t++) {
                usec_t now = t0 + S(t);
                Tick k = {};
                bool message = false, open = false, extracting_last = false;
                uint64_t bytes = 0;

                scenarios[i].fn(t, &k);
                for (unsigned l = 0; l < k.n; l++) {
                        bool changed = true;
                        for (unsigned m = 0; m < prev.n; m++)
                                if (streq(prev.layer[m].id, k.layer[l].id))
                                        changed = prev.layer[m].phase != k.layer[l].phase ||
                                                  prev.layer[m].current != k.layer[l].current;
                        /* A runtime emits a message only when something it reports changed. */
                        if (changed) {
                                message = true;
                                extracting_last = k.layer[l].phase == PHASE_EXTRACTING;
                                detector_layer(d, k.layer[l].id, k.layer[l].phase, k.layer[l].current,
                                               k.layer[l].total, now);
                        }
                        if (k.layer[l].phase == PHASE_DOWNLOADING || k.layer[l].phase == PHASE_VERIFYING)
                                open = true;
                        if (k.layer[l].phase == PHASE_DOWNLOADING)
                                bytes += k.layer[l].current;
                        else if (k.layer[l].phase != PHASE_WAITING || k.layer[l].current)
                                bytes += k.layer[l].total;
                }
                /* cri-dockerd looks at the last status it got, whenever that was. */
                if (!message)
                        extracting_last = peers[PEER_CRI_DOCKERD].extracting_last;
                peers[PEER_CRI_DOCKERD].extracting_last = extracting_last;

                k.lv.at = now;
                k.lv.interval = S(1);
                k.lv.available = true;
                detector_liveness(d, &k.lv);
                if (!ret->pullwatch.cancelled && verdict_is_fault(detector_evaluate(d, now)))
                        ret->pullwatch = (ReplayOutcome) { true, S(t) };
                for (int p = 0; p < _PEER_KIND_MAX; p++) {
                        peer_policy_tick(&peers[p], now, message, bytes, open, extracting_last);
                        if (peers[p].cancelled && !ret->peers[p].cancelled)
                                ret->peers[p] = (ReplayOutcome) { true, S(t) };
                }
                prev = k;
                if (k.done)
                        break;
        }
        detector_free(d);
        return 0;
}

const char *replay_verdict_text(const ReplayRow *row, const ReplayOutcome *o, char *buf, size_t n) {
        if (row->healthy)
                return o->cancelled ? "FALSE CANCEL" : "ok";
        if (!o->cancelled)
                return "MISSED";
        if (o->at < row->fault_since)
                return "FALSE CANCEL";
        snprintf(buf, n, "caught %.0fs", (double) (o->at - row->fault_since) / USEC_PER_SEC);
        return buf;
}
