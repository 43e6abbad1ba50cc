/* unix_socket.c: unix stream sockets by path: the address, a connect, and who listens. */
#include "basic/unix_socket.h"

#include <sys/socket.h>

int unix_sockaddr(const char *path, struct sockaddr_un *ret) {
        if (!path)
                return -EINVAL;
        if (strlen(path) >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;
        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        strcpy(ret->sun_path, path);
        return 0;
}

int unix_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa;
        _cleanup_close_ int fd = -1;
        int r = unix_sockaddr(path, &sa);

        if (r < 0)
                return r;
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int socket_peer_pid(const char *path, pid_t *ret) {
        struct sockaddr_un sa;
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        _cleanup_close_ int fd = -1;
        int r = unix_sockaddr(path, &sa);

        if (r < 0)
                return r;
        /* Non-blocking: a listener whose backlog is full (a hung service behind its socket) makes
         * connect() fail with EAGAIN at once instead of stalling the event loop. */
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
                return -errno;
        if (cred.pid <= 0)
                return -ESRCH;
        *ret = cred.pid;
        return 0;
}
