/* grpc_server.c: unary gRPC calls served over HTTP/2 on sd-event. libnghttp2 parses and writes every
 * frame; this file keeps the connections' sockets, each stream's request (headers and the one framed
 * message) and its answer: HEADERS + DATA + trailers for OK, Trailers-Only for a status. */
#include "probes/transport/grpc_server.h"

#include <assert.h>
#include <errno.h>
#include <nghttp2/nghttp2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "basic/macro.h"

#define SERVER_MAX_CONNECTIONS 256U
#define SERVER_MAX_STREAMS 128U
#define CALL_MAX_HEADERS 32U
#define READ_CHUNK 16384U

typedef struct Header {
        char *key, *value;
} Header;

struct GrpcServerCall {
        GrpcServerConn *conn;
        int32_t stream_id;
        char *path;
        Header headers[CALL_MAX_HEADERS];
        size_t n_headers;
        GrpcDecoder decoder;
        uint8_t *message;           /* the first complete request message */
        size_t message_len;
        unsigned n_messages;
        GrpcStatus refuse;          /* answered by the server itself when not GRPC_OK */
        const char *refuse_message;
        bool dispatched, answered;
        uint8_t *reply;             /* framed answer, sent by the data provider */
        size_t reply_len, reply_off;
        void *userdata;
        GrpcServerCall *prev, *next;
};

struct GrpcServerConn {
        GrpcServer *server;
        int fd;
        sd_event_source *io;
        nghttp2_session *session;
        uint8_t *out;               /* bytes nghttp2 produced that the socket has not taken yet */
        size_t out_len, out_off;
        bool in_recv;               /* inside nghttp2_session_mem_recv: flush after it returns */
        GrpcServerCall *calls;
        GrpcServerConn *prev, *next;
};

struct GrpcServer {
        sd_event *event;
        int listen_fd;
        sd_event_source *listen_source;
        size_t max_message;
        GrpcServerHandlers handlers;
        void *userdata;
        GrpcServerConn *conns;
        GrpcServerStats stats;
};

static int safe_close(int fd) {
        if (fd >= 0)
                (void) close(fd);
        return -EBADF;
}

#define LIST_PREPEND(head, item) do { (item)->next = (head); if (head) (head)->prev = (item); (head) = (item); } while (0)
#define LIST_REMOVE(head, item) do { \
                if ((item)->prev) (item)->prev->next = (item)->next; else (head) = (item)->next; \
                if ((item)->next) (item)->next->prev = (item)->prev; \
                (item)->prev = (item)->next = NULL; } while (0)

char *grpc_percent_encode(const char *s) {
        size_t n = 0;
        for (const char *p = s; *p; p++)
                n += (*p < 0x20 || *p > 0x7e || *p == '%') ? 3 : 1;
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (const unsigned char *p = (const unsigned char *) s; *p; p++) {
                if (*p < 0x20 || *p > 0x7e || *p == '%')
                        o += sprintf(o, "%%%02X", *p);
                else
                        *o++ = (char) *p;
        }
        *o = 0;
        return out;
}

static void call_free(GrpcServerCall *c) {
        if (!c)
                return;
        free(c->path);
        for (size_t i = 0; i < c->n_headers; i++) {
                free(c->headers[i].key);
                free(c->headers[i].value);
        }
        grpc_decoder_done(&c->decoder);
        free(c->message);
        free(c->reply);
        free(c);
}

/* The stream is over, answered or not: a call the handler still holds is cancelled. */
static void call_close(GrpcServerCall *c) {
        GrpcServer *s = c->conn->server;
        LIST_REMOVE(c->conn->calls, c);
        if (c->dispatched && !c->answered) {
                s->stats.open_calls--;
                if (s->handlers.cancelled)
                        s->handlers.cancelled(c, s->userdata);
        }
        if (c->conn->session)
                (void) nghttp2_session_set_stream_user_data(c->conn->session, c->stream_id, NULL);
        call_free(c);
}

static void conn_free(GrpcServerConn *conn) {
        if (!conn)
                return;
        GrpcServer *s = conn->server;
        while (conn->calls)
                call_close(conn->calls);
        LIST_REMOVE(s->conns, conn);
        s->stats.open_connections--;
        sd_event_source_disable_unref(conn->io);
        nghttp2_session_del(conn->session);
        safe_close(conn->fd);
        free(conn->out);
        free(conn);
}

/* Write what is pending, then whatever nghttp2 has to say; wait for EPOLLOUT when the socket is full.
 * 0, or -errno when the connection is dead (the caller frees it). */
static int conn_flush(GrpcServerConn *conn) {
        for (;;) {
                while (conn->out_off < conn->out_len) {
                        ssize_t n = send(conn->fd, conn->out + conn->out_off, conn->out_len - conn->out_off,
                                         MSG_NOSIGNAL | MSG_DONTWAIT);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                return conn->io ? sd_event_source_set_io_events(conn->io, EPOLLIN | EPOLLOUT) : 0;
                        if (n < 0)
                                return -errno;
                        conn->out_off += (size_t) n;
                }
                conn->out_off = conn->out_len = 0;
                const uint8_t *data;
                ssize_t n = nghttp2_session_mem_send(conn->session, &data);
                if (n < 0)
                        return -EPROTO;
                if (n == 0)
                        break;
                uint8_t *b = realloc(conn->out, (size_t) n);
                if (!b)
                        return -ENOMEM;
                memcpy(b, data, (size_t) n);
                conn->out = b;
                conn->out_len = (size_t) n;
        }
        if (!nghttp2_session_want_read(conn->session) && !nghttp2_session_want_write(conn->session))
                return -ECONNRESET; /* GOAWAY both ways: nothing more to say */
        return conn->io ? sd_event_source_set_io_events(conn->io, EPOLLIN) : 0;
}

static GrpcServerCall *call_of(GrpcServerConn *conn, int32_t stream_id) {
        return nghttp2_session_get_stream_user_data(conn->session, stream_id);
}

static ssize_t reply_read(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t length,
                          uint32_t *data_flags, nghttp2_data_source *source, void *user_data) {
        GrpcServerCall *c = source->ptr;
        size_t n = MIN(length, c->reply_len - c->reply_off);

        memcpy(buf, c->reply + c->reply_off, n);
        c->reply_off += n;
        if (c->reply_off == c->reply_len) {
                const nghttp2_nv trailers[] = {
                        { (uint8_t *) "grpc-status", (uint8_t *) "0", 11, 1, NGHTTP2_NV_FLAG_NONE },
                };
                *data_flags |= NGHTTP2_DATA_FLAG_EOF | NGHTTP2_DATA_FLAG_NO_END_STREAM;
                if (nghttp2_submit_trailer(session, stream_id, trailers, ELEMENTSOF(trailers)) != 0)
                        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
        }
        return (ssize_t) n;
}

#define NV(k, v) { (uint8_t *) (k), (uint8_t *) (v), strlen(k), strlen(v), NGHTTP2_NV_FLAG_NONE }

/* Queue the answer; the call stays in the stream's hands until the stream closes. */
static int call_answer(GrpcServerCall *c, GrpcStatus status, const char *message, const uint8_t *reply, size_t len) {
        GrpcServerConn *conn = c->conn;
        GrpcServer *s = conn->server;
        int r;

        assert(!c->answered);
        if (c->dispatched)
                s->stats.open_calls--;
        c->answered = true;
        if (status == GRPC_OK) {
                c->reply = malloc(len + 5);
                if (!c->reply)
                        r = -ENOMEM;
                else {
                        c->reply[0] = 0;
                        c->reply[1] = (uint8_t) (len >> 24);
                        c->reply[2] = (uint8_t) (len >> 16);
                        c->reply[3] = (uint8_t) (len >> 8);
                        c->reply[4] = (uint8_t) len;
                        if (len)
                                memcpy(c->reply + 5, reply, len);
                        c->reply_len = len + 5;
                        const nghttp2_nv headers[] = { NV(":status", "200"), NV("content-type", "application/grpc") };
                        nghttp2_data_provider prd = { .source.ptr = c, .read_callback = reply_read };
                        r = nghttp2_submit_response(conn->session, c->stream_id, headers, ELEMENTSOF(headers), &prd) ? -EIO : 0;
                }
        } else {
                char code[16];
                _cleanup_free_ char *encoded = grpc_percent_encode(message ?: "");
                snprintf(code, sizeof(code), "%d", (int) status);
                if (!encoded)
                        r = -ENOMEM;
                else {
                        const nghttp2_nv headers[] = { NV(":status", "200"), NV("content-type", "application/grpc"),
                                                       NV("grpc-status", code), NV("grpc-message", encoded) };
                        r = nghttp2_submit_response(conn->session, c->stream_id, headers, ELEMENTSOF(headers), NULL)
                                    ? -EIO : 0;
                }
        }
        if (r < 0)
                (void) nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, c->stream_id, NGHTTP2_INTERNAL_ERROR);
        if (!conn->in_recv && conn_flush(conn) < 0)
                conn_free(conn); /* closes (and frees) c too */
        return r;
}

int grpc_server_call_reply(GrpcServerCall *c, const uint8_t *message, size_t len) {
        assert(c);
        assert(message || len == 0);
        return call_answer(c, GRPC_OK, NULL, message, len);
}

int grpc_server_call_fail(GrpcServerCall *c, GrpcStatus status, const char *message) {
        assert(c);
        assert(status > GRPC_OK && status < _GRPC_STATUS_MAX);
        return call_answer(c, status, message, NULL, 0);
}

const char *grpc_server_call_header(const GrpcServerCall *c, const char *key) {
        assert(c);
        for (size_t i = c->n_headers; i > 0; i--)
                if (streq(c->headers[i - 1].key, key))
                        return c->headers[i - 1].value;
        return NULL;
}

void grpc_server_call_set_userdata(GrpcServerCall *c, void *userdata) {
        c->userdata = userdata;
}

void *grpc_server_call_get_userdata(const GrpcServerCall *c) {
        return c->userdata;
}

static int on_begin_headers(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        GrpcServerConn *conn = user_data;
        GrpcServer *s = conn->server;

        if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0;
        GrpcServerCall *c = calloc(1, sizeof(*c));
        if (!c)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        c->conn = conn;
        c->stream_id = frame->hd.stream_id;
        c->refuse = GRPC_OK;
        grpc_decoder_init(&c->decoder, s->max_message);
        LIST_PREPEND(conn->calls, c);
        if (nghttp2_session_set_stream_user_data(session, c->stream_id, c) != 0) {
                LIST_REMOVE(conn->calls, c);
                call_free(c);
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        return 0;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name, size_t namelen,
                     const uint8_t *value, size_t valuelen, uint8_t flags, void *user_data) {
        GrpcServerCall *c = call_of(user_data, frame->hd.stream_id);

        if (!c || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
                return 0; /* trailers from the client carry nothing a unary call needs */
        if (namelen == 5 && memcmp(name, ":path", 5) == 0) {
                free(c->path);
                if (!(c->path = strndup((const char *) value, valuelen)))
                        return NGHTTP2_ERR_CALLBACK_FAILURE;
                return 0;
        }
        if (namelen == 12 && memcmp(name, "content-type", 12) == 0 &&
            (valuelen < 16 || memcmp(value, "application/grpc", 16) != 0)) {
                c->refuse = GRPC_INTERNAL;
                c->refuse_message = "invalid gRPC request content-type";
                return 0;
        }
        if (name[0] == ':' || c->n_headers >= CALL_MAX_HEADERS)
                return 0;
        Header *h = &c->headers[c->n_headers];
        h->key = strndup((const char *) name, namelen);
        h->value = strndup((const char *) value, valuelen);
        if (!h->key || !h->value) {
                free(h->key);
                free(h->value);
                *h = (Header) {};
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        }
        c->n_headers++;
        return 0;
}

static int take_message(const uint8_t *data, size_t len, void *userdata) {
        GrpcServerCall *c = userdata;
        if (c->n_messages++ > 0)
                return 0; /* a unary call has one; more are refused below */
        c->message = malloc(len ?: 1);
        if (!c->message)
                return -ENOMEM;
        if (len)
                memcpy(c->message, data, len);
        c->message_len = len;
        return 0;
}

static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id, const uint8_t *data, size_t len,
                         void *user_data) {
        GrpcServerCall *c = call_of(user_data, stream_id);
        if (!c || c->refuse != GRPC_OK)
                return 0;
        int r = grpc_decoder_feed(&c->decoder, data, len, take_message, c);
        if (r == -EMSGSIZE) {
                c->refuse = GRPC_RESOURCE_EXHAUSTED;
                c->refuse_message = "grpc: received message larger than max";
        } else if (r == -EPROTONOSUPPORT) {
                c->refuse = GRPC_UNIMPLEMENTED;
                c->refuse_message = "grpc: Decompressor is not installed for grpc-encoding";
        } else if (r == -ENOMEM)
                return NGHTTP2_ERR_CALLBACK_FAILURE;
        else if (r < 0) {
                c->refuse = GRPC_INTERNAL;
                c->refuse_message = "grpc: malformed message framing";
        }
        return 0;
}

static void call_dispatch(GrpcServerCall *c) {
        GrpcServer *s = c->conn->server;

        if (c->refuse == GRPC_OK && grpc_decoder_finish(&c->decoder) < 0) {
                c->refuse = GRPC_INTERNAL;
                c->refuse_message = "grpc: request message cut short";
        }
        if (c->refuse == GRPC_OK && !c->path) {
                c->refuse = GRPC_UNIMPLEMENTED;
                c->refuse_message = "malformed method name";
        }
        if (c->refuse == GRPC_OK && c->n_messages != 1) {
                c->refuse = GRPC_INTERNAL;
                c->refuse_message = c->n_messages ? "grpc: too many request messages for a unary call"
                                                  : "grpc: no request message for a unary call";
        }
        if (c->refuse != GRPC_OK) {
                s->stats.refused++;
                (void) call_answer(c, c->refuse, c->refuse_message, NULL, 0);
                return;
        }
        c->dispatched = true;
        s->stats.calls++;
        s->stats.open_calls++;
        s->handlers.call(c, c->path, c->message, c->message_len, s->userdata);
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data) {
        if ((frame->hd.type != NGHTTP2_DATA && frame->hd.type != NGHTTP2_HEADERS) ||
            !(frame->hd.flags & NGHTTP2_FLAG_END_STREAM))
                return 0;
        GrpcServerCall *c = call_of(user_data, frame->hd.stream_id);
        if (c && !c->dispatched && !c->answered)
                call_dispatch(c);
        return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code, void *user_data) {
        GrpcServerCall *c = call_of(user_data, stream_id);
        if (c)
                call_close(c);
        return 0;
}

/* The bytes read from the socket; -EPROTO when the peer broke HTTP/2 (the caller frees the conn). */
static int conn_recv(GrpcServerConn *conn, const uint8_t *data, size_t len) {
        conn->in_recv = true;
        ssize_t n = nghttp2_session_mem_recv(conn->session, data, len);
        conn->in_recv = false;
        if (n < 0) {
                conn->server->stats.protocol_errors++;
                /* say why before closing, as far as the socket takes it */
                (void) nghttp2_session_terminate_session(conn->session, NGHTTP2_PROTOCOL_ERROR);
                (void) conn_flush(conn);
                return -EPROTO;
        }
        return conn_flush(conn);
}

int grpc_server_conn_feed(GrpcServerConn *conn, const uint8_t *data, size_t len) {
        int r = conn_recv(conn, data, len);
        if (r < 0) {
                conn_free(conn);
                return -EPROTO;
        }
        return 0;
}

static int on_conn_io(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        GrpcServerConn *conn = userdata;
        uint8_t buf[READ_CHUNK];
        int r = 0;

        if (revents & EPOLLIN) {
                for (;;) {
                        ssize_t n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0 && errno == EAGAIN)
                                break;
                        if (n <= 0) {
                                r = -ECONNRESET; /* the client hung up: its open calls are cancelled */
                                break;
                        }
                        r = conn_recv(conn, buf, (size_t) n);
                        if (r < 0)
                                break;
                }
        } else if (revents & (EPOLLHUP | EPOLLERR))
                r = -ECONNRESET;
        if (r >= 0 && (revents & EPOLLOUT))
                r = conn_flush(conn);
        if (r < 0)
                conn_free(conn);
        return 0;
}

static int conn_new(GrpcServer *s, int fd, bool watch, GrpcServerConn **ret) {
        _cleanup_free_ GrpcServerConn *conn = NULL;
        nghttp2_session_callbacks *cbs = NULL;
        const nghttp2_settings_entry settings[] = {
                { NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, SERVER_MAX_STREAMS },
        };
        int r;

        if (s->stats.open_connections >= SERVER_MAX_CONNECTIONS) {
                safe_close(fd);
                return -EMFILE;
        }
        conn = calloc(1, sizeof(*conn));
        if (!conn) {
                safe_close(fd);
                return -ENOMEM;
        }
        conn->server = s;
        conn->fd = fd;
        if (nghttp2_session_callbacks_new(&cbs) != 0) {
                safe_close(fd);
                return -ENOMEM;
        }
        nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
        nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
        nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
        nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
        nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
        r = nghttp2_session_server_new(&conn->session, cbs, conn);
        nghttp2_session_callbacks_del(cbs);
        if (r != 0 || nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings, ELEMENTSOF(settings)) != 0) {
                nghttp2_session_del(conn->session);
                safe_close(fd);
                return -ENOMEM;
        }
        if (watch) {
                r = sd_event_add_io(s->event, &conn->io, fd, EPOLLIN, on_conn_io, conn);
                if (r < 0) {
                        nghttp2_session_del(conn->session);
                        safe_close(fd);
                        return r;
                }
                (void) sd_event_source_set_description(conn->io, "grpc-server-conn");
        }
        LIST_PREPEND(s->conns, conn);
        s->stats.connections++;
        s->stats.open_connections++;
        GrpcServerConn *c = TAKE_PTR(conn);
        r = conn_flush(c); /* our SETTINGS */
        if (r < 0) {
                conn_free(c);
                return r;
        }
        if (ret)
                *ret = c;
        return 0;
}

int grpc_server_adopt(GrpcServer *s, int fd, GrpcServerConn **ret) {
        assert(s);
        assert(fd >= 0);
        return conn_new(s, fd, false, ret);
}

static int on_accept(sd_event_source *es, int fd, uint32_t revents, void *userdata) {
        GrpcServer *s = userdata;
        for (;;) {
                int cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (cfd < 0)
                        return 0; /* EAGAIN, or a client gone before we took it: the next one will do */
                (void) conn_new(s, cfd, true, NULL);
        }
}

int grpc_server_new(sd_event *event, int listen_fd, size_t max_message, const GrpcServerHandlers *h, void *userdata,
                    GrpcServer **ret) {
        GrpcServer *s;
        int r;

        assert(event);
        assert(listen_fd >= 0);
        assert(h && h->call);
        assert(ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->event = sd_event_ref(event);
        s->listen_fd = listen_fd;
        s->max_message = max_message ?: GRPC_MAX_MESSAGE;
        s->handlers = *h;
        s->userdata = userdata;
        r = sd_event_add_io(event, &s->listen_source, listen_fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                s->listen_fd = -EBADF; /* the caller keeps its socket on failure */
                grpc_server_free(s);
                return r;
        }
        (void) sd_event_source_set_description(s->listen_source, "grpc-server-listen");
        *ret = s;
        return 0;
}

GrpcServer *grpc_server_free(GrpcServer *s) {
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns);
        sd_event_source_disable_unref(s->listen_source);
        if (s->listen_fd >= 0)
                safe_close(s->listen_fd);
        sd_event_unref(s->event);
        free(s);
        return NULL;
}

void grpc_server_stats(const GrpcServer *s, GrpcServerStats *ret) {
        assert(ret);
        *ret = s ? s->stats : (GrpcServerStats) {};
}
