/* grpc.h: owns gRPC calls over HTTP/2 on a unix socket (CurlGlue): framing, typed or raw messages, status and transport errors.
 * Must not know any service (CRI is probes/cri/, containerd's own probes/containerd/), retry or log.
 * Unary and server-streaming; failures come as ErrorDetail (grpc_reply_error, grpc_transport_error). */
#pragma once

#include <protobuf-c/protobuf-c.h>
#include "basic/error_detail.h"
#include "probes/transport/curl_glue.h"

typedef enum GrpcStatus {
        GRPC_OK = 0,
        GRPC_CANCELLED = 1,
        GRPC_UNKNOWN = 2,
        GRPC_INVALID_ARGUMENT = 3,
        GRPC_DEADLINE_EXCEEDED = 4,
        GRPC_NOT_FOUND = 5,
        GRPC_ALREADY_EXISTS = 6,
        GRPC_PERMISSION_DENIED = 7,
        GRPC_RESOURCE_EXHAUSTED = 8,
        GRPC_FAILED_PRECONDITION = 9,
        GRPC_ABORTED = 10,
        GRPC_OUT_OF_RANGE = 11,
        GRPC_UNIMPLEMENTED = 12,
        GRPC_INTERNAL = 13,
        GRPC_UNAVAILABLE = 14,
        GRPC_DATA_LOSS = 15,
        GRPC_UNAUTHENTICATED = 16,
        _GRPC_STATUS_MAX,
        _GRPC_STATUS_INVALID = -EINVAL,
} GrpcStatus;

/* "NotFound", as Go's codes.Code prints it (what containerd's own logs say); NULL when out of range. */
const char *grpc_status_to_string(GrpcStatus s);
GrpcStatus grpc_status_from_string(const char *s);

/* Largest single message accepted; containerd's own default receive cap is 16 MiB. */
#define GRPC_MAX_MESSAGE (16U * 1024U * 1024U)

/* ---- Framing: pure functions (grpc_frame.c), unit-tested on their own ---- */

/* 1 byte compressed flag (always 0 here) + 4 bytes big-endian length + the packed message. */
int grpc_frame_encode(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len);
/* The same around a message packed already. */
int grpc_frame_raw(const uint8_t *data, size_t n, uint8_t **ret, size_t *ret_len);

typedef int (*grpc_frame_cb_t)(const uint8_t *data, size_t len, void *userdata);

/* Incremental decoder: bytes may arrive split anywhere. */
typedef struct GrpcDecoder {
        size_t max_message;
        uint8_t header[5];
        size_t header_len;
        uint8_t *buf;
        size_t len, want;
        int error;            /* sticky: once a stream is broken, every later feed fails */
} GrpcDecoder;

void grpc_decoder_init(GrpcDecoder *d, size_t max_message);
void grpc_decoder_done(GrpcDecoder *d);
/* Calls cb once per complete frame. Errors: -EMSGSIZE (over the cap), -EPROTONOSUPPORT (compressed
 * flag set: we never offer compression), -EBADMSG (flag byte neither 0 nor 1), or cb's own error. */
int grpc_decoder_feed(GrpcDecoder *d, const void *data, size_t n, grpc_frame_cb_t cb, void *userdata);
/* At end of stream: 0, or -EBADMSG when a frame was cut short. */
int grpc_decoder_finish(const GrpcDecoder *d);

/* grpc-message is percent-encoded; invalid escapes are kept as they are (the spec asks for leniency). */
char *grpc_percent_decode(const char *s, size_t n);

/* ---- Calls ---- */

typedef struct GrpcReply {
        int error;                   /* 0 when a grpc-status arrived, else negative errno (transport) */
        GrpcStatus status;           /* when error == 0 */
        char *message;               /* grpc-message, or one line naming the socket for transport errors */
        ProtobufCMessage **messages; /* replies when status is OK; a callback may steal (and NULL) them */
        size_t n_messages;
        uint8_t *raw;                /* raw calls (grpc_call_start_raw): the one reply message, packed; */
        size_t raw_len;              /* a callback may steal (and NULL) it */
} GrpcReply;

void grpc_reply_done(GrpcReply *r);
/* "METHOD: NotFound: msg" or the transport line. Caller frees; NULL on OOM. */
char *grpc_reply_describe(const GrpcReply *r, const char *method);
/* A finished call's result: 0 for OK; else -ENOENT (NotFound), -EPROTO (Unimplemented), -EEXIST
 * (AlreadyExists), -EIO (any other status), or the transport's -errno; ret_error (may be NULL) gets
 * source METHOD, code the status' name ("NotFound") and message the grpc-message, which format as
 * grpc_reply_describe() does, or for transport errors the transport's line alone (it names the socket). */
int grpc_reply_error(const GrpcReply *r, const char *method, ErrorDetail *ret_error);

typedef struct GrpcCall GrpcCall;
typedef void (*grpc_done_t)(GrpcCall *call, GrpcReply *reply, void *userdata);

typedef struct GrpcTarget {
        const char *socket;          /* unix socket path */
        const char *namespace;       /* containerd-namespace metadata; NULL = none */
        usec_t timeout;              /* 0 = none; sent as grpc-timeout and enforced locally */
} GrpcTarget;

/* path is "/package.Service/Method". Server-streaming replies collect every message; unary ones must
 * carry exactly one. done runs once from the event loop; the call may be freed inside it. With
 * ret == NULL the call frees itself after done (done may be NULL then). */
int grpc_call_start(CurlGlue *glue, const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_type, bool streaming, grpc_done_t done,
                    void *userdata, GrpcCall **ret);
/* Cancels a call in flight (removing the easy handle resets the HTTP/2 stream); done is not called. */
GrpcCall *grpc_call_free(GrpcCall *c);
static inline void grpc_call_freep(GrpcCall **c) { grpc_call_free(*c); }
bool grpc_call_running(const GrpcCall *c);
/* The same with a request packed already (without the 5-byte frame header): the reply's one message
 * arrives packed in reply->raw (a unary call only). For forwarding a call that was not decoded. */
int grpc_call_start_raw(CurlGlue *glue, const GrpcTarget *t, const char *path, const uint8_t *request, size_t len,
                        grpc_done_t done, void *userdata, GrpcCall **ret);

/* One call on a private event loop, for the CLI's one-shot questions. The reply is always filled
 * (grpc_reply_done it); returns 0 when a reply (of any status) arrived, else reply->error. */
int grpc_call_sync(const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *reply_type, bool streaming, GrpcReply *reply);

/* Exposed for tests: classify one finished transfer; ret_error gets the socket as source (when the
 * message does not start with it) and what went wrong. */
int grpc_transport_error(const char *socket, CURLcode code, long os_errno, bool got_headers, ErrorDetail *ret_error);
