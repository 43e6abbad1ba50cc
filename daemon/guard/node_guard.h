/* node_guard.h: every pull on the node, not only pullwatch's own: kubelet's CRI pulls, a CI job's
 * `docker pull`, `ctr`. Watches each runtime's helpers one by one, its downloads in flight and its
 * registry connections with the same detector as pullwatch's own pulls, and acts only in the two ways
 * safe on a pull another client owns: it ends a proven hung helper of the runtime, and it cuts the
 * runtime's own stalled registry connection so the runtime's retry and Range resume go on. It never
 * cancels a stranger's pull and never changes a runtime's config; it does not log (events go to hooks). */
#pragma once

#include <jansson.h>
#include "daemon/pull/watched_pull.h"

typedef struct NodeGuard NodeGuard;

typedef struct NodeGuardStats {
        uint64_t pulls_seen;        /* downloads of other clients' pulls seen (a layer each) */
        uint64_t helpers_seen;      /* runtime helpers judged */
        uint64_t helpers_ended;     /* hung helpers ended */
        uint64_t connections_cut;   /* stalled registry connections cut */
        uint64_t verdicts;          /* stalled/hung verdicts on other clients' pulls */
} NodeGuardStats;

typedef struct NodeGuardHooks {
        /* Every verdict, action and diagnosis, as a PullEvent whose image is known or NULL and whose
         * client names who started the pull. */
        void (*event)(void *userdata, const PullEvent *e);
        /* Is image ("host/repo@sha256:...") one of pullwatch's own pulls in flight on runtime (a driver
         * name)? With image NULL: is any? Those are watched by their pull job, not here: where the
         * guard cannot tell whose a download or helper is (dockerd's temp files, a helper), it leaves the
         * runtime to the pull job while one runs. Optional. */
        bool (*is_own)(void *userdata, const char *runtime, const char *image);
        /* Something new is watched (a download, a helper): the counters moved. Optional. */
        void (*seen)(void *userdata);
        void *userdata;
} NodeGuardHooks;

/* drivers: indexed by RuntimeKind, NULL where a runtime is not watched. */
int node_guard_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *const *drivers,
                   size_t n_drivers, const NodeGuardHooks *hooks, NodeGuard **ret);
NodeGuard *node_guard_free(NodeGuard *g);
static inline void node_guard_freep(NodeGuard **g) { node_guard_free(*g); }
void node_guard_set_config(NodeGuard *g, SharedConfig *config);
void node_guard_stats(const NodeGuard *g, NodeGuardStats *ret);
/* {"act":bool,"runtimes":{"docker":{"pulls":[{"image","client","layer","phase","current","verdict",
 * "evidence"}],"helpers":[{"pid","comm","verdict","evidence"}]}}, counters...} */
json_t *node_guard_status_json(const NodeGuard *g);
/* Other clients' pulls in flight, one entry a layer, appended to into (status's .pulls[]):
 * {"owner":"other","client","runtime","image","layers":[{"id","phase","current","total","verdict","evidence"}]} */
int node_guard_pulls_json(const NodeGuard *g, json_t *into);
