/* guard_conns.c: a runtime's registry connections, seen from /proc and sock_diag. A download of
 * another client's pull that stalled gets the runtime's stalled connections cut (pidfd_getfd, then
 * shutdown: nothing else of the runtime is touched), so its own retry and Range resume run now. A hop
 * whose connections end mid-transfer at a similar age is a middlebox's read or idle timeout
 * (report 000), named with the hop and the time even when the pull is another client's. */
#include "daemon/guard/guard_internal.h"

#include "daemon/pull/diagnose.h"

#include <inttypes.h>
#include <sys/stat.h>

static GuardConn *conn_find(GuardRuntime *rt, uint64_t inode) {
        for (size_t i = 0; i < rt->n_conns; i++)
                if (rt->conns[i].c.inode == inode)
                        return &rt->conns[i];
        return NULL;
}

static GuardHop *hop_get(GuardRuntime *rt, const char *addr) {
        for (size_t i = 0; i < rt->n_hops; i++)
                if (streq(rt->hops[i].addr, addr))
                        return &rt->hops[i];
        GuardHop *v = realloc(rt->hops, (rt->n_hops + 1) * sizeof(*v));
        if (!v)
                return NULL;
        rt->hops = v;
        GuardHop *h = &rt->hops[rt->n_hops++];
        *h = (GuardHop) {};
        snprintf(h->addr, sizeof(h->addr), "%s", addr);
        return h;
}

/* Some runtime of the node has a download in flight now (its download or another runtime's it writes
 * into: dockerd on the containerd image store fetches into containerd's moby namespace). */
static bool downloads_go_on(const NodeGuard *g) {
        for (size_t k = 0; k < g->n_runtimes; k++)
                if (guard_downloads_in_flight(&g->runtimes[k]))
                        return true;
        return false;
}

/* Some download of the node finished in this sample or the one before. */
static bool downloads_finished(const NodeGuard *g) {
        for (size_t k = 0; k < g->n_runtimes; k++)
                if (g->runtimes[k].finished + g->runtimes[k].finished_before > 0)
                        return true;
        return false;
}

/* A connection that carried data ended while the runtime was still downloading: a cut, unless it
 * was ours, or the runtime's own downloads ended with it: a pull its client gave up (classic dockerd
 * drops its partial layers then; after a cut it keeps them for its retry, as containerd keeps an
 * ingest). dockerd on the containerd store fails the whole pull at a cut, its moby ingests with it,
 * so there the connection's end alone counts; a given-up pull there leaves its connection open.
 * Cuts at a similar age from one hop name a middlebox timeout once. */
static void conn_ended(GuardRuntime *rt, const GuardConn *gc, usec_t interval) {
        char addr[64];
        _cleanup_free_ char *text = NULL;

        /* mid-transfer: data in its last interval */
        if (gc->cut_by_us || gc->c.bytes_received == 0 || gc->c.last_data_recv_ms > 2 * interval / USEC_PER_MSEC ||
            !gc->during_download || (!gc->into_other && !downloads_go_on(rt->guard)) || downloads_finished(rt->guard))
                return;
        tcp_addr_format(&gc->c.peer, addr, sizeof(addr));
        GuardHop *h = hop_get(rt, addr);
        if (!h)
                return;
        /* several connections of the hop that end in one sample are one attempt: a pull's layers end
         * together when its client quits, and a middlebox's timeout cuts parallel layers together too;
         * only the runtime's or client's retry, cut again, is a second one */
        if (h->n_history > 0 && h->last_end_seen == gc->last_seen)
                return;
        h->last_end_seen = gc->last_seen;
        if (h->n_history == ELEMENTSOF(h->history)) {
                memmove(h->history, h->history + 1, sizeof(h->history) - sizeof(h->history[0]));
                h->n_history--;
        }
        /* it opened within an interval before its first sample and ended within one after its last:
         * the middle of both */
        h->history[h->n_history++] = (DiagAttempt) { .failure = ATTEMPT_RESET,
                                                     .elapsed = gc->last_seen - gc->first_seen + interval };
        if (h->named || diagnose_attempts(h->history, h->n_history, &text) != DIAG_MIDDLEBOX_TIMEOUT || !text)
                return;
        h->named = true;
        _cleanup_free_ char *remedy = NULL;
        if (asprintf(&remedy, "%s Hop: %s, whose connections from %s ended mid-transfer after ~%llus each.", text, addr,
                     rt->name, (unsigned long long) (diagnose_attempts_cut(h->history, h->n_history) / USEC_PER_SEC)) < 0)
                return;
        /* the pull may be over already (dockerd on the containerd store fails it at the first reset):
         * what the connection was seen serving */
        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .image = gc->image[0] ? gc->image : NULL, .hop = addr,
                                      .client = gc->client,
                                      .diagnosis = diagnosis_to_string(DIAG_MIDDLEBOX_TIMEOUT), .remedy = remedy });
}

/* rt's connections seen this sample that received bytes and then nothing for the stall budget */
static size_t stalled_conns(const GuardRuntime *rt, uint32_t budget_ms, TcpConn **ret) {
        _cleanup_free_ TcpConn *v = calloc(rt->n_conns + 1, sizeof(TcpConn));
        _cleanup_free_ size_t *idx = calloc(rt->n_conns + 1, sizeof(size_t));
        size_t n = 0, k;

        if (!v || !idx)
                return 0;
        for (size_t i = 0; i < rt->n_conns; i++)
                if (rt->conns[i].seen)
                        v[n++] = rt->conns[i].c;
        k = tcp_conn_select_stalled(v, n, NULL, 0, budget_ms, idx);
        for (size_t i = 0; i < k; i++)
                v[i] = v[idx[i]];
        *ret = TAKE_PTR(v);
        return k;
}

/* The connection went silent before the download was last seen moving: it is not the one that carries
 * it (a keep-alive connection idle since its manifest or config, beside a download its client gave up).
 * Growth is seen a sample late at most, so two intervals of slack. A download never seen moving (found
 * stalled at pullwatch's start) gives no such time. */
static bool silent_before(const TcpConn *c, const LayerTrack *t, usec_t now, usec_t interval) {
        usec_t silent = (usec_t) c->last_data_recv_ms * USEC_PER_MSEC;
        return t->last_progress > t->first_seen && now > silent && now - silent + 2 * interval < t->last_progress;
}

/* A download that stalled again on every connection its runtime opened after a cut: nobody reads it
 * (dockerd 28 on the containerd store keeps the fetch of a pull its client gave up, and opens it again
 * after each cut). Said once; then it is watched, neither cut nor reported, while it lasts. */
static void stop_cutting(GuardRuntime *rt, GuardDownload *d, const LayerTrack *t) {
        _cleanup_free_ char *evidence = NULL;

        d->acted = true;
        if (d->cuts_stopped)
                return;
        d->cuts_stopped = true;
        if (asprintf(&evidence, "%u cuts, and each new connection stalled again; %s", d->cuts, t->evidence) < 0)
                evidence = NULL;
        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = "cuts-stopped", .image = d->image,
                                      .client = d->client, .layer = t->id, .phase = t->phase,
                                      .verdict = VERDICT_STALLED, .evidence = evidence ?: t->evidence });
}

/* A download of another client's pull that stalled, while a registry connection of a guarded runtime
 * is open and silent too: a network stall, and that connection is cut. A download stalled with no such
 * connection is not one: its pull was given up or waits its turn (a partial ingest containerd keeps for
 * a later resume, dockerd between its own retries); it is watched, not reported. */
void guard_conns_act(NodeGuard *g, usec_t now) {
        uint32_t budget = (uint32_t) (g->config->config->watchdog.network_stall / USEC_PER_MSEC);
        usec_t interval = g->config->config->watchdog.sample_interval;

        for (size_t r = 0; r < g->n_runtimes; r++) {
                GuardRuntime *rt = &g->runtimes[r];
                const LayerTrack *t = NULL;
                GuardDownload *d = guard_downloads_stalled(rt, &t);
                bool reported = false, cut_any = false;

                if (!d)
                        continue;
                if (d->cuts >= g->config->config->retry.attempts) {
                        stop_cutting(rt, d, t);
                        continue;
                }
                /* the connection may be another runtime's: dockerd on the containerd image store fetches
                 * into containerd's moby namespace itself */
                for (size_t o = 0; o < g->n_runtimes; o++) {
                        GuardRuntime *ort = &g->runtimes[o];
                        const RuntimeIdentity *id = runtime_liveness_identity(ort->liveness, NULL);
                        _cleanup_free_ TcpConn *cands = NULL;
                        size_t n = stalled_conns(ort, budget, &cands);

                        if (!id || id->pid <= 0)
                                continue;
                        for (size_t i = 0; i < n; i++) {
                                const TcpConn *c = &cands[i];
                                char addr[64];
                                _cleanup_free_ char *evidence = NULL;
                                _cleanup_(error_detail_done) ErrorDetail e = {};
                                int k = 0;

                                if (silent_before(c, t, now, interval))
                                        continue;

                                if (!reported) {
                                        d->acted = true; /* once per stall, whatever comes of it */
                                        reported = true;
                                        g->stats.verdicts++;
                                        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .image = d->image,
                                                                      .client = d->client, .layer = t->id,
                                                                      .phase = t->phase, .verdict = VERDICT_STALLED,
                                                                      .evidence = t->evidence, .current = t->current,
                                                                      .total = t->total });
                                }
                                tcp_addr_format(&c->peer, addr, sizeof(addr));
                                if (g->act) {
                                        k = tcp_conn_cut(NULL, id->pid, -1, c, &e);
                                        if (k >= 0) {
                                                g->stats.connections_cut++;
                                                cut_any = true;
                                                GuardConn *gc = conn_find(ort, c->inode);
                                                if (gc)
                                                        gc->cut_by_us = true;
                                        }
                                }
                                if (!g->act)
                                        continue; /* report only: the verdict went out */
                                if (asprintf(&evidence, "%s; %s's connection to %s (fd %d) silent for %us after %" PRIu64 " bytes%s%s",
                                             t->evidence, ort->name, addr, c->fd, c->last_data_recv_ms / 1000,
                                             c->bytes_received, k < 0 ? "; not cut: " : "",
                                             k < 0 ? (e.message ?: strerror(-k)) : "") < 0)
                                        evidence = NULL;
                                guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_ACTION,
                                                              .action = k < 0 ? "cut-connection-refused" : "cut-connection",
                                                              .image = d->image, .client = d->client, .layer = t->id,
                                                              .phase = t->phase, .verdict = VERDICT_STALLED,
                                                              .evidence = evidence, .reason = addr, .hop = addr,
                                                              .pid = id->pid });
                        }
                }
                if (cut_any)
                        d->cuts++;
        }
}

/* tcp_conn_list() with one sock_diag dump a sample for all the runtimes: each dump walks every bucket
 * of the kernel's established hash table, empty or not (262144 on a 2-core VM here), so it costs the
 * same however few sockets there are, and it was the larger part of an idle sample's cost. */
static int conns_of(GuardRuntime *rt, pid_t pid, TcpConnList *ret) {
        NodeGuard *g = rt->guard;
        struct stat own, theirs;
        char path[64];

        /* the dump is of our namespace: a runtime in another holds sockets it cannot see */
        snprintf(path, sizeof(path), "/proc/%d/ns/net", (int) pid);
        if (stat("/proc/self/ns/net", &own) < 0 || stat(path, &theirs) < 0)
                return -errno;
        if (own.st_dev != theirs.st_dev || own.st_ino != theirs.st_ino)
                return -EXDEV;
        /* the socket fds from the sample's one walk of its fds (node_guard.c) */
        if (rt->fds_r < 0)
                return rt->fds_r;
        if (rt->n_socks == 0) {
                *ret = (TcpConnList) {};
                return 0;
        }
        if (!g->dumped) {
                g->dump_r = tcp_diag_dump(&g->dump, NULL);
                g->dumped = true;
        }
        if (g->dump_r < 0)
                return g->dump_r;
        return tcp_conn_join(&g->dump, rt->socks, rt->n_socks, ret);
}

void guard_conns_sample_end(NodeGuard *g) {
        tcp_conn_list_done(&g->dump);
        g->dumped = false;
}

void guard_conns_sample(GuardRuntime *rt, usec_t now) {
        const RuntimeIdentity *id = runtime_liveness_identity(rt->liveness, NULL);
        _cleanup_(tcp_conn_list_done) TcpConnList l = {};

        if (!id || id->pid <= 0 || conns_of(rt, id->pid, &l) < 0)
                return;
        for (size_t i = 0; i < rt->n_conns; i++)
                rt->conns[i].seen = false;
        for (size_t i = 0; i < l.n; i++) {
                const TcpConn *c = &l.v[i];
                if (c->state != TCP_CONN_ESTABLISHED)
                        continue;
                GuardConn *gc = conn_find(rt, c->inode);
                if (!gc) {
                        GuardConn *v = realloc(rt->conns, (rt->n_conns + 1) * sizeof(*v));
                        if (!v)
                                continue;
                        rt->conns = v;
                        gc = &rt->conns[rt->n_conns++];
                        *gc = (GuardConn) { .first_seen = now };
                }
                gc->c = *c;
                gc->last_seen = now;
                gc->seen = true;
                /* the downloads it may serve: this runtime's, or another one's it writes into (dockerd on
                 * the containerd image store fetches itself and writes into containerd's moby namespace) */
                for (size_t k = 0; k < rt->guard->n_runtimes; k++) {
                        const GuardRuntime *o = &rt->guard->runtimes[k];
                        if (!guard_downloads_in_flight(o))
                                continue;
                        const GuardDownload *only = guard_downloads_only(o);
                        const char *img = guard_only_image(o);
                        gc->during_download = true;
                        gc->into_other = !guard_downloads_in_flight(rt);
                        gc->client = only ? only->client : gc->client ?: o->client;
                        if (img)
                                snprintf(gc->image, sizeof(gc->image), "%s", img);
                }
        }
}

void guard_conns_ends(NodeGuard *g) {
        usec_t interval = g->config->config->watchdog.sample_interval;

        for (size_t r = 0; r < g->n_runtimes; r++) {
                GuardRuntime *rt = &g->runtimes[r];
                for (size_t i = 0; i < rt->n_conns;) {
                        if (rt->conns[i].seen) {
                                i++;
                                continue;
                        }
                        conn_ended(rt, &rt->conns[i], interval);
                        rt->conns[i] = rt->conns[--rt->n_conns];
                }
        }
}

void guard_conns_done(GuardRuntime *rt) {
        free(rt->conns);
        free(rt->hops);
        rt->conns = NULL;
        rt->hops = NULL;
        rt->n_conns = rt->n_hops = 0;
}
