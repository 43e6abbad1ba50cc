/* proc_fd.c: the walk over /proc/PID/fd that open_files.c and tcp_conn.c share. */
#include "probes/host/proc_fd.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "basic/macro.h"

int proc_fd_foreach(const char *proc_root, pid_t pid, proc_fd_cb_t cb, void *userdata) {
        char path[PATH_MAX];
        struct dirent *de;
        DIR *d;
        int r = 0;

        if (pid <= 0 || !cb)
                return -EINVAL;
        snprintf(path, sizeof(path), "%s/%d/fd", proc_root ?: "/proc", (int) pid);
        d = opendir(path);
        if (!d)
                return errno == ENOENT ? -ESRCH : -errno;
        while ((errno = 0, de = readdir(d))) {
                char target[PATH_MAX], *end = NULL;
                ssize_t len;
                long fd;

                if (de->d_name[0] < '0' || de->d_name[0] > '9')
                        continue;
                fd = strtol(de->d_name, &end, 10);
                if (*end != 0 || fd < 0 || fd > INT32_MAX)
                        continue;
                len = readlinkat(dirfd(d), de->d_name, target, sizeof(target) - 1);
                if (len < 0)
                        continue; /* closed since readdir */
                target[len] = 0;
                r = cb(dirfd(d), de->d_name, (int) fd, target, userdata);
                if (r < 0)
                        break;
        }
        if (r == 0 && errno != 0)
                r = errno == ENOENT ? -ESRCH : -errno;
        closedir(d);
        return r;
}
