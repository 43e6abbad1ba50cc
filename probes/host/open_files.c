/* open_files.c: see open_files.h. One readdir of /proc/PID/fd, a readlink and a stat per fd. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "probes/host/open_files.h"
#include "probes/host/proc_fd.h"
#include "probes/host/tcp_conn.h"

#define DELETED_SUFFIX " (deleted)"

OpenFile *open_files_free(OpenFile *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i].path);
        free(v);
        return NULL;
}

/* Is path strictly below dir (dir_len bytes, no trailing slash), with a basename starting with prefix? */
static bool path_matches(const char *path, const char *dir, size_t dir_len, const char *prefix) {
        const char *base;

        if (strncmp(path, dir, dir_len) != 0 || path[dir_len] != '/' || path[dir_len + 1] == 0)
                return false;
        if (!prefix)
                return true;
        base = strrchr(path, '/') + 1;
        return startswith(base, prefix);
}

typedef struct Under {
        const char *dir, *prefix;
        size_t dir_len;
        OpenFile *v;
        size_t n, allocated;
        bool sockets;            /* collect the socket fds too */
        TcpSockFd *socks;
        size_t n_socks, allocated_socks;
} Under;

static int take_socket(Under *u, int fd, const char *target) {
        uint64_t ino;

        if (tcp_socket_link_parse(target, &ino) < 0)
                return 0;
        if (u->n_socks == u->allocated_socks) {
                size_t a = MAX(u->allocated_socks * 2, (size_t) 16);
                TcpSockFd *nv = reallocarray(u->socks, a, sizeof(TcpSockFd));
                if (!nv)
                        return -ENOMEM;
                u->socks = nv;
                u->allocated_socks = a;
        }
        u->socks[u->n_socks++] = (TcpSockFd) { .fd = fd, .inode = ino };
        return 0;
}

static int take_file(int dirfd, const char *name, int fd, const char *target_in, void *userdata) {
        Under *u = userdata;
        char target[PATH_MAX];
        struct stat st;
        size_t len = strlen(target_in);
        bool deleted;

        if (target_in[0] != '/')
                return u->sockets ? take_socket(u, fd, target_in) : 0; /* a socket, pipe or anon inode */
        snprintf(target, sizeof(target), "%s", target_in);
        /* stat through the magic link: the open file itself, wherever its name went */
        if (fstatat(dirfd, name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                return 0;
        deleted = st.st_nlink == 0;
        if (deleted && len >= strlen(DELETED_SUFFIX) && streq(target + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX))
                target[len - strlen(DELETED_SUFFIX)] = 0;
        if (!path_matches(target, u->dir, u->dir_len, u->prefix))
                return 0;
        if (u->n == u->allocated) {
                size_t a = MAX(u->allocated * 2, (size_t) 8);
                OpenFile *nv = reallocarray(u->v, a, sizeof(OpenFile));
                if (!nv)
                        return -ENOMEM;
                u->v = nv;
                u->allocated = a;
        }
        u->v[u->n] = (OpenFile) { .fd = fd, .path = strdup(target), .deleted = deleted, .size = (uint64_t) st.st_size,
                                  .inode = st.st_ino };
        if (!u->v[u->n].path)
                return -ENOMEM;
        u->n++;
        return 0;
}

static int scan(const char *proc_root, pid_t pid, Under *u, OpenFile **ret, size_t *ret_n) {
        OpenFile *v;
        size_t n;
        int r;

        u->dir_len = strlen(u->dir);
        while (u->dir_len > 0 && u->dir[u->dir_len - 1] == '/')
                u->dir_len--;
        r = proc_fd_foreach(proc_root, pid, take_file, u);
        if (r < 0) {
                open_files_free(u->v, u->n);
                free(u->socks);
                return r;
        }
        v = u->v;
        n = u->n;
        /* readdir of /proc/PID/fd is in fd order already; a fake tree need not be. */
        for (size_t i = 1; i < n; i++)
                for (size_t j = i; j > 0 && v[j - 1].fd > v[j].fd; j--) {
                        OpenFile t = v[j];
                        v[j] = v[j - 1];
                        v[j - 1] = t;
                }
        *ret = v;
        *ret_n = n;
        return 0;
}

int open_files_under(const char *proc_root, pid_t pid, const char *dir, const char *name_prefix, OpenFile **ret,
                     size_t *ret_n) {
        Under u = { .dir = dir, .prefix = name_prefix };

        if (pid <= 0 || !dir || !ret || !ret_n)
                return -EINVAL;
        return scan(proc_root, pid, &u, ret, ret_n);
}

int open_files_and_sockets(const char *proc_root, pid_t pid, const char *dir, const char *name_prefix,
                           OpenFile **ret_files, size_t *ret_n_files, TcpSockFd **ret_socks, size_t *ret_n_socks) {
        Under u = { .dir = dir, .prefix = name_prefix, .sockets = true };
        int r;

        if (pid <= 0 || !dir || !ret_files || !ret_n_files || !ret_socks || !ret_n_socks)
                return -EINVAL;
        r = scan(proc_root, pid, &u, ret_files, ret_n_files);
        if (r < 0)
                return r;
        *ret_socks = u.socks;
        *ret_n_socks = u.n_socks;
        return 0;
}
