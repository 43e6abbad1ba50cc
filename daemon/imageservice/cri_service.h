/* cri_service.h: pullwatch as kubelet's CRI image service (imageServiceEndpoint). PullImage becomes a
 * watched pull against containerd's CRI, shared by every caller of one image; ListImages, ImageStatus,
 * RemoveImage and ImageFsInfo, and anything pullwatch cannot take on, pass to containerd unchanged.
 * Owns the callers and their pulls; it does not log (its pulls' events go to the observer). */
#pragma once

#include <jansson.h>
#include "daemon/pull/watched_pull.h"

typedef struct CriService CriService;

typedef struct CriServiceStats {
        uint64_t calls;           /* every call answered or cancelled */
        uint64_t pulls;           /* watched pulls started (callers of one image share one) */
        uint64_t joined;          /* PullImage calls that joined a watched pull already running */
        uint64_t answered;        /* PullImage calls answered with containerd's answer to the watched pull
                                   * (the others that waited for one were asked of containerd again) */
        uint64_t forwarded;       /* calls passed to containerd unchanged */
        uint64_t fallbacks;       /* PullImage calls forwarded because pullwatch could not watch them */
        uint64_t cancelled;       /* callers that left before their answer */
        uint64_t unimplemented;
} CriServiceStats;

/* Serve on listen_fd (taken: closed on free). Every event of the watched pulls goes to cb (may be
 * NULL). config is referenced; the driver is the one that pulls through containerd's CRI. */
int cri_service_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *driver,
                    int listen_fd, pull_job_event_t cb, void *userdata, CriService **ret);
/* Callers still waiting are cancelled (their connections close) and running pulls aborted. */
CriService *cri_service_free(CriService *s);
static inline void cri_service_freep(CriService **s) { cri_service_free(*s); }
/* A reloaded config for the pulls started from now on. */
void cri_service_set_config(CriService *s, SharedConfig *config);
void cri_service_stats(const CriService *s, CriServiceStats *ret);
/* {"calls":N,...,"pulls":[{"image","callers","pull":{watched_pull_status_json}}]} */
json_t *cri_service_status_json(const CriService *s);

/* Exposed for tests. grpc-timeout ("100m", "5S", ...) in usec; 0 when absent or malformed. */
usec_t cri_grpc_timeout(const char *value);
/* grpc-go's answer to a path it serves no handler for: "unknown service X" or "unknown method M for
 * service X". Caller frees. */
char *cri_unimplemented_message(const char *path);
