/* replay.h: the stall matrix as scripted timelines (ground truth attached), replayed tick by tick
 * through pullwatch's detector and through each peer policy. Pure; for the bench and its tests. */
#pragma once

#include "config/config.h"
#include "tests/bench/peer_policy.h"

typedef struct ReplayOutcome {
        bool cancelled;
        usec_t at;                /* when it cancelled, from the scenario's start */
} ReplayOutcome;

typedef struct ReplayRow {
        const char *name;
        bool healthy;             /* ground truth: must never be cancelled */
        usec_t fault_since;       /* for faults: when it went bad */
        ReplayOutcome pullwatch;
        ReplayOutcome peers[_PEER_KIND_MAX];
} ReplayRow;

/* Scaled budgets: real defaults divided by ten, identically for pullwatch and the peers. */
void replay_scaled_config(WatchdogConfig *ret);
void replay_peer_deadlines(usec_t ret[_PEER_KIND_MAX]);

size_t replay_n_scenarios(void);
/* Run scenario i; fills *ret. */
int replay_run(size_t i, const WatchdogConfig *cfg, const usec_t deadlines[_PEER_KIND_MAX], ReplayRow *ret);

/* "false cancel", "missed", "ok", or for caught faults the latency into buf. */
const char *replay_verdict_text(const ReplayRow *row, const ReplayOutcome *o, char *buf, size_t n);
