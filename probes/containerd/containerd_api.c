/* containerd_api.c: error classes of containerd's answers, pullwatch's lease naming, the CLI's one-shot
 * questions (version, ImageStatus, lease clean-up). The namespace watcher is in containerd_watch.c. */
#include "probes/containerd/containerd_internal.h"

#include <jansson.h>
#include <strings.h>
#include "containerd_images.pb-c.h"
#include "containerd_leases.pb-c.h"
#include "containerd_version.pb-c.h"
#include "cri_api.pb-c.h"
#include "basic/reference.h"

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

ErrorClass containerd_classify(const GrpcReply *r) {
        if (r->error < 0)
                /* containerd restarting (socket gone or refused for a moment) is transient; a socket that
                 * is not containerd, or that we may not open, stays that way */
                return r->error == -EPROTO || r->error == -EACCES || r->error == -EPERM || r->error == -EINVAL
                               ? ERROR_PERMANENT
                               : ERROR_TRANSIENT;
        return containerd_classify_message(r->status, r->message);
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

int cd_reply_result(const GrpcReply *reply, const char *method, char **ret_message) {
        int r = reply->error;

        if (r >= 0 && reply->status == GRPC_OK)
                return 0;
        if (r >= 0)
                r = reply->status == GRPC_NOT_FOUND ? -ENOENT
                    : reply->status == GRPC_UNIMPLEMENTED ? -EPROTO
                    : reply->status == GRPC_ALREADY_EXISTS ? -EEXIST
                                                             : -EIO;
        if (ret_message)
                /* transport errors already name the socket; gRPC errors need the method for context */
                *ret_message = reply->error < 0 && reply->message ? strdup(reply->message)
                                                                  : grpc_reply_describe(reply, method);
        return r;
}

/* Run one call; on any failure set *ret_message to one line and return a negative errno. */
static int sync_call(const char *socket, const char *ns, const char *method, const char *path,
                     const ProtobufCMessage *req, const ProtobufCMessageDescriptor *type, bool streaming,
                     GrpcReply *reply, char **ret_message) {
        GrpcTarget t = { .socket = socket, .namespace = ns, .timeout = CD_CALL_TIMEOUT };

        if (!socket)
                return -EINVAL;
        (void) grpc_call_sync(&t, path, req, type, streaming, reply);
        return cd_reply_result(reply, method, ret_message);
}

int cd_version_result(const char *socket, const GrpcReply *reply, char **ret_message) {
        int r = cd_reply_result(reply, "Version", ret_message);
        if (r == -EPROTO && reply->error == 0 && ret_message) {
                /* a gRPC server, but not containerd */
                free(*ret_message);
                if (asprintf(ret_message, "%s is not a containerd socket (no containerd version service)", socket) < 0)
                        *ret_message = NULL;
        }
        return r;
}

int cd_image_status_result(const GrpcReply *reply, char **ret_digest, char **ret_id, char **ret_message) {
        _cleanup_free_ char *digest = NULL, *id = NULL;
        int r = cd_reply_result(reply, "ImageStatus", ret_message);
        if (r < 0)
                return r;
        Runtime__V1__Image *img = ((Runtime__V1__ImageStatusResponse *) reply->messages[0])->image;
        if (!img)
                return -ENOENT; /* CRI answers an empty status for an absent image */
        const char *at = img->n_repo_digests > 0 ? strrchr(img->repo_digests[0], '@') : NULL;
        digest = strdup(at ? at + 1 : img->id);
        id = strdup(img->id);
        if (!digest || !id)
                return -ENOMEM;
        if (ret_digest)
                *ret_digest = TAKE_PTR(digest);
        if (ret_id)
                *ret_id = TAKE_PTR(id);
        return 0;
}

int containerd_version(const char *socket, char **ret_version, char **ret_message) {
        Containerd__Services__Version__V1__Empty req = CONTAINERD__SERVICES__VERSION__V1__EMPTY__INIT;
        GrpcReply reply;
        int r;

        r = sync_call(socket, NULL, "Version", "/containerd.services.version.v1.Version/Version", &req.base,
                      &containerd__services__version__v1__version_response__descriptor, false, &reply, ret_message);
        if (r == -EPROTO && reply.error == 0 && ret_message) {
                /* a gRPC server, but not containerd */
                free(*ret_message);
                if (asprintf(ret_message, "%s is not a containerd socket (no containerd version service)", socket) < 0)
                        *ret_message = NULL;
        }
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
        GrpcTarget t = { .socket = socket, .timeout = CD_CALL_TIMEOUT };

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

int containerd_cri_progress_timeout(const char *socket, char **ret_value, char **ret_message) {
        Runtime__V1__StatusRequest req = RUNTIME__V1__STATUS_REQUEST__INIT;
        GrpcReply reply;
        int r;

        req.verbose = true;
        r = sync_call(socket, NULL, "Status", "/runtime.v1.RuntimeService/Status", &req.base,
                      &runtime__v1__status_response__descriptor, false, &reply, ret_message);
        if (r < 0)
                return r;
        r = -ENODATA;
        Runtime__V1__StatusResponse *s = (void *) reply.messages[0];
        for (size_t i = 0; i < s->n_info; i++)
                if (s->info[i]->key && streq(s->info[i]->key, "config")) {
                        r = containerd_cri_config_progress_timeout(s->info[i]->value, ret_value);
                        break;
                }
        grpc_reply_done(&reply);
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
                            char **ret_message) {
        Runtime__V1__ImageSpec spec = RUNTIME__V1__IMAGE_SPEC__INIT;
        Runtime__V1__ImageStatusRequest req = RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
        GrpcReply reply;
        _cleanup_free_ char *digest = NULL, *id = NULL;
        int r;

        spec.image = (char *) image;
        req.image = &spec;
        r = sync_call(socket, CONTAINERD_CRI_NAMESPACE, "ImageStatus", "/runtime.v1.ImageService/ImageStatus",
                      &req.base, &runtime__v1__image_status_response__descriptor, false, &reply, ret_message);
        if (r >= 0) {
                Runtime__V1__Image *img = ((Runtime__V1__ImageStatusResponse *) reply.messages[0])->image;
                if (!img) {
                        /* CRI answers "absent" with an empty status, not NotFound */
                        r = -ENOENT;
                        if (ret_message && asprintf(ret_message, "ImageStatus: %s is not in %s", image,
                                                    CONTAINERD_CRI_NAMESPACE) < 0)
                                *ret_message = NULL;
                } else {
                        const char *at = img->n_repo_digests > 0 ? strrchr(img->repo_digests[0], '@') : NULL;
                        digest = strdup(at ? at + 1 : img->id);
                        id = strdup(img->id);
                        if (!digest || !id)
                                r = -ENOMEM;
                }
        }
        grpc_reply_done(&reply);
        if (r < 0)
                return r;
        if (ret_digest)
                *ret_digest = TAKE_PTR(digest);
        if (ret_id)
                *ret_id = TAKE_PTR(id);
        return 0;
}

int containerd_image_labels(const char *socket, const char *namespace, const char *name, char ***ret_labels,
                            char **ret_message) {
        Containerd__Services__Images__V1__GetImageRequest req = CONTAINERD__SERVICES__IMAGES__V1__GET_IMAGE_REQUEST__INIT;
        _cleanup_strv_free_ char **l = NULL;
        GrpcReply reply;
        int r;

        req.name = (char *) name;
        r = sync_call(socket, namespace, "Images.Get", "/containerd.services.images.v1.Images/Get", &req.base,
                      &containerd__services__images__v1__get_image_response__descriptor, false, &reply, ret_message);
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

int containerd_lease_release(const char *socket, const char *namespace, const char *image, char **ret_message) {
        Containerd__Services__Leases__V1__DeleteRequest req = CONTAINERD__SERVICES__LEASES__V1__DELETE_REQUEST__INIT;
        _cleanup_free_ char *id = NULL;
        GrpcReply reply;
        int r;

        r = containerd_lease_id(namespace, image, &id);
        if (r < 0)
                return r;
        req.id = id;
        r = sync_call(socket, namespace, "Leases.Delete", "/containerd.services.leases.v1.Leases/Delete", &req.base,
                      &containerd__services__leases__v1__empty__descriptor, false, &reply, ret_message);
        grpc_reply_done(&reply);
        if (r == -ENOENT && ret_message)
                *ret_message = mfree(*ret_message);
        return r == -ENOENT ? 0 : r;
}

int containerd_leases_list(const char *socket, const char *namespace, char ***ret_ids, char **ret_message) {
        Containerd__Services__Leases__V1__ListRequest req = CONTAINERD__SERVICES__LEASES__V1__LIST_REQUEST__INIT;
        char *filters[] = { (char *) "id~=\"^" CONTAINERD_LEASE_PREFIX "\"" };
        _cleanup_strv_free_ char **ids = NULL;
        GrpcReply reply;
        int r;

        req.n_filters = 1;
        req.filters = filters;
        r = sync_call(socket, namespace, "Leases.List", "/containerd.services.leases.v1.Leases/List", &req.base,
                      &containerd__services__leases__v1__list_response__descriptor, false, &reply, ret_message);
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
