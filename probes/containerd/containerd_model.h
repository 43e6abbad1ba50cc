/* containerd_model.h: owns the tracker's model (containerd_layers.c): struct CdTracker, its manifests, layers and phases.
 * Must not be used outside containerd_{track,unpack,layers}.c and their tests; it makes no calls and never calls the loop.
 * The poll loop (containerd_track.c) and its unpack steps (containerd_unpack.c) call into the model;
 * the unit tests and fuzzers drive it directly. */
#pragma once

#include "probes/containerd/containerd_content.h"
#include "probes/containerd/containerd_track.h"

#define CD_INTERVAL_MIN (500 * USEC_PER_MSEC)
#define CD_INTERVAL_MAX (2 * USEC_PER_SEC)
/* How long a pull waits for the registry's word on its manifest before it follows a guess. */
#define CD_EXPECT_GRACE (3 * USEC_PER_SEC)
/* Layers a round asks about one Content.Info each; more in one Content.List. */
#define CD_INFO_MAX 16

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
        size_t content_next;      /* the layer whose Content.Info is in flight (step 3) */
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
int cd_strv_push(char ***l, size_t *n, char *s);
/* Written by this pull: created since the tracker started looking. Same clock, nanosecond timestamps:
 * no second of slack, which would count an image pulled just before (an upgrade's v1) as this pull's. */
bool cd_created_since(CdTracker *t, Containerd__Services__Content__V1__Info *info);
/* A layer's blob as Content.Info or Content.List describe it: committed, size, unpacked, source;
 * nothing for a blob that is no layer of ours. true when the layer's content is newly the pull's
 * (pull mode): the caller announces it. */
bool cd_layer_content(CdTracker *t, Containerd__Services__Content__V1__Info *info);
/* Watch mode: each layer not yet placed goes to the newest of infos (manifests) listing it. */
void cd_attribute(CdTracker *t, Containerd__Services__Content__V1__Info **infos, size_t n);
/* Derive every layer's phase from the round's facts and report what changed. */
void cd_emit(CdTracker *t);
/* cd_tracker_all_done()'s part: every layer of the image pulled is done. */
void cd_layers_all_done(CdTracker *t);

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
