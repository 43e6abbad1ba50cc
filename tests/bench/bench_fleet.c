/* bench_fleet.c: a fleet model for `make bench-fleet`: N synthetic machine-ids through the daemon's own
 * splay (preheat_splay_delay), each node preheating K images of S bytes at most `concurrency` at once;
 * the registry serves B bytes/s shared fairly between open pulls, each node's link L bytes/s shared by
 * its own pulls. With a mirror layer (P2P: Spegel, Dragonfly, Kraken) only a fraction f of the nodes
 * (the seeds) pull from the registry; the others fetch from peers at node bandwidth, and only bytes a
 * seed already has. Prints markdown tables (peak concurrent pulls at the registry, bytes it serves, time
 * to a fully preheated fleet, the slowest pull's rate against watchdog.trickle_rate) and, with --curve
 * FILE, the pulls open at the registry over time for gnuplot; --tsv prints the raw rows instead (for
 * tests/integration/fleet_model.bats). A fluid model stepped in time; not a measurement. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "daemon/preheat/preheat.h"

#define GIB (1024.0 * 1024 * 1024)

typedef struct Model {
        unsigned nodes, images;
        double size, registry_bw, node_bw;
        double seed_fraction;     /* 1: every node pulls from the registry, no mirror layer */
} Model;

typedef struct Scenario {
        const char *name;         /* NULL: a splay fitted to the registry's time, named by `fit` */
        usec_t splay;
        unsigned concurrency;
} Scenario;

typedef struct Result {
        unsigned peak;            /* pulls open at the registry at once */
        double registry_bytes;    /* what the registry served */
        double done_s;            /* last image on the last node */
        double min_rate;          /* the slowest pull's average rate, bytes/s */
        double p50_s;             /* half the fleet fully preheated */
} Result;

typedef struct Pull {
        double start;             /* splay: earliest start */
        double started, left;
        int state;                /* 0 waiting, 1 open, 2 done */
} Pull;

typedef struct Sim {
        const Model *m;
        Pull *p;
        unsigned *open_on, *done_on, *held_on;
        double *node_done, *frontier, *upload;
        size_t finished;
        Result res;
} Sim;

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

/* the nodes that pull from the registry: the first ceil(f x N) synthetic machine-ids, at least one */
static unsigned seed_count(const Model *m) {
        double s = ceil(m->seed_fraction * m->nodes);
        return s < 1 ? 1 : s > m->nodes ? m->nodes : (unsigned) s;
}

/* the registry's own time to serve `pullers` nodes once: a splay of that spreads their starts */
static double serve_time(const Model *m, unsigned pullers) {
        return (double) pullers * m->images * m->size / m->registry_bw;
}

static void finish(Sim *sim, size_t i, double t_end) {
        unsigned n = (unsigned) (i / sim->m->images);
        sim->res.min_rate = fmin(sim->res.min_rate, sim->m->size / (t_end - sim->p[i].started));
        sim->p[i].state = 2;
        sim->open_on[n]--;
        if (++sim->done_on[n] == sim->m->images)
                sim->node_done[n] = t_end;
        sim->finished++;
}

/* peers: each node that holds bytes of some images uploads L bytes/s, split evenly between them (links
 * are full duplex: uploading does not slow the node's own download) */
static void peer_upload(Sim *sim) {
        const Model *m = sim->m;
        size_t total = (size_t) m->nodes * m->images;

        for (unsigned k = 0; k < m->images; k++)
                sim->upload[k] = 0;
        for (unsigned n = 0; n < m->nodes; n++)
                sim->held_on[n] = 0;
        for (size_t i = 0; i < total; i++)
                if (sim->p[i].state == 2 || (sim->p[i].state == 1 && sim->p[i].left < m->size))
                        sim->held_on[i / m->images]++;
        for (size_t i = 0; i < total; i++)
                if (sim->p[i].state == 2 || (sim->p[i].state == 1 && sim->p[i].left < m->size))
                        sim->upload[i % m->images] += m->node_bw / sim->held_on[i / m->images];
}

static Result simulate(const Model *m, const Scenario *s, FILE *curve) {
        unsigned seeds = seed_count(m);
        size_t total = (size_t) m->nodes * m->images;
        Sim sim = {
                .m = m,
                .p = calloc(total, sizeof(Pull)),
                .open_on = calloc(m->nodes, sizeof(unsigned)),
                .done_on = calloc(m->nodes, sizeof(unsigned)),
                .held_on = calloc(m->nodes, sizeof(unsigned)),
                .node_done = calloc(m->nodes, sizeof(double)),
                .frontier = calloc(m->images, sizeof(double)),
                .upload = calloc(m->images, sizeof(double)),
                .res = { .min_rate = INFINITY, .registry_bytes = (double) seeds * m->images * m->size },
        };
        unsigned *peer_open = calloc(m->images, sizeof(unsigned));
        char id[33], img[64];
        double t = 0, dt;

        if (!sim.p || !sim.open_on || !sim.done_on || !sim.held_on || !sim.node_done || !sim.frontier ||
            !sim.upload || !peer_open)
                abort();
        for (unsigned n = 0; n < m->nodes; n++) {
                machine_id(n, id);
                for (unsigned k = 0; k < m->images; k++) {
                        snprintf(img, sizeof(img), "registry.example.com/team/app%u:v1", k);
                        Pull *q = &sim.p[(size_t) n * m->images + k];
                        q->start = (double) preheat_splay_delay(id, img, s->splay) / USEC_PER_SEC;
                        q->left = m->size;
                }
        }
        /* step: a fiftieth of the fastest possible pull, or 1/4000 of the run's span (the registry's time to
         * serve the seeds, or the splay when that is longer) */
        dt = fmax(m->size / m->node_bw / 50.0, fmax(serve_time(m, seeds), (double) s->splay / USEC_PER_SEC) / 4000.0);
        while (sim.finished < total) {
                unsigned open = 0, open_peers = 0;
                for (unsigned k = 0; k < m->images; k++)
                        peer_open[k] = 0;
                /* start what the splay and the node's concurrency allow */
                for (size_t i = 0; i < total; i++) {
                        unsigned n = (unsigned) (i / m->images);
                        if (sim.p[i].state == 0 && sim.p[i].start <= t && sim.open_on[n] < s->concurrency) {
                                sim.p[i].state = 1;
                                sim.p[i].started = t;
                                sim.open_on[n]++;
                        }
                        if (sim.p[i].state != 1)
                                continue;
                        if (n < seeds)
                                open++;
                        else {
                                peer_open[i % m->images]++;
                                open_peers++;
                        }
                }
                if (open > sim.res.peak)
                        sim.res.peak = open;
                if (curve)
                        fprintf(curve, "%.2f %u\n", t, open);
                /* seeds: the registry's bandwidth shared fairly between their open pulls */
                double share = open ? m->registry_bw / open : 0;
                for (size_t i = 0; i < (size_t) seeds * m->images; i++) {
                        if (sim.p[i].state != 1)
                                continue;
                        unsigned n = (unsigned) (i / m->images);
                        double rate = fmin(share, m->node_bw / sim.open_on[n]);
                        sim.p[i].left -= rate * dt;
                        double *f = &sim.frontier[i % m->images];
                        *f = fmin(m->size, fmax(*f, m->size - sim.p[i].left));
                        if (sim.p[i].left <= 0)
                                finish(&sim, i, t + dt);
                }
                /* the others: from peers, at most what a seed already has (the frontier), the node's link
                 * shared by its own pulls, the peers' upload shared by the pulls of that image */
                if (open_peers > 0) {
                        peer_upload(&sim);
                        for (size_t i = (size_t) seeds * m->images; i < total; i++) {
                                if (sim.p[i].state != 1)
                                        continue;
                                unsigned n = (unsigned) (i / m->images), k = (unsigned) (i % m->images);
                                double rate = fmin(m->node_bw / sim.open_on[n], sim.upload[k] / peer_open[k]);
                                double have = m->size - sim.p[i].left;
                                if (rate * dt >= sim.frontier[k] - have)
                                        sim.p[i].left = m->size - sim.frontier[k];
                                else
                                        sim.p[i].left -= rate * dt;
                                if (sim.p[i].left <= 0)
                                        finish(&sim, i, t + dt);
                        }
                }
                t += dt;
                /* nothing open: jump to the next splay start */
                if (open + open_peers == 0) {
                        double next = INFINITY;
                        for (size_t i = 0; i < total; i++)
                                if (sim.p[i].state == 0)
                                        next = fmin(next, sim.p[i].start);
                        if (isfinite(next) && next > t)
                                t = next;
                }
        }
        sim.res.done_s = t;
        /* median node */
        double *nd = sim.node_done;
        for (unsigned i = 1; i < m->nodes; i++)
                for (unsigned j = i; j > 0 && nd[j - 1] > nd[j]; j--) {
                        double x = nd[j];
                        nd[j] = nd[j - 1];
                        nd[j - 1] = x;
                }
        sim.res.p50_s = nd[m->nodes / 2];
        free(sim.p);
        free(sim.open_on);
        free(sim.done_on);
        free(sim.held_on);
        free(sim.node_done);
        free(sim.frontier);
        free(sim.upload);
        free(peer_open);
        return sim.res;
}

static void human_time(double s, char *buf, size_t n) {
        if (s >= 3600)
                snprintf(buf, n, "%.1fh", s / 3600);
        else if (s >= 60)
                snprintf(buf, n, "%.1fm", s / 60);
        else
                snprintf(buf, n, "%.0fs", s);
}

static void human_bytes(double b, char *buf, size_t n) {
        if (b >= 1024 * GIB)
                snprintf(buf, n, "%.1f TiB", b / (1024 * GIB));
        else
                snprintf(buf, n, "%.0f GiB", b / GIB);
}

static void layer_name(const Model *m, char *buf, size_t n) {
        if (m->seed_fraction >= 1)
                snprintf(buf, n, "none");
        else
                snprintf(buf, n, "P2P, %g %% seed (%u)", m->seed_fraction * 100, seed_count(m));
}

/* --tsv: registry|p2p, nodes, seed fraction, splay s, concurrency, peak pulls at the registry, bytes from
 * the registry, half the fleet ready s, whole fleet ready s, slowest pull bytes/s */
static void row(const Model *m, bool mirrored, const Scenario *s, const char *fit, const Result *r, bool tsv) {
        char layer[64], sp[32], a[32], b[32], reg[32];

        if (tsv) {
                printf("%s\t%u\t%.6f\t%.6f\t%u\t%u\t%.0f\t%.6f\t%.6f\t%.6f\n", mirrored ? "p2p" : "registry",
                       m->nodes, m->seed_fraction,
                       (double) s->splay / USEC_PER_SEC, s->concurrency, r->peak, r->registry_bytes, r->p50_s,
                       r->done_s, r->min_rate);
                return;
        }
        layer_name(m, layer, sizeof(layer));
        human_time((double) s->splay / USEC_PER_SEC, sp, sizeof(sp));
        human_bytes(r->registry_bytes, reg, sizeof(reg));
        human_time(r->p50_s, a, sizeof(a));
        human_time(r->done_s, b, sizeof(b));
        printf("| %u | %s | %s%s%s%s | %u | %u | %s | %s | %s | %.0f KiB/s |\n", m->nodes, layer, sp,
               s->name ? "" : " (= ", s->name ? "" : fit, s->name ? "" : ")", s->concurrency, r->peak, reg, a, b,
               r->min_rate / 1024);
}

static int usage(FILE *f) {
        fprintf(f, "usage: bench_fleet [--images K] [--size BYTES] [--registry-bw BYTES/S] [--node-bw BYTES/S]\n"
                   "                   [--seed-fraction F] [--curve PREFIX] [--tsv]\n"
                   "  defaults: 2 images of 1 GiB, registry 1.25e9 B/s (10 Gbit/s), node 1.25e8 B/s (1 Gbit/s),\n"
                   "  seed fraction 0.1 (0 < F <= 1; 1 = no mirror layer)\n");
        return 2;
}

static int bad_value(const char *flag, const char *v, const char *want) {
        fprintf(stderr, "bench_fleet: %s '%s': expected %s\n", flag, v, want);
        return usage(stderr);
}

/* a finite number in (lo, hi] */
static bool parse_number(const char *v, double lo, double hi, double *ret) {
        char *end;
        errno = 0;
        double x = strtod(v, &end);
        if (errno != 0 || end == v || *end != '\0' || !isfinite(x) || !(x > lo) || x > hi)
                return false;
        *ret = x;
        return true;
}

int main(int argc, char **argv) {
        /* defaults: 2 images of 1 GiB, a 10 Gbit/s registry, 1 Gbit/s per node, one node in ten seeds */
        Model base = { .images = 2, .size = GIB, .registry_bw = 1.25e9, .node_bw = 1.25e8, .seed_fraction = 0.1 };
        const char *curve_prefix = NULL;
        unsigned fleets[] = { 1000, 10000 };
        bool tsv = false;

        for (int i = 1; i < argc; i++) {
                const char *flag = argv[i], *v;
                double x;
                if (streq(flag, "--help"))
                        { usage(stdout); return 0; }
                if (streq(flag, "--tsv")) {
                        tsv = true;
                        continue;
                }
                if (!streq(flag, "--size") && !streq(flag, "--images") && !streq(flag, "--registry-bw") &&
                    !streq(flag, "--node-bw") && !streq(flag, "--seed-fraction") && !streq(flag, "--curve")) {
                        fprintf(stderr, "bench_fleet: unknown flag '%s'\n", flag);
                        return usage(stderr);
                }
                if (i + 1 >= argc) {
                        fprintf(stderr, "bench_fleet: %s needs a value\n", flag);
                        return usage(stderr);
                }
                v = argv[++i];
                if (streq(flag, "--curve"))
                        curve_prefix = v;
                else if (streq(flag, "--images")) {
                        if (!parse_number(v, 0, 1000, &x) || x != floor(x))
                                return bad_value(flag, v, "a whole number of images from 1 to 1000");
                        base.images = (unsigned) x;
                } else if (streq(flag, "--seed-fraction")) {
                        if (!parse_number(v, 0, 1, &base.seed_fraction))
                                return bad_value(flag, v, "a fraction of the nodes, 0 < F <= 1");
                } else if (!parse_number(v, 0, HUGE_VAL, streq(flag, "--size") ? &base.size
                                                         : streq(flag, "--node-bw") ? &base.node_bw
                                                                                    : &base.registry_bw))
                        return bad_value(flag, v, "a positive number");
        }
        if (!tsv) {
                printf("Inputs: %u images of %.1f GiB per node, registry %.1f Gbit/s shared fairly between open "
                       "pulls, %.1f Gbit/s per node; with the P2P layer %g %% of the nodes seed from the registry.\n\n",
                       base.images, base.size / GIB, base.registry_bw * 8 / 1e9, base.node_bw * 8 / 1e9,
                       base.seed_fraction * 100);
                printf("| nodes | mirror layer | splay | concurrency | peak pulls at the registry | from the registry | "
                       "half the fleet ready | whole fleet ready | slowest pull |\n"
                       "|---|---|---|---|---|---|---|---|---|\n");
        }
        Result summary[ELEMENTSOF(fleets)][2];
        usec_t summary_splay[ELEMENTSOF(fleets)][2];
        for (size_t f = 0; f < ELEMENTSOF(fleets); f++) {
                Model reg = base, p2p = base;
                reg.nodes = p2p.nodes = fleets[f];
                reg.seed_fraction = 1;
                usec_t fit = (usec_t) (serve_time(&reg, reg.nodes) * USEC_PER_SEC);
                usec_t fit_seeds = (usec_t) (serve_time(&p2p, seed_count(&p2p)) * USEC_PER_SEC);
                /* the registry alone; then the P2P layer, with the seeds' own splay and the one fitted to
                 * the registry alone (kept after a mirror is added) */
                Scenario sc[] = {
                        { "0s", 0, 2 },
                        { "2m", 120 * USEC_PER_SEC, 2 },
                        { "2m", 120 * USEC_PER_SEC, 1 },
                        { NULL, fit, 1 },
                        { NULL, fit, 2 },
                        { "0s", 0, 2 },
                        { "2m", 120 * USEC_PER_SEC, 2 },
                        { "2m", 120 * USEC_PER_SEC, 1 },
                        { NULL, fit_seeds, 1 },
                        { NULL, fit_seeds, 2 },
                        { NULL, fit, 1 },
                };
                for (size_t i = 0; i < ELEMENTSOF(sc); i++) {
                        bool mirrored = i >= 5;
                        const Model *m = mirrored ? &p2p : &reg;
                        FILE *curve = NULL;
                        char path[512];
                        if (curve_prefix && m->nodes == 10000) {
                                snprintf(path, sizeof(path), "%s.%zu.dat", curve_prefix, i);
                                curve = fopen(path, "we");
                        }
                        Result r = simulate(m, &sc[i], curve);
                        if (curve)
                                fclose(curve);
                        row(m, mirrored, &sc[i], sc[i].splay == fit ? "N x K x S / B" : "f x N x K x S / B", &r, tsv);
                        if (i == 3 || i == 8) {
                                summary[f][mirrored] = r;
                                summary_splay[f][mirrored] = sc[i].splay;
                        }
                }
        }
        if (tsv)
                return 0;
        printf("\nTime to a preheated fleet and the splay to set, concurrency 1:\n\n"
               "| nodes | registry only: splay | whole fleet ready | with the P2P layer: splay | whole fleet ready |\n"
               "|---|---|---|---|---|\n");
        for (size_t f = 0; f < ELEMENTSOF(fleets); f++) {
                char a[32], b[32], c[32], d[32];
                human_time((double) summary_splay[f][0] / USEC_PER_SEC, a, sizeof(a));
                human_time(summary[f][0].done_s, b, sizeof(b));
                human_time((double) summary_splay[f][1] / USEC_PER_SEC, c, sizeof(c));
                human_time(summary[f][1].done_s, d, sizeof(d));
                printf("| %u | %s (N x K x S / B) | %s | %s (f x N x K x S / B) | %s |\n", fleets[f], a, b, c, d);
        }
        return 0;
}
