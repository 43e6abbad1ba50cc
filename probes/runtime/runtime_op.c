/* runtime_op.c: one short request to a runtime on the curl glue; the answer goes through the driver's
 * parse function to the owner's done callback, always from the event loop, never inside curl. */
#include "probes/runtime/runtime_op.h"

#include <stdlib.h>
#include <unistd.h>

typedef struct ShareEntry ShareEntry;

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
        /* runtime_op_http_shared: the entry this op leads (its request in flight) or waits on */
        ShareEntry *share;
        RuntimeOp *share_next;    /* the entry's other waiters */
        long status;              /* a waiter's answer, handed over by the leader */
};

/* One socket + path asked with runtime_op_http_shared: the op whose request is in flight, the ops
 * waiting for its answer, and the last 200 answer. Kept per glue (curl_glue_share). */
struct ShareEntry {
        ShareEntry *next;
        char *socket, *path;
        RuntimeOp *leader, *waiters;
        char *body;               /* the last 200 answer, from `at` */
        usec_t at;
};

static void share_leave(RuntimeOp *op);
static void share_settle(ShareEntry *e, bool have, int r, long status, const char *body);

#define RUNTIME_OP_MAX_BODY (4U * 1024U * 1024U)

static void op_destroy(RuntimeOp *op) {
        share_leave(op);
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
        if (op->share) {
                ShareEntry *e = TAKE_PTR(op->share);
                share_settle(e, true, r, status, r < 0 ? NULL : op->body ? op->body : "");
        }
        r = op->http_parse(op->arg, r, status, r < 0 ? NULL : op->body ? op->body : "", &text);
        op_complete(op, r, text);
}

static int http_start(RuntimeOp *op, const char *socket, const char *path) {
        _cleanup_free_ char *url = NULL;
        int r;

        if (asprintf(&url, "http://localhost%s", path) < 0)
                return -ENOMEM;
        r = curl_glue_make_easy(socket, &op->easy);
        if (r < 0)
                return r;
        if (curl_easy_setopt(op->easy, CURLOPT_URL, url) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_TIMEOUT_MS, (long) (RUNTIME_OP_TIMEOUT / USEC_PER_MSEC)) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_WRITEFUNCTION, on_write) != CURLE_OK ||
            curl_easy_setopt(op->easy, CURLOPT_WRITEDATA, op) != CURLE_OK)
                r = -EINVAL;
        else
                r = curl_glue_add(op->glue, op->easy, on_http_done, op);
        if (r < 0) {
                curl_easy_cleanup(op->easy);
                op->easy = NULL;
        }
        return r;
}

int runtime_op_http(CurlGlue *glue, const char *socket, const char *path, runtime_op_http_t parse, const char *arg,
                    runtime_op_done_t done, void *userdata, RuntimeOp **ret) {
        RuntimeOp *op;
        int r;

        if (!glue || !socket || !path || !parse)
                return -EINVAL;
        r = op_new(glue, arg, done, userdata, !ret, &op);
        if (r < 0)
                return r;
        op->http_parse = parse;
        op->socket = strdup(socket);
        r = op->socket ? http_start(op, socket, path) : -ENOMEM;
        if (r < 0) {
                op_destroy(op);
                return r;
        }
        if (ret)
                *ret = op;
        return 0;
}

/* ---- HTTP, shared ---- */

static void share_free_all(void *obj) {
        ShareEntry *e = obj;
        while (e) {
                ShareEntry *n = e->next;
                /* ops still there outlive their glue: a caller's bug, but they must not touch freed memory */
                for (RuntimeOp *w = e->waiters; w; w = w->share_next)
                        w->share = NULL;
                if (e->leader)
                        e->leader->share = NULL;
                free(e->socket);
                free(e->path);
                free(e->body);
                free(e);
                e = n;
        }
}

static ShareEntry *share_entry(CurlGlue *glue, const char *socket, const char *path) {
        ShareEntry *head = curl_glue_share(glue), *e;

        for (e = head; e; e = e->next)
                if (streq(e->socket, socket) && streq(e->path, path))
                        return e;
        e = calloc(1, sizeof(*e));
        if (!e)
                return NULL;
        e->socket = strdup(socket);
        e->path = strdup(path);
        if (!e->socket || !e->path) {
                free(e->socket);
                free(e->path);
                free(e);
                return NULL;
        }
        e->next = head;
        curl_glue_set_share(glue, e, share_free_all);
        return e;
}

static int on_share_answer(sd_event_source *s, void *userdata) {
        RuntimeOp *op = userdata;
        _cleanup_free_ char *text = NULL;
        int r;

        op->defer = sd_event_source_disable_unref(op->defer);
        r = op->http_parse(op->arg, op->result, op->status, op->result < 0 ? NULL : op->body ? op->body : "", &text);
        op_complete(op, r, text);
        return 0;
}

/* An answer for op without its own request: parsed from the loop, like any other. */
static int share_answer(RuntimeOp *op, int r, long status, const char *body) {
        op->result = r;
        op->status = status;
        free(op->body);
        op->body = body ? strdup(body) : NULL;
        if (body && !op->body) {
                op->result = -ENOMEM;
                op->status = 0;
        }
        if (op->defer)
                return 0;
        r = sd_event_add_defer(curl_glue_event(op->glue), &op->defer, on_share_answer, op);
        if (r >= 0)
                (void) sd_event_source_set_description(op->defer, "runtime-op-shared");
        return r;
}

static int http_start(RuntimeOp *op, const char *socket, const char *path);

/* Waiters are answered in the order they asked (a preheat's pulls start in list order). */
static void share_wait(ShareEntry *e, RuntimeOp *op) {
        RuntimeOp **w = &e->waiters;
        while (*w)
                w = &(*w)->share_next;
        op->share_next = NULL;
        *w = op;
}

/* The leader's request ended (answered, or its op freed first): its waiters get the answer, or, with
 * none, the first of them asks again and the rest wait on it. */
static void share_settle(ShareEntry *e, bool have, int r, long status, const char *body) {
        RuntimeOp *w = TAKE_PTR(e->waiters);

        e->leader = NULL;
        if (have && r >= 0 && status == 200) {
                free(e->body);
                e->body = strdup(body ?: "");
                e->at = e->body ? now_monotonic() : 0;
        }
        while (w) {
                RuntimeOp *n = w->share_next;
                w->share_next = NULL;
                if (have) {
                        w->share = NULL;
                        if (share_answer(w, r, status, body) < 0)
                                (void) share_answer(w, -ENOMEM, 0, NULL);
                } else if (!e->leader) {
                        e->leader = w;
                        if (http_start(w, e->socket, e->path) < 0) {
                                e->leader = NULL;
                                w->share = NULL;
                                (void) share_answer(w, -EIO, 0, NULL);
                        }
                } else
                        share_wait(e, w);
                w = n;
        }
}

static void share_leave(RuntimeOp *op) {
        ShareEntry *e = op->share;

        if (!e)
                return;
        op->share = NULL;
        if (e->leader == op) {
                share_settle(e, false, 0, 0, NULL);
                return;
        }
        for (RuntimeOp **w = &e->waiters; *w; w = &(*w)->share_next)
                if (*w == op) {
                        *w = op->share_next;
                        break;
                }
}

int runtime_op_http_shared(CurlGlue *glue, const char *socket, const char *path, usec_t ttl, runtime_op_http_t parse,
                           const char *arg, runtime_op_done_t done, void *userdata, RuntimeOp **ret) {
        ShareEntry *e;
        RuntimeOp *op;
        int r;

        if (!glue || !socket || !path || !parse)
                return -EINVAL;
        e = share_entry(glue, socket, path);
        if (!e)
                return -ENOMEM;
        r = op_new(glue, arg, done, userdata, !ret, &op);
        if (r < 0)
                return r;
        op->http_parse = parse;
        op->socket = strdup(socket);
        if (!op->socket)
                r = -ENOMEM;
        else if (e->body && ttl > 0 && now_monotonic() < e->at + ttl)
                r = share_answer(op, 0, 200, e->body);
        else if (e->leader) {
                op->share = e;
                share_wait(e, op);
        } else {
                op->share = e;
                e->leader = op;
                r = http_start(op, socket, path);
        }
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
