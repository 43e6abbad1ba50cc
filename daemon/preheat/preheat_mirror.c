/* preheat_mirror.c: a preheat pull waits for the runtime's node-local mirror (a P2P mirror such as
 * Spegel's or dfdaemon on this node) instead of going past it to the origin, the stampede the mirror
 * exists to prevent (OpenKruise #1679). Asks that one hop only; never holds back another client's pull. */
#include "daemon/preheat/preheat_model.h"

#include <inttypes.h>
#include <stdio.h>

#include "basic/reference.h"

#define MIRROR_ASK_TIMEOUT (5 * USEC_PER_SEC) /* a mirror silent this long is down for now */
#define MIRROR_ASK_EVERY (3 * USEC_PER_SEC)

static const Config *cfg(const Target *t) { return t->preheat->config->config; }

/* The scheduler looks again (its reap dispatches) and status shows the news. */
static void wake(Target *t) {
        (void) sd_event_source_set_enabled(t->preheat->reap, SD_EVENT_ONESHOT);
        if (t->preheat->hooks.changed)
                t->preheat->hooks.changed(t->preheat->userdata);
}

static void open_gate(Target *t) {
        MirrorWait *w = &t->mirror;
        w->gate = MIRROR_GATE_OPEN;
        if (w->since) {
                /* back to the queue it was waiting in */
                w->since = 0;
                w->told = false;
                t->state = PREHEAT_QUEUED;
                free(t->error);
                t->error = NULL;
        }
        wake(t);
}

static int on_ask_again(sd_event_source *s, uint64_t usec, void *userdata) {
        Target *t = userdata;
        t->mirror.gate = MIRROR_GATE_NONE; /* the next dispatch asks */
        wake(t);
        return 0;
}

static void hold(Target *t, const RegistryHopTry *try) {
        MirrorWait *w = &t->mirror;
        usec_t now = now_monotonic();
        char why[512], *e;

        if (!w->since)
                w->since = now;
        snprintf(why, sizeof(why), "waiting for mirror %s: it %s (for %" PRIu64 "s); the origin is not asked meanwhile",
                 w->host,
                 !try ? "could not be asked" :
                 try->outcome == REGISTRY_HOP_SILENT ? "accepts connections and does not answer" :
                 try->outcome == REGISTRY_HOP_REFUSED ? "refuses connections" : "cannot be reached",
                 (uint64_t) ((now - w->since) / USEC_PER_SEC));
        if (now - w->since >= cfg(t)->preheat.mirror_wait && !w->told) {
                char text[768];
                w->told = true;
                snprintf(text, sizeof(text), "%s; waited preheat.mirror_wait, %s", why,
                         cfg(t)->preheat.mirror_fallback ? "now pulling past it (preheat.mirror_fallback: true), "
                                                           "from the origin unless the runtime waits for the mirror"
                                                         : "still waiting (preheat.mirror_fallback: false)");
                if (t->preheat->hooks.mirror_wait)
                        t->preheat->hooks.mirror_wait(t->preheat->userdata, t->image, preheat_runtime_name(t), w->host,
                                                      (uint64_t) ((now - w->since) / USEC_PER_SEC),
                                                      cfg(t)->preheat.mirror_fallback, text);
                if (cfg(t)->preheat.mirror_fallback) {
                        open_gate(t);
                        return;
                }
        }
        w->gate = MIRROR_GATE_HELD;
        e = strdup(why);
        if (e) {
                free(t->error);
                t->error = e;
        }
        t->state = PREHEAT_WAITING;
        if (!w->timer && sd_event_add_time_relative(t->preheat->event, &w->timer, CLOCK_MONOTONIC, MIRROR_ASK_EVERY,
                                                    100 * USEC_PER_MSEC, on_ask_again, t) >= 0)
                (void) sd_event_source_set_description(w->timer, "preheat-mirror");
        else if (w->timer) {
                (void) sd_event_source_set_time_relative(w->timer, MIRROR_ASK_EVERY);
                (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
        }
        if (t->preheat->hooks.changed)
                t->preheat->hooks.changed(t->preheat->userdata);
}

static void on_answer(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *userdata) {
        Target *t = userdata;
        size_t n = 0;
        const RegistryHopTry *tries = registry_op_tries(op, &n);
        /* any HTTP answer is a mirror at work; what it says of the image is the pull's business */
        bool up = n > 0 && tries[0].outcome == REGISTRY_HOP_ANSWERED;
        RegistryHopTry first = n > 0 ? tries[0] : (RegistryHopTry) {};

        registry_manifest_free(m);
        t->mirror.ask = registry_op_free(op);
        runtime_registry_done(&t->mirror.rt);
        t->mirror.have_rt = false;
        if (up)
                open_gate(t);
        else
                hold(t, n > 0 ? &first : NULL);
}

static void on_runtime_registry(RuntimeRegistryFetch *f, RuntimeRegistry *rt, void *userdata) {
        Target *t = userdata;
        MirrorWait *w = &t->mirror;
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_(registry_hosts_freep) RegistryHosts *hosts = NULL;
        const RegistryHop *first = NULL;

        runtime_registry_done(&w->rt); /* a copy from an earlier ask */
        w->have_rt = runtime_registry_copy(rt, &w->rt) >= 0;
        w->fetch = runtime_registry_fetch_free(w->fetch); /* rt goes with it */
        if (!w->have_rt || reference_parse(t->image, &ref) < 0 ||
            registry_hosts_for(&w->rt, &cfg(t)->registry, ref->domain, &hosts) < 0) {
                runtime_registry_done(&w->rt);
                w->have_rt = false;
                open_gate(t); /* nothing to wait for that we can name */
                return;
        }
        for (size_t i = 0; i < hosts->n_hops && !first; i++)
                if (hosts->hops[i].resolve)
                        first = &hosts->hops[i];
        if (!first || !first->mirror || !registry_host_is_node_local(first->host)) {
                runtime_registry_done(&w->rt); /* kept only while it waits for its mirror */
                w->have_rt = false;
                open_gate(t);
                return;
        }
        free(w->host);
        w->host = strdup(first->host);
        RegistryTarget rt_ask = {
                .domain = ref->domain,
                .repository = ref->path,
                .reference = ref->digest ?: ref->tag ?: "latest",
                .platform = t->platform ?: cfg(t)->platform,
                .config = &cfg(t)->registry,
                .runtime = &w->rt,
                .timeout = MIRROR_ASK_TIMEOUT,
                .first_hop_only = true,
        };
        if (!w->host || registry_resolve(t->preheat->glue, &rt_ask, on_answer, t, &w->ask) < 0) {
                runtime_registry_done(&w->rt);
                w->have_rt = false;
                hold(t, NULL);
        }
}

bool preheat_mirror_pass(Target *t) {
        MirrorWait *w = &t->mirror;

        switch (w->gate) {
        case MIRROR_GATE_OPEN:
                return true; /* until the pull starts: the next one asks again */
        case MIRROR_GATE_ASKING:
        case MIRROR_GATE_HELD:
                return false;
        default:
                break;
        }
        if (runtime_registry_fetch(t->preheat->glue, t->runtime, cfg(t), on_runtime_registry, t, &w->fetch) < 0)
                return true; /* the runtime's settings cannot be asked: no mirror to wait for */
        w->gate = MIRROR_GATE_ASKING;
        return false;
}

bool preheat_mirror_waiting(const Target *t) {
        return t->mirror.since != 0 && t->state == PREHEAT_WAITING;
}

void preheat_mirror_stop(Target *t) {
        MirrorWait *w = &t->mirror;
        w->fetch = runtime_registry_fetch_free(w->fetch);
        w->ask = registry_op_free(w->ask);
        w->timer = sd_event_source_disable_unref(w->timer);
        runtime_registry_done(&w->rt);
        free(w->host);
        *w = (MirrorWait) {};
}
