/* unix_socket.c: unix stream sockets by path: the address, a connect, and who listens. */
#include "basic/unix_socket.h"

#include <libgen.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/atomic_file.h"

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

int unix_socket_listen(const char *path, mode_t mode, int *ret_fd) {
        struct sockaddr_un sa;
        _cleanup_free_ char *dir = strdup(path ?: "");
        _cleanup_close_ int fd = -1;
        mode_t old;
        int r, probe;

        if (!dir)
                return -ENOMEM;
        r = unix_sockaddr(path, &sa);
        if (r < 0)
                return r;
        r = mkdir_p(dirname(dir), 0755);
        if (r < 0)
                return r;
        /* A socket file left by a daemon that died is replaced; one that answers is not ours to take. */
        if (unix_connect(path, &probe) >= 0) {
                close(probe);
                return -EADDRINUSE;
        }
        (void) unlink(path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        old = umask(0777 & ~mode); /* created with mode: there is no moment it is open to others */
        r = bind(fd, (struct sockaddr *) &sa, sizeof(sa));
        umask(old);
        if (r < 0)
                return -errno;
        if (chmod(path, mode) < 0 || listen(fd, 128) < 0) {
                r = -errno;
                (void) unlink(path);
                return r;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}
