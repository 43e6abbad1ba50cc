/* guard_mirror.c: a mirror hop in front of another client's pull that stays silent, refuses
 * connections or answers Range with 200, named with its hop as for pullwatch's own pulls
 * (diagnose_mirror.c's and diagnose_range_probe()'s words). What the guard sees is the runtime's
 * sockets: a registry connection that sent a request and got nothing back for the stall budget (a
 * silent hop), or a connection carrying a pull (new, or with bytes since the last sample: pooled ones
 * are reused) to a hop that comes after a mirror in the runtime's own list (the runtime went past that
 * mirror: it refused, or answered nothing useful). A refused connect leaves no socket; the hop the
 * runtime went on to does. Either way the runtime's
 * hops for that registry are then asked in its order (registry_ping(): /v2/ of each, as the runtime's
 * settings say) and the answer decides; nothing is named from the socket alone.
 * A hop that answers Range with 200 leaves nothing on the socket either: a download in flight of a
 * registry whose hops hold a mirror (its layer digest and repository from guard_downloads.c) gets one
 * Range request of two bytes through those hops (registry_probe_range(), a 200 cut after a few KiB),
 * once per registry and hops every RANGE_RECHECK; a 200 is named as for pullwatch's own pulls. */
#include "daemon/guard/guard_internal.h"

#include "probes/drivers/registry_runtime.h"
#include "probes/registry/registry.h"

#define MIRROR_PENDING_MAX 8
#define MIRROR_RECENT_MAX 32
/* the same hop, behind the same hops, is looked into again after this */
#define MIRROR_RECHECK (30 * USEC_PER_SEC)
/* the same diagnosis of the same hop is named again after this */
#define MIRROR_RENAME (10 * 60 * USEC_PER_SEC)
/* the runtime's settings are asked at most this often (dockerd's /info, containerd's CRI Status) */
#define MIRROR_FETCH_EVERY (2 * USEC_PER_SEC)
/* a registry's hops are asked for a byte range again after this */
#define RANGE_RECHECK (5 * 60 * USEC_PER_SEC)
#define RANGE_PENDING_MAX 4

/* One Range probe of a blob another client's pull fetches. */
typedef struct RangePing {
        GuardMirror *owner;
        RegistryOp *op;
        char domain[128];
        char image[320];     /* "domain/repo@digest": what the alert names */
        const char *client;
} RangePing;

typedef struct MirrorPing {
        GuardMirror *owner;
        RegistryOp *op;
        RegistryHosts *hosts;
        const char *client;
} MirrorPing;

typedef struct MirrorRecent {
        char key[384];
        usec_t at;
} MirrorRecent;

struct GuardMirror {
        GuardRuntime *rt;
        RuntimeRegistryFetch *fetch;
        RuntimeRegistry settings;
        bool have_settings;
        struct {
                char addr[64];
                bool silent;
                const char *client;
        } pending[MIRROR_PENDING_MAX];
        size_t n_pending;
        MirrorPing *pings[MIRROR_PENDING_MAX];
        struct {
                char image[256];  /* "host/repo@digest" as guard_downloads.c has it */
                char digest[80];  /* the layer's */
                const char *client;
        } range_pending[RANGE_PENDING_MAX];
        size_t n_range_pending;
        RangePing *ranges[RANGE_PENDING_MAX];
        uint64_t *checked;   /* connection inodes looked at as silent (the top bit) */
        size_t n_checked;
        struct MirrorRx {
                uint64_t inode, rx;
        } *rxs;              /* each connection's bytes received at the last sample */
        size_t n_rxs;
        usec_t fetched;      /* when the settings were last asked for */
        MirrorRecent recent[MIRROR_RECENT_MAX];
        size_t n_recent;
};

#define SILENT_BIT (UINT64_C(1) << 63)

static bool recent(GuardMirror *m, const char *key, usec_t window, usec_t now) {
        for (size_t i = 0; i < m->n_recent; i++)
                if (streq(m->recent[i].key, key)) {
                        if (now - m->recent[i].at < window)
                                return true;
                        m->recent[i].at = now;
                        return false;
                }
        if (m->n_recent == MIRROR_RECENT_MAX) {
                memmove(m->recent, m->recent + 1, sizeof(m->recent) - sizeof(m->recent[0]));
                m->n_recent--;
        }
        snprintf(m->recent[m->n_recent].key, sizeof(m->recent[0].key), "%s", key);
        m->recent[m->n_recent++].at = now;
        return false;
}

static bool checked(GuardMirror *m, uint64_t key) {
        for (size_t i = 0; i < m->n_checked; i++)
                if (m->checked[i] == key)
                        return true;
        uint64_t *v = realloc(m->checked, (m->n_checked + 1) * sizeof(*v));
        if (!v)
                return true; /* not looked at rather than looked at forever */
        m->checked = v;
        m->checked[m->n_checked++] = key;
        return false;
}

static bool conn_live(const GuardRuntime *rt, uint64_t inode) {
        for (size_t k = 0; k < rt->n_conns; k++)
                if (rt->conns[k].c.inode == inode)
                        return true;
        return false;
}

/* A connection new since the last sample, or one that received bytes since: it carries a pull now
 * (a pooled connection is reused by the next pull without a new socket). */
static bool conn_active(GuardMirror *m, const TcpConn *c) {
        for (size_t i = 0; i < m->n_rxs; i++)
                if (m->rxs[i].inode == c->inode) {
                        bool grew = c->bytes_received > m->rxs[i].rx;
                        m->rxs[i].rx = c->bytes_received;
                        return grew;
                }
        struct MirrorRx *v = realloc(m->rxs, (m->n_rxs + 1) * sizeof(*v));
        if (!v)
                return false;
        m->rxs = v;
        m->rxs[m->n_rxs++] = (struct MirrorRx) { .inode = c->inode, .rx = c->bytes_received };
        return true;
}

/* Forget the connections that went: their inodes may come back for others. */
static void checked_prune(GuardMirror *m, const GuardRuntime *rt) {
        for (size_t i = 0; i < m->n_rxs;) {
                if (conn_live(rt, m->rxs[i].inode))
                        i++;
                else
                        m->rxs[i] = m->rxs[--m->n_rxs];
        }
        for (size_t i = 0; i < m->n_checked;) {
                if (conn_live(rt, m->checked[i] & ~SILENT_BIT))
                        i++;
                else
                        m->checked[i] = m->checked[--m->n_checked];
        }
}

static void ping_free(MirrorPing *p) {
        if (!p)
                return;
        registry_op_free(p->op);
        registry_hosts_free(p->hosts);
        free(p);
}

static void on_ping(RegistryOp *op, int r, const ErrorDetail *e, void *userdata) {
        MirrorPing *p = userdata;
        GuardMirror *m = p->owner;
        GuardRuntime *rt = m->rt;
        size_t n = 0;
        const RegistryHopTry *tries = registry_op_tries(op, &n);
        const char *source = p->hosts->source && strstr(p->hosts->source, "hosts.toml") ? p->hosts->source : NULL;
        _cleanup_free_ char *text = NULL;
        char key[192];
        int d;

        d = diagnose_mirror_hops_store(rt->kind, m->settings.containerd_store, tries, n, source, &text);
        if (d > DIAG_NONE && text) {
                const char *hop = diagnose_mirror_hop(tries, n);
                snprintf(key, sizeof(key), "%s %s %s", p->hosts->domain, diagnosis_to_string(d), hop);
                if (!recent(m, key, MIRROR_RENAME, now_monotonic()))
                        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .hop = hop, .client = p->client,
                                                      .diagnosis = diagnosis_to_string(d), .remedy = text });
        }
        for (size_t i = 0; i < ELEMENTSOF(m->pings); i++)
                if (m->pings[i] == p)
                        m->pings[i] = NULL;
        ping_free(p);
}

static int hop_index(const RegistryHosts *h, const char *addr) {
        for (size_t i = 0; i < h->n_hops; i++)
                if (streq(h->hops[i].host, addr))
                        return (int) i;
        return -1;
}

/* addr, a peer of the runtime's: the registries whose hops it is one of, and whether to ask them. */
static void look_into(GuardMirror *m, const char *addr, bool silent, const char *client) {
        GuardRuntime *rt = m->rt;
        _cleanup_strv_free_ char **domains = NULL;
        usec_t now = now_monotonic();

        if (registry_hosts_domains(&m->settings, &domains) < 0)
                return;
        for (size_t k = 0; domains && domains[k]; k++) {
                _cleanup_(registry_hosts_freep) RegistryHosts *h = NULL;
                char key[384];
                int i;
                bool mirror_before = false;

                if (registry_hosts_for(&m->settings, &rt->guard->config->config->registry, domains[k], &h) < 0 ||
                    (i = hop_index(h, addr)) < 0)
                        continue;
                for (int j = 0; j < i; j++)
                        mirror_before = mirror_before || h->hops[j].mirror;
                /* a silent mirror, or a hop the runtime reached past a mirror */
                if (!(silent && h->hops[i].mirror) && !mirror_before)
                        continue;
                /* the hops before it are part of the question: another list is another question */
                int o = snprintf(key, sizeof(key), "ping %s %d", domains[k], silent);
                for (int j = 0; j <= i && o > 0 && (size_t) o < sizeof(key); j++)
                        o += snprintf(key + o, sizeof(key) - o, " %s", h->hops[j].host);
                if (recent(m, key, MIRROR_RECHECK, now))
                        continue;
                size_t slot = 0;
                while (slot < ELEMENTSOF(m->pings) && m->pings[slot])
                        slot++;
                if (slot == ELEMENTSOF(m->pings))
                        return;
                MirrorPing *p = calloc(1, sizeof(*p));
                if (!p)
                        return;
                *p = (MirrorPing) { .owner = m, .client = client, .hosts = TAKE_PTR(h) };
                RegistryTarget t = {
                        .domain = domains[k],
                        .config = &rt->guard->config->config->registry,
                        .runtime = &m->settings,
                        .timeout = 15 * USEC_PER_SEC, /* as a pull's registry probe */
                };
                if (registry_ping(rt->guard->glue, &t, on_ping, p, &p->op) < 0) {
                        ping_free(p);
                        continue;
                }
                m->pings[slot] = p;
        }
}

/* ---- a hop that answers Range with 200 ---- */

static void range_free(RangePing *p) {
        if (!p)
                return;
        registry_op_free(p->op);
        free(p);
}

static void on_range(RegistryOp *op, int r, RegistryRangeProbe *probe, const ErrorDetail *e, void *userdata) {
        RangePing *p = userdata;
        GuardMirror *m = p->owner;
        _cleanup_free_ char *text = NULL;
        char key[384];

        /* probe lives in op, which goes with p below */
        if (r >= 0 && diagnose_range_probe(probe, &text) == DIAG_RANGE_IGNORED && text) {
                const char *hop = probe->host ?: probe->via;
                snprintf(key, sizeof(key), "%s %s %s", p->domain, diagnosis_to_string(DIAG_RANGE_IGNORED), hop ?: "-");
                if (!recent(m, key, MIRROR_RENAME, now_monotonic()))
                        guard_emit(m->rt, &(PullEvent) { .kind = PULL_EVENT_DIAGNOSIS, .hop = hop, .client = p->client,
                                                         .image = p->image,
                                                         .diagnosis = diagnosis_to_string(DIAG_RANGE_IGNORED),
                                                         .remedy = text });
        }
        for (size_t i = 0; i < ELEMENTSOF(m->ranges); i++)
                if (m->ranges[i] == p)
                        m->ranges[i] = NULL;
        range_free(p);
}

/* Whether domain ("reg:5000", as the runtime's settings have it) is host, the first n bytes of an
 * image named from containerd's distribution source label, which keeps the host without its port
 * (Go's url.Hostname(): "reg", "::1"). */
static bool domain_is(const char *domain, const char *host, size_t n) {
        const char *d = domain;
        size_t dn;

        if (strlen(domain) == n && strncmp(domain, host, n) == 0)
                return true;
        if (*d == '[')
                dn = strcspn(++d, "]");
        else {
                const char *c = strrchr(d, ':');
                dn = c ? (size_t) (c - d) : strlen(d);
        }
        return dn == n && strncmp(d, host, n) == 0;
}

/* image ("host/repo@digest"), whose layer digest is downloading: each registry of the runtime's it
 * can be, whose hops hold a mirror, is asked for two bytes of that layer through those hops. */
static void range_look_into(GuardMirror *m, const char *image, const char *digest, const char *client) {
        GuardRuntime *rt = m->rt;
        _cleanup_strv_free_ char **domains = NULL;
        _cleanup_free_ char *repo = NULL;
        const char *slash = strchr(image, '/'), *at = strrchr(image, '@');
        usec_t now = now_monotonic();

        if (!slash || !at || at < slash + 2 || !(repo = strndup(slash + 1, at - slash - 1)) ||
            registry_hosts_domains(&m->settings, &domains) < 0)
                return;
        for (size_t k = 0; domains && domains[k]; k++) {
                _cleanup_(registry_hosts_freep) RegistryHosts *h = NULL;
                char key[384];
                bool mirror = false;
                size_t slot = 0;

                if (!domain_is(domains[k], image, slash - image) ||
                    registry_hosts_for(&m->settings, &rt->guard->config->config->registry, domains[k], &h) < 0)
                        continue;
                for (size_t j = 0; j < h->n_hops; j++)
                        mirror = mirror || (h->hops[j].mirror && h->hops[j].pull);
                if (!mirror)
                        continue;
                while (slot < ELEMENTSOF(m->ranges) && m->ranges[slot])
                        slot++;
                if (slot == ELEMENTSOF(m->ranges))
                        return;
                /* once per registry and hops: another list is another question */
                int o = snprintf(key, sizeof(key), "range %s", domains[k]);
                for (size_t j = 0; j < h->n_hops && o > 0 && (size_t) o < sizeof(key); j++)
                        o += snprintf(key + o, sizeof(key) - o, " %s", h->hops[j].host);
                if (recent(m, key, RANGE_RECHECK, now))
                        continue;
                RangePing *p = calloc(1, sizeof(*p));
                if (!p)
                        return;
                p->owner = m;
                p->client = client;
                snprintf(p->domain, sizeof(p->domain), "%s", domains[k]);
                snprintf(p->image, sizeof(p->image), "%s/%s%s", domains[k], repo, at);
                RegistryTarget t = {
                        .domain = domains[k],
                        .repository = repo,
                        .config = &rt->guard->config->config->registry,
                        .runtime = &m->settings,
                        .timeout = 15 * USEC_PER_SEC, /* as a pull's registry probe */
                };
                if (registry_probe_range(rt->guard->glue, &t, digest, on_range, p, &p->op) < 0) {
                        range_free(p);
                        continue;
                }
                m->ranges[slot] = p;
        }
}

/* Downloads in flight of other clients' pulls whose image is known: their registry's hops are looked
 * into (range_look_into) once the settings come; an image's repository is queued at most once per
 * MIRROR_RECHECK, so the settings are not asked for every sample of a long download. */
static void range_suspect(GuardMirror *m, usec_t now) {
        GuardRuntime *rt = m->rt;

        for (size_t i = 0; i < rt->n_dls && m->n_range_pending < RANGE_PENDING_MAX; i++) {
                const GuardDownload *d = &rt->dls[i];
                const LayerTrack *t = detector_find(rt->downloads, d->id);
                const char *at = d->image ? strrchr(d->image, '@') : NULL;
                char key[300];

                if (d->own || !at || !startswith(d->id, "sha256:") ||
                    strlen(d->id) >= sizeof(m->range_pending[0].digest) ||
                    strlen(d->image) >= sizeof(m->range_pending[0].image) || !t || t->phase != PHASE_DOWNLOADING)
                        continue;
                snprintf(key, sizeof(key), "rangeq %.*s", (int) (at - d->image), d->image);
                if (recent(m, key, MIRROR_RECHECK, now))
                        continue;
                snprintf(m->range_pending[m->n_range_pending].image, sizeof(m->range_pending[0].image), "%s", d->image);
                snprintf(m->range_pending[m->n_range_pending].digest, sizeof(m->range_pending[0].digest), "%s", d->id);
                m->range_pending[m->n_range_pending++].client = d->client;
        }
}

static void on_settings(RuntimeRegistryFetch *f, RuntimeRegistry *settings, void *userdata) {
        GuardMirror *m = userdata;

        runtime_registry_done(&m->settings);
        m->have_settings = runtime_registry_copy(settings, &m->settings) >= 0;
        m->fetch = runtime_registry_fetch_free(m->fetch); /* settings go with it */
        if (m->have_settings)
                for (size_t i = 0; i < m->n_pending; i++)
                        look_into(m, m->pending[i].addr, m->pending[i].silent, m->pending[i].client);
        if (m->have_settings)
                for (size_t i = 0; i < m->n_range_pending; i++)
                        range_look_into(m, m->range_pending[i].image, m->range_pending[i].digest,
                                        m->range_pending[i].client);
        m->n_pending = m->n_range_pending = 0;
}

static void suspect(GuardMirror *m, const GuardConn *gc, bool silent) {
        char addr[64];

        tcp_addr_format(&gc->c.peer, addr, sizeof(addr));
        for (size_t i = 0; i < m->n_pending; i++)
                if (streq(m->pending[i].addr, addr) && m->pending[i].silent == silent)
                        return;
        if (m->n_pending == MIRROR_PENDING_MAX)
                return;
        snprintf(m->pending[m->n_pending].addr, sizeof(m->pending[0].addr), "%s", addr);
        m->pending[m->n_pending].silent = silent;
        m->pending[m->n_pending++].client = gc->client;
}

/* The runtime's settings now, for what is pending: a mirror list changes without a restart
 * (dockerd's SIGHUP, a hosts.toml written). */
static void fetch_settings(GuardMirror *m, usec_t now) {
        GuardRuntime *rt = m->rt;

        if ((m->n_pending == 0 && m->n_range_pending == 0) || m->fetch ||
            (m->fetched && now - m->fetched < MIRROR_FETCH_EVERY))
                return;
        m->fetched = now;
        if (runtime_registry_fetch(rt->guard->glue, rt->kind, rt->guard->config->config, on_settings, m, &m->fetch) < 0)
                m->n_pending = m->n_range_pending = 0;
}

void guard_mirror_sample(GuardRuntime *rt, usec_t now) {
        uint64_t budget = rt->guard->config->config->watchdog.network_stall;
        GuardMirror *m = rt->mirror;

        if (!m) {
                m = calloc(1, sizeof(*m));
                if (!m)
                        return;
                m->rt = rt;
                rt->mirror = m;
        }
        checked_prune(m, rt);
        for (size_t i = 0; i < rt->n_conns; i++) {
                const GuardConn *gc = &rt->conns[i];
                if (!gc->seen)
                        continue;
                if (conn_active(m, &gc->c))
                        suspect(m, gc, false);
                /* asked and never answered, for the stall budget */
                if (gc->c.has_info && gc->c.bytes_received == 0 && gc->c.bytes_sent > 0 &&
                    now - gc->first_seen >= budget && !checked(m, gc->c.inode | SILENT_BIT))
                        suspect(m, gc, true);
        }
        range_suspect(m, now);
        fetch_settings(m, now);
}

void guard_mirror_done(GuardRuntime *rt) {
        GuardMirror *m = rt->mirror;

        if (!m)
                return;
        runtime_registry_fetch_free(m->fetch);
        runtime_registry_done(&m->settings);
        for (size_t i = 0; i < ELEMENTSOF(m->pings); i++)
                ping_free(m->pings[i]);
        for (size_t i = 0; i < ELEMENTSOF(m->ranges); i++)
                range_free(m->ranges[i]);
        free(m->checked);
        free(m->rxs);
        free(m);
        rt->mirror = NULL;
}
