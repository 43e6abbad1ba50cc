/* grpc.c: gRPC's HTTP/2 wire protocol (PROTOCOL-HTTP2.md) with libcurl doing the HTTP/2. */
#include "probes/transport/grpc.h"

#include <assert.h>
#include <inttypes.h>
#include <limits.h>
#include <strings.h>
#include <sys/stat.h>

void grpc_reply_done(GrpcReply *r) {
        if (!r)
                return;
        for (size_t i = 0; i < r->n_messages; i++)
                if (r->messages[i])
                        protobuf_c_message_free_unpacked(r->messages[i], NULL);
        free(r->messages);
        free(r->message);
        free(r->raw);
        *r = (GrpcReply) {};
}

char *grpc_reply_describe(const GrpcReply *r, const char *method) {
        char *s = NULL;
        int k;
        if (r->error < 0)
                k = asprintf(&s, "%s: %s", method, r->message ?: strerror(-r->error));
        else
                k = asprintf(&s, "%s: %s%s%s", method, grpc_status_to_string(r->status) ?: "Unknown",
                             r->message && *r->message ? ": " : "", r->message ?: "");
        return k < 0 ? NULL : s;
}

static bool is_socket(const char *path) {
        struct stat st;
        return stat(path, &st) < 0 || S_ISSOCK(st.st_mode);
}

int grpc_reply_error(const GrpcReply *r, const char *method, ErrorDetail *ret_error) {
        int k;

        assert(r);
        assert(method);
        if (r->error >= 0 && r->status == GRPC_OK)
                return 0;
        if (r->error < 0)
                /* transport errors already name the socket */
                return error_detail_setf(ret_error, r->error, "%s", r->message ?: strerror(-r->error));
        k = r->status == GRPC_NOT_FOUND         ? -ENOENT
            : r->status == GRPC_UNIMPLEMENTED   ? -EPROTO
            : r->status == GRPC_ALREADY_EXISTS  ? -EEXIST
                                                : -EIO;
        if (!ret_error)
                return k;
        error_detail_done(ret_error);
        ret_error->source = strdup(method);
        ret_error->code = strdup(grpc_status_to_string(r->status) ?: "Unknown");
        ret_error->message = r->message && *r->message ? strdup(r->message) : NULL;
        if (!ret_error->source || !ret_error->code || (r->message && *r->message && !ret_error->message)) {
                error_detail_done(ret_error);
                return -ENOMEM;
        }
        return k;
}

int grpc_transport_error(const char *socket, CURLcode code, long os_errno, bool got_headers, ErrorDetail *ret_error) {
        int r;
        const char *what;

        switch (code) {
        case CURLE_COULDNT_CONNECT:
                r = os_errno > 0 ? -(int) os_errno : -ECONNREFUSED;
                if (r == -ENOENT)
                        what = "no such socket (is containerd running? see containerd.socket)";
                else if (r == -ECONNREFUSED)
                        what = is_socket(socket) ? "connection refused (nothing is listening on it)"
                                                 : "not a unix socket";
                else if (r == -EACCES || r == -EPERM)
                        what = "permission denied (the runtime sockets are root's)";
                else
                        what = strerror(-r);
                break;
        case CURLE_OPERATION_TIMEDOUT:
                r = -ETIMEDOUT;
                what = got_headers ? "reply cut short by the timeout"
                                   : "no gRPC answer in time (not a containerd socket, or containerd is hung)";
                break;
        case CURLE_OUT_OF_MEMORY:
                r = -ENOMEM;
                what = "out of memory";
                break;
        case CURLE_HTTP2:
        case CURLE_WEIRD_SERVER_REPLY:
        case CURLE_UNSUPPORTED_PROTOCOL:
        case CURLE_SEND_ERROR:
                /* HTTP/1 servers answer the HTTP/2 preface with an error and hang up while we still send */
                if (!got_headers) {
                        return error_detail_setf(ret_error, -EPROTO,
                                                 "%s is not a containerd socket (no gRPC over HTTP/2 answer: %s)",
                                                 socket, curl_easy_strerror(code));
                }
                __attribute__((fallthrough));
        default:
                /* the stream was under way (a PullImage can run for an hour): containerd went away or
                 * restarted; worth another try */
                return error_detail_set(ret_error, -ECONNRESET, socket, 0, 0, NULL,
                                        "connection lost before the reply was complete (%s)", curl_easy_strerror(code));
        }
        return error_detail_set(ret_error, r, socket, 0, 0, NULL, "%s", what);
}

struct GrpcCall {
        CurlGlue *glue;
        CURL *easy;
        struct curl_slist *headers;
        uint8_t *body;
        size_t body_len;
        char *socket;
        const ProtobufCMessageDescriptor *reply_type; /* NULL: a raw call */
        bool streaming, running, floating, got_headers, content_type_ok, have_status;
        long http_status;
        int grpc_status;
        char *grpc_message;
        GrpcDecoder decoder;
        size_t total_bytes;
        GrpcReply reply;
        grpc_done_t done;
        void *userdata;
};

/* Bound a server-streaming reply (Snapshots.List on a big node) as a whole, too. */
#define GRPC_MAX_REPLY (64U * 1024U * 1024U)

static int on_frame(const uint8_t *data, size_t len, void *userdata) {
        GrpcCall *c = userdata;
        ProtobufCMessage *m, **a;

        if (!c->streaming && (c->reply.n_messages >= 1 || c->reply.raw))
                return -EBADMSG;
        if (!c->reply_type) {
                c->reply.raw = malloc(len + 1); /* +1: an empty message still gets a buffer */
                if (!c->reply.raw)
                        return -ENOMEM;
                memcpy(c->reply.raw, data, len);
                c->reply.raw_len = len;
                return 0;
        }
        m = protobuf_c_message_unpack(c->reply_type, NULL, len, data);
        if (!m)
                return -EBADMSG;
        a = realloc(c->reply.messages, (c->reply.n_messages + 1) * sizeof(*a));
        if (!a) {
                protobuf_c_message_free_unpacked(m, NULL);
                return -ENOMEM;
        }
        a[c->reply.n_messages++] = m;
        c->reply.messages = a;
        return 0;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata) {
        GrpcCall *c = userdata;
        size_t n = size * nmemb;

        c->total_bytes += n;
        if (c->total_bytes > GRPC_MAX_REPLY) {
                c->decoder.error = -EMSGSIZE;
                return 0;
        }
        if (grpc_decoder_feed(&c->decoder, ptr, n, on_frame, c) < 0)
                return 0; /* curl aborts with CURLE_WRITE_ERROR; the decoder keeps the reason */
        return n;
}

static bool header_is(const char *line, size_t n, const char *name, const char **value, size_t *value_len) {
        size_t k = strlen(name);
        if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
                return false;
        const char *v = line + k + 1, *e = line + n;
        while (v < e && (*v == ' ' || *v == '\t'))
                v++;
        while (e > v && (e[-1] == '\r' || e[-1] == '\n' || e[-1] == ' '))
                e--;
        *value = v;
        *value_len = (size_t) (e - v);
        return true;
}

/* Called for the response headers and, after the body, for the trailers. */
static size_t on_header(char *line, size_t size, size_t nmemb, void *userdata) {
        GrpcCall *c = userdata;
        size_t n = size * nmemb;
        const char *v;
        size_t vn;

        c->got_headers = true;
        if (n >= 5 && strncmp(line, "HTTP/", 5) == 0) {
                const char *sp = memchr(line, ' ', n);
                c->http_status = sp ? strtol(sp + 1, NULL, 10) : 0;
        } else if (header_is(line, n, "content-type", &v, &vn))
                c->content_type_ok = vn >= 16 && strncasecmp(v, "application/grpc", 16) == 0;
        else if (header_is(line, n, "grpc-status", &v, &vn)) {
                char buf[16] = {};
                char *end;
                memcpy(buf, v, MIN(vn, sizeof(buf) - 1));
                long s = strtol(buf, &end, 10);
                c->have_status = vn > 0 && *end == 0;
                c->grpc_status = s >= 0 && s < _GRPC_STATUS_MAX ? (int) s : GRPC_UNKNOWN;
        } else if (header_is(line, n, "grpc-message", &v, &vn)) {
                free(c->grpc_message);
                c->grpc_message = grpc_percent_decode(v, vn);
        }
        return n;
}

static void call_fill_reply(GrpcCall *c, CURLcode result) {
        GrpcReply *rp = &c->reply;
        long os_errno = 0;
        int r;

        if (result != CURLE_OK && c->decoder.error == 0) {
                ErrorDetail e = {};
                (void) curl_easy_getinfo(c->easy, CURLINFO_OS_ERRNO, &os_errno);
                rp->error = grpc_transport_error(c->socket, result, os_errno, c->got_headers, &e);
                rp->message = error_detail_format(&e);
                error_detail_done(&e);
                return;
        }
        if (c->got_headers && (c->http_status != 200 || !c->content_type_ok) && !c->have_status) {
                rp->error = -EPROTO;
                if (asprintf(&rp->message, "%s is not a containerd socket (HTTP %ld, not a gRPC answer)", c->socket,
                             c->http_status) < 0)
                        rp->message = NULL;
                return;
        }
        r = grpc_decoder_finish(&c->decoder);
        if (r < 0) {
                rp->error = r;
                if (asprintf(&rp->message, "%s: malformed gRPC reply: %s", c->socket,
                             r == -EPROTONOSUPPORT ? "compressed message (never asked for)"
                             : r == -EMSGSIZE      ? "message over the size cap"
                             : r == -EBADMSG       ? "bad frame or protobuf"
                                                   : strerror(-r)) < 0)
                        rp->message = NULL;
                return;
        }
        if (!c->have_status) {
                rp->error = -EPROTO;
                if (asprintf(&rp->message, "%s: gRPC reply without grpc-status", c->socket) < 0)
                        rp->message = NULL;
                return;
        }
        rp->status = c->grpc_status;
        rp->message = TAKE_PTR(c->grpc_message);
        if (rp->status == GRPC_OK && !c->streaming && rp->n_messages + !!rp->raw != 1) {
                rp->error = -EBADMSG;
                free(rp->message);
                if (asprintf(&rp->message, "%s: unary gRPC reply without a message", c->socket) < 0)
                        rp->message = NULL;
        }
        if (rp->status != GRPC_OK) {
                /* an error carries no messages worth keeping */
                for (size_t i = 0; i < rp->n_messages; i++)
                        protobuf_c_message_free_unpacked(rp->messages[i], NULL);
                rp->n_messages = 0;
                rp->raw = mfree(rp->raw);
                rp->raw_len = 0;
        }
}

static void on_done(CurlGlue *g, CURL *easy, CURLcode result, void *userdata) {
        GrpcCall *c = userdata;
        bool floating = c->floating;

        c->running = false;
        call_fill_reply(c, result);
        if (c->done)
                c->done(c, &c->reply, c->userdata);
        /* c may be gone now unless nobody else owns it */
        if (floating)
                grpc_call_free(c);
}

GrpcCall *grpc_call_free(GrpcCall *c) {
        if (!c)
                return NULL;
        if (c->running)
                curl_glue_remove(c->glue, c->easy);
        if (c->easy)
                curl_easy_cleanup(c->easy);
        curl_slist_free_all(c->headers);
        grpc_decoder_done(&c->decoder);
        grpc_reply_done(&c->reply);
        free(c->grpc_message);
        free(c->body);
        free(c->socket);
        free(c);
        return NULL;
}

bool grpc_call_running(const GrpcCall *c) { return c && c->running; }

static int append_header(struct curl_slist **l, const char *h) {
        struct curl_slist *n = curl_slist_append(*l, h);
        if (!n)
                return -ENOMEM;
        *l = n;
        return 0;
}

/* grpc-timeout: at most 8 digits and a unit. */
static void format_timeout(usec_t t, char buf[static 32]) {
        if (t / USEC_PER_MSEC < 100000000ULL)
                snprintf(buf, 32, "grpc-timeout: %" PRIu64 "m", (uint64_t) ((t + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        else
                snprintf(buf, 32, "grpc-timeout: %" PRIu64 "S", (uint64_t) MIN(t / USEC_PER_SEC, 99999999ULL));
}

/* c's body is framed already; the rest of the call is set up and handed to the glue here. */
static int call_start(GrpcCall *c, const GrpcTarget *t, const char *path) {
        _cleanup_free_ char *url = NULL, *ns = NULL;
        char tbuf[32];
        int r;

        grpc_decoder_init(&c->decoder, GRPC_MAX_MESSAGE);
        c->socket = strdup(t->socket);
        if (!c->socket)
                return -ENOMEM;
        r = curl_glue_make_easy(t->socket, &c->easy);
        if (r < 0)
                return r;
        if (asprintf(&url, "http://localhost%s", path) < 0)
                return -ENOMEM;
        r = append_header(&c->headers, "Content-Type: application/grpc");
        if (r >= 0)
                r = append_header(&c->headers, "TE: trailers");
        if (r >= 0)
                r = append_header(&c->headers, "Expect:");
        if (r >= 0)
                r = append_header(&c->headers, "Accept:");
        if (r >= 0 && t->namespace) {
                if (asprintf(&ns, "containerd-namespace: %s", t->namespace) < 0)
                        return -ENOMEM;
                r = append_header(&c->headers, ns);
        }
        if (r >= 0 && t->timeout > 0) {
                format_timeout(t->timeout, tbuf);
                r = append_header(&c->headers, tbuf);
        }
        if (r < 0)
                return r;

        /* CURLE_OK is 0: any failed setter leaves a bit set */
        CURLcode e = CURLE_OK;
        e |= curl_easy_setopt(c->easy, CURLOPT_URL, url);
        e |= curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long) CURL_HTTP_VERSION_2_PRIOR_KNOWLEDGE);
        /* One connection per call: libcurl 7.88 fails every later stream on a reused or multiplexed
         * prior-knowledge connection ("Error in the HTTP2 framing layer", 999 of 1000 calls measured),
         * and a call that owns its connection is cancelled by closing it, which containerd notices at
         * once. A fresh unix connection costs containerd ~0.5 ms CPU per call. */
        e |= curl_easy_setopt(c->easy, CURLOPT_FRESH_CONNECT, 1L);
        e |= curl_easy_setopt(c->easy, CURLOPT_FORBID_REUSE, 1L);
        e |= curl_easy_setopt(c->easy, CURLOPT_POST, 1L);
        e |= curl_easy_setopt(c->easy, CURLOPT_POSTFIELDS, (char *) c->body);
        e |= curl_easy_setopt(c->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) c->body_len);
        e |= curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
        e |= curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_write);
        e |= curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
        e |= curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
        e |= curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
        if (t->timeout > 0)
                /* a little after the server's own deadline, so its DeadlineExceeded wins when it answers */
                e |= curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS,
                                      (long) MIN((t->timeout + USEC_PER_SEC) / USEC_PER_MSEC, (usec_t) LONG_MAX));
        if (e != CURLE_OK)
                return -EINVAL;

        r = curl_glue_add(c->glue, c->easy, on_done, c);
        if (r < 0)
                return r;
        c->running = true;
        return 0;
}

static int call_new(CurlGlue *glue, const ProtobufCMessageDescriptor *reply_type, bool streaming, grpc_done_t done,
                    void *userdata, GrpcCall **ret) {
        GrpcCall *c = calloc(1, sizeof(*c));

        if (!c)
                return -ENOMEM;
        c->glue = glue;
        c->reply_type = reply_type;
        c->streaming = streaming;
        c->done = done;
        c->userdata = userdata;
        *ret = c;
        return 0;
}

static void call_hand_out(GrpcCall *c, GrpcCall **ret) {
        if (ret)
                *ret = c;
        else
                c->floating = true;
}

int grpc_call_start(CurlGlue *glue, const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                    const ProtobufCMessageDescriptor *reply_type, bool streaming, grpc_done_t done,
                    void *userdata, GrpcCall **ret) {
        _cleanup_(grpc_call_freep) GrpcCall *c = NULL;
        int r;

        if (!glue || !t || !t->socket || !path || path[0] != '/' || !request || !reply_type)
                return -EINVAL;
        r = call_new(glue, reply_type, streaming, done, userdata, &c);
        if (r < 0)
                return r;
        r = grpc_frame_encode(request, &c->body, &c->body_len);
        if (r < 0)
                return r;
        r = call_start(c, t, path);
        if (r < 0)
                return r;
        call_hand_out(TAKE_PTR(c), ret);
        return 0;
}

int grpc_call_start_raw(CurlGlue *glue, const GrpcTarget *t, const char *path, const uint8_t *request, size_t len,
                        grpc_done_t done, void *userdata, GrpcCall **ret) {
        _cleanup_(grpc_call_freep) GrpcCall *c = NULL;
        int r;

        if (!glue || !t || !t->socket || !path || path[0] != '/' || (!request && len > 0))
                return -EINVAL;
        r = call_new(glue, NULL, false, done, userdata, &c);
        if (r < 0)
                return r;
        r = grpc_frame_raw(request, len, &c->body, &c->body_len);
        if (r < 0)
                return r;
        r = call_start(c, t, path);
        if (r < 0)
                return r;
        call_hand_out(TAKE_PTR(c), ret);
        return 0;
}

typedef struct SyncState {
        GrpcReply *out;
        bool done;
} SyncState;

static void on_sync_done(GrpcCall *call, GrpcReply *reply, void *userdata) {
        SyncState *s = userdata;
        *s->out = *reply;
        *reply = (GrpcReply) {};
        s->done = true;
        (void) sd_event_exit(curl_glue_event(call->glue), 0);
}

int grpc_call_sync(const GrpcTarget *t, const char *path, const ProtobufCMessage *request,
                   const ProtobufCMessageDescriptor *reply_type, bool streaming, GrpcReply *reply) {
        _cleanup_(sd_event_unrefp) sd_event *e = NULL;
        _cleanup_(curl_glue_freep) CurlGlue *g = NULL;
        _cleanup_(grpc_call_freep) GrpcCall *c = NULL;
        SyncState s = { .out = reply };
        int r;

        *reply = (GrpcReply) {};
        r = sd_event_new(&e);
        if (r >= 0)
                r = curl_glue_new(e, &g);
        if (r >= 0)
                r = grpc_call_start(g, t, path, request, reply_type, streaming, on_sync_done, &s, &c);
        if (r >= 0)
                r = sd_event_loop(e);
        if (r >= 0 && !s.done)
                r = -EIO;
        if (r < 0) {
                reply->error = r;
                if (!reply->message && asprintf(&reply->message, "%s: %s", t->socket, strerror(-r)) < 0)
                        reply->message = NULL;
                return r;
        }
        return reply->error;
}
