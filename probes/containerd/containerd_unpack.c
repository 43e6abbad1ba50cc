/* containerd_unpack.c: the tracker's steps that see unpacking (containerd_track.c issues their calls in
 * its round and hands back the replies): the image config read once for its diff_ids, whose chain IDs
 * name the layers' unpack snapshots, and the active snapshots listed (containerd_layers.c matches them
 * to layers). */
#include "probes/containerd/containerd_unpack.h"

#include <assert.h>

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

void cd_unpack_config_reply(CdTracker *t, const GrpcReply *reply) {
        CdManifest *m = NULL;
        char *buf = NULL;
        size_t len = 0;

        assert(t);
        assert(reply);
        for (size_t i = 0; i < t->n_manifests && !m; i++)
                if (t->manifests[i]->config && !t->manifests[i]->config_read)
                        m = t->manifests[i];
        if (m && reply->error == 0 && reply->status == GRPC_OK) {
                FILE *f = open_memstream(&buf, &len);
                for (size_t k = 0; f && k < reply->n_messages; k++) {
                        Containerd__Services__Content__V1__ReadContentResponse *r = (void *) reply->messages[k];
                        (void) fwrite(r->data.data, 1, r->data.len, f);
                }
                if (f && fclose(f) == 0)
                        (void) cd_manifest_set_config(m, buf, len); /* no diff_ids: stay with the inference */
                free(buf);
        }
        if (m)
                m->config_read = true;
}

int cd_unpack_config_request(CdTracker *t, Containerd__Services__Content__V1__ReadContentRequest *req) {
        assert(t);
        assert(req);
        *req = (Containerd__Services__Content__V1__ReadContentRequest) CONTAINERD__SERVICES__CONTENT__V1__READ_CONTENT_REQUEST__INIT;
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
                req->digest = m->config;
                req->size = CD_CONFIG_MAX;
                return 1;
        }
        return 0;
}

/* ---- step 5: is an unpack snapshot open? ---- */

void cd_unpack_snapshots_reply(CdTracker *t, const GrpcReply *reply) {
        assert(t);
        assert(reply);
        if (reply->error < 0 || reply->status != GRPC_OK)
                t->snapshots_broken = true; /* another snapshotter, or none: stay with the inference */
        else {
                cd_snapshots_reply(t, (void *) reply->messages, reply->n_messages);
                /* only a snapshotter that was seen unpacking is trusted to say that nothing unpacks */
                if (t->extract_active)
                        t->snapshots_trusted = true;
                t->extract_known = true;
        }
}

int cd_unpack_snapshots_request(CdTracker *t, CdSnapshotsRequest *r) {
        bool frontier = false;

        assert(t);
        assert(r);
        *r = (CdSnapshotsRequest) { .req = CONTAINERD__SERVICES__SNAPSHOTS__V1__LIST_SNAPSHOTS_REQUEST__INIT,
                                    .filters = { (char *) "kind==active" } };
        t->extract_known = false;
        if (t->snapshots_broken)
                return 0;
        for (size_t i = 0; i < t->n_manifests && !frontier; i++)
                frontier = cd_manifest_frontier(t, t->manifests[i]) != NULL || unpack_possible(t, t->manifests[i]);
        if (!frontier)
                return 0;
        r->req.snapshotter = t->snapshotter;
        r->req.n_filters = 1;
        r->req.filters = r->filters;
        return 1;
}
