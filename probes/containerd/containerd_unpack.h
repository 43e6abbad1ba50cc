/* containerd_unpack.h: owns the tracker's unpack steps (containerd_unpack.c): what to ask and what the answers mean.
 * Must not issue calls or call the poll loop: containerd_track.c issues them and hands the replies back.
 * The image config is read once, for its diff_ids; the active snapshots are listed only while a layer
 * can be unpacking. */
#pragma once

#include "probes/containerd/containerd_model.h"
#include "containerd_snapshots.pb-c.h"

/* Step 4: 1 with *req set (its digest borrowed from t) when a manifest's config is worth reading now,
 * 0 when there is nothing to ask. */
int cd_unpack_config_request(CdTracker *t, Containerd__Services__Content__V1__ReadContentRequest *req);
/* The Read answer (any status): the config's diff_ids become its manifest's chain IDs. */
void cd_unpack_config_reply(CdTracker *t, const GrpcReply *reply);

/* Step 5: 1 with *req set (filters points into it) when a layer can be unpacking, else 0. */
typedef struct CdSnapshotsRequest {
        Containerd__Services__Snapshots__V1__ListSnapshotsRequest req;
        char *filters[1];
} CdSnapshotsRequest;
int cd_unpack_snapshots_request(CdTracker *t, CdSnapshotsRequest *r);
/* The List answer: which unpack snapshots are open; a failure marks the snapshotter unusable. */
void cd_unpack_snapshots_reply(CdTracker *t, const GrpcReply *reply);
