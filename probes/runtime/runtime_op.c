/* runtime_op.c: one short request to a runtime on the curl glue; the answer goes through the driver's
 * parse function to the owner's done callback, always from the event loop, never inside curl. */
#include "probes/runtime/runtime_op.h"

#include <stdlib.h>
#include <unistd.h>

struct RuntimeOp {
        CurlGlue *glue;
        CURL *easy;               /* HTTP */
        char *body;
        size_t body_len;
        bool body_overflow;
        GrpcCall *call;           /* gRPC */
        sd_event_source *defer;   /* a known answer */
        int result;
        char *text;
        runtime_op_http_t http_parse;
        runtime_op_grpc_t grpc_parse;
        char *arg;
        char *socket;
        runtime_op_done_t done;
        void *userdata;
        CurlGlueAdopted *adopted; /* fire-and-forget */
        bool in_done;
};

#define RUNTIME_OP_MAX_BODY (4U * 1024U * 1024U)

static void op_destroy(RuntimeOp *op) {
        if (op->easy) {
                curl_glue_remove(op->glue, op->easy);
                curl_easy_cleanup(op->easy);
        }
        grpc_call_free(op->call);
        sd_event_source_disable_unref(op->defer);
        curl_glue_release(op->glue, op->adopted);
        free(op->body);
        free(op->text);
        free(op->arg);
        free(op->socket);
        free(op);
}

RuntimeOp *runtime_op_free(RuntimeOp *op) {
        /* Inside done the op is freed right after done returns. */
        if (op && !op->in_done)
                op_destroy(op);
        return NULL;
}

static void op_adopted_free(void *obj) { op_destroy(obj); }

static void op_complete(RuntimeOp *op, int r, const char *text) {
        op->in_done = true;
        if (op->done)
                op->done(op, r, text, op->userdata);
        op_destroy(op);
}

static int op_new(CurlGlue *glue, const char *arg, runtime_op_done_t done, void *userdata, bool floating,
                  RuntimeOp **ret) {
        RuntimeOp *op = calloc(1, sizeof(*op));
        int r;

        if (!op)
                return -ENOMEM;
        op->glue = glue;
        op->done = done;
        op->userdata = userdata;
        op->arg = arg ? strdup(arg) : NULL;
        if (arg && !op->arg) {
                free(op);
                return -ENOMEM;
        }
        if (floating) {
                r = curl_glue_adopt(glue, op, op_adopted_free, &op->adopted);
                if (r < 0) {
                        op_destroy(op);
                        return r;
                }
        }
        *ret = op;
        return 0;
}

/* ---- HTTP ---- */

static size_t on_write(char *data, size_t size, size_t n, void *userdata) {
        RuntimeOp *op = userdata;
        size_t len = size * n;
        char *b;

        if (op->body_len + len > RUNTIME_OP_MAX_BODY) {
                op->body_overflow = true;
                return 0;
        }
        b = realloc(op->body, op->body_len + len + 1);
        if (!b)
                return 0;
        memcpy(b + op->body_len, data, len);
        op->body_len += len;
        b[op->body_len] = 0;
        op->body = b;
        return len;
}

static void on_http_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        RuntimeOp *op = userdata;
        _cleanup_free_ char *text = NULL;
        long status = 0;
        int r = 0;

        if (result == CURLE_COULDNT_CONNECT)
                r = access(op->socket, F_OK) < 0 ? -ENOENT : -ECONNREFUSED;
        else if (result == CURLE_OPERATION_TIMEDOUT)
                r = -ETIMEDOUT;
        else if (result != CURLE_OK)
                r = op->body_overflow ? -EMSGSIZE : -EIO;
        else
                curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(op->easy); /* the glue already removed it */
        op->easy = NULL;
        r = op->http_parse(op->arg, r, status, r < 0 ? NULL : op->body ? op->body : "", &text);
        op_complete(op, r, text);
}

int runtime_op_http(CurlGlue *glue, const char *socket, const char *path, runtime_op_http_t parse, const char *arg,
                    runtime_op_done_t done, void *userdata, RuntimeOp **ret) {
        _cleanup_free_ char *url = NULL;
        RuntimeOp *op;
        int r;

        if (!glue || !socket || !path || !parse)
                return -EINVAL;
        if (asprintf(&url, "http://localhost%s", path) < 0)
                return -ENOMEM;
        r = op_new(glue, arg, done, userdata, !ret, &op);
        if (r < 0)
                return r;
        op->http_parse = parse;
        op->socket = strdup(socket);
        r = op->socket ? curl_glue_make_easy(socket, &op->easy) : -ENOMEM;
        if (r < 0) {
                op_destroy(op);
                return r;
        }
        if (curl_easy_setopt(op->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_TIMEOUT_MS, (long) (RUNTIME_OP_TIMEOUT / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_WRITEDATA, op) != CURLE_OK)
                r = -EINVAL;
        else
                r = curl_glue_add(glue, op->easy, on_http_done, op);
        if (r < 0) {
                op_destroy(op);
                return r;
        }
        if (ret)
                *ret = op;
        return 0;
}

/* ---- gRPC ---- */

static void on_grpc_done(GrpcCall *call, GrpcReply *reply, void *userdata) {
        RuntimeOp *op = userdata;
        _cleanup_free_ char *text = NULL;
        int r = op->grpc_parse(op->arg, reply, &text);

        /* The call is ours (not floating) and may be freed inside its own done callback. */
        op->call = grpc_call_free(op->call);
        op_complete(op, r, text);
}

int runtime_op_grpc(CurlGlue *glue, const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_type, runtime_op_grpc_t parse, const char *arg,
                    runtime_op_done_t done, void *userdata, RuntimeOp **ret) {
        GrpcTarget target = *t;
        RuntimeOp *op;
        int r;

        if (!parse)
                return -EINVAL;
        if (!target.timeout)
                target.timeout = RUNTIME_OP_TIMEOUT;
        r = op_new(glue, arg, done, userdata, !ret, &op);
        if (r < 0)
                return r;
        op->grpc_parse = parse;
        r = grpc_call_start(glue, &target, path, request, reply_type, false, on_grpc_done, op, &op->call);
        if (r < 0) {
                op_destroy(op);
                return r;
        }
        if (ret)
                *ret = op;
        return 0;
}

/* ---- a known answer ---- */

static int on_defer(sd_event_source *s, void *userdata) {
        RuntimeOp *op = userdata;
        _cleanup_free_ char *text = TAKE_PTR(op->text);
        op_complete(op, op->result, text);
        return 0;
}

int runtime_op_result(CurlGlue *glue, int r, const char *text, runtime_op_done_t done, void *userdata,
                      RuntimeOp **ret) {
        RuntimeOp *op;
        int k;

        k = op_new(glue, NULL, done, userdata, !ret, &op);
        if (k < 0)
                return k;
        op->result = r;
        op->text = text ? strdup(text) : NULL;
        k = text && !op->text ? -ENOMEM : sd_event_add_defer(curl_glue_event(glue), &op->defer, on_defer, op);
        if (k < 0) {
                op_destroy(op);
                return k;
        }
        (void) sd_event_source_set_description(op->defer, "runtime-op-answer");
        if (ret)
                *ret = op;
        return 0;
}
