/* atomic_file.c: the temp-fsync-rename dance. The temp name carries the pid and a counter so two
 * writers (a reload racing a save) never share one; a failed write leaves no temp file behind. */
#include "basic/atomic_file.h"

#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

static int fsync_dir_of(const char *path) {
        _cleanup_free_ char *copy = strdup(path);
        _cleanup_close_ int fd = -1;

        if (!copy)
                return -ENOMEM;
        fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

static int write_file(const char *path, const void *data, size_t size, mode_t mode, bool sync) {
        static unsigned counter;
        _cleanup_free_ char *tmp = NULL;
        _cleanup_close_ int fd = -1;
        const char *p = data;
        int r;

        if (!path || (!data && size > 0))
                return -EINVAL;
        if (asprintf(&tmp, "%s.tmp.%d.%u", path, (int) getpid(), __atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED)) < 0)
                return -ENOMEM;
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, mode);
        if (fd < 0)
                return -errno;
        /* open() honours the umask; the mode asked for is the mode wanted (metrics are 0644). */
        if (fchmod(fd, mode) < 0)
                goto fail;
        while (size > 0) {
                ssize_t n = write(fd, p, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        goto fail;
                }
                p += n;
                size -= (size_t) n;
        }
        if (sync && fsync(fd) < 0)
                goto fail;
        if (close(TAKE_FD(fd)) < 0)
                goto fail;
        if (rename(tmp, path) < 0)
                goto fail;
        return sync ? fsync_dir_of(path) : 0;
fail:
        r = -errno;
        (void) unlink(tmp);
        return r;
}

int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode) {
        return write_file(path, data, size, mode, true);
}

int write_file_replace(const char *path, const void *data, size_t size, mode_t mode) {
        return write_file(path, data, size, mode, false);
}

int mkdir_p(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        struct stat st;

        if (!p)
                return -ENOMEM;
        for (char *s = p + 1;; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char c = *s;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = c;
                if (c == 0)
                        break;
        }
        if (stat(path, &st) < 0)
                return -errno;
        return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
}
