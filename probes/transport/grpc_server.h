/* grpc_server.h: the server side of unary gRPC over HTTP/2 (prior knowledge) on a listening unix
 * socket, on sd-event, with libnghttp2 doing every HTTP/2 frame. Owns connections, streams, the gRPC
 * message framing and the replies' trailers; it knows no service, decodes no protobuf and never logs. */
#pragma once

#include <stdint.h>
#include <systemd/sd-event.h>
#include "probes/transport/grpc.h"

typedef struct GrpcServer GrpcServer;
typedef struct GrpcServerCall GrpcServerCall;

typedef struct GrpcServerHandlers {
        /* A unary call's request arrived whole: path "/pkg.Service/Method", the message without its
         * 5-byte frame. Answer now or later with grpc_server_call_reply() or _fail(), exactly once. */
        void (*call)(GrpcServerCall *call, const char *path, const uint8_t *message, size_t len, void *userdata);
        /* The client cancelled the call (RST_STREAM) or its connection went before the answer. The call
         * is freed when this returns: forget it, answer nothing. Optional when every call is answered at
         * once. */
        void (*cancelled)(GrpcServerCall *call, void *userdata);
} GrpcServerHandlers;

typedef struct GrpcServerStats {
        uint64_t connections;        /* accepted, in all */
        uint64_t calls;              /* requests dispatched to the handler */
        uint64_t refused;            /* answered by the server itself: bad framing, too large, not unary */
        uint64_t protocol_errors;    /* connections closed on an HTTP/2 error */
        unsigned open_connections;
        unsigned open_calls;
} GrpcServerStats;

/* Serve on listen_fd (a bound, listening unix stream socket; the server takes it and closes it on
 * free). max_message caps one request (0: GRPC_MAX_MESSAGE); a larger one is answered
 * RESOURCE_EXHAUSTED as grpc-go does. */
int grpc_server_new(sd_event *event, int listen_fd, size_t max_message, const GrpcServerHandlers *h,
                    void *userdata, GrpcServer **ret);
/* Closes every connection; calls still open get handlers.cancelled first. */
GrpcServer *grpc_server_free(GrpcServer *s);
static inline void grpc_server_freep(GrpcServer **s) { grpc_server_free(*s); }
void grpc_server_stats(const GrpcServer *s, GrpcServerStats *ret);

/* A request header of the call ("containerd-namespace", "grpc-timeout", ...), NULL when absent. Only
 * the last value of a repeated key is kept. */
const char *grpc_server_call_header(const GrpcServerCall *c, const char *key);
/* The answer: OK with one message (the packed protobuf, framed here), or a status and message
 * (Trailers-Only). Either frees the call; 0 or -errno (the answer could not be queued; the call is
 * freed all the same and the stream reset). */
int grpc_server_call_reply(GrpcServerCall *c, const uint8_t *message, size_t len);
int grpc_server_call_fail(GrpcServerCall *c, GrpcStatus status, const char *message);
/* The owner's pointer for this call, for the cancelled handler. */
void grpc_server_call_set_userdata(GrpcServerCall *c, void *userdata);
void *grpc_server_call_get_userdata(const GrpcServerCall *c);

/* grpc-message is percent-encoded (the spec's set: anything outside 0x20-0x7E and '%'). Caller frees. */
char *grpc_percent_encode(const char *s);

/* For the fuzzer and the unit tests: one connection on fd (a socketpair end), fed by hand. */
typedef struct GrpcServerConn GrpcServerConn;
int grpc_server_adopt(GrpcServer *s, int fd, GrpcServerConn **ret);
/* Feed bytes as if read from the connection's socket: 0, or -EPROTO once the peer broke HTTP/2 (the
 * connection is then closed and freed; do not use ret again). */
int grpc_server_conn_feed(GrpcServerConn *conn, const uint8_t *data, size_t len);
