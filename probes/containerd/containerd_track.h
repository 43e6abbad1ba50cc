/* containerd_track.h: owns the tracker's interface (containerd_track.c's poll loop) for containerd_pull.c and containerd_watch.c.
 * Must not cancel, lease, decide or log: it reports facts through callbacks; its model (containerd_model.h) is not for users.
 * The loop turns a namespace's ingests, content labels and unpack snapshots into layer phases. */
#pragma once

#include "probes/containerd/containerd.h"

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
