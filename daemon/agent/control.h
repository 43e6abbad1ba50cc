/* control.h: the daemon's control socket: a unix stream socket (mode 0600, peers checked with
 * SO_PEERCRED) speaking one JSON request per line and JSON lines back. Owns sockets, framing and
 * parsing; what a request does belongs to the handlers (the agent). Never logs. */
#pragma once

#include <jansson.h>
#include <sys/types.h>
#include <systemd/sd-event.h>
#include "basic/error_detail.h"
#include "basic/macro.h"

#define CONTROL_REQUEST_MAX 4096          /* bytes of one request line, newline included */
#define CONTROL_OUTPUT_MAX (4U * 1024U * 1024U) /* a client that stops reading is dropped past this */
#define CONTROL_CONNECTIONS_MAX 64

typedef enum ControlCommand {
        CONTROL_STATUS,
        CONTROL_PULL,
        _CONTROL_COMMAND_MAX,
        _CONTROL_COMMAND_INVALID = -EINVAL,
} ControlCommand;

typedef struct ControlRequest {
        ControlCommand cmd;
        char *image;              /* pull */
        char *runtime;            /* pull: auto, docker, containerd; NULL = the daemon's */
        char *platform;           /* pull: NULL = the config's */
        char *namespace;          /* pull: containerd namespace, NULL = the config's */
} ControlRequest;

void control_request_done(ControlRequest *r);

/* Parse one request line (without its newline). -EMSGSIZE when longer than CONTROL_REQUEST_MAX,
 * -EBADMSG not a JSON object, -EOPNOTSUPP unknown cmd, -EINVAL bad or missing arguments; ret_error's
 * message is then the sentence for the error object. Pure. */
int control_request_parse(const char *line, size_t size, ControlRequest *ret, ErrorDetail *ret_error);
/* {"error": message, "code": code}. */
json_t *control_error_json(const char *code, const char *message);

typedef struct ControlServer ControlServer;
typedef struct ControlConn ControlConn;

typedef struct ControlHandlers {
        /* The full status object. */
        int (*status)(void *userdata, json_t **ret);
        /* Start a pull streaming to c; the handler keeps c and ends it with control_conn_finish(). A
         * negative return sends an error object instead, with ret_error's text when it was filled. */
        int (*pull)(void *userdata, ControlConn *c, const ControlRequest *req, ErrorDetail *ret_error);
        /* c is going away (client gone, shutdown): forget it, abort what streams to it. */
        void (*closed)(void *userdata, ControlConn *c);
} ControlHandlers;

/* Bind path (parents created 0755, a stale socket replaced, -EADDRINUSE when a live daemon answers
 * there), mode 0600. Peers with uid 0, the daemon's own euid, or one of allowed_uids are served. */
int control_server_new(sd_event *event, const char *path, const uid_t *allowed_uids, size_t n_allowed,
                       const ControlHandlers *handlers, void *userdata, ControlServer **ret);
/* Closes every connection (handlers->closed for each) and removes the socket file. */
ControlServer *control_server_free(ControlServer *s);
static inline void control_server_freep(ControlServer **s) { control_server_free(*s); }
const char *control_server_path(const ControlServer *s);
/* Shutdown: write what is queued for every client, as far as their sockets take it without blocking. */
void control_server_drain(ControlServer *s);

/* Queue one JSON line to the client. -EPIPE when it is gone, -ENOBUFS when it stopped reading. */
int control_conn_send(ControlConn *c, json_t *o);
/* Close once the queued output is written. */
void control_conn_finish(ControlConn *c);
/* The request's peer uid and pid (for logs). */
void control_conn_peer(const ControlConn *c, uid_t *ret_uid, pid_t *ret_pid);

/* Client side: connect to path (blocking). -ENOENT/-ECONNREFUSED when no daemon answers. */
int control_connect(const char *path, int *ret_fd);
