/* guard_internal.h: the node guard's parts, shared by node_guard.c (helpers, the sample loop, status),
 * guard_downloads.c (each runtime's downloads in flight), guard_conns.c (its registry connections:
 * the cut of a stalled one, the ages at which they end) and guard_mirror.c (a mirror hop in front of
 * them that is silent, refuses, or answers Range with 200). Calls run one way: node_guard.c ->
 * guard_mirror.c -> guard_conns.c -> guard_downloads.c, never back. */
#pragma once

#include "daemon/guard/node_guard.h"
#include "daemon/pull/diagnose.h"
#include "daemon/pull/liveness.h"
#include "probes/containerd/containerd.h"
#include "probes/host/open_files.h"
#include "probes/host/tcp_conn.h"

typedef struct NodeGuard NodeGuard;
typedef struct GuardMirror GuardMirror;

typedef struct GuardHelper {
        pid_t pid;
        uint64_t start_ticks;
        char comm[16];
        Detector *detector;       /* this helper alone, as one extracting layer */
        Verdict reported;
        char evidence[DETECTOR_EVIDENCE_MAX];
        bool seen;                /* in the last sample */
} GuardHelper;

/* One download of another client's pull (a containerd ingest, a dockerd blob temp file). */
typedef struct GuardDownload {
        char *id;                 /* the detector's layer id */
        char *image;              /* "host/repo@sha256:..." when known */
        const char *client;       /* static text */
        bool own;                 /* pullwatch's own pull: watched by its pull job, not here */
        bool extracting;          /* containerd holds its blob open: being unpacked */
        GrpcCall *lookup;         /* containerd: which namespace holds the blob (Content.Info) */
        size_t lookup_ns;         /* the namespace asked now */
        bool acted;               /* its stalled connection was cut in this stall */
        unsigned cuts;            /* connections cut for it in its life; at retry.attempts the guard
                                   * stops: it stalls again on every new connection */
        bool cuts_stopped;        /* and said so */
        bool was_downloading;     /* in the last sample */
        bool seen;
} GuardDownload;

typedef struct GuardConn {
        TcpConn c;
        usec_t first_seen, last_seen;
        uint64_t last_bytes;
        bool cut_by_us, seen;
        bool during_download;     /* seen while the runtime downloaded something */
        bool into_other;          /* those downloads were another runtime's (dockerd on the containerd
                                   * store writes into containerd's moby namespace) */
        const char *client;       /* whose downloads those were, when they were one client's */
        char image[160];          /* and the one image, when one alone was pulled */
} GuardConn;

/* A hop's connections that ended mid-transfer, for the middlebox diagnosis. */
typedef struct GuardHop {
        char addr[64];
        DiagAttempt history[8];
        size_t n_history;
        usec_t last_end_seen;     /* the sample its last counted end was last seen in */
        bool named;
} GuardHop;

typedef struct GuardRuntime {
        NodeGuard *guard;
        const RuntimeDriver *driver;
        const char *name;         /* the driver's, for events and status */
        RuntimeKind kind;
        const char *client;       /* who starts this runtime's pulls, when one kind of client does */
        RuntimeLiveness *liveness;
        GuardHelper *helpers;
        size_t n_helpers;
        Detector *downloads;
        GuardDownload *dls;
        size_t n_dls;
        ContainerdWatch **watches; /* containerd: one per namespace */
        char **watch_ns;
        size_t n_watches;
        GuardConn *conns;
        size_t n_conns;
        /* downloads that went from downloading to extracting, or whose file of unknown size closed,
         * in this sample and the one before: a connection that ended then may have ended with its
         * body (the runtime closes a connection it has no use for), which is no cut */
        unsigned finished, finished_before;
        GuardHop *hops;
        size_t n_hops;
        /* this sample's one walk of the runtime's /proc/PID/fd (node_guard.c takes it and drops it at
         * the sample's end): the files it holds open, read by guard_downloads.c, and its socket fds,
         * read by guard_conns.c; fds_r < 0 when not taken (no proven pid, gone, no access) */
        OpenFile *files;
        size_t n_files;
        TcpSockFd *socks;
        size_t n_socks;
        int fds_r;
        GuardMirror *mirror;      /* guard_mirror.c's: its runtime's mirror hops looked into */
} GuardRuntime;



struct NodeGuard {
        sd_event *event;
        CurlGlue *glue;
        SharedConfig *config;
        bool act;
        GuardRuntime *runtimes;
        size_t n_runtimes;
        sd_event_source *timer;
        void (*cb)(void *userdata, const PullEvent *e);
        bool (*is_own)(void *userdata, const char *runtime, const char *image);
        void (*seen)(void *userdata);
        void *userdata;
        NodeGuardStats stats;
        /* this sample's sock_diag dump, taken by the first runtime that holds a socket and joined by
         * each (guard_conns.c); done at the end of the sample */
        TcpConnList dump;
        int dump_r;
        bool dumped;
};

static inline void guard_seen(GuardRuntime *rt) {
        if (rt->guard->seen)
                rt->guard->seen(rt->guard->userdata);
}

static inline bool guard_is_own(const GuardRuntime *rt, const char *image) {
        return rt->guard->is_own && rt->guard->is_own(rt->guard->userdata, rt->name, image);
}

/* An event of this runtime's (the runtime and, when the event names none, its client filled in). */
static inline void guard_emit(GuardRuntime *rt, PullEvent *e) {
        NodeGuard *g = rt->guard;
        e->runtime = rt->name;
        e->client = e->client ?: rt->client ?: "unknown"; /* set: this is another client's pull */
        if (g->cb)
                g->cb(g->userdata, e);
}

/* guard_mirror.c: after guard_conns_sample(): a connection silent since it asked, or one to a hop
 * after a mirror, gets the runtime's hops for its registry asked; a mirror that stays silent or
 * refuses is named (PULL_EVENT_DIAGNOSIS with the hop). A download in flight through a registry's
 * mirror gets its layer asked for a byte range; a hop that answers 200 is named (range-ignored). */
void guard_mirror_sample(GuardRuntime *rt, usec_t now);
void guard_mirror_done(GuardRuntime *rt);

/* guard_downloads.c */
int guard_downloads_start(GuardRuntime *rt);
void guard_downloads_sample(GuardRuntime *rt, usec_t now);
void guard_downloads_done(GuardRuntime *rt);
const char *guard_downloads_image(const GuardRuntime *rt, const char *id);
/* The one image this runtime is pulling for someone else, when exactly one is in flight. */
const char *guard_only_image(const GuardRuntime *rt);
/* A download in flight whose client all the others in flight share (its client names them); NULL when
 * none is known or they differ. */
const GuardDownload *guard_downloads_only(const GuardRuntime *rt);
/* The download being extracted, when exactly one is (what a helper serves); NULL otherwise. */
const GuardDownload *guard_downloads_extracting(const GuardRuntime *rt);
/* The stalled download the conns part should act on, NULL when none (marked acted). */
GuardDownload *guard_downloads_stalled(GuardRuntime *rt, const LayerTrack **ret_track);
bool guard_downloads_in_flight(const GuardRuntime *rt);

/* guard_conns.c */
void guard_conns_sample(GuardRuntime *rt, usec_t now);
/* After every runtime's sample: stalled downloads with a silent connection open are reported and the
 * connection cut. */
void guard_conns_act(NodeGuard *g, usec_t now);
/* After every runtime's downloads and connections were sampled: the connections that ended. */
void guard_conns_ends(NodeGuard *g);
/* The end of a sample: its sock_diag dump goes. */
void guard_conns_sample_end(NodeGuard *g);
void guard_conns_done(GuardRuntime *rt);
