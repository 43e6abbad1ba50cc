/* imagefs.c: where a runtime keeps its images and how full that filesystem is. CRI's ImageFsInfo
 * names the snapshotter root but no free space, and dockerd's /info names its root and nothing about
 * the disk, so both end in a statvfs of the path they name. */
#include "probes/imagefs.h"

#include <stdio.h>
#include <sys/statvfs.h>

#include "probes/containerd.h"
#include "probes/docker.h"

void imagefs_done(ImageFs *fs) {
        if (!fs)
                return;
        free(fs->path);
        *fs = (ImageFs) {};
}

int imagefs_stat(const char *path, ImageFs *ret) {
        struct statvfs v;
        char *copy;

        if (!path)
                return -EINVAL;
        if (statvfs(path, &v) < 0)
                return -errno;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        *ret = (ImageFs) {
                .path = copy,
                .capacity = (uint64_t) v.f_blocks * v.f_frsize,
                .available = (uint64_t) v.f_bavail * v.f_frsize,
                .used = (uint64_t) (v.f_blocks - v.f_bfree) * v.f_frsize,
        };
        return 0;
}

unsigned imagefs_percent(uint64_t used, uint64_t capacity) {
        if (capacity == 0)
                return 0;
        return (unsigned) ((used * 100.0L + capacity - 1) / capacity);
}

int imagefs_query(const Config *config, RuntimeKind runtime, ImageFs *ret, char **ret_message) {
        _cleanup_free_ char *path = NULL, *driver = NULL;
        int r;

        if (runtime == RUNTIME_CONTAINERD) {
                const char *sock = config->containerd_socket ?: CONTAINERD_DEFAULT_SOCKET;
                r = containerd_imagefs_info(sock, &path, NULL, ret_message);
                if (r < 0)
                        return r;
        } else {
                const char *sock = config->docker_socket ?: "/var/run/docker.sock";
                r = docker_info(sock, &path, &driver);
                if (r < 0) {
                        if (ret_message && asprintf(ret_message, "GET /info on %s: %s", sock, strerror(-r)) < 0)
                                *ret_message = NULL;
                        return r;
                }
        }
        r = imagefs_stat(path, ret);
        if (r < 0 && ret_message && asprintf(ret_message, "statvfs %s: %s", path, strerror(-r)) < 0)
                *ret_message = NULL;
        return r;
}
