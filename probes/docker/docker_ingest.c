/* docker_ingest.c: see docker_ingest.h. containerd names an ingest "layer-sha256:<hex>" (or
 * "<kind>-<name>@sha256:<hex>"); dockerd's stream names the layer by the first 12 hex.
 * A reset in the first second of a layer fails dockerd's attempt before a poll has seen the ingest;
 * with the layer digests from the registry's manifest the expected refs go into the lease before
 * the ingests exist (containerd's AddResource does not ask whether the ref exists, and its GC keeps
 * an ingest whose ref a lease lists), so the ingest is held from its first byte. */
#include "probes/docker/docker_ingest.h"

#include "containerd_content.pb-c.h"
#include "probes/containerd/containerd_content.h"
#include "probes/containerd/containerd_lease.h"

#define POLL_INTERVAL USEC_PER_SEC
#define SHORT_ID 12

struct DockerIngests {
        CurlGlue *glue;
        char *image, *socket, *namespace;
        CdLease *lease;
        sd_event_source *timer;
        GrpcCall *call;
        char (*ids)[SHORT_ID + 1];   /* this pull's layers */
        size_t n_ids;
        char **held;                 /* ingest refs already in the lease */
        size_t n_held;
        char **expected;             /* full layer digests from the registry's manifest */
        size_t n_expected;
};

/* a fresh one holds no lease yet: nothing to release */
static void ingests_freep(DockerIngests **h) { docker_ingests_free(*h, false); }

int docker_ingests_new(CurlGlue *glue, const char *image, DockerIngests **ret) {
        _cleanup_(ingests_freep) DockerIngests *h = NULL;

        if (!glue || !image || !ret)
                return -EINVAL;
        h = calloc(1, sizeof(*h));
        if (!h)
                return -ENOMEM;
        h->glue = glue;
        h->image = strdup(image);
        if (!h->image)
                return -ENOMEM;
        *ret = TAKE_PTR(h);
        return 0;
}

void docker_ingests_layer(DockerIngests *h, const char *id) {
        char (*a)[SHORT_ID + 1];

        if (!h || !id || strlen(id) != SHORT_ID)
                return;
        for (size_t i = 0; i < h->n_ids; i++)
                if (streq(h->ids[i], id))
                        return;
        a = realloc(h->ids, (h->n_ids + 1) * sizeof(*a));
        if (!a)
                return;
        h->ids = a;
        memcpy(h->ids[h->n_ids++], id, SHORT_ID + 1);
}

static bool mine(DockerIngests *h, const char *ref, const char **ret_digest) {
        const char *d = ref ? strstr(ref, "sha256:") : NULL;

        if (!d || strlen(d) < 7 + SHORT_ID)
                return false;
        for (size_t i = 0; i < h->n_ids; i++)
                if (strncmp(d + 7, h->ids[i], SHORT_ID) == 0) {
                        *ret_digest = d;
                        return true;
                }
        return false;
}

static bool held(DockerIngests *h, const char *ref) {
        for (size_t i = 0; i < h->n_held; i++)
                if (streq(h->held[i], ref))
                        return true;
        return false;
}

static void hold(DockerIngests *h, const char *ref, const char *digest) {
        char **a = realloc(h->held, (h->n_held + 1) * sizeof(*a));
        if (!a)
                return;
        h->held = a;
        if (!(h->held[h->n_held] = strdup(ref)))
                return;
        h->n_held++;
        cd_lease_add(h->lease, "ingests", ref);
        /* and the blob it becomes: dockerd's failed pull deletes its lease, which would let the
         * layers already committed be collected before the retry */
        cd_lease_add(h->lease, "content", digest);
}

static void on_statuses(GrpcCall *call, GrpcReply *reply, void *userdata) {
        DockerIngests *h = userdata;
        Containerd__Services__Content__V1__ListStatusesResponse *s = NULL;

        if (reply->error == 0 && reply->status == GRPC_OK && reply->n_messages > 0)
                s = (void *) reply->messages[0];
        for (size_t i = 0; s && i < s->n_statuses; i++) {
                const char *ref = s->statuses[i]->ref, *digest;
                if (mine(h, ref, &digest) && !held(h, ref))
                        hold(h, ref, digest);
        }
        h->call = grpc_call_free(h->call);
        (void) sd_event_source_set_time_relative(h->timer, POLL_INTERVAL);
        (void) sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
}

/* containerd's remotes.MakeRefKey for a layer, as dockerd's containerd-store pull names the ingest */
static void hold_expected(DockerIngests *h, const char *digest) {
        _cleanup_free_ char *ref = NULL;

        if (asprintf(&ref, "layer-%s", digest) < 0 || held(h, ref))
                return;
        hold(h, ref, digest);
}

void docker_ingests_expect(DockerIngests *h, const char *digest) {
        char **a;

        if (!h || !digest || !startswith(digest, "sha256:") || strlen(digest) < 7 + SHORT_ID)
                return;
        for (size_t i = 0; i < h->n_expected; i++)
                if (streq(h->expected[i], digest))
                        return;
        a = realloc(h->expected, (h->n_expected + 1) * sizeof(*a));
        if (!a)
                return;
        h->expected = a;
        if (!(a[h->n_expected] = strdup(digest)))
                return;
        h->n_expected++;
        {
                char id[SHORT_ID + 1];
                memcpy(id, digest + 7, SHORT_ID);
                id[SHORT_ID] = 0;
                docker_ingests_layer(h, id);
        }
        if (h->lease)
                hold_expected(h, digest);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DockerIngests *h = userdata;
        Containerd__Services__Content__V1__ListStatusesRequest req =
                CONTAINERD__SERVICES__CONTENT__V1__LIST_STATUSES_REQUEST__INIT;
        GrpcTarget t = { .socket = h->socket, .namespace = h->namespace, .timeout = CD_CALL_TIMEOUT };

        if (h->call)
                return 0;
        if (grpc_call_start(h->glue, &t, CD_PATH_LIST_STATUSES, &req.base,
                            &containerd__services__content__v1__list_statuses_response__descriptor, false,
                            on_statuses, h, &h->call) < 0) {
                (void) sd_event_source_set_time_relative(h->timer, POLL_INTERVAL);
                (void) sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

int docker_ingests_start(DockerIngests *h, const char *socket, const char *namespace) {
        int r;

        if (!h || !socket || !namespace)
                return -EINVAL;
        if (h->lease)
                return -EALREADY;
        h->socket = strdup(socket);
        h->namespace = strdup(namespace);
        if (!h->socket || !h->namespace)
                return -ENOMEM;
        r = cd_lease_new(h->glue, socket, namespace, h->image, NULL, NULL, &h->lease);
        if (r < 0)
                return r;
        for (size_t i = 0; i < h->n_expected; i++) /* queued until Leases.Create answers */
                hold_expected(h, h->expected[i]);
        r = sd_event_add_time_relative(curl_glue_event(h->glue), &h->timer, CLOCK_MONOTONIC, 0, 10 * USEC_PER_MSEC,
                                       on_timer, h);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(h->timer, "docker-ingests-poll");
        return 0;
}

DockerIngests *docker_ingests_free(DockerIngests *h, bool release) {
        if (!h)
                return NULL;
        sd_event_source_disable_unref(h->timer);
        grpc_call_free(h->call);
        cd_lease_stop(h->lease);
        if (release && h->lease)
                (void) cd_lease_abandon(h->glue, h->socket, h->namespace, h->image);
        cd_lease_free(h->lease);
        for (size_t i = 0; i < h->n_held; i++)
                free(h->held[i]);
        free(h->held);
        for (size_t i = 0; i < h->n_expected; i++)
                free(h->expected[i]);
        free(h->expected);
        free(h->ids);
        free(h->image);
        free(h->socket);
        free(h->namespace);
        free(h);
        return NULL;
}
