/* control.c: requests are read into a fixed buffer; a line that does not fit is answered with an
 * error and the connection closed, so a client cannot make the daemon allocate without bound. One
 * request per connection: status answers and closes, pull streams until its result. */
#include "daemon/agent/control.h"
#include "config/config.h"
#include "basic/unix_socket.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "basic/atomic_file.h"

struct ControlConn {
        ControlServer *server;
        int fd;
        sd_event_source *io;
        struct ucred peer;
        char in[CONTROL_REQUEST_MAX];
        size_t n_in;
        char *out;
        size_t n_out, out_off;
        bool got_request;
        bool finishing;           /* close once out is drained */
        bool busy;                /* a handler holds it (pull stream) */
        ControlConn *next;
};

struct ControlServer {
        sd_event *event;
        char *path;
        int fd;
        sd_event_source *io;
        uid_t *allowed;
        size_t n_allowed;
        ControlHandlers handlers;
        void *userdata;
        ControlConn *conns;
        size_t n_conns;
};

void control_request_done(ControlRequest *r) {
        free(r->image);
        free(r->runtime);
        free(r->platform);
        free(r->namespace);
        *r = (ControlRequest) { .cmd = _CONTROL_COMMAND_INVALID };
}

json_t *control_error_json(const char *code, const char *message) {
        return json_pack("{s:s, s:s}", "error", message ? message : "error", "code", code ? code : "error");
}

static int opt_string(json_t *o, const char *key, char **ret, ErrorDetail *ret_error, const char *why) {
        json_t *v = json_object_get(o, key);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v) || json_string_length(v) == 0 || json_string_length(v) > 1024 ||
            strlen(json_string_value(v)) != json_string_length(v)) {
                return error_detail_setf(ret_error, EINVAL, "%s", why);
        }
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

int control_request_parse(const char *line, size_t size, ControlRequest *ret, ErrorDetail *ret_error) {
        _cleanup_(json_decrefp) json_t *o = NULL;
        ControlRequest req = { .cmd = _CONTROL_COMMAND_INVALID };
        const char *cmd;
        int r;

        if (size >= CONTROL_REQUEST_MAX)
                return error_detail_setf(ret_error, -EMSGSIZE, "request too long");
        o = json_loadb(line, size, JSON_REJECT_DUPLICATES, NULL);
        if (!o || !json_is_object(o))
                return error_detail_setf(ret_error, -EBADMSG, "request is not a JSON object");
        cmd = json_string_value(json_object_get(o, "cmd"));
        if (!cmd)
                return error_detail_setf(ret_error, -EINVAL, "request has no \"cmd\" string");
        if (streq(cmd, "status"))
                req.cmd = CONTROL_STATUS;
        else if (streq(cmd, "pull"))
                req.cmd = CONTROL_PULL;
        else
                return error_detail_setf(ret_error, -EOPNOTSUPP, "unknown cmd (known: status, pull)");
        if (req.cmd == CONTROL_PULL) {
                if ((r = opt_string(o, "image", &req.image, ret_error, "\"image\" must be a non-empty string")) < 0 ||
                    (r = opt_string(o, "runtime", &req.runtime, ret_error, "\"runtime\" must be a string")) < 0 ||
                    (r = opt_string(o, "platform", &req.platform, ret_error, "\"platform\" must be a string")) < 0 ||
                    (r = opt_string(o, "namespace", &req.namespace, ret_error, "\"namespace\" must be a string")) < 0) {
                        control_request_done(&req);
                        return r;
                }
                if (!req.image) {
                        control_request_done(&req);
                        return error_detail_setf(ret_error, -EINVAL, "pull needs \"image\"");
                }
                if (req.runtime && runtime_kind_from_string(req.runtime) < 0) {
                        control_request_done(&req);
                        return error_detail_setf(ret_error, -EINVAL, "\"runtime\" must be auto, docker or containerd");
                }
        }
        *ret = req;
        return 0;
}

static void conn_free(ControlConn *c, bool notify) { /* notify: tell the handler when it holds c */
        ControlServer *s = c->server;

        for (ControlConn **p = &s->conns; *p; p = &(*p)->next)
                if (*p == c) {
                        *p = c->next;
                        s->n_conns--;
                        break;
                }
        if (notify && c->busy && s->handlers.closed)
                s->handlers.closed(s->userdata, c);
        sd_event_source_disable_unref(c->io);
        if (c->fd >= 0)
                close(c->fd);
        free(c->out);
        free(c);
}

static void conn_update_events(ControlConn *c) {
        uint32_t ev = c->n_out > c->out_off || c->finishing ? EPOLLOUT : 0;
        /* After the request nothing more is read: a client that half-closes still gets its stream, and
         * one that closes for good shows as EPOLLHUP, which epoll reports whatever the mask. */
        if (!c->got_request)
                ev |= EPOLLIN;
        (void) sd_event_source_set_io_events(c->io, ev);
}

static int conn_flush(ControlConn *c) {
        while (c->out_off < c->n_out) {
                ssize_t n = send(c->fd, c->out + c->out_off, c->n_out - c->out_off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        if (errno == EAGAIN)
                                break;
                        return -errno;
                }
                c->out_off += (size_t) n;
        }
        if (c->out_off == c->n_out) {
                c->out_off = c->n_out = 0;
                if (c->finishing)
                        return 1; /* done: close */
        }
        conn_update_events(c);
        return 0;
}

int control_conn_send(ControlConn *c, json_t *o) {
        _cleanup_free_ char *s = json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6));
        size_t len;
        char *n;

        if (!s)
                return -ENOMEM;
        if (c->fd < 0)
                return -EPIPE;
        len = strlen(s);
        if (c->n_out - c->out_off + len + 1 > CONTROL_OUTPUT_MAX)
                return -ENOBUFS;
        if (c->out_off > 0) {
                memmove(c->out, c->out + c->out_off, c->n_out - c->out_off);
                c->n_out -= c->out_off;
                c->out_off = 0;
        }
        n = realloc(c->out, c->n_out + len + 1);
        if (!n)
                return -ENOMEM;
        c->out = n;
        memcpy(c->out + c->n_out, s, len);
        c->out[c->n_out + len] = '\n';
        c->n_out += len + 1;
        conn_update_events(c);
        return 0;
}

void control_conn_finish(ControlConn *c) {
        c->finishing = true;
        c->busy = false;
        /* The io callback closes it once drained (EPOLLOUT fires at once on an empty buffer too). */
        conn_update_events(c);
}

void control_conn_peer(const ControlConn *c, uid_t *ret_uid, pid_t *ret_pid) {
        if (ret_uid)
                *ret_uid = c->peer.uid;
        if (ret_pid)
                *ret_pid = c->peer.pid;
}

static void reply_and_finish(ControlConn *c, json_t *o) {
        if (o)
                (void) control_conn_send(c, o);
        json_decref(o);
        control_conn_finish(c);
}

static void handle_line(ControlConn *c, const char *line, size_t n) {
        ControlServer *s = c->server;
        ControlRequest req;
        _cleanup_(error_detail_done) ErrorDetail why = {};
        int r;

        c->got_request = true;
        r = control_request_parse(line, n, &req, &why);
        if (r < 0) {
                reply_and_finish(c, control_error_json(r == -EOPNOTSUPP ? "unknown-command" : "bad-request",
                                                       why.message ? why.message : strerror(-r)));
                return;
        }
        if (req.cmd == CONTROL_STATUS) {
                json_t *o = NULL;
                r = s->handlers.status ? s->handlers.status(s->userdata, &o) : -EOPNOTSUPP;
                reply_and_finish(c, r < 0 ? control_error_json("internal", strerror(-r)) : o);
        } else {
                _cleanup_(error_detail_done) ErrorDetail err = {};
                _cleanup_free_ char *text = NULL;
                c->busy = true;
                r = s->handlers.pull ? s->handlers.pull(s->userdata, c, &req, &err) : -EOPNOTSUPP;
                if (r < 0) {
                        c->busy = false;
                        text = err.message ? error_detail_format(&err) : NULL;
                        reply_and_finish(c, control_error_json("pull-refused", text ? text : strerror(-r)));
                }
        }
        control_request_done(&req);
}

static int on_conn_io(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        ControlConn *c = userdata;

        if (!c->got_request && (revents & (EPOLLIN | EPOLLHUP))) {
                ssize_t n = recv(fd, c->in + c->n_in, sizeof(c->in) - c->n_in, MSG_DONTWAIT);
                if (n < 0 && (errno == EAGAIN || errno == EINTR))
                        return 0;
                if (n < 0 || (n == 0 && c->n_in == 0)) {
                        conn_free(c, true);
                        return 0;
                }
                if (n > 0) {
                        char *nl;
                        c->n_in += (size_t) n;
                        nl = memchr(c->in, '\n', c->n_in);
                        if (nl)
                                handle_line(c, c->in, (size_t) (nl - c->in));
                        else if (c->n_in == sizeof(c->in))
                                handle_line(c, c->in, c->n_in); /* too long: answered with an error */
                } else
                        handle_line(c, c->in, c->n_in); /* end of input without a newline */
        } else if (c->got_request && (revents & (EPOLLHUP | EPOLLERR)) && !c->finishing) {
                conn_free(c, true); /* the client left while its pull streamed */
                return 0;
        }
        if ((revents & EPOLLOUT) || c->finishing) {
                int r = conn_flush(c);
                if (r != 0) {
                        conn_free(c, true);
                        return 0;
                }
        }
        return 0;
}

static bool uid_allowed(const ControlServer *s, uid_t uid) {
        if (uid == 0 || uid == geteuid())
                return true;
        for (size_t i = 0; i < s->n_allowed; i++)
                if (s->allowed[i] == uid)
                        return true;
        return false;
}

static int on_accept(sd_event_source *src, int fd, uint32_t revents, void *userdata) {
        ControlServer *s = userdata;
        socklen_t len;
        ControlConn *c;
        int cfd;

        cfd = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (cfd < 0)
                return 0;
        c = calloc(1, sizeof(*c));
        if (!c) {
                close(cfd);
                return 0;
        }
        c->server = s;
        c->fd = cfd;
        len = sizeof(c->peer);
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &c->peer, &len) < 0)
                c->peer = (struct ucred) { .pid = 0, .uid = (uid_t) -1, .gid = (gid_t) -1 };
        if (sd_event_add_io(s->event, &c->io, cfd, EPOLLIN, on_conn_io, c) < 0) {
                close(cfd);
                free(c);
                return 0;
        }
        (void) sd_event_source_set_description(c->io, "control-conn");
        c->next = s->conns;
        s->conns = c;
        s->n_conns++;
        if (!uid_allowed(s, c->peer.uid)) {
                c->got_request = true;
                reply_and_finish(c, control_error_json("permission-denied", "permission denied: root only"));
        } else if (s->n_conns > CONTROL_CONNECTIONS_MAX) {
                c->got_request = true;
                reply_and_finish(c, control_error_json("busy", "too many connections"));
        }
        return 0;
}

int control_connect(const char *path, int *ret_fd) {
        return unix_connect(path, ret_fd);
}


int control_server_new(sd_event *event, const char *path, const uid_t *allowed_uids, size_t n_allowed,
                       const ControlHandlers *handlers, void *userdata, ControlServer **ret) {
        ControlServer *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        s->fd = -1;
        s->event = sd_event_ref(event);
        s->handlers = *handlers;
        s->userdata = userdata;
        s->path = strdup(path);
        if (n_allowed > 0) {
                s->allowed = calloc(n_allowed, sizeof(uid_t));
                if (s->allowed) {
                        memcpy(s->allowed, allowed_uids, n_allowed * sizeof(uid_t));
                        s->n_allowed = n_allowed;
                }
        }
        if (!s->path || (n_allowed > 0 && !s->allowed)) {
                r = -ENOMEM;
                goto fail;
        }
        r = unix_socket_listen(path, 0600, &s->fd);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(event, &s->io, s->fd, EPOLLIN, on_accept, s);
        if (r < 0) {
                (void) unlink(path);
                goto fail;
        }
        (void) sd_event_source_set_description(s->io, "control-accept");
        *ret = s;
        return 0;
fail:
        free(s->path);
        s->path = NULL; /* nothing bound: leave whatever is at path alone */
        control_server_free(s);
        return r;
}

ControlServer *control_server_free(ControlServer *s) {
        if (!s)
                return NULL;
        while (s->conns)
                conn_free(s->conns, true);
        sd_event_source_disable_unref(s->io);
        if (s->fd >= 0) {
                close(s->fd);
                if (s->path)
                        (void) unlink(s->path);
        }
        sd_event_unref(s->event);
        free(s->path);
        free(s->allowed);
        free(s);
        return NULL;
}

const char *control_server_path(const ControlServer *s) { return s->path; }

void control_server_drain(ControlServer *s) {
        for (ControlConn *c = s->conns; c; c = c->next)
                (void) conn_flush(c);
}
