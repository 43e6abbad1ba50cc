/* containerd_api.c: error classes of containerd's answers, pullwatch's lease naming, the CLI's one-shot
 * questions (version, ImageStatus and CRI's progress timeout through the CRI client, lease clean-up).
 * The namespace watcher is in containerd_watch.c. */
#include "probes/containerd/containerd.h"

#include <assert.h>
#include <jansson.h>
#include <strings.h>
#include "containerd_content.pb-c.h"
#include "containerd_images.pb-c.h"
#include "containerd_leases.pb-c.h"
#include "containerd_version.pb-c.h"
#include "basic/reference.h"
#include "probes/cri/cri_client.h"

#define CALL_TIMEOUT (10 * USEC_PER_SEC)

/* Words of containerd 1.6 / the registry that no retry can fix. Matched case-insensitively. */
static const char *const permanent_words[] = {
        "not found",                  /* manifest or blob 404, "content digest ... not found" (report 004) */
        "manifest unknown", "name unknown", "unauthorized", "authorization failed", "access denied",
        "requested access to the resource is denied", "insufficient_scope", "403 forbidden",
        "no match for platform", "does not support platform", "invalid reference format",
        "repository name must",
        "x509: ",                     /* an untrusted registry certificate stays untrusted */
};

ErrorClass containerd_classify_message(GrpcStatus status, const char *message) {
        switch (status) {
        case GRPC_OK:
                return ERROR_NONE;
        case GRPC_NOT_FOUND:
        case GRPC_UNAUTHENTICATED:
        case GRPC_PERMISSION_DENIED:
        case GRPC_INVALID_ARGUMENT:
        case GRPC_UNIMPLEMENTED:
                return ERROR_PERMANENT;
        case GRPC_UNAVAILABLE:
        case GRPC_DEADLINE_EXCEEDED:
        case GRPC_RESOURCE_EXHAUSTED:
        case GRPC_ABORTED:
        case GRPC_CANCELLED:
                return ERROR_TRANSIENT;
        default:
                break;
        }
        /* Unknown/Internal wrap everything else: EOF, resets, 5xx, dial errors are worth another try */
        for (size_t i = 0; message && i < ELEMENTSOF(permanent_words); i++)
                if (strcasestr(message, permanent_words[i]))
                        return ERROR_PERMANENT;
        return ERROR_TRANSIENT;
}

ErrorClass containerd_classify(int transport_error, GrpcStatus status, const char *message) {
        if (transport_error < 0)
                /* containerd restarting (socket gone or refused for a moment) is transient; a socket that
                 * is not containerd, or that we may not open, stays that way */
                return transport_error == -EPROTO || transport_error == -EACCES || transport_error == -EPERM ||
                                       transport_error == -EINVAL
                               ? ERROR_PERMANENT
                               : ERROR_TRANSIENT;
        return containerd_classify_message(status, message);
}

int containerd_lease_id(const char *namespace, const char *image, char **ret) {
        _cleanup_(reference_freep) ImageRef *ref = NULL;
        _cleanup_free_ char *normalized = NULL;
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */

        if (!namespace || !image)
                return -EINVAL;
        /* "busybox" and "docker.io/library/busybox:latest" are one image and share one lease */
        if (reference_parse(image, &ref) >= 0 && reference_to_string(ref, &normalized) >= 0)
                image = normalized;
        for (const char *p = namespace; *p; p++)
                h = (h ^ (uint8_t) *p) * 0x100000001b3ULL;
        h = (h ^ 0) * 0x100000001b3ULL;
        for (const char *p = image; *p; p++)
                h = (h ^ (uint8_t) *p) * 0x100000001b3ULL;
        return asprintf(ret, CONTAINERD_LEASE_PREFIX "%016llx", (unsigned long long) h) < 0 ? -ENOMEM : 0;
}

/* Run one call of containerd's own services; on failure fill ret_error and return a negative errno. */
static int sync_call(const char *socket, const char *ns, const char *method, const char *path,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *type, GrpcReply *reply,
                     ErrorDetail *ret_error) {
        GrpcTarget t = { .socket = socket, .namespace = ns, .timeout = CALL_TIMEOUT };

        *reply = (GrpcReply) {};
        if (!socket)
                return -EINVAL;
        (void) grpc_call_sync(&t, path, req, type, false, reply);
        return grpc_reply_error(reply, method, ret_error);
}

int containerd_version_error(const char *socket, const GrpcReply *reply, ErrorDetail *ret_error) {
        int r;

        assert(reply);
        r = grpc_reply_error(reply, "Version", ret_error);
        if (r == -EPROTO && reply->error == 0)
                /* a gRPC server, but not containerd */
                return error_detail_setf(ret_error, r, "%s is not a containerd socket (no containerd version service)",
                                         socket);
        return r;
}

int containerd_version(const char *socket, char **ret_version, ErrorDetail *ret_error) {
        Containerd__Services__Version__V1__Empty req = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        GrpcTarget t = { .socket = socket, .timeout = CALL_TIMEOUT };
        GrpcReply reply;
        int r;

        if (!socket)
                return -EINVAL;
        (void) grpc_call_sync(&t, "/containerd.services.version.v1.Version/Version", &req.base,
                              &containerd__services__version__v1__version_response__descriptor, false, &reply);
        r = containerd_version_error(socket, &reply, ret_error);
        if (r >= 0 && ret_version) {
                Containerd__Services__Version__V1__VersionResponse *v = (void *) reply.messages[0];
                *ret_version = strdup(v->version);
                if (!*ret_version)
                        r = -ENOMEM;
        }
        grpc_reply_done(&reply);
        return r;
}

int containerd_version_start(CurlGlue *glue, const char *socket, grpc_done_t done, void *userdata, GrpcCall **ret) {
        Containerd__Services__Version__V1__Empty req = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        GrpcTarget t = { .socket = socket, .timeout = CALL_TIMEOUT };

        if (!glue || !socket || !done)
                return -EINVAL;
        return grpc_call_start(glue, &t, "/containerd.services.version.v1.Version/Version", &req.base,
                               &containerd__services__version__v1__version_response__descriptor, false, done, userdata,
                               ret);
}

const char *containerd_reply_version(const GrpcReply *reply) {
        const Containerd__Services__Version__V1__VersionResponse *v;

        if (!reply || reply->error != 0 || reply->status != GRPC_OK || reply->n_messages == 0)
                return NULL;
        v = (const void *) reply->messages[0];
        return v->version && *v->version ? v->version : NULL;
}

int containerd_content_info_start(CurlGlue *glue, const char *socket, const char *namespace, const char *digest,
                                  grpc_done_t done, void *userdata, GrpcCall **ret) {
        Containerd__Services__Content__V1__InfoRequest req = CONTAINERD__SERVICES__CONTENT__V1__INFO_REQUEST__INIT;
        GrpcTarget t = { .socket = socket, .namespace = namespace, .timeout = CALL_TIMEOUT };

        if (!glue || !socket || !namespace || !digest || !done)
                return -EINVAL;
        req.digest = (char *) digest;
        return grpc_call_start(glue, &t, "/containerd.services.content.v1.Content/Info", &req.base,
                               &containerd__services__content__v1__info_response__descriptor, false, done, userdata, ret);
}

int containerd_reply_content_source(const GrpcReply *reply, char **ret_image) {
        const Containerd__Services__Content__V1__InfoResponse *r;
        static const char prefix[] = "containerd.io/distribution.source.";

        assert(ret_image);
        *ret_image = NULL;
        if (!reply)
                return -EINVAL;
        if (reply->error != 0)
                return reply->error < 0 ? reply->error : -EIO;
        if (reply->status == GRPC_NOT_FOUND)
                return -ENOENT;
        if (reply->status != GRPC_OK || reply->n_messages != 1)
                return -EIO;
        r = (const void *) reply->messages[0];
        for (size_t i = 0; r->info && i < r->info->n_labels; i++)
                if (startswith(r->info->labels[i]->key, prefix)) {
                        /* "containerd.io/distribution.source.HOST" = "REPO[,REPO...]": the first repository */
                        const char *v = r->info->labels[i]->value ?: "";
                        if (asprintf(ret_image, "%s/%.*s", r->info->labels[i]->key + strlen(prefix),
                                     (int) strcspn(v, ","), v) < 0) {
                                *ret_image = NULL;
                                return -ENOMEM;
                        }
                        return 0;
                }
        return 0;
}

int containerd_cri_config_progress_timeout(const char *config_json, char **ret_value) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *v;

        if (!config_json)
                return -ENODATA;
        j = json_loads(config_json, 0, NULL);
        if (!j)
                return -EBADMSG;
        /* 1.7: the images settings are flat in the CRI config; keep to what was measured */
        v = json_string_value(json_object_get(j, "imagePullProgressTimeout"));
        if (!v)
                return -ENODATA;
        *ret_value = strdup(v);
        return *ret_value ? 0 : -ENOMEM;
}

int containerd_cri_progress_timeout(const char *socket, char **ret_value, ErrorDetail *ret_error) {
        CriRequest req;
        CriReply reply;
        int r;

        if (!socket)
                return -EINVAL;
        cri_request_status(&req, true);
        r = cri_call_sync(&(CriTarget) { .socket = socket, .timeout = CALL_TIMEOUT }, &req, &reply);
        if (r < 0) {
                if (ret_error)
                        error_detail_move(ret_error, &reply.detail);
                cri_reply_done(&reply);
                return r;
        }
        const char *config = cri_status_info(cri_reply_status(&reply), "config");
        r = config ? containerd_cri_config_progress_timeout(config, ret_value) : -ENODATA;
        cri_reply_done(&reply);
        return r;
}

/* A Go duration ("5m0s", "1h0m0s", "1.5s", "0s") in seconds; -1 when it is not one. */
static double go_duration(const char *s) {
        double total = 0;

        if (!s || !*s)
                return -1;
        if (streq(s, "0"))
                return 0;
        while (*s) {
                char *end;
                double n = strtod(s, &end);
                if (end == s || n < 0)
                        return -1;
                s = end;
                if (startswith(s, "ms"))
                        total += n / 1e3, s += 2;
                else if (startswith(s, "us") || startswith(s, "µs"))
                        total += n / 1e6, s += startswith(s, "us") ? 2 : strlen("µs");
                else if (startswith(s, "ns"))
                        total += n / 1e9, s += 2;
                else if (*s == 'h')
                        total += n * 3600, s++;
                else if (*s == 'm')
                        total += n * 60, s++;
                else if (*s == 's')
                        total += n, s++;
                else
                        return -1;
        }
        return total;
}

const char *containerd_progress_timeout_warning(const char *value, const char *version) {
        double d = go_duration(value);

        if (d < 0)
                return NULL;
        if (d == 0)
                return containerd_version_major(version) >= 2
                               ? "0 hangs every CRI pull on containerd 2.x (containerd #14158): set it to 5m or more"
                               : NULL; /* before 2.0, 0 turns containerd's own check off: pullwatch watches */
        if (d < 300)
                return "under 5m, containerd cancels healthy pulls whose verify or commit is silent that long "
                       "(containerd #9369; 1.7.0-1.7.9 shipped 1m): set it to 5m or more";
        return NULL;
}

int containerd_version_major(const char *version) {
        char *end;
        unsigned long major;

        if (!version)
                return -EINVAL;
        if (*version == 'v')
                version++;
        if (*version < '0' || *version > '9')
                return -EINVAL;
        errno = 0;
        major = strtoul(version, &end, 10);
        if (errno != 0 || major > 1000 || *end != '.')
                return -EINVAL;
        return (int) major;
}

int containerd_image_status(const char *socket, const char *image, char **ret_digest, char **ret_id,
                            ErrorDetail *ret_error) {
        _cleanup_free_ char *digest = NULL, *id = NULL;
        const Runtime__V1__Image *img;
        CriRequest req;
        CriReply reply;
        int r;

        if (!socket || !image)
                return -EINVAL;
        cri_request_image_status(&req, image, false);
        r = cri_call_sync(&(CriTarget) { .socket = socket, .namespace = CONTAINERD_CRI_NAMESPACE, .timeout = CALL_TIMEOUT },
                          &req, &reply);
        if (r < 0) {
                if (ret_error)
                        error_detail_move(ret_error, &reply.detail);
        } else
                r = cri_image_status_image(cri_reply_image_status(&reply), image, CONTAINERD_CRI_NAMESPACE, &img,
                                           ret_error);
        if (r >= 0) {
                digest = strdup(cri_image_digest(img));
                id = strdup(img->id);
                if (!digest || !id)
                        r = -ENOMEM;
        }
        cri_reply_done(&reply);
        if (r < 0)
                return r;
        if (ret_digest)
                *ret_digest = TAKE_PTR(digest);
        if (ret_id)
                *ret_id = TAKE_PTR(id);
        return 0;
}

int containerd_image_labels(const char *socket, const char *namespace, const char *name, char ***ret_labels,
                            ErrorDetail *ret_error) {
        Containerd__Services__Images__V1__GetImageRequest req = CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
        _cleanup_strv_free_ char **l = NULL;
        GrpcReply reply;
        int r;

        req.name = (char *) name;
        r = sync_call(socket, namespace, "Images.Get", "/containerd.services.images.v1.Images/Get", &req.base,
                      &containerd__services__images__v1__get_image_response__descriptor, &reply, ret_error);
        if (r >= 0) {
                Containerd__Services__Images__V1__Image *i =
                        ((Containerd__Services__Images__V1__GetImageResponse *) reply.messages[0])->image;
                size_t n = i ? i->n_labels : 0;
                l = calloc(n + 1, sizeof(char *));
                if (!l)
                        r = -ENOMEM;
                for (size_t k = 0; r >= 0 && k < n; k++)
                        if (asprintf(&l[k], "%s=%s", i->labels[k]->key, i->labels[k]->value) < 0) {
                                l[k] = NULL;
                                r = -ENOMEM;
                        }
        }
        grpc_reply_done(&reply);
        if (r < 0)
                return r;
        *ret_labels = TAKE_PTR(l);
        return 0;
}

int containerd_lease_release(const char *socket, const char *namespace, const char *image, ErrorDetail *ret_error) {
        Containerd__Services__Leases__V1__DeleteRequest req = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        _cleanup_free_ char *id = NULL;
        GrpcReply reply;
        int r;

        r = containerd_lease_id(namespace, image, &id);
        if (r < 0)
                return r;
        req.id = id;
        r = sync_call(socket, namespace, "Leases.Delete", "/containerd.services.leases.v1.Leases/Delete", &req.base,
                      &containerd__services__leases__v1__empty__descriptor, &reply, ret_error);
        grpc_reply_done(&reply);
        if (r == -ENOENT)
                /* gone already: what was asked for */
                error_detail_done(ret_error);
        return r == -ENOENT ? 0 : r;
}

int containerd_leases_list(const char *socket, const char *namespace, char ***ret_ids, ErrorDetail *ret_error) {
        Containerd__Services__Leases__V1__ListRequest req = CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
        char *filters[] = { (char *) "id~=\"^" CONTAINERD_LEASE_PREFIX "\"" };
        _cleanup_strv_free_ char **ids = NULL;
        GrpcReply reply;
        int r;

        req.n_filters = 1;
        req.filters = filters;
        r = sync_call(socket, namespace, "Leases.List", "/containerd.services.leases.v1.Leases/List", &req.base,
                      &containerd__services__leases__v1__list_response__descriptor, &reply, ret_error);
        if (r >= 0) {
                Containerd__Services__Leases__V1__ListResponse *l = (void *) reply.messages[0];
                ids = calloc(l->n_leases + 1, sizeof(char *));
                for (size_t i = 0; ids && i < l->n_leases; i++)
                        if (!(ids[i] = strdup(l->leases[i]->id)))
                                r = -ENOMEM;
                if (!ids)
                        r = -ENOMEM;
        }
        grpc_reply_done(&reply);
        if (r < 0)
                return r;
        *ret_ids = TAKE_PTR(ids);
        return 0;
}
