/* containerd_watch.c: the namespace watcher, the tracker (containerd_track.c) as callers outside the
 * containerd probe see it. */
#include "probes/containerd/containerd_track.h"

struct ContainerdWatch {
        CdTracker *tracker;
};

int containerd_watch_new(CurlGlue *glue, const Config *config, const char *namespace,
                         const ContainerdWatchCallbacks *cb, void *userdata, ContainerdWatch **ret) {
        _cleanup_(containerd_watch_freep) ContainerdWatch *w = NULL;
        CdTrackerOptions o = {
                .socket = config && config->containerd_socket ? config->containerd_socket : CONTAINERD_DEFAULT_SOCKET,
                .namespace = namespace                                            ? namespace
                             : config && config->containerd_namespace ? config->containerd_namespace
                                                                      : CONTAINERD_CRI_NAMESPACE,
        };
        CdTrackerCallbacks tcb = {
                .layer = cb->layer,
                .layer_gone = cb->layer_gone,
                .error = cb->error,
        };
        int r;

        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        r = cd_tracker_new(glue, &o, &tcb, userdata, &w->tracker);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

ContainerdWatch *containerd_watch_free(ContainerdWatch *w) {
        if (!w)
                return NULL;
        cd_tracker_free(w->tracker);
        free(w);
        return NULL;
}

void containerd_watch_stats(const ContainerdWatch *w, ContainerdPollStats *ret) {
        cd_tracker_stats(w ? w->tracker : NULL, ret);
}
