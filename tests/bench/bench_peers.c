/* bench_peers: the peers' cancel rules replayed over a timeline recorded on a real runtime. Reads the
 * `pullwatch pull --json` events of one faulted (or healthy) pull and prints one row of the peer
 * table: what pullwatch did on that runtime, and what each peer's rule (daemon/peer_policy.c, the
 * same scaled deadlines as bench_policies) would have done with the same runtime messages.
 *
 *   bench_peers --fault|--healthy NAME EVENTS.json
 *
 * The timeline is attempt 1 up to its end (pullwatch's cut, or the result). Ticks are 100 ms: a tick
 * carries a message when the runtime reported anything for any layer (a phase or progress event).
 * pullwatch writes at most one progress event per layer and second (PROGRESS_EVENT_INTERVAL) while the
 * runtime sends many more, so the time between two events of one layer at most 1.5 s apart whose count
 * or phase moved counts as messages throughout; repeated identical counts (dockerd on the containerd
 * store repeats one every second) never reach the events, so a rule that any message resets may be
 * more patient on the real stream than here. The bytes are the sum of every layer's last count, a
 * request is open while a layer downloads,
 * and the last status is the newest phase event's. For a fault the runtime's state is then held as
 * it was (nothing more arrives: the fault is permanent) for 300 s, so a peer that had not cancelled
 * by pullwatch's cut is followed to its own verdict or to MISSED. A fault's latency is counted from
 * the faulted layer's last sign of life (its last phase or progress event before the verdict), as in
 * the detection-latency table. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/bench/peer_policy.h"
#include "tests/bench/replay.h"

#define TICK (USEC_PER_SEC / 10)
#define HOLD (300 * USEC_PER_SEC)
#define MAX_LAYERS 64

typedef struct Ev {
        usec_t t;
        const char *event, *layer, *phase, *verdict, *action;
        uint64_t current;
        int attempt;
} Ev;

static usec_t secs(json_t *v) { return (usec_t) (json_number_value(v) * USEC_PER_SEC + 0.5); }

static int by_time(const void *a, const void *b) {
        const Ev *x = a, *y = b;
        return x->t < y->t ? -1 : x->t > y->t;
}

static const char *str(json_t *o, const char *k) { return json_string_value(json_object_get(o, k)); }

int main(int argc, char **argv) {
        bool healthy;
        json_t *all;
        Ev *ev;
        size_t n = 0, cap = 0, end_i;
        usec_t end = 0, pw_at = 0, fault_since = 0, deadlines[_PEER_KIND_MAX];
        bool pw_cancelled = false, ok_result = false;
        char line[65536];
        FILE *f;

        if (argc != 4 || (strcmp(argv[1], "--fault") && strcmp(argv[1], "--healthy"))) {
                fprintf(stderr, "usage: bench_peers --fault|--healthy NAME EVENTS.json\n");
                return 2;
        }
        healthy = !strcmp(argv[1], "--healthy");
        f = fopen(argv[3], "re");
        if (!f) {
                fprintf(stderr, "bench_peers: %s: %m\n", argv[3]);
                return 1;
        }
        all = json_array();
        ev = NULL;
        for (unsigned lineno = 1; fgets(line, sizeof(line), f); lineno++) {
                json_error_t err;
                json_t *o = json_loads(line, 0, &err);
                if (!o || !json_is_object(o)) {
                        fprintf(stderr, "bench_peers: %s:%u: not a JSON event: %s\n", argv[3], lineno, err.text);
                        return 1;
                }
                json_array_append_new(all, o);
                if (n == cap) {
                        cap = cap ? cap * 2 : 256;
                        ev = realloc(ev, cap * sizeof(*ev));
                        if (!ev)
                                return 1;
                }
                /* a catch-up event written at a verdict carries when its bytes were seen */
                json_t *obs = json_object_get(o, "observed_t");
                ev[n++] = (Ev) { .t = secs(json_is_number(obs) ? obs : json_object_get(o, "t")),
                                 .event = str(o, "event") ?: "",
                                 .layer = str(o, "layer"), .phase = str(o, "phase"), .verdict = str(o, "verdict"),
                                 .action = str(o, "action"),
                                 .current = (uint64_t) json_integer_value(json_object_get(o, "current")),
                                 .attempt = (int) json_integer_value(json_object_get(o, "attempt")) };
        }
        fclose(f);

        /* attempt 1's end: pullwatch's cut, a retry, or the result */
        end_i = n;
        for (size_t i = 0; i < n && end_i == n; i++) {
                if (ev[i].attempt > 1)
                        end_i = i;
                else if (!strcmp(ev[i].event, "action") && ev[i].action && !strcmp(ev[i].action, "cancel")) {
                        pw_cancelled = true;
                        pw_at = ev[i].t;
                        end_i = i;
                } else if (!strcmp(ev[i].event, "retry") || !strcmp(ev[i].event, "result")) {
                        ok_result = !strcmp(ev[i].event, "result") &&
                                    json_is_true(json_object_get(json_array_get(all, i), "ok"));
                        end_i = i;
                }
        }
        if (end_i == n) {
                fprintf(stderr, "bench_peers: %s: attempt 1 has no end (no cancel, retry or result)\n", argv[3]);
                return 1;
        }
        end = ev[end_i].t;
        qsort(ev, end_i, sizeof(*ev), by_time);
        if (!healthy) {
                /* the faulted layer: the one pullwatch's fault verdict named, else the one that spoke last */
                const char *layer = NULL;
                for (size_t i = 0; i < end_i && !layer; i++)
                        if (!strcmp(ev[i].event, "verdict") && ev[i].verdict &&
                            verdict_is_fault(verdict_from_string(ev[i].verdict)))
                                layer = ev[i].layer;
                for (size_t i = 0; i < end_i; i++)
                        if ((!strcmp(ev[i].event, "phase") || !strcmp(ev[i].event, "progress")) &&
                            (!layer || (ev[i].layer && !strcmp(ev[i].layer, layer))))
                                fault_since = MAX(fault_since, ev[i].t);
        }

        /* which ticks carry a runtime message (see the header) */
        size_t n_ticks = (size_t) (end / TICK) + 2;
        bool *msg = calloc(n_ticks, sizeof(bool));
        if (!msg)
                return 1;
        for (size_t i = 0; i < end_i; i++) {
                if ((strcmp(ev[i].event, "phase") && strcmp(ev[i].event, "progress")) || !ev[i].layer)
                        continue;
                msg[(ev[i].t + TICK - 1) / TICK] = true;
                for (size_t k = i; k-- > 0;) {
                        if ((strcmp(ev[k].event, "phase") && strcmp(ev[k].event, "progress")) || !ev[k].layer ||
                            strcmp(ev[k].layer, ev[i].layer))
                                continue;
                        bool moved = ev[k].current != ev[i].current ||
                                     !ev[k].phase != !ev[i].phase || (ev[k].phase && strcmp(ev[k].phase, ev[i].phase));
                        if (moved && ev[i].t - ev[k].t <= 3 * USEC_PER_SEC / 2)
                                for (usec_t t = ev[k].t; t <= ev[i].t + TICK - 1; t += TICK)
                                        msg[(t + TICK - 1) / TICK] = true;
                        break;
                }
        }

        /* the runtime's state, tick by tick */
        struct { const char *id; uint64_t bytes; bool downloading; } layers[MAX_LAYERS];
        size_t n_layers = 0, next = 0;
        bool last_extracting = false;
        PeerPolicy peers[_PEER_KIND_MAX];
        replay_peer_deadlines(deadlines);
        for (int p = 0; p < _PEER_KIND_MAX; p++)
                peer_policy_init(&peers[p], p, deadlines[p], 0);
        for (usec_t now = TICK; now <= (healthy ? end : end + HOLD); now += TICK) {
                bool message = false, request_open = false;
                uint64_t total = 0;
                for (; next < end_i && ev[next].t <= now; next++) {
                        const Ev *e = &ev[next];
                        size_t k;
                        if ((strcmp(e->event, "phase") && strcmp(e->event, "progress")) || !e->layer)
                                continue;
                        for (k = 0; k < n_layers && strcmp(layers[k].id, e->layer); k++)
                                ;
                        if (k == n_layers) {
                                if (n_layers == MAX_LAYERS)
                                        continue;
                                layers[n_layers++] = (typeof(layers[0])) { .id = e->layer };
                        }
                        Phase ph = e->phase ? phase_from_string(e->phase) : _PHASE_INVALID;
                        layers[k].downloading = ph == PHASE_DOWNLOADING;
                        if (ph == PHASE_DOWNLOADING && e->current > layers[k].bytes)
                                layers[k].bytes = e->current;
                        if (!strcmp(e->event, "phase"))
                                last_extracting = ph == PHASE_EXTRACTING;
                }
                message = now / TICK < n_ticks && msg[now / TICK];
                for (size_t k = 0; k < n_layers; k++) {
                        total += layers[k].bytes;
                        request_open |= layers[k].downloading;
                }
                for (int p = 0; p < _PEER_KIND_MAX; p++)
                        peer_policy_tick(&peers[p], now, message, total, request_open, last_extracting);
        }

        /* one row, in bench_policies' words */
        ReplayRow row = { .name = argv[2], .healthy = healthy, .fault_since = fault_since,
                          .pullwatch = { .cancelled = pw_cancelled, .at = pw_at } };
        char buf[64];
        if (healthy && !pw_cancelled && !ok_result)
                fprintf(stderr, "bench_peers: %s: the healthy pull did not succeed\n", argv[3]);
        printf("| %s%s | %s", row.name, healthy ? " (healthy)" : "",
               replay_verdict_text(&row, &row.pullwatch, buf, sizeof(buf)));
        for (int p = 0; p < _PEER_KIND_MAX; p++) {
                row.peers[p] = (ReplayOutcome) { .cancelled = peers[p].cancelled, .at = peers[p].cancelled_at };
                printf(" | %s", replay_verdict_text(&row, &row.peers[p], buf, sizeof(buf)));
        }
        printf(" |\n");
        json_decref(all);
        free(msg);
        free(ev);
        return 0;
}
