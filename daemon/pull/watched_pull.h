/* watched_pull.h: the one pull pipeline, for the daemon's pulls and `pullwatch pull` alike (credentials,
 * pull job, the runtime's liveness probes and the driver's disk-growth probe), and the refcounted config
 * that keeps a reload from pulling the settings out from under running pulls. Owns the request's
 * strings; the attempt loop stays in pull_job. */
#pragma once

#include <jansson.h>
#include "daemon/pull/pull_job.h"
#include "probes/registry/credentials.h"

typedef struct SharedConfig {
        Config *config;
        unsigned n_ref;
} SharedConfig;

/* Takes ownership of c. */
int shared_config_new(Config *c, SharedConfig **ret);
SharedConfig *shared_config_ref(SharedConfig *s);
SharedConfig *shared_config_unref(SharedConfig *s);
static inline void shared_config_unrefp(SharedConfig **s) { shared_config_unref(*s); }

typedef struct WatchedPullSpec {
        const char *image;
        const char *platform;     /* NULL = the config's */
        const char *namespace;    /* NULL = the config's */
        /* The caller's own credentials (kubelet's AuthConfig through the CRI endpoint), used instead of
         * the config's files; copied, and never logged. NULL = look them up in the files. */
        const Credential *credential;
        RegistrySeen *seen;       /* where its registry probe is recorded (the agent's table); NULL = nowhere */
        bool start_at_once;       /* attempt 1 beside the disk gate, not after it (pull_job_set_start_at_once) */
} WatchedPullSpec;

typedef struct WatchedPull WatchedPull;

int watched_pull_new(sd_event *event, CurlGlue *glue, SharedConfig *config, const RuntimeDriver *driver,
                     const WatchedPullSpec *spec, pull_job_event_t cb, void *userdata, WatchedPull **ret);
WatchedPull *watched_pull_free(WatchedPull *p);
static inline void watched_pull_freep(WatchedPull **p) { watched_pull_free(*p); }

int watched_pull_start(WatchedPull *p);
void watched_pull_abort(WatchedPull *p, const char *why);
bool watched_pull_finished(const WatchedPull *p);
PullJob *watched_pull_job(const WatchedPull *p);
const RuntimeDriver *watched_pull_driver(const WatchedPull *p);
/* Why the credentials files could not be used (the pull then goes anonymous), or NULL. */
const char *watched_pull_credential_warning(const WatchedPull *p);

/* {"image","runtime","attempt","elapsed_s","layers":[{"id","phase","current","total","verdict","evidence"}]} */
json_t *watched_pull_status_json(const WatchedPull *p);
