/* containerd_lease.h: a lease of pullwatch's own that holds one image's partial ingests and blobs in
 * one namespace across attempts, so a retry resumes them with Range. Used by the CRI driver and by the
 * Docker driver on the containerd image store. Talks to containerd only; never logs, never decides. */
#pragma once

#include "probes/containerd/containerd.h"

typedef struct CdLease CdLease;

typedef struct CdLeaseCallbacks {
        /* Leases.Create failed: nothing is held, a retry starts over. Optional. */
        void (*failed)(void *userdata, const char *message);
        /* After cd_lease_release() returned 1: the Delete answered (or failed; the lease then
         * expires by itself through containerd.io/gc.expire). May free the lease. */
        void (*released)(void *userdata);
} CdLeaseCallbacks;

/* Creates (or adopts: AlreadyExists is the last attempt's lease) the lease for image in namespace,
 * expiring after CONTAINERD_LEASE_TTL. Resources added before Create answers wait for it. */
int cd_lease_new(CurlGlue *glue, const char *socket, const char *namespace, const char *image,
                 const CdLeaseCallbacks *cb, void *userdata, CdLease **ret);
/* Hold type "ingests" (id = ingest ref) or "content" (id = digest). Each resource is asked for once,
 * and the AddResource calls go one at a time (each is a write transaction in containerd's metadata
 * db, which the pull's own writes wait behind). */
void cd_lease_add(CdLease *l, const char *type, const char *id);
/* The attempt was cut: keep the lease for the next one; a Create still in flight is dropped, the
 * resources already asked for are still sent, for the same reason. Nothing new is added after. */
void cd_lease_stop(CdLease *l);
/* Nothing to resume: delete the lease. 1 when released follows, 0 when there is nothing to wait
 * for (Create failed, or the Delete could not be sent). */
int cd_lease_release(CdLease *l);
CdLease *cd_lease_free(CdLease *l);
static inline void cd_lease_freep(CdLease **l) { cd_lease_free(*l); }
/* Fire and forget (the glue owns the call): delete the lease for image in namespace. */
int cd_lease_abandon(CurlGlue *glue, const char *socket, const char *namespace, const char *image);
