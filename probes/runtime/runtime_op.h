/* runtime_op.h: the RuntimeOp (runtime.h) the drivers build their short questions on: one HTTP GET on a
 * unix socket or one unary gRPC call, on the curl glue, with a bounded timeout. Knows no runtime. */
#pragma once

#include "probes/transport/grpc.h"
#include "probes/runtime/runtime.h"

/* How long any ping, presence check or lease release may take. */
#define RUNTIME_OP_TIMEOUT (10 * USEC_PER_SEC)

/* The driver's reading of an answer: returns the op's result, *ret_text its text (or NULL). For HTTP, r
 * is 0 with the status and body, or the transport's -errno (-ENOENT no socket, -ECONNREFUSED,
 * -ETIMEDOUT, -EIO) with status 0 and body NULL. arg is the string given at start (socket, image). */
typedef int (*runtime_op_http_t)(const char *arg, int r, long status, const char *body, char **ret_text);
typedef int (*runtime_op_grpc_t)(const char *arg, GrpcReply *reply, char **ret_text);

/* With ret == NULL the op is fire-and-forget (done may be NULL): the glue frees it if it is still in
 * flight when the glue goes. */
int runtime_op_http(CurlGlue *glue, const char *socket, const char *path, runtime_op_http_t parse, const char *arg,
                    runtime_op_done_t done, void *userdata, RuntimeOp **ret);
/* The same GET, shared: a runtime's settings (dockerd's /info and /version) that several probes ask at
 * the start of every pull. An op joins a request for the same socket and path already in flight, or
 * takes a 200 answer at most ttl old (0: only one in flight); each op still parses with its own parse
 * and arg. A daemon's dockerd then answers /info once per burst of pulls, not four times per pull. */
#define RUNTIME_OP_SETTINGS_TTL (5 * USEC_PER_SEC)
int runtime_op_http_shared(CurlGlue *glue, const char *socket, const char *path, usec_t ttl, runtime_op_http_t parse,
                           const char *arg, runtime_op_done_t done, void *userdata, RuntimeOp **ret);
int runtime_op_grpc(CurlGlue *glue, const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_type, runtime_op_grpc_t parse, const char *arg,
                    runtime_op_done_t done, void *userdata, RuntimeOp **ret);
/* An answer known already (tests, fakes), delivered from the loop like any other. */
int runtime_op_result(CurlGlue *glue, int r, const char *text, runtime_op_done_t done, void *userdata,
                      RuntimeOp **ret);
