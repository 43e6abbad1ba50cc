/* containerd_lease.c: see containerd_lease.h. containerd 1.6 deletes its pull lease when a pull is
 * cancelled or fails and collects the partial ingest; dockerd on the containerd store deletes its own
 * lease when a pull fails (a reset mid-layer), so without this lease the retry starts from zero. */
#include "probes/containerd/containerd_lease.h"

#include <time.h>
#include "containerd_leases.pb-c.h"
#include "probes/containerd/containerd_content.h"
#include "probes/runtime/runtime_op.h"

#define PATH_LEASE_CREATE "/containerd.services.leases.v1.Leases/Create"
#define PATH_LEASE_DELETE "/containerd.services.leases.v1.Leases/Delete"
#define PATH_LEASE_ADD    "/containerd.services.leases.v1.Leases/AddResource"

typedef struct Pending {
        char *type, *id;
} Pending;

struct CdLease {
        CurlGlue *glue;
        char *socket, *namespace, *id;
        CdLeaseCallbacks cb;
        void *userdata;
        GrpcCall *call;           /* Create, later Delete */
        /* Each AddResource is a bolt write transaction (two fdatasyncs) and bolt has one writer: sent
         * all at once, the pull's own writes (its ingests opened, blobs committed, labels, snapshots)
         * queue behind every one of them. So one at a time, in the order asked, and none twice. */
        GrpcCall *add;            /* the AddResource in flight */
        Pending *pending;         /* resources asked for and not sent yet (waiting for Create or the add) */
        size_t n_pending, next;
        char **held;              /* "type/id" of every resource asked for */
        bool ready, failed, stopped, release_after_create;
};

static GrpcTarget target(CdLease *l) {
        return (GrpcTarget) { .socket = l->socket, .namespace = l->namespace, .timeout = CD_CALL_TIMEOUT };
}

static void pending_clear(CdLease *l) {
        for (size_t i = 0; i < l->n_pending; i++) {
                free(l->pending[i].type);
                free(l->pending[i].id);
        }
        free(l->pending);
        l->pending = NULL;
        l->n_pending = l->next = 0;
}

static void on_add_done(GrpcCall *call, GrpcReply *reply, void *userdata);

/* The next resource waiting, once the lease exists and no add is in flight. A cut attempt's lease
 * (stopped) still sends what was asked before the cut: that is what the retry resumes from. */
static void add_next(CdLease *l) {
        Containerd__Services__Leases__V1__Resource res = CONTAINERD__SERVICES__LEASES__V1__RESOURCE__INIT;
        Containerd__Services__Leases__V1__AddResourceRequest req =
                CONTAINERD__SERVICES__LEASES__V1__ADD_RESOURCE_REQUEST__INIT;
        GrpcTarget t = target(l);

        while (l->ready && !l->failed && !l->add && l->next < l->n_pending) {
                Pending *p = &l->pending[l->next++];
                res.id = p->id;
                res.type = p->type;
                req.id = l->id;
                req.resource = &res;
                (void) grpc_call_start(l->glue, &t, PATH_LEASE_ADD, &req.base,
                                       &containerd__services__leases__v1__empty__descriptor, false, on_add_done, l,
                                       &l->add);
        }
        if (l->next >= l->n_pending && !l->add)
                pending_clear(l);
}

static void on_add_done(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdLease *l = userdata;
        l->add = grpc_call_free(l->add);
        add_next(l);
}

/* true when type/id was asked for already; else remembers it (false also when out of memory: asking
 * twice is only slower) */
static bool held_before(CdLease *l, const char *type, const char *id) {
        _cleanup_free_ char *key = NULL;
        size_t n = strv_length(l->held);
        char **a;

        if (asprintf(&key, "%s/%s", type, id) < 0)
                return false;
        for (size_t i = 0; i < n; i++)
                if (streq(l->held[i], key))
                        return true;
        a = realloc(l->held, (n + 2) * sizeof(char *));
        if (!a)
                return false;
        l->held = a;
        a[n] = TAKE_PTR(key);
        a[n + 1] = NULL;
        return false;
}

void cd_lease_add(CdLease *l, const char *type, const char *id) {
        Pending *a;

        if (!l || l->failed || l->stopped || !type || !id || held_before(l, type, id))
                return;
        a = realloc(l->pending, (l->n_pending + 1) * sizeof(*a));
        if (!a)
                return;
        l->pending = a;
        a[l->n_pending].type = strdup(type);
        a[l->n_pending].id = strdup(id);
        if (a[l->n_pending].type && a[l->n_pending].id)
                l->n_pending++;
        else {
                free(a[l->n_pending].type);
                free(a[l->n_pending].id);
        }
        add_next(l);
}

static int delete_start(CdLease *l);

static void on_deleted(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdLease *l = userdata;
        /* a failed delete leaves a lease that expires by itself (containerd.io/gc.expire) */
        if (l->cb.released)
                l->cb.released(l->userdata); /* may free l */
}

static void on_created(GrpcCall *call, GrpcReply *reply, void *userdata) {
        CdLease *l = userdata;

        /* AlreadyExists: the last attempt's lease, with its partial ingests: exactly what we want */
        if (reply->error == 0 && (reply->status == GRPC_OK || reply->status == GRPC_ALREADY_EXISTS)) {
                l->ready = true;
                add_next(l);
        } else {
                _cleanup_free_ char *m = grpc_reply_describe(reply, "Leases.Create");
                l->failed = true;
                if (l->cb.failed)
                        l->cb.failed(l->userdata, m ?: "Leases.Create failed: a retry will start over");
                pending_clear(l);
        }
        l->call = grpc_call_free(l->call);
        if (l->release_after_create && (l->failed || delete_start(l) < 0) && l->cb.released)
                l->cb.released(l->userdata); /* may free l */
}

static int create_start(CdLease *l) {
        Containerd__Services__Leases__V1__CreateRequest req = CONTAINERD__SERVICES__LEASES__V1__CREATE_REQUEST__INIT;
        Containerd__Services__Leases__V1__LabelEntry expire = CONTAINERD__SERVICES__LEASES__V1__LABEL_ENTRY__INIT;
        Containerd__Services__Leases__V1__LabelEntry *labels[] = { &expire };
        GrpcTarget t = target(l);
        char when[64];
        time_t until = (time_t) ((cd_now(CLOCK_REALTIME) + CONTAINERD_LEASE_TTL) / USEC_PER_SEC);
        struct tm tm;

        if (!gmtime_r(&until, &tm) || strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                return -EINVAL;
        expire.key = (char *) "containerd.io/gc.expire";
        expire.value = when;
        req.id = l->id;
        req.n_labels = 1;
        req.labels = labels;
        return grpc_call_start(l->glue, &t, PATH_LEASE_CREATE, &req.base,
                               &containerd__services__leases__v1__create_response__descriptor, false, on_created, l,
                               &l->call);
}

static int delete_start(CdLease *l) {
        Containerd__Services__Leases__V1__DeleteRequest req = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        GrpcTarget t = target(l);

        l->call = grpc_call_free(l->call);
        req.id = l->id;
        return grpc_call_start(l->glue, &t, PATH_LEASE_DELETE, &req.base,
                               &containerd__services__leases__v1__empty__descriptor, false, on_deleted, l, &l->call);
}

int cd_lease_new(CurlGlue *glue, const char *socket, const char *namespace, const char *image,
                 const CdLeaseCallbacks *cb, void *userdata, CdLease **ret) {
        _cleanup_(cd_lease_freep) CdLease *l = NULL;
        int r;

        if (!glue || !socket || !namespace || !image || !ret)
                return -EINVAL;
        l = calloc(1, sizeof(*l));
        if (!l)
                return -ENOMEM;
        l->glue = glue;
        if (cb)
                l->cb = *cb;
        l->userdata = userdata;
        l->socket = strdup(socket);
        l->namespace = strdup(namespace);
        if (!l->socket || !l->namespace)
                return -ENOMEM;
        r = containerd_lease_id(namespace, image, &l->id);
        if (r < 0)
                return r;
        r = create_start(l);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}

void cd_lease_stop(CdLease *l) {
        if (!l)
                return;
        l->stopped = true;
        if (!l->ready)
                l->call = grpc_call_free(l->call);
}

int cd_lease_release(CdLease *l) {
        if (!l || l->failed)
                return 0;
        l->stopped = true;
        pending_clear(l); /* nothing to resume: what is not held yet need not be */
        if (!l->ready && l->call) {
                /* Create still in flight: deleting now could race it */
                l->release_after_create = true;
                return 1;
        }
        return delete_start(l) >= 0 ? 1 : 0;
}

CdLease *cd_lease_free(CdLease *l) {
        if (!l)
                return NULL;
        grpc_call_free(l->call);
        grpc_call_free(l->add);
        pending_clear(l);
        strv_free(l->held);
        free(l->socket);
        free(l->namespace);
        free(l->id);
        free(l);
        return NULL;
}

static int release_parse(const char *arg, GrpcReply *reply, char **ret_text) {
        return grpc_reply_error(reply, "Leases.Delete", NULL);
}

int cd_lease_abandon(CurlGlue *glue, const char *socket, const char *namespace, const char *image) {
        Containerd__Services__Leases__V1__DeleteRequest d = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        _cleanup_free_ char *id = NULL;
        int r;

        r = containerd_lease_id(namespace, image, &id);
        if (r < 0)
                return r;
        d.id = id;
        return runtime_op_grpc(glue, &(GrpcTarget) { .socket = socket, .namespace = namespace },
                               PATH_LEASE_DELETE, &d.base, &containerd__services__leases__v1__empty__descriptor,
                               release_parse, NULL, NULL, NULL, NULL);
}
