/* containerd_internal.h: what containerd_pull.c, containerd_watch.c and containerd_api.c share: the poll
 * loop that turns ingests and content labels into layer phases. Not for use outside probes/containerd*. */
#pragma once

#include "probes/containerd/containerd.h"
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
#define CD_PATH_SNAPSHOTS     "/containerd.services.snapshots.v1.Snapshots/List"
#define CD_PATH_CONTENT_READ  "/containerd.services.content.v1.Content/Read"

#define CD_INTERVAL_MIN (500 * USEC_PER_MSEC)
#define CD_INTERVAL_MAX (2 * USEC_PER_SEC)
#define CD_CALL_TIMEOUT (10 * USEC_PER_SEC)
/* How long a pull waits for the registry's word on its manifest before it follows a guess. */
#define CD_EXPECT_GRACE (3 * USEC_PER_SEC)

static inline usec_t cd_now(clockid_t clock) {
        struct timespec ts;
        clock_gettime(clock, &ts);
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

/* A finished call's result: 0, or -ENOENT/-EPROTO/-EEXIST/-EIO for gRPC errors, the transport's -errno
 * otherwise, with one line in *ret_message (if given). */
int cd_reply_result(const GrpcReply *reply, const char *method, char **ret_message);
/* Version's and ImageStatus' answers read the same way the one-shot questions read them. */
int cd_version_result(const char *socket, const GrpcReply *reply, char **ret_message);
int cd_image_status_result(const GrpcReply *reply, char **ret_digest, char **ret_id, char **ret_message);

typedef struct CdTracker CdTracker;

typedef struct CdTrackerCallbacks {
        void (*layer)(void *userdata, const char *image, const char *layer, Phase phase, uint64_t current,
                      uint64_t total, usec_t at);
        void (*layer_gone)(void *userdata, const char *image, const char *layer, bool done, usec_t at);
        /* Something to hold in a lease: type "ingests" (id = ref) or "content" (id = digest). */
        void (*resource)(void *userdata, const char *type, const char *id);
        void (*activity)(void *userdata, const char *what, usec_t at);
        void (*error)(void *userdata, int error, const char *message);
} CdTrackerCallbacks;

typedef struct CdTrackerOptions {
        const char *socket;
        const char *namespace;
        /* Pull mode: follow only the image of this repository (host without port, as containerd labels
         * it, and path), whose manifest containerd touched at or after since (CLOCK_REALTIME). NULL
         * repo: watch mode, every pull in the namespace. 0 since: now. */
        const char *source_host;
        const char *source_repo;
        usec_t since;
        const char *snapshotter;  /* NULL: "overlayfs", CRI's default */
} CdTrackerOptions;

int cd_tracker_new(CurlGlue *glue, const CdTrackerOptions *o, const CdTrackerCallbacks *cb, void *userdata,
                   CdTracker **ret);
CdTracker *cd_tracker_free(CdTracker *t);
static inline void cd_tracker_freep(CdTracker **t) { cd_tracker_free(*t); }
/* PullImage returned OK: every layer of the image is unpacked; report them done. */
void cd_tracker_all_done(CdTracker *t);
/* One more round now (after the one in flight, if any), then done(userdata) instead of the next tick:
 * a pull that ends inside one poll interval still gets its layers reported. */
void cd_tracker_final_round(CdTracker *t, void (*done)(void *userdata), void *userdata);
void cd_tracker_stats(const CdTracker *t, ContainerdPollStats *ret);
/* The manifest digest of the image being pulled (pull mode), once sure of it. */
const char *cd_tracker_manifest(const CdTracker *t);
/* Pull mode: the image manifest the reference resolves to now (from the registry). From then on only
 * that manifest is followed, whatever else of the repository the store holds or fetches. */
int cd_tracker_expect(CdTracker *t, const char *manifest_digest);
/* Pull mode, the pull is over: CRI named the image's config; its manifest is the one labelled with it. */
int cd_tracker_expect_config(CdTracker *t, const char *config_digest);

/* ---- between containerd_track.c (the poll loop) and containerd_layers.c (the model and phases) ---- */

typedef struct CdManifest {
        char *digest;
        char *image;              /* "host/repo@sha256:..." */
        char *config;
        char **layers;            /* in manifest order */
        size_t n_layers;
        unsigned idle_rounds;
        /* the chain IDs of its layers (identity.ChainIDs of the config's rootfs.diff_ids), the names an
         * unpacker gives their snapshots: NULL until the config was read */
        char **chain_ids;
        size_t n_chain_ids;
        bool config_read;         /* tried once: a config that cannot be read is not asked for again */
} CdManifest;

typedef struct CdLayer {
        char *digest;
        CdManifest *m;              /* NULL while unknown (watch mode) */
        uint64_t offset, size;
        bool ingest, ingest_seen, committed, done, leased_ingest, leased_content;
        bool ingest_idle;           /* no byte written to the ingest since this tracker started */
        bool fresh;                 /* its blob was committed since we started looking: downloaded now */
        uint64_t dl_reported;       /* most bytes reported while downloading */
        char *source_host, *source_repos; /* from the committed blob's labels: how watch mode finds m */
        unsigned searches, missing_rounds;
        Phase phase;
        uint64_t rep_current, rep_total;
        bool reported;
        bool extracting;            /* an unpack snapshot named by its chain ID is active (last round) */
} CdLayer;

enum { STEP_STATUSES, STEP_MANIFESTS, STEP_CONTENT, STEP_CONFIG, STEP_SNAPSHOTS, STEP_EMIT };

struct CdTracker {
        CurlGlue *glue;
        void (*round_next)(CdTracker *t); /* cd_round_next */
        char *socket, *namespace, *source_host, *source_repo, *snapshotter;
        char *expect;             /* pull mode: the manifest digest the reference resolves to, once known */
        char *expect_config;      /* pull mode, after PullImage: the config digest CRI answered */
        usec_t since;
        CdTrackerCallbacks cb;
        void *userdata;
        sd_event_source *timer;
        GrpcCall *call;
        usec_t call_started;
        int step;
        usec_t interval;
        bool moved;
        Containerd__Services__Content__V1__ListStatusesResponse *statuses;
        CdLayer **layers;
        size_t n_layers;
        CdManifest **manifests;
        size_t n_manifests;
        CdManifest *mine;           /* pull mode: the image being pulled, once found */
        bool mine_confirmed;      /* ... and sure of it: reported only then */
        bool snapshots_broken, snapshots_trusted, extract_active, extract_known;
        char **announced;         /* manifest/config refs already handed to cb.resource */
        int last_error;
        ContainerdPollStats stats;
        void (*final_done)(void *userdata); /* set by cd_tracker_final_round */
        void *final_userdata;
        bool final_started;
        /* containerd 2.x's transfer service opens a layer's ingest before it gets one of the node's
         * download slots: an ingest that never moved may be queued, not downloading */
        GrpcCall *version_call;
        bool ingest_before_slot;
};

CdManifest *cd_manifest_free(CdManifest *m);
CdLayer *cd_layer_free(CdLayer *l);
CdLayer *cd_layer_find(CdTracker *t, const char *digest);
CdLayer *cd_layer_get(CdTracker *t, const char *digest);
void cd_layer_remove(CdTracker *t, CdLayer *l);
/* Registers the manifest (once) and attaches its layers; NULL on OOM or malformed labels. */
CdManifest *cd_manifest_add(CdTracker *t, Containerd__Services__Content__V1__Info *info, const char *host,
                            const char *repo);
bool cd_manifest_lists(Containerd__Services__Content__V1__Info *info, const char *digest);
CdLayer *cd_manifest_frontier(CdTracker *t, CdManifest *m);
const char *cd_label_get(Containerd__Services__Content__V1__Info *info, const char *key);
int64_t cd_info_created(Containerd__Services__Content__V1__Info *info);
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
int cd_strv_push(char ***l, size_t *n, char *s);
/* Derive every layer's phase from the round's facts and report what changed. */
void cd_emit(CdTracker *t);

/* the poll round (containerd_track.c): one call at a time; its callback calls cd_call_finished, then
 * sets t->step and calls t->round_next (cd_round_next: a callback, so the steps in other files do not
 * call back into containerd_track.c) */
static inline int cd_issue(CdTracker *t, const char *path, const ProtobufCMessage *req,
                           const ProtobufCMessageDescriptor *type, bool streaming, grpc_done_t done) {
        GrpcTarget target = { .socket = t->socket, .namespace = t->namespace, .timeout = CD_CALL_TIMEOUT };
        t->call_started = cd_now(CLOCK_MONOTONIC);
        return grpc_call_start(t->glue, &target, path, req, type, streaming, done, t, &t->call);
}
static inline void cd_call_finished(CdTracker *t) {
        t->stats.calls++;
        t->stats.busy += cd_now(CLOCK_MONOTONIC) - t->call_started;
        t->call = grpc_call_free(t->call);
}
void cd_round_next(CdTracker *t);
/* the unpack steps (containerd_unpack.c): 1 when a call went out, 0 when there was nothing to ask */
int cd_issue_config(CdTracker *t);
int cd_issue_snapshots(CdTracker *t);

/* The chain ID an unpack snapshot will be committed as: its containerd.io/snapshot.ref label, else
 * the part of an "extract-<unique> <chainID>" key after the space; NULL for any other snapshot. */
const char *cd_snapshot_chain_id(const char *key, const char *label_ref);
/* identity.ChainIDs: chain[0] = diff[0], chain[i] = sha256(chain[i-1] + " " + diff[i]). */
int cd_chain_ids(char *const *diff_ids, size_t n, char ***ret);
/* An image config's rootfs.diff_ids, as chain IDs into m (when they are as many as its layers). */
int cd_manifest_set_config(CdManifest *m, const char *json, size_t len);
/* One round's active snapshots (key, snapshot.ref label or NULL, each): flags the layers whose own
 * unpack snapshot is among them (containerd 2.2 unpacks several layers at once, with no parent until
 * commit: a snapshot is matched by name, never through its parent chain). Returns how many matched. */
size_t cd_snapshots_match(CdTracker *t, char *const *keys, char *const *refs, size_t n);
/* A Snapshots.List reply (kind==active): sets t->extract_active when an unpack snapshot opened since
 * the tracker started is among them (a pull killed with containerd leaves its own for a day), and
 * matches those to layers. */
typedef struct Containerd__Services__Snapshots__V1__ListSnapshotsResponse CdSnapshotsReply;
void cd_snapshots_reply(CdTracker *t, CdSnapshotsReply *const *replies, size_t n);

/* "127.0.0.1:5000" -> "127.0.0.1", "[::1]:5000" -> "::1": the host part containerd puts in its
 * distribution source label key (Go's url.Hostname()). */
int cd_source_host(const char *domain, char **ret);
/* The Content.List filter for manifests of host/repo: config-labelled blobs whose source label lists repo. */
int cd_manifest_filter(const char *host, const char *repo, char **ret);
