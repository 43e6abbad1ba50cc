/* unix_socket.h: unix stream sockets by path (the runtimes' API sockets, the control socket). */
#pragma once

#include <sys/types.h>
#include <sys/un.h>
#include "basic/macro.h"

/* path as an AF_UNIX address: -EINVAL for NULL, -ENAMETOOLONG for a path that does not fit. */
int unix_sockaddr(const char *path, struct sockaddr_un *ret);
/* A connected SOCK_STREAM unix socket (close-on-exec). */
int unix_connect(const char *path, int *ret_fd);
/* Pid of the process that listens on a unix socket (SO_PEERCRED); never blocks (-EAGAIN when its
 * backlog is full). */
int socket_peer_pid(const char *path, pid_t *ret);
/* A listening SOCK_STREAM socket at path (non-blocking, close-on-exec), created with mode, its directory
 * made when missing. A socket file left by a process that died is replaced; -EADDRINUSE when something
 * answers there. */
int unix_socket_listen(const char *path, mode_t mode, int *ret_fd);
