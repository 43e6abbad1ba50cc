/* node_guard.c: the guard of other clients' pulls. One GuardRuntime per runtime process watched;
 * every sample it (1) judges each helper of the runtime alone, with a detector of its own fed only
 * that helper's CPU and output, so one hung decompressor is hung even while another works, (2)
 * follows the runtime's downloads in flight (guard_downloads.c) through one detector, and (3) keeps
 * the runtime's registry connections (guard_conns.c): a stalled download gets the runtime's stalled
 * connection cut, and connections that end at a similar age are a middlebox's timeout. */
#include "daemon/guard/node_guard.h"
#include "daemon/guard/guard_internal.h"

#include <assert.h>

#include "daemon/pull/diagnose.h"

static GuardHelper *helper_find(GuardRuntime *rt, pid_t pid, uint64_t start) {
        for (size_t i = 0; i < rt->n_helpers; i++)
                if (rt->helpers[i].pid == pid && rt->helpers[i].start_ticks == start)
                        return &rt->helpers[i];
        return NULL;
}

static void helper_done(GuardHelper *h) {
        detector_free(h->detector);
        *h = (GuardHelper) {};
}

/* A helper of a stranger's pull: its own detector, fed only its own CPU and output. */
static void judge_helper(GuardRuntime *rt, const HelperActivity *a, usec_t now) {
        NodeGuard *g = rt->guard;
        const Config *c = g->config->config;
        GuardHelper *h = helper_find(rt, a->pid, a->start_ticks);
        char id[48];

        snprintf(id, sizeof(id), "%s pid %d", a->comm, (int) a->pid);
        if (!h) {
                GuardHelper *v = realloc(rt->helpers, (rt->n_helpers + 1) * sizeof(*v));
                if (!v)
                        return;
                rt->helpers = v;
                h = &rt->helpers[rt->n_helpers];
                *h = (GuardHelper) { .pid = a->pid, .start_ticks = a->start_ticks, .reported = VERDICT_PROGRESSING };
                if (detector_new(&c->watchdog, now, &h->detector) < 0)
                        return;
                snprintf(h->comm, sizeof(h->comm), "%s", a->comm);
                rt->n_helpers++;
                g->stats.helpers_seen++;
                guard_seen(rt);
                (void) detector_layer(h->detector, id, PHASE_EXTRACTING, 0, 0, now);
        }
        h->seen = true;
        if (!h->detector)
                return;
        LivenessDelta lv = {
                .at = now, .interval = a->interval, .available = !a->is_new, .helper_io = a->io_chars,
                .helper_cpu = a->cpu_usec, .n_helpers = 1, .busiest_pid = a->pid, .busiest_state = a->state,
                .busiest_cpu = a->cpu_usec,
        };
        memcpy(lv.busiest_comm, a->comm, sizeof(lv.busiest_comm));
        detector_liveness(h->detector, &lv);
        detector_evaluate(h->detector, now);
        const LayerTrack *t = detector_find(h->detector, id);
        if (!t || t->verdict == h->reported)
                return;
        h->reported = t->verdict;
        snprintf(h->evidence, sizeof(h->evidence), "%s", t->evidence);
        if (t->verdict != VERDICT_HUNG)
                return;
        g->stats.verdicts++;
        /* the layer it serves, when one alone is being extracted */
        const GuardDownload *x = guard_downloads_extracting(rt);
        const char *image = x ? x->image : guard_only_image(rt), *client = x ? x->client : NULL;
        const char *layer = x ? x->id : id;
        _cleanup_free_ char *diag = NULL;
        (void) diagnose_decompressor(rt->kind, a->comm, a->pid, a->cpu_usec > 0, c->watchdog.hang_quiet, &diag);
        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_VERDICT, .image = image, .client = client, .layer = layer,
                                      .phase = PHASE_EXTRACTING, .verdict = VERDICT_HUNG, .evidence = t->evidence });
        if (!g->act)
                return;
        char report[384];
        int r = runtime_liveness_kill_helper(rt->liveness, a->pid, report, sizeof(report));
        if (r < 0)
                snprintf(report, sizeof(report), "%s pid %d not signalled: %s", a->comm, (int) a->pid,
                         r == -EPERM ? "not a proven helper of the runtime" : r == -ESRCH ? "gone" : strerror(-r));
        else
                g->stats.helpers_ended++;
        guard_emit(rt, &(PullEvent) { .kind = PULL_EVENT_ACTION, .action = r < 0 ? "kill-helper-refused" : "kill-helper",
                                      .image = image, .client = client, .layer = layer, .phase = PHASE_EXTRACTING,
                                      .verdict = VERDICT_HUNG,
                                      .pid = a->pid, .evidence = t->evidence, .reason = report,
                                      .diagnosis = diag ? "decompressor-hang" : NULL });
}

static void sample_helpers(GuardRuntime *rt, usec_t now) {
        const HelperActivity *acts;
        size_t n;
        LivenessDelta lv;

        if (runtime_liveness_sample(rt->liveness, now, &lv) < 0 || lv.unverified)
                return;
        for (size_t i = 0; i < rt->n_helpers; i++)
                rt->helpers[i].seen = false;
        runtime_liveness_helpers(rt->liveness, &acts, &n);
        /* a helper does not say whose layer it decompresses; the blob its runtime reads does, when one
         * alone is being extracted: a layer of pullwatch's own pull is its pull job's to judge, and so is
         * any helper while pullwatch pulls and the layer is not known */
        const GuardDownload *x = guard_downloads_extracting(rt);
        bool own = x ? x->own : guard_is_own(rt, NULL);
        for (size_t i = 0; i < n; i++)
                if (acts[i].decompressor && !own) /* the untar side follows its decompressor */
                        judge_helper(rt, &acts[i], now);
        /* helpers that ended (finished, or ended by us) leave */
        for (size_t i = 0; i < rt->n_helpers;) {
                if (rt->helpers[i].seen) {
                        i++;
                        continue;
                }
                helper_done(&rt->helpers[i]);
                rt->helpers[i] = rt->helpers[--rt->n_helpers];
        }
}

/* One walk of the runtime's fds a sample, for both parts that read them. */
static void fds_take(GuardRuntime *rt) {
        const RuntimeIdentity *id = runtime_liveness_identity(rt->liveness, NULL);

        rt->fds_r = id && id->pid > 0 ? open_files_and_sockets(NULL, id->pid, "/", NULL, &rt->files, &rt->n_files,
                                                                &rt->socks, &rt->n_socks)
                                      : -ESRCH;
}

static void fds_drop(GuardRuntime *rt) {
        rt->files = open_files_free(rt->files, rt->n_files);
        rt->socks = mfree(rt->socks);
        rt->n_files = rt->n_socks = 0;
        rt->fds_r = -ESRCH;
}

static int on_sample(sd_event_source *s, uint64_t usec, void *userdata) {
        NodeGuard *g = userdata;
        usec_t now = now_monotonic();

        for (size_t i = 0; i < g->n_runtimes; i++) {
                GuardRuntime *rt = &g->runtimes[i];
                sample_helpers(rt, now);
                fds_take(rt);
                guard_downloads_sample(rt, now);
                guard_conns_sample(rt, now);
                guard_mirror_sample(rt, now);
        }
        guard_conns_ends(g);
        guard_conns_act(g, now);
        guard_conns_sample_end(g);
        for (size_t i = 0; i < g->n_runtimes; i++)
                fds_drop(&g->runtimes[i]);
        (void) sd_event_source_set_time_relative(s, g->config->config->watchdog.sample_interval);
        return sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
}

static void runtime_done(GuardRuntime *rt) {
        for (size_t i = 0; i < rt->n_helpers; i++)
                helper_done(&rt->helpers[i]);
        free(rt->helpers);
        fds_drop(rt);
        guard_downloads_done(rt);
        guard_mirror_done(rt);
        guard_conns_done(rt);
        detector_free(rt->downloads);
        runtime_liveness_free(rt->liveness);
}

NodeGuard *node_guard_free(NodeGuard *g) {
        if (!g)
                return NULL;
        for (size_t i = 0; i < g->n_runtimes; i++)
                runtime_done(&g->runtimes[i]);
        free(g->runtimes);
        sd_event_source_disable_unref(g->timer);
        guard_conns_sample_end(g);
        shared_config_unref(g->config);
        sd_event_unref(g->event);
        free(g);
        return NULL;
}

int node_guard_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *const *drivers,
                   size_t n_drivers, const NodeGuardHooks *hooks, NodeGuard **ret) {
        _cleanup_(node_guard_freep) NodeGuard *g = NULL;
        const Config *c = config->config;
        int r;

        assert(event);
        assert(glue);
        assert(ret);
        g = calloc(1, sizeof(*g));
        if (!g)
                return -ENOMEM;
        g->event = sd_event_ref(event);
        g->glue = glue;
        g->config = shared_config_ref(config);
        g->act = c->guard.act;
        g->cb = hooks ? hooks->event : NULL;
        g->is_own = hooks ? hooks->is_own : NULL;
        g->seen = hooks ? hooks->seen : NULL;
        g->userdata = hooks ? hooks->userdata : NULL;
        g->runtimes = calloc(n_drivers + 1, sizeof(GuardRuntime));
        if (!g->runtimes)
                return -ENOMEM;
        for (size_t k = 0; k < n_drivers; k++) {
                const RuntimeDriver *d = drivers[k];
                GuardRuntime *rt = &g->runtimes[g->n_runtimes];
                if (!d)
                        continue;
                *rt = (GuardRuntime) { .guard = g, .driver = d, .name = d->name, .kind = (RuntimeKind) k };
                if (runtime_liveness_new_for(d, c, &rt->liveness) < 0 || detector_new(&c->watchdog, now_monotonic(), &rt->downloads) < 0) {
                        runtime_done(rt);
                        continue;
                }
                r = guard_downloads_start(rt);
                if (r < 0) {
                        runtime_done(rt);
                        continue;
                }
                g->n_runtimes++;
        }
        r = sd_event_add_time_relative(event, &g->timer, CLOCK_MONOTONIC, c->watchdog.sample_interval, 10 * USEC_PER_MSEC,
                                       on_sample, g);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(g->timer, "node-guard-sample");
        *ret = TAKE_PTR(g);
        return 0;
}

void node_guard_set_config(NodeGuard *g, SharedConfig *config) {
        SharedConfig *old = g->config;
        g->config = shared_config_ref(config);
        g->act = config->config->guard.act;
        shared_config_unref(old);
}

void node_guard_stats(const NodeGuard *g, NodeGuardStats *ret) {
        *ret = g ? g->stats : (NodeGuardStats) {};
}

json_t *node_guard_status_json(const NodeGuard *g) {
        json_t *o = json_pack("{s:b, s:I, s:I, s:I, s:I, s:I, s:{}}", "act", g->act, "downloads_seen",
                              (json_int_t) g->stats.pulls_seen, "helpers_seen", (json_int_t) g->stats.helpers_seen,
                              "helpers_ended", (json_int_t) g->stats.helpers_ended, "connections_cut",
                              (json_int_t) g->stats.connections_cut, "verdicts", (json_int_t) g->stats.verdicts,
                              "runtimes");
        if (!o)
                return NULL;
        json_t *rts = json_object_get(o, "runtimes");
        for (size_t i = 0; i < g->n_runtimes; i++) {
                const GuardRuntime *rt = &g->runtimes[i];
                json_t *pulls = json_array(), *helpers = json_array();
                for (size_t k = 0; pulls && k < detector_n_layers(rt->downloads); k++) {
                        const LayerTrack *t = detector_layer_at(rt->downloads, k);
                        if (t->phase == PHASE_DONE)
                                continue;
                        json_array_append_new(pulls, json_pack("{s:s?, s:s?, s:s, s:s, s:I, s:s, s:s}", "image",
                                                               guard_downloads_image(rt, t->id), "client", rt->client,
                                                               "layer", t->id, "phase", phase_to_string(t->phase),
                                                               "current", (json_int_t) t->current, "verdict",
                                                               verdict_to_string(t->verdict), "evidence", t->evidence));
                }
                for (size_t k = 0; helpers && k < rt->n_helpers; k++)
                        json_array_append_new(helpers, json_pack("{s:i, s:s, s:s, s:s}", "pid", (int) rt->helpers[k].pid,
                                                                 "comm", rt->helpers[k].comm, "verdict",
                                                                 verdict_to_string(rt->helpers[k].reported), "evidence",
                                                                 rt->helpers[k].evidence));
                json_object_set_new(rts, rt->name, json_pack("{s:o*, s:o*}", "pulls", pulls, "helpers", helpers));
        }
        return o;
}

int node_guard_pulls_json(const NodeGuard *g, json_t *into) {
        for (size_t i = 0; g && i < g->n_runtimes; i++) {
                const GuardRuntime *rt = &g->runtimes[i];
                for (size_t k = 0; k < rt->n_dls; k++) {
                        const GuardDownload *d = &rt->dls[k];
                        const LayerTrack *t = detector_find(rt->downloads, d->id);
                        if (!t || t->phase == PHASE_DONE || d->own)
                                continue;
                        json_t *e = json_pack("{s:s, s:s?, s:s, s:s?, s:[{s:s, s:s, s:I, s:I, s:s, s:s}]}", "owner", "other",
                                              "client", d->client ?: rt->client, "runtime", rt->name, "image", d->image,
                                              "layers", "id", d->id, "phase", phase_to_string(t->phase), "current",
                                              (json_int_t) t->current, "total", (json_int_t) t->total, "verdict",
                                              verdict_to_string(t->verdict), "evidence", t->evidence);
                        if (!e || json_array_append_new(into, e) < 0)
                                return -ENOMEM;
                }
        }
        return 0;
}
