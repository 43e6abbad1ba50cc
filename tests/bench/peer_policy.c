/* peer_policy.c: kubelet dockershim's image-pull-progress-deadline, cri-dockerd's Extracting
 * exemption, containerd CRI's image_pull_progress_timeout and CRI-O's pull_progress_timeout. */
#include "tests/bench/peer_policy.h"

static const char *const peer_names[_PEER_KIND_MAX] = {
        [PEER_KUBELET_DOCKERSHIM] = "kubelet-dockershim",
        [PEER_CRI_DOCKERD] = "cri-dockerd",
        [PEER_CONTAINERD_CRI] = "containerd-cri",
        [PEER_CRIO] = "cri-o",
};

const char *peer_kind_to_string(PeerKind k) { return k >= 0 && k < _PEER_KIND_MAX ? peer_names[k] : NULL; }

void peer_policy_init(PeerPolicy *p, PeerKind kind, usec_t deadline, usec_t now) {
        *p = (PeerPolicy) { .kind = kind, .deadline = deadline, .last_reset = now };
}

void peer_policy_tick(PeerPolicy *p, usec_t now, bool message, uint64_t bytes_total, bool request_open,
                      bool last_extracting) {
        bool reset = false, armed = true;

        if (p->cancelled)
                return;
        switch (p->kind) {
        case PEER_KUBELET_DOCKERSHIM:
        case PEER_CRIO:
                reset = message;
                break;
        case PEER_CRI_DOCKERD:
                reset = message;
                armed = !last_extracting;
                break;
        case PEER_CONTAINERD_CRI:
                /* Only new bytes count, and the clock only runs while a request is open. */
                reset = bytes_total > p->bytes_seen || !request_open;
                p->bytes_seen = MAX(p->bytes_seen, bytes_total);
                break;
        default:
                break;
        }
        if (reset || !armed) {
                p->last_reset = now;
                return;
        }
        if (now - p->last_reset >= p->deadline) {
                p->cancelled = true;
                p->cancelled_at = now;
        }
}
