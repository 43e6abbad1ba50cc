/* bench_fleet.c: a fleet model for `make bench-fleet`: N synthetic machine-ids through the daemon's own
 * splay (preheat_splay_delay), each node preheating K images of S bytes at most `concurrency` at once;
 * the registry serves B bytes/s shared fairly between open pulls, each node's link L bytes/s shared by
 * its own pulls. Prints a markdown table (peak concurrent pulls at the registry, time to a fully
 * preheated fleet, the slowest pull's rate against watchdog.trickle_rate) and, with --curve FILE, the
 * open pulls over time for gnuplot. A fluid model stepped in time; not a measurement. */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/preheat/preheat.h"

typedef struct Scenario {
        const char *name;
        usec_t splay;
        unsigned concurrency;
} Scenario;

typedef struct Result {
        unsigned peak;            /* pulls open at the registry at once */
        double done_s;            /* last image on the last node */
        double min_rate;          /* the slowest pull's average rate, bytes/s */
        double p50_s;             /* half the fleet fully preheated */
} Result;

typedef struct Pull {
        double start;             /* splay: earliest start */
        double started, left;
        int state;                /* 0 waiting, 1 open, 2 done */
} Pull;

static void machine_id(unsigned i, char out[33]) {
        uint64_t x = 0x9e3779b97f4a7c15ULL * (i + 1), y = x ^ 0xd1b54a32d192ed03ULL;
        /* splitmix64 twice: 32 hex like /etc/machine-id */
        for (int k = 0; k < 2; k++) {
                uint64_t *v = k ? &y : &x;
                *v += 0x9e3779b97f4a7c15ULL;
                uint64_t z = *v;
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
                *v = z ^ (z >> 31);
        }
        snprintf(out, 33, "%016" PRIx64 "%016" PRIx64, x, y);
}

static Result simulate(unsigned nodes, unsigned images, double size, double registry_bw, double node_bw,
                       const Scenario *s, FILE *curve) {
        Pull *p = calloc((size_t) nodes * images, sizeof(Pull));
        unsigned *open_on = calloc(nodes, sizeof(unsigned)), *done_on = calloc(nodes, sizeof(unsigned));
        double *node_done = calloc(nodes, sizeof(double));
        Result res = { .min_rate = INFINITY };
        char id[33], img[64];
        size_t total = (size_t) nodes * images, finished = 0;
        double t = 0, dt;

        if (!p || !open_on || !done_on || !node_done)
                abort();
        for (unsigned n = 0; n < nodes; n++) {
                machine_id(n, id);
                for (unsigned k = 0; k < images; k++) {
                        snprintf(img, sizeof(img), "registry.example.com/team/app%u:v1", k);
                        Pull *q = &p[(size_t) n * images + k];
                        q->start = (double) preheat_splay_delay(id, img, s->splay) / USEC_PER_SEC;
                        q->left = size;
                }
        }
        /* step: a fiftieth of the fastest possible pull, or 1/4000 of the registry's time to serve the fleet */
        dt = fmax(size / node_bw / 50.0, (double) nodes * images * size / registry_bw / 4000.0);
        while (finished < total) {
                unsigned open = 0;
                /* start what the splay and the node's concurrency allow */
                for (size_t i = 0; i < total; i++) {
                        unsigned n = (unsigned) (i / images);
                        if (p[i].state == 0 && p[i].start <= t && open_on[n] < s->concurrency) {
                                p[i].state = 1;
                                p[i].started = t;
                                open_on[n]++;
                        }
                        if (p[i].state == 1)
                                open++;
                }
                if (open > res.peak)
                        res.peak = open;
                if (curve)
                        fprintf(curve, "%.2f %u\n", t, open);
                double share = open ? registry_bw / open : 0;
                for (size_t i = 0; i < total; i++) {
                        if (p[i].state != 1)
                                continue;
                        unsigned n = (unsigned) (i / images);
                        double rate = fmin(share, node_bw / open_on[n]);
                        p[i].left -= rate * dt;
                        if (p[i].left <= 0) {
                                double took = t + dt - p[i].started;
                                res.min_rate = fmin(res.min_rate, size / took);
                                p[i].state = 2;
                                open_on[n]--;
                                if (++done_on[n] == images)
                                        node_done[n] = t + dt;
                                finished++;
                        }
                }
                t += dt;
                /* nothing open: jump to the next splay start */
                if (open == 0) {
                        double next = INFINITY;
                        for (size_t i = 0; i < total; i++)
                                if (p[i].state == 0)
                                        next = fmin(next, p[i].start);
                        if (isfinite(next) && next > t)
                                t = next;
                }
        }
        res.done_s = t;
        /* median node */
        for (unsigned i = 1; i < nodes; i++)
                for (unsigned j = i; j > 0 && node_done[j - 1] > node_done[j]; j--) {
                        double x = node_done[j];
                        node_done[j] = node_done[j - 1];
                        node_done[j - 1] = x;
                }
        res.p50_s = node_done[nodes / 2];
        free(p);
        free(open_on);
        free(done_on);
        free(node_done);
        return res;
}

static void human_time(double s, char *buf, size_t n) {
        if (s >= 3600)
                snprintf(buf, n, "%.1fh", s / 3600);
        else if (s >= 60)
                snprintf(buf, n, "%.1fm", s / 60);
        else
                snprintf(buf, n, "%.0fs", s);
}

int main(int argc, char **argv) {
        /* defaults: 2 images of 1 GiB, a 10 Gbit/s registry, 1 Gbit/s per node */
        double size = 1024.0 * 1024 * 1024, registry_bw = 1.25e9, node_bw = 1.25e8;
        unsigned images = 2;
        const char *curve_prefix = NULL;
        unsigned fleets[] = { 1000, 10000 };

        for (int i = 1; i + 1 < argc; i += 2) {
                if (streq(argv[i], "--size"))
                        size = strtod(argv[i + 1], NULL);
                else if (streq(argv[i], "--images"))
                        images = (unsigned) strtoul(argv[i + 1], NULL, 10);
                else if (streq(argv[i], "--registry-bw"))
                        registry_bw = strtod(argv[i + 1], NULL);
                else if (streq(argv[i], "--node-bw"))
                        node_bw = strtod(argv[i + 1], NULL);
                else if (streq(argv[i], "--curve"))
                        curve_prefix = argv[i + 1];
        }
        printf("Inputs: %u images of %.1f GiB per node, registry %.1f Gbit/s shared fairly between open pulls, "
               "%.1f Gbit/s per node.\n\n",
               images, size / (1024.0 * 1024 * 1024), registry_bw * 8 / 1e9, node_bw * 8 / 1e9);
        printf("| nodes | splay | concurrency | peak pulls at the registry | half the fleet ready | whole fleet ready | "
               "slowest pull |\n|---|---|---|---|---|---|---|\n");
        for (size_t f = 0; f < ELEMENTSOF(fleets); f++) {
                unsigned n = fleets[f];
                /* the registry's own time to serve the fleet once: a splay of that spreads the starts */
                double serve = n * images * size / registry_bw;
                char sp[32];
                usec_t fit = (usec_t) (serve * USEC_PER_SEC);
                Scenario sc[] = {
                        { "0s", 0, 2 },
                        { "2m", 120 * USEC_PER_SEC, 2 },
                        { "2m", 120 * USEC_PER_SEC, 1 },
                        { NULL, fit, 1 },
                        { NULL, fit, 2 },
                };
                for (size_t i = 0; i < ELEMENTSOF(sc); i++) {
                        FILE *curve = NULL;
                        char path[512], a[32], b[32];
                        if (curve_prefix && n == 10000) {
                                snprintf(path, sizeof(path), "%s.%zu.dat", curve_prefix, i);
                                curve = fopen(path, "we");
                        }
                        Result r = simulate(n, images, size, registry_bw, node_bw, &sc[i], curve);
                        if (curve)
                                fclose(curve);
                        human_time((double) sc[i].splay / USEC_PER_SEC, sp, sizeof(sp));
                        human_time(r.p50_s, a, sizeof(a));
                        human_time(r.done_s, b, sizeof(b));
                        printf("| %u | %s%s | %u | %u | %s | %s | %.0f KiB/s |\n", n, sp,
                               sc[i].name ? "" : " (= N x K x S / B)", sc[i].concurrency, r.peak, a, b,
                               r.min_rate / 1024);
                }
        }
        return 0;
}
