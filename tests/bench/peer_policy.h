/* peer_policy.h: the cancel rules of the peers, after their documented semantics, so the same
 * timelines can be replayed through them and through pullwatch's detector. Pure; used by the bench
 * and its tests only, never to decide anything about a real pull. */
#pragma once

#include "basic/phase.h"

typedef enum PeerKind {
        PEER_KUBELET_DOCKERSHIM, /* any message of the whole pull resets one deadline */
        PEER_CRI_DOCKERD,        /* the same, but never cancels while the last status is Extracting */
        PEER_CONTAINERD_CRI,     /* bytes summed over all layers, while any request (or commit) is open */
        PEER_CRIO,               /* any progress event resets the timeout */
        _PEER_KIND_MAX,
} PeerKind;

const char *peer_kind_to_string(PeerKind k);

typedef struct PeerPolicy {
        PeerKind kind;
        usec_t deadline;
        usec_t last_reset;
        uint64_t bytes_seen;      /* containerd: summed bytes at the last reset */
        bool extracting_last;     /* cri-dockerd: the last status was Extracting */
        bool cancelled;
        usec_t cancelled_at;
} PeerPolicy;

void peer_policy_init(PeerPolicy *p, PeerKind kind, usec_t deadline, usec_t now);

/* One tick of the timeline: whether any runtime message arrived, the summed downloaded bytes, whether
 * any request (download or content commit) is open, and whether the last status was Extracting. */
void peer_policy_tick(PeerPolicy *p, usec_t now, bool message, uint64_t bytes_total, bool request_open,
                      bool last_extracting);
