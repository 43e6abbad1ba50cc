/* open_files.c: see open_files.h. One readdir of /proc/PID/fd, a readlink and a stat per fd. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>

#include "probes/host/open_files.h"

#define DELETED_SUFFIX " (deleted)"

OpenFile *open_files_free(OpenFile *v, size_t n) {
        for (size_t i = 0; v && i < n; i++)
                free(v[i].path);
        free(v);
        return NULL;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
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

int open_files_under(const char *proc_root, pid_t pid, const char *dir, const char *name_prefix, OpenFile **ret,
                     size_t *ret_n) {
        _cleanup_(closedirp) DIR *d = NULL;
        OpenFile *v = NULL;
        size_t n = 0, allocated = 0, dir_len;
        char path[PATH_MAX];
        struct dirent *de;
        int r = 0;

        if (pid <= 0 || !dir || !ret || !ret_n)
                return -EINVAL;
        dir_len = strlen(dir);
        while (dir_len > 0 && dir[dir_len - 1] == '/')
                dir_len--;

        snprintf(path, sizeof(path), "%s/%d/fd", proc_root ?: "/proc", (int) pid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((errno = 0, de = readdir(d))) {
                char target[PATH_MAX], *end = NULL;
                struct stat st;
                bool deleted;
                ssize_t len;
                long fd;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                fd = strtol(de->d_name, &end, 10);
                if (*end != 0 || fd < 0 || fd > INT32_MAX)
                        continue;
                len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (len < 0 || target[0] != '/')
                        continue; /* closed since readdir; or a socket, pipe or anon inode */
                target[len] = 0;
                /* stat through the magic link: the open file itself, wherever its name went */
                if (fstatat(dirfd(d), de->d_name, &st, 0) < 0 || !S_ISREG(st.st_mode))
                        continue;
                deleted = st.st_nlink == 0;
                if (deleted && (size_t) len >= strlen(DELETED_SUFFIX) &&
                    streq(target + len - strlen(DELETED_SUFFIX), DELETED_SUFFIX))
                        target[len - strlen(DELETED_SUFFIX)] = 0;
                if (!path_matches(target, dir, dir_len, name_prefix))
                        continue;

                if (n == allocated) {
                        size_t a = MAX(allocated * 2, (size_t) 8);
                        OpenFile *nv = reallocarray(v, a, sizeof(OpenFile));
                        if (!nv) {
                                r = -ENOMEM;
                                break;
                        }
                        v = nv;
                        allocated = a;
                }
                v[n] = (OpenFile) { .fd = (int) fd, .path = strdup(target), .deleted = deleted,
                                    .size = (uint64_t) st.st_size, .inode = st.st_ino };
                if (!v[n].path) {
                        r = -ENOMEM;
                        break;
                }
                n++;
        }
        if (r == 0 && errno != 0)
                r = errno == ENOENT ? -ESRCH : -errno;
        if (r < 0) {
                open_files_free(v, n);
                return r;
        }
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
