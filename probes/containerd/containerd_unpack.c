/* containerd_unpack.c: the tracker's steps that see unpacking (containerd_track.c runs them in its
 * round): the image config read once for its diff_ids, whose chain IDs name the layers' unpack
 * snapshots, and the active snapshots listed (containerd_layers.c matches them to layers). */
#include "probes/containerd/containerd_internal.h"

#include "containerd_snapshots.pb-c.h"

/* ---- step 4: the image config's diff_ids, the names of its layers' unpack snapshots ---- */

/* A layer of m committed and not unpacked yet, its chain ID known: 2.2 may be unpacking it out of order. */
static bool unpack_possible(CdTracker *t, CdManifest *m) {
        if (!m->n_chain_ids)
                return false;
        for (size_t i = 0; i < m->n_layers; i++) {
                CdLayer *l = cd_layer_find(t, m->layers[i]);
                if (l && l->m == m && l->committed && !l->done)
                        return true;
        }
        return false;
}

static void on_config(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;
        CdManifest *m = NULL;
        char *buf = NULL;
        size_t len = 0;

        for (size_t i = 0; i < t->n_manifests && !m; i++)
                if (t->manifests[i]->config && !t->manifests[i]->config_read)
                        m = t->manifests[i];
        if (m && reply->error == 0 && reply->status == GRPC_OK) {
                FILE *f = open_memstream(&buf, &len);
                for (size_t k = 0; f && k < reply->n_messages; k++) {
                        Containerd__Services__Content__V1__ReadContentResponse *r = (void *) reply->messages[k];
                        fwrite(r->data.data, 1, r->data.len, f);
                }
                if (f && fclose(f) == 0)
                        (void) cd_manifest_set_config(m, buf, len); /* no diff_ids: stay with the inference */
                free(buf);
        }
        if (m)
                m->config_read = true;
        cd_call_finished(t); /* frees reply */
        t->step = STEP_SNAPSHOTS;
        t->round_next(t);
}

int cd_issue_config(CdTracker *t) {
        Containerd__Services__Content__V1__ReadContentRequest req =
                CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;

        if (t->snapshots_broken)
                return 0;
        for (size_t i = 0; i < t->n_manifests; i++) {
                CdManifest *m = t->manifests[i];
                bool committed = false;
                if (!m->config || m->config_read)
                        continue;
                for (size_t k = 0; k < m->n_layers && !committed; k++) {
                        CdLayer *l = cd_layer_find(t, m->layers[k]);
                        committed = l && l->m == m && l->committed && !l->done;
                }
                if (!committed) /* nothing of it can unpack yet: ask when something can */
                        continue;
                req.digest = m->config;
                req.size = CD_CONFIG_MAX;
                return cd_issue(t, CD_PATH_CONTENT_READ, &req.base,
                             &containerd__services__content__v1__read_content_response__descriptor, true, on_config) < 0
                               ? -EIO
                               : 1;
        }
        return 0;
}

/* ---- step 5: is an unpack snapshot open? ---- */

static void on_snapshots(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdTracker *t = userdata;

        if (reply->error < 0 || reply->status != GRPC_OK)
                t->snapshots_broken = true; /* another snapshotter, or none: stay with the inference */
        else {
                cd_snapshots_reply(t, (void *) reply->messages, reply->n_messages);
                /* only a snapshotter that was seen unpacking is trusted to say that nothing unpacks */
                if (t->extract_active)
                        t->snapshots_trusted = true;
                t->extract_known = true;
        }
        cd_call_finished(t); /* frees reply */
        t->step = STEP_EMIT;
        t->round_next(t);
}

int cd_issue_snapshots(CdTracker *t) {
        Containerd__Services__Snapshots__V1__ListSnapshotsRequest req =
                CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT;
        char *filters[] = { (char *) "kind==active" };
        bool frontier = false;

        t->extract_known = false;
        if (t->snapshots_broken)
                return 0;
        for (size_t i = 0; i < t->n_manifests && !frontier; i++)
                frontier = cd_manifest_frontier(t, t->manifests[i]) != NULL || unpack_possible(t, t->manifests[i]);
        if (!frontier)
                return 0;
        req.snapshotter = t->snapshotter;
        req.n_filters = 1;
        req.filters = filters;
        return cd_issue(t, CD_PATH_SNAPSHOTS, &req.base,
                     &containerd__services__snapshots__v1__list_snapshots_response__descriptor, true, on_snapshots) < 0
                       ? -EIO
                       : 1;
}
