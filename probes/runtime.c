/* runtime.c: what the runtime drivers share: error class names and finding the runtime's pid. */
#include "probes/runtime.h"

#include <sys/socket.h>
#include <sys/un.h>

static const char *const error_class_names[_ERROR_CLASS_MAX] = {
        [ERROR_NONE] = "none",
        [ERROR_TRANSIENT] = "transient",
        [ERROR_PERMANENT] = "permanent",
        [ERROR_CANCELLED] = "cancelled",
};

const char *error_class_to_string(ErrorClass c) {
        return c >= 0 && c < _ERROR_CLASS_MAX ? error_class_names[c] : NULL;
}

int unix_connect(const char *path, int *ret_fd) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        _cleanup_close_ int fd = -1;

        if (!path)
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sizeof(sa)) < 0)
                return -errno;
        *ret_fd = TAKE_FD(fd);
        return 0;
}

int socket_peer_pid(const char *path, pid_t *ret) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        struct ucred cred = {};
        socklen_t len = sizeof(cred);
        _cleanup_close_ int fd = -1;

        if (!path)
                return -EINVAL;
        if (strlen(path) >= sizeof(sa.sun_path))
                return -ENAMETOOLONG;
        strcpy(sa.sun_path, path);
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
