/* registry_sync.c: the synchronous wrappers the CLI uses: a private sd_event loop around the async
 * calls of registry.c until done or timeout. */
#include "probes/registry/registry.h"

#include <inttypes.h>

typedef struct SyncState {
        sd_event *event;
        bool done;
        int r;
        RegistryManifest *m;
        RegistryRangeProbe probe;
        ErrorDetail error;
} SyncState;

static void sync_finish(SyncState *s, int r, const ErrorDetail *e) {
        s->done = true;
        s->r = r;
        if (e && error_detail_copy(e, &s->error) < 0 && r >= 0)
                s->r = -ENOMEM;
        (void) sd_event_exit(s->event, 0);
}

static void sync_manifest_done(RegistryOp *op, int r, RegistryManifest *m, const ErrorDetail *e, void *userdata) {
        SyncState *s = userdata;
        s->m = m;
        sync_finish(s, r, e);
}

static void sync_range_done(RegistryOp *op, int r, RegistryRangeProbe *p, const ErrorDetail *e, void *userdata) {
        SyncState *s = userdata;
        if (p) {
                s->probe = *p;
                *p = (RegistryRangeProbe) {};
        }
        sync_finish(s, r, e);
}

static int on_sync_timeout(sd_event_source *source, uint64_t usec, void *userdata) {
        SyncState *s = userdata;
        s->r = -ETIMEDOUT;
        free(s->error.message);
        s->error.message = strdup("registry probe timed out");
        return sd_event_exit(s->event, 0);
}

static int sync_run(const RegistryTarget *t, const char *blob, usec_t timeout, SyncState *s) {
        _cleanup_(sd_event_unrefp) sd_event *event = NULL;
        _cleanup_(sd_event_source_disable_unrefp) sd_event_source *timer = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *glue = NULL;
        _cleanup_(registry_op_freep) RegistryOp *op = NULL;
        int r;

        r = sd_event_new(&event);
        if (r < 0)
                return r;
        s->event = event;
        r = curl_glue_new(event, &glue);
        if (r < 0)
                return r;
        r = sd_event_add_time_relative(event, &timer, CLOCK_MONOTONIC, timeout ?: 120 * USEC_PER_SEC, 0,
                                       on_sync_timeout, s);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(timer, "registry-sync-timeout");
        r = blob ? registry_probe_range(glue, t, blob, sync_range_done, s, &op) :
                   registry_resolve(glue, t, sync_manifest_done, s, &op);
        if (r < 0)
                return r;
        r = sd_event_loop(event);
        if (r < 0)
                return r;
        return s->r;
}

int registry_resolve_sync(const RegistryTarget *t, usec_t timeout, RegistryManifest **ret, ErrorDetail *ret_error) {
        SyncState s = { .r = -ECANCELED };
        int r = sync_run(t, NULL, timeout, &s);

        if (r >= 0 && s.m)
                *ret = TAKE_PTR(s.m);
        else if (r >= 0)
                r = -EIO;
        registry_manifest_free(s.m);
        if (r < 0 && ret_error)
                *ret_error = s.error;
        else
                error_detail_done(&s.error);
        return r;
}

int registry_probe_range_sync(const RegistryTarget *t, const char *blob_digest, usec_t timeout,
                              RegistryRangeProbe *ret, ErrorDetail *ret_error) {
        SyncState s = { .r = -ECANCELED };
        int r;

        if (!blob_digest)
                return -EINVAL;
        r = sync_run(t, blob_digest, timeout, &s);
        if (r >= 0)
                *ret = s.probe;
        else
                registry_range_probe_done(&s.probe);
        if (r < 0 && ret_error)
                *ret_error = s.error;
        else
                error_detail_done(&s.error);
        return r;
}
