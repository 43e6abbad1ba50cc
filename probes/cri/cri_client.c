/* cri_client.c: CRI runtime.v1 calls on the gRPC transport: the method table, requests built in place,
 * replies read into CriReply (typed message or ErrorDetail), and the calls themselves. */
#include "probes/cri/cri_client.h"

#include <assert.h>

typedef struct CriMethodInfo {
        const char *name, *path;
        const ProtobufCMessageDescriptor *request, *reply;
} CriMethodInfo;

static const CriMethodInfo methods[_CRI_METHOD_MAX] = {
        [CRI_VERSION] = { "Version", "/runtime.v1.RuntimeService/Version", &runtime__v1__version_request__descriptor,
                          &runtime__v1__version_response__descriptor },
        [CRI_STATUS] = { "Status", "/runtime.v1.RuntimeService/Status", &runtime__v1__status_request__descriptor,
                         &runtime__v1__status_response__descriptor },
        [CRI_LIST_IMAGES] = { "ListImages", "/runtime.v1.ImageService/ListImages",
                              &runtime__v1__list_images_request__descriptor,
                              &runtime__v1__list_images_response__descriptor },
        [CRI_IMAGE_STATUS] = { "ImageStatus", "/runtime.v1.ImageService/ImageStatus",
                               &runtime__v1__image_status_request__descriptor,
                               &runtime__v1__image_status_response__descriptor },
        [CRI_PULL_IMAGE] = { "PullImage", "/runtime.v1.ImageService/PullImage",
                             &runtime__v1__pull_image_request__descriptor,
                             &runtime__v1__pull_image_response__descriptor },
        [CRI_REMOVE_IMAGE] = { "RemoveImage", "/runtime.v1.ImageService/RemoveImage",
                               &runtime__v1__remove_image_request__descriptor,
                               &runtime__v1__remove_image_response__descriptor },
        [CRI_IMAGE_FS_INFO] = { "ImageFsInfo", "/runtime.v1.ImageService/ImageFsInfo",
                                &runtime__v1__image_fs_info_request__descriptor,
                                &runtime__v1__image_fs_info_response__descriptor },
};

static const CriMethodInfo *method_info(CriMethod m) {
        return m >= 0 && m < _CRI_METHOD_MAX ? &methods[m] : NULL;
}

const char *cri_method_name(CriMethod m) {
        const CriMethodInfo *i = method_info(m);
        return i ? i->name : NULL;
}

const char *cri_method_path(CriMethod m) {
        const CriMethodInfo *i = method_info(m);
        return i ? i->path : NULL;
}

const ProtobufCMessageDescriptor *cri_method_request_type(CriMethod m) {
        const CriMethodInfo *i = method_info(m);
        return i ? i->request : NULL;
}

const ProtobufCMessageDescriptor *cri_method_reply_type(CriMethod m) {
        const CriMethodInfo *i = method_info(m);
        return i ? i->reply : NULL;
}

CriMethod cri_method_from_path(const char *path) {
        for (int m = 0; path && m < _CRI_METHOD_MAX; m++)
                if (streq(methods[m].path, path))
                        return m;
        return _CRI_METHOD_INVALID;
}

/* ---- requests ---- */

static void request_init(CriRequest *r, CriMethod m) {
        assert(r);
        *r = (CriRequest) { .method = m, .spec = RUNTIME__V1__IMAGE_SPEC__INIT, .auth = RUNTIME__V1__AUTH_CONFIG__INIT,
                            .filter = RUNTIME__V1__IMAGE_FILTER__INIT };
}

void cri_request_version(CriRequest *r) {
        request_init(r, CRI_VERSION);
        r->version = (Runtime__V1__VersionRequest) RUNTIME__V1__VERSION_REQUEST__INIT;
        /* the CRI API version this client speaks, as crictl sends it */
        r->version.version = (char *) "v1";
}

void cri_request_status(CriRequest *r, bool verbose) {
        request_init(r, CRI_STATUS);
        r->status = (Runtime__V1__StatusRequest) RUNTIME__V1__STATUS_REQUEST__INIT;
        r->status.verbose = verbose;
}

void cri_request_list_images(CriRequest *r, const char *image) {
        request_init(r, CRI_LIST_IMAGES);
        r->list_images = (Runtime__V1__ListImagesRequest) RUNTIME__V1__LIST_IMAGES_REQUEST__INIT;
        if (image) {
                r->spec.image = (char *) image;
                r->filter.image = &r->spec;
                r->list_images.filter = &r->filter;
        }
}

void cri_request_image_status(CriRequest *r, const char *image, bool verbose) {
        assert(image);
        request_init(r, CRI_IMAGE_STATUS);
        r->image_status = (Runtime__V1__ImageStatusRequest) RUNTIME__V1__IMAGE_STATUS_REQUEST__INIT;
        r->spec.image = (char *) image;
        r->image_status.image = &r->spec;
        r->image_status.verbose = verbose;
}

void cri_request_pull_image(CriRequest *r, const char *image, const CriAuth *auth) {
        assert(image);
        request_init(r, CRI_PULL_IMAGE);
        r->pull_image = (Runtime__V1__PullImageRequest) RUNTIME__V1__PULL_IMAGE_REQUEST__INIT;
        r->spec.image = (char *) image;
        r->pull_image.image = &r->spec;
        if (auth) {
                r->auth.username = (char *) (auth->username ?: "");
                r->auth.password = (char *) (auth->password ?: "");
                r->auth.auth = (char *) (auth->auth ?: "");
                r->auth.server_address = (char *) (auth->server_address ?: "");
                r->auth.identity_token = (char *) (auth->identity_token ?: "");
                r->auth.registry_token = (char *) (auth->registry_token ?: "");
                r->pull_image.auth = &r->auth;
        }
}

void cri_request_remove_image(CriRequest *r, const char *image) {
        assert(image);
        request_init(r, CRI_REMOVE_IMAGE);
        r->remove_image = (Runtime__V1__RemoveImageRequest) RUNTIME__V1__REMOVE_IMAGE_REQUEST__INIT;
        r->spec.image = (char *) image;
        r->remove_image.image = &r->spec;
}

void cri_request_image_fs_info(CriRequest *r) {
        request_init(r, CRI_IMAGE_FS_INFO);
        r->image_fs_info = (Runtime__V1__ImageFsInfoRequest) RUNTIME__V1__IMAGE_FS_INFO_REQUEST__INIT;
}

/* ---- replies ---- */

void cri_reply_done(CriReply *r) {
        if (!r)
                return;
        if (r->message)
                protobuf_c_message_free_unpacked(r->message, NULL);
        free(r->grpc_message);
        free(r->raw);
        error_detail_done(&r->detail);
        *r = (CriReply) { .method = _CRI_METHOD_INVALID };
}

int cri_reply_read(CriMethod m, GrpcReply *g, CriReply *ret) {
        const char *name = cri_method_name(m);
        int r;

        assert(g);
        assert(ret);
        assert(name);
        *ret = (CriReply) { .method = m, .transport_error = g->error < 0 ? g->error : 0, .status = g->status };
        r = grpc_reply_error(g, name, &ret->detail);
        if (r == -ENOMEM && g->error != -ENOMEM) {
                /* the detail could not be built */
                cri_reply_done(ret);
                return -ENOMEM;
        }
        ret->grpc_message = TAKE_PTR(g->message);
        ret->error = r;
        if (r < 0)
                return 0;
        if (g->raw) {
                ret->raw = TAKE_PTR(g->raw);
                ret->raw_len = g->raw_len;
                g->raw_len = 0;
        } else if (g->n_messages == 1) {
                /* a unary reply carries exactly one message (the transport checked) */
                ret->message = TAKE_PTR(g->messages[0]);
                if (ret->message->descriptor != cri_method_reply_type(m)) {
                        cri_reply_done(ret);
                        return -EINVAL;
                }
        }
        return 0;
}

static const ProtobufCMessage *typed(const CriReply *r, CriMethod m) {
        return r && r->error == 0 && r->method == m && r->message && r->message->descriptor == cri_method_reply_type(m)
                       ? r->message
                       : NULL;
}

const Runtime__V1__VersionResponse *cri_reply_version(const CriReply *r) {
        return (const void *) typed(r, CRI_VERSION);
}

const Runtime__V1__StatusResponse *cri_reply_status(const CriReply *r) {
        return (const void *) typed(r, CRI_STATUS);
}

const Runtime__V1__ListImagesResponse *cri_reply_list_images(const CriReply *r) {
        return (const void *) typed(r, CRI_LIST_IMAGES);
}

const Runtime__V1__ImageStatusResponse *cri_reply_image_status(const CriReply *r) {
        return (const void *) typed(r, CRI_IMAGE_STATUS);
}

const Runtime__V1__PullImageResponse *cri_reply_pull_image(const CriReply *r) {
        return (const void *) typed(r, CRI_PULL_IMAGE);
}

const Runtime__V1__ImageFsInfoResponse *cri_reply_image_fs_info(const CriReply *r) {
        return (const void *) typed(r, CRI_IMAGE_FS_INFO);
}

const char *cri_status_info(const Runtime__V1__StatusResponse *s, const char *key) {
        assert(key);
        for (size_t i = 0; s && i < s->n_info; i++)
                if (s->info[i]->key && streq(s->info[i]->key, key))
                        return s->info[i]->value;
        return NULL;
}

int cri_image_status_image(const Runtime__V1__ImageStatusResponse *s, const char *image, const char *namespace,
                           const Runtime__V1__Image **ret, ErrorDetail *ret_error) {
        assert(s);
        assert(image);
        assert(ret);
        if (!s->image || !s->image->id || !*s->image->id)
                /* CRI answers "absent" with an empty status, not NotFound */
                return error_detail_set(ret_error, -ENOENT, "ImageStatus", 0, 0, NULL, "%s is not in %s", image,
                                        namespace ?: "the CRI namespace");
        *ret = s->image;
        return 0;
}

const char *cri_image_digest(const Runtime__V1__Image *img) {
        const char *at;

        assert(img);
        at = img->n_repo_digests > 0 && img->repo_digests[0] ? strrchr(img->repo_digests[0], '@') : NULL;
        return at ? at + 1 : img->id;
}

int cri_image_fs_mountpoint(const Runtime__V1__ImageFsInfoResponse *r, const char **ret) {
        const Runtime__V1__FilesystemUsage *u;

        assert(r);
        assert(ret);
        /* CRI reports the snapshotter's root first; the content store lives beside it */
        u = r->n_image_filesystems > 0 ? r->image_filesystems[0] : NULL;
        if (!u || !u->fs_id || !u->fs_id->mountpoint || !*u->fs_id->mountpoint)
                return -ENODATA;
        *ret = u->fs_id->mountpoint;
        return 0;
}

/* ---- calls ---- */

struct CriCall {
        GrpcCall *call;
        CriMethod method;
        cri_done_t done;
        void *userdata;
        bool floating;
};

CriCall *cri_call_free(CriCall *c) {
        if (!c)
                return NULL;
        grpc_call_free(c->call);
        free(c);
        return NULL;
}

bool cri_call_running(const CriCall *c) {
        return c && grpc_call_running(c->call);
}

static void on_grpc_done(GrpcCall *call, GrpcReply *g, void *userdata) {
        CriCall *c = userdata;
        CriReply reply;
        bool floating = c->floating;

        if (cri_reply_read(c->method, g, &reply) < 0)
                /* out of memory reading it: say so as the call's error */
                reply = (CriReply) { .method = c->method, .error = -ENOMEM, .transport_error = -ENOMEM };
        if (c->done)
                c->done(c, &reply, c->userdata); /* may free c unless it is floating */
        cri_reply_done(&reply);
        if (floating)
                cri_call_free(c);
}

static int call_new(CriMethod m, cri_done_t done, void *userdata, CriCall **ret) {
        CriCall *c;

        if (!method_info(m))
                return -EINVAL;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (CriCall) { .method = m, .done = done, .userdata = userdata };
        *ret = c;
        return 0;
}

static void call_hand_out(CriCall *c, CriCall **ret) {
        if (ret)
                *ret = c;
        else
                c->floating = true;
}

int cri_call_start(CurlGlue *glue, const CriTarget *t, const CriRequest *req, cri_done_t done, void *userdata,
                   CriCall **ret) {
        _cleanup_(cri_call_freep) CriCall *c = NULL;
        int r;

        assert(glue);
        assert(t);
        assert(req);
        r = call_new(req->method, done, userdata, &c);
        if (r < 0)
                return r;
        if (req->base.descriptor != cri_method_request_type(req->method))
                return -EINVAL;
        r = grpc_call_start(glue, t, cri_method_path(req->method), &req->base, cri_method_reply_type(req->method), false,
                            on_grpc_done, c, &c->call);
        if (r < 0)
                return r;
        call_hand_out(TAKE_PTR(c), ret);
        return 0;
}

int cri_call_forward(CurlGlue *glue, const CriTarget *t, CriMethod m, const uint8_t *request, size_t len,
                     cri_done_t done, void *userdata, CriCall **ret) {
        _cleanup_(cri_call_freep) CriCall *c = NULL;
        int r;

        assert(glue);
        assert(t);
        assert(request || len == 0);
        r = call_new(m, done, userdata, &c);
        if (r < 0)
                return r;
        r = grpc_call_start_raw(glue, t, cri_method_path(m), request, len, on_grpc_done, c, &c->call);
        if (r < 0)
                return r;
        call_hand_out(TAKE_PTR(c), ret);
        return 0;
}

int cri_call_sync(const CriTarget *t, const CriRequest *req, CriReply *ret) {
        GrpcReply g;
        int r;

        assert(t);
        assert(req);
        assert(ret);
        *ret = (CriReply) { .method = req->method };
        if (!method_info(req->method))
                return (ret->error = -EINVAL);
        (void) grpc_call_sync(t, cri_method_path(req->method), &req->base, cri_method_reply_type(req->method), false,
                              &g);
        r = cri_reply_read(req->method, &g, ret);
        grpc_reply_done(&g);
        if (r < 0) {
                *ret = (CriReply) { .method = req->method, .error = r, .transport_error = r };
                return r;
        }
        return ret->error;
}
