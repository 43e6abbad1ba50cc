/* bench_policies: the stall matrix replayed through pullwatch's detector and the peers' cancel rules
 * with budgets scaled down identically (real defaults / 10). Prints one row per fault: who cancelled
 * a healthy pull, who missed a hang, and how long each took to catch one. */
#include <stdio.h>
#include "tests/bench/replay.h"

int main(void) {
        WatchdogConfig cfg;
        usec_t deadlines[_PEER_KIND_MAX];
        unsigned false_cancels[_PEER_KIND_MAX + 1] = {}, missed[_PEER_KIND_MAX + 1] = {};

        replay_scaled_config(&cfg);
        replay_peer_deadlines(deadlines);
        printf("| fault | pullwatch");
        for (int p = 0; p < _PEER_KIND_MAX; p++)
                printf(" | %s", peer_kind_to_string(p));
        printf(" |\n|---|---");
        for (int p = 0; p < _PEER_KIND_MAX; p++)
                printf("|---");
        printf("|\n");
        for (size_t i = 0; i < replay_n_scenarios(); i++) {
                ReplayRow row;
                char buf[64];
                const char *v;
                if (replay_run(i, &cfg, deadlines, &row) < 0)
                        return 1;
                v = replay_verdict_text(&row, &row.pullwatch, buf, sizeof(buf));
                printf("| %s%s | %s", row.name, row.healthy ? " (healthy)" : "", v);
                false_cancels[_PEER_KIND_MAX] += streq(v, "FALSE CANCEL");
                missed[_PEER_KIND_MAX] += streq(v, "MISSED");
                for (int p = 0; p < _PEER_KIND_MAX; p++) {
                        v = replay_verdict_text(&row, &row.peers[p], buf, sizeof(buf));
                        false_cancels[p] += streq(v, "FALSE CANCEL");
                        missed[p] += streq(v, "MISSED");
                        printf(" | %s", v);
                }
                printf(" |\n");
        }
        printf("| **false cancels / missed hangs** | %u / %u", false_cancels[_PEER_KIND_MAX], missed[_PEER_KIND_MAX]);
        for (int p = 0; p < _PEER_KIND_MAX; p++)
                printf(" | %u / %u", false_cancels[p], missed[p]);
        printf(" |\n\nBudgets (real defaults / 10): pullwatch network_stall 6s, hang_quiet 12s, livelock_window 30s, "
               "trickle 32KiB/s over 30s; kubelet and cri-dockerd deadline 6s; containerd CRI 30s; CRI-O 1s.\n");
        return 0;
}
