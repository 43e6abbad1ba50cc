/* containerd_content.h: owns containerd's content/snapshot vocabulary: label keys, paths, ingest refs, source host, filters.
 * Must not make calls or keep state (pure, containerd_content.c), nor know CRI (probes/cri/).
 * Also the clock and the call deadline containerd's pollers share.
 * Used by the tracker (containerd_track/layers/unpack.c), the lease, and docker_ingest.c (dockerd on
 * the containerd store). */
#pragma once

#include <time.h>
#include "basic/macro.h"
#include "containerd_content.pb-c.h"

/* Label keys containerd 1.6 sets while pulling (client pull handlers and the unpacker). */
#define CD_LABEL_SOURCE_PREFIX "containerd.io/distribution.source."
#define CD_LABEL_CONFIG        "containerd.io/gc.ref.content.config"
#define CD_LABEL_LAYER_PREFIX  "containerd.io/gc.ref.content.l."
#define CD_LABEL_UNCOMPRESSED  "containerd.io/uncompressed"
/* on the snapshot an unpacker prepares for a layer: the chain ID it will be committed as (1.6 to 2.2) */
#define CD_LABEL_SNAPSHOT_REF  "containerd.io/snapshot.ref"
#define CD_UNPACK_KEY_PREFIX   "extract-" /* snapshots.UnpackKeyFormat: "extract-<unique> <chainID>" */
#define CD_CONFIG_MAX          (1024 * 1024) /* an image config read for its diff_ids, at most */

#define CD_PATH_LIST_STATUSES "/containerd.services.content.v1.Content/ListStatuses"
#define CD_PATH_CONTENT_LIST  "/containerd.services.content.v1.Content/List"
#define CD_PATH_CONTENT_INFO  "/containerd.services.content.v1.Content/Info"
#define CD_PATH_SNAPSHOTS     "/containerd.services.snapshots.v1.Snapshots/List"
#define CD_PATH_CONTENT_READ  "/containerd.services.content.v1.Content/Read"

/* Any one call to containerd's own services. */
#define CD_CALL_TIMEOUT (10 * USEC_PER_SEC)

static inline usec_t cd_now(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

const char *cd_label_get(Containerd__Services__Content__V1__Info *info, const char *key);
/* Content.List leaves updated_at out (1.6 contentserver): creation time in usec, 0 when unknown. */
int64_t cd_info_created(Containerd__Services__Content__V1__Info *info);
/* A content timestamp in usec; 0 when absent, before 1970 or beyond what usec hold. */
int64_t cd_timestamp_usec(const Containerd__Services__Content__V1__Timestamp *ts);

/* What an ingest ref names: containerd's MakeRefKey() prefixes "<kind>-" to the digest, or to
 * "<name>@<digest>" when the descriptor carries an org.opencontainers.image.ref.name annotation.
 * 1.6 knows manifest, index, layer, config and unknown; 1.7+ adds attestation. */
typedef enum CdRefKind {
        CD_REF_MANIFEST,
        CD_REF_INDEX,
        CD_REF_LAYER,
        CD_REF_CONFIG,
        CD_REF_ATTESTATION,
        CD_REF_UNKNOWN, /* a media type containerd does not know: octet-stream configs, foreign layers */
        _CD_REF_KIND_MAX,
        _CD_REF_KIND_INVALID = -EINVAL,
} CdRefKind;

/* The kind and the digest of an ingest ref; _CD_REF_KIND_INVALID for anything else (other
 * clients' refs, a missing or malformed digest). */
CdRefKind cd_ref_parse(const char *ref, const char **ret_digest);
/* "layer-sha256:..." or "layer-name@sha256:..." into kind and digest; false for others. */
bool cd_ref_split(const char *ref, const char **kind_end, const char **digest);

/* "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "::1": the host part containerd puts in its
 * distribution source label key (Go's url.Hostname()). */
int cd_source_host(const char *domain, char **ret);
/* The Content.List filter for manifests of host/repo: config-labelled blobs whose source label lists repo. */
int cd_manifest_filter(const char *host, const char *repo, char **ret);
