/* diagnose_mirror.c: a runtime's mirror hop that stays silent or refuses connections, named from what
 * the registry probe saw of each hop. Pure: the facts come in, one sentence with the remedy goes out. */
#include "daemon/pull/diagnose.h"

#include <inttypes.h>

#include "probes/drivers/runtime_drivers.h"

/* The first mirror that did not answer, and only one that a hop after it could stand in for. */
static size_t failed_mirror(const RegistryHopTry *tries, size_t n) {
        for (size_t i = 0; tries && i < n; i++) {
                if (tries[i].outcome == REGISTRY_HOP_ANSWERED)
                        return n; /* an answering hop came first: the ones after it were not the story */
                if (tries[i].mirror && (tries[i].outcome == REGISTRY_HOP_SILENT || tries[i].outcome == REGISTRY_HOP_REFUSED))
                        return i;
        }
        return n;
}

const char *diagnose_mirror_hop(const RegistryHopTry *tries, size_t n) {
        size_t i = failed_mirror(tries, n);
        return i < n ? tries[i].host : NULL;
}

/* What the hop after the mirror did: "the next hop H answers (HTTP 200)". */
static int next_hop(const RegistryHopTry *tries, size_t n, size_t i, char **ret) {
        const RegistryHopTry *t = i + 1 < n ? &tries[i + 1] : NULL;
        int k;

        if (!t)
                k = asprintf(ret, "no hop after it was asked");
        else if (t->outcome == REGISTRY_HOP_ANSWERED && t->http_status >= 200 && t->http_status < 300)
                k = asprintf(ret, "the next hop, %s %s, answers (HTTP %d)", t->mirror ? "mirror" : "registry",
                             t->host, t->http_status);
        else if (t->outcome == REGISTRY_HOP_ANSWERED)
                k = asprintf(ret, "the next hop, %s %s, answers but refuses this image (HTTP %d)",
                             t->mirror ? "mirror" : "registry", t->host, t->http_status);
        else
                k = asprintf(ret, "the next hop, %s %s, does not answer either (%s)", t->mirror ? "mirror" : "registry",
                             t->host, t->outcome == REGISTRY_HOP_SILENT  ? "silent" :
                                      t->outcome == REGISTRY_HOP_REFUSED ? "connection refused" : "unreachable");
        return k < 0 ? -ENOMEM : 0;
}

int diagnose_mirror_hops(RuntimeKind runtime, const RegistryHopTry *tries, size_t n, const char *source,
                         char **ret_text) {
        return diagnose_mirror_hops_store(runtime, false, tries, n, source, ret_text);
}

int diagnose_mirror_hops_store(RuntimeKind runtime, bool containerd_store, const RegistryHopTry *tries, size_t n,
                               const char *source, char **ret_text) {
        const RuntimeDriver *d = runtime_driver_get(runtime) ?: runtime_driver_auto_fallback();
        const RuntimeWording *w = d->wording;
        _cleanup_free_ char *next = NULL;
        size_t i = failed_mirror(tries, n);
        const char *silent_words = containerd_store && w->mirror_silent_store ? w->mirror_silent_store
                                                                               : w->mirror_silent;
        bool silent;
        int k;

        if (ret_text)
                *ret_text = NULL;
        if (i >= n)
                return DIAG_NONE;
        silent = tries[i].outcome == REGISTRY_HOP_SILENT;
        if (!ret_text)
                return silent ? DIAG_MIRROR_UNRESPONSIVE : DIAG_MIRROR_REFUSED;
        if (next_hop(tries, n, i, &next) < 0)
                return -ENOMEM;
        if (silent)
                k = asprintf(ret_text,
                             "the mirror %s (%s) accepted the connection and stayed silent for %" PRIu64 "s; %s. "
                             "%s. Remedy: %s.",
                             tries[i].host, source ?: w->mirror_where,
                             (uint64_t) ((tries[i].elapsed + USEC_PER_SEC / 2) / USEC_PER_SEC), next, silent_words,
                             w->mirror_remedy);
        else
                k = asprintf(ret_text,
                             "the mirror %s (%s) refused the connection; %s. %s; a node-local P2P mirror that is "
                             "down sends every pull past it, to the origin. Remedy: %s.",
                             tries[i].host, source ?: w->mirror_where, next, w->mirror_refused,
                             w->mirror_remedy);
        if (k < 0) {
                *ret_text = NULL;
                return -ENOMEM;
        }
        return silent ? DIAG_MIRROR_UNRESPONSIVE : DIAG_MIRROR_REFUSED;
}
