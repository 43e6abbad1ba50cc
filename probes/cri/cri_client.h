/* cri_client.h: owns pullwatch's CRI runtime.v1 client: requests, typed replies, ErrorDetail, async/forwarded/sync calls.
 * Must not know a runtime's internals (containerd content, snapshots, leases), hold global state, classify, retry or log.
 * One socket + namespace per call (CriTarget); calls run on the caller's event loop; a CRI proxy
 * forwards what it does not decode with cri_call_forward(). */
#pragma once

#include "cri_api.pb-c.h"
#include "probes/transport/grpc.h"

/* Where a call goes: the CRI socket, the containerd-namespace metadata (NULL: none; containerd 1.6's
 * CRI serves k8s.io whatever it says) and the deadline (0: none, a PullImage may run for an hour). */
typedef GrpcTarget CriTarget;

typedef enum CriMethod {
        CRI_VERSION,              /* RuntimeService */
        CRI_STATUS,
        CRI_LIST_IMAGES,          /* ImageService */
        CRI_IMAGE_STATUS,
        CRI_PULL_IMAGE,
        CRI_REMOVE_IMAGE,
        CRI_IMAGE_FS_INFO,
        _CRI_METHOD_MAX,
        _CRI_METHOD_INVALID = -EINVAL,
} CriMethod;

/* "PullImage"; "/runtime.v1.ImageService/PullImage"; the request and reply types. NULL out of range. */
const char *cri_method_name(CriMethod m);
const char *cri_method_path(CriMethod m);
const ProtobufCMessageDescriptor *cri_method_request_type(CriMethod m);
const ProtobufCMessageDescriptor *cri_method_reply_type(CriMethod m);
/* The method a gRPC path names (what a proxy receives); _CRI_METHOD_INVALID for any other. */
CriMethod cri_method_from_path(const char *path);

/* ---- Requests: built in place, strings borrowed, nothing allocated. The request points into
 * itself: build it where it stays until the call has started (the start packs it), never copy it. */

typedef struct CriAuth {
        const char *username, *password, *auth, *server_address, *identity_token, *registry_token;
} CriAuth;

typedef struct CriRequest {
        CriMethod method;
        Runtime__V1__ImageSpec spec;
        Runtime__V1__AuthConfig auth;
        Runtime__V1__ImageFilter filter;
        union {
                ProtobufCMessage base;
                Runtime__V1__VersionRequest version;
                Runtime__V1__StatusRequest status;
                Runtime__V1__ListImagesRequest list_images;
                Runtime__V1__ImageStatusRequest image_status;
                Runtime__V1__PullImageRequest pull_image;
                Runtime__V1__RemoveImageRequest remove_image;
                Runtime__V1__ImageFsInfoRequest image_fs_info;
        };
} CriRequest;

void cri_request_version(CriRequest *r);
void cri_request_status(CriRequest *r, bool verbose);
/* image NULL: every image, else those the reference names */
void cri_request_list_images(CriRequest *r, const char *image);
void cri_request_image_status(CriRequest *r, const char *image, bool verbose);
/* auth NULL: none; NULL members go as empty strings */
void cri_request_pull_image(CriRequest *r, const char *image, const CriAuth *auth);
void cri_request_remove_image(CriRequest *r, const char *image);
void cri_request_image_fs_info(CriRequest *r);

/* ---- Replies ---- */

typedef struct CriReply {
        CriMethod method;
        int error;                /* 0, or grpc_reply_error()'s -errno */
        int transport_error;      /* error came from the transport (no gRPC status arrived); 0 otherwise */
        GrpcStatus status;        /* the server's status when transport_error == 0 */
        char *grpc_message;       /* the server's own words (grpc-message), or the transport's line; NULL */
        ErrorDetail detail;       /* error < 0: source METHOD, code the status name ("METHOD: NotFound: msg"),
                                   * or the transport's line naming the socket */
        ProtobufCMessage *message; /* error == 0: the decoded reply (cri_method_reply_type()); a done
                                   * callback may steal it (and NULL it) */
        uint8_t *raw;             /* forwarded calls: the reply packed, as it came; may be stolen too */
        size_t raw_len;
} CriReply;

void cri_reply_done(CriReply *r);
/* Read a finished gRPC reply of method m into ret (moves its messages and text out of g): the decoded
 * message or the error, with the detail filled. 0, or -ENOMEM. */
int cri_reply_read(CriMethod m, GrpcReply *g, CriReply *ret);

/* The typed reply, NULL when r failed or is of another method. */
const Runtime__V1__VersionResponse *cri_reply_version(const CriReply *r);
const Runtime__V1__StatusResponse *cri_reply_status(const CriReply *r);
const Runtime__V1__ListImagesResponse *cri_reply_list_images(const CriReply *r);
const Runtime__V1__ImageStatusResponse *cri_reply_image_status(const CriReply *r);
const Runtime__V1__PullImageResponse *cri_reply_pull_image(const CriReply *r);
const Runtime__V1__ImageFsInfoResponse *cri_reply_image_fs_info(const CriReply *r);

/* What the answers say, read the one way every caller reads them: */
/* info[key] of a Status reply (verbose: "config" is the CRI plugin's config as JSON); NULL when absent. */
const char *cri_status_info(const Runtime__V1__StatusResponse *s, const char *key);
/* ImageStatus: -ENOENT (detail "ImageStatus: IMAGE is not in NAMESPACE") when CRI answered the empty
 * status it gives for an absent image; else 0 with the image (borrowed from s). */
int cri_image_status_image(const Runtime__V1__ImageStatusResponse *s, const char *image, const char *namespace,
                           const Runtime__V1__Image **ret, ErrorDetail *ret_error);
/* An image's digest as pullwatch reports it: the first repo digest's "sha256:..." when CRI lists one,
 * else its id (the config digest). Borrowed from img. */
const char *cri_image_digest(const Runtime__V1__Image *img);
/* The mountpoint of the first image filesystem (the snapshotter's root); -ENODATA when none is named. */
int cri_image_fs_mountpoint(const Runtime__V1__ImageFsInfoResponse *r, const char **ret);

/* ---- Calls ---- */

typedef struct CriCall CriCall;
/* Runs once, from the event loop, with the reply of the call's method; call may be freed inside. */
typedef void (*cri_done_t)(CriCall *call, CriReply *reply, void *userdata);

/* With ret == NULL the call frees itself after done (done may be NULL then). */
int cri_call_start(CurlGlue *glue, const CriTarget *t, const CriRequest *req, cri_done_t done, void *userdata,
                   CriCall **ret);
/* Forward a request of method m packed already (what kubelet sent): the reply arrives packed in
 * reply->raw (reply->message stays NULL), the error decoded as for any call. */
int cri_call_forward(CurlGlue *glue, const CriTarget *t, CriMethod m, const uint8_t *request, size_t len,
                     cri_done_t done, void *userdata, CriCall **ret);
/* Cancels a call in flight (resetting the stream cancels it in the runtime); done is not called. */
CriCall *cri_call_free(CriCall *c);
static inline void cri_call_freep(CriCall **c) { cri_call_free(*c); }
bool cri_call_running(const CriCall *c);

/* One call on a private event loop, for the CLI's one-shot questions. ret is always filled
 * (cri_reply_done it); returns ret->error. */
int cri_call_sync(const CriTarget *t, const CriRequest *req, CriReply *ret);
