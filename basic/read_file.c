/* read_file.c: whole files into memory, bounded, with the failing step named for the caller's message. */
#include "basic/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>

static int fail(const char **ret_step, const char *step, int r) {
        if (ret_step)
                *ret_step = step;
        return r;
}

static void free_secret(char *buf, size_t allocated) {
        if (buf)
                explicit_bzero(buf, allocated);
        free(buf);
}

int read_file_full_step(const char *path, size_t max, unsigned flags, char **ret, size_t *ret_size,
                        const char **ret_step) {
        bool secret = flags & READ_FILE_SECRET;
        _cleanup_close_ int fd = -1;
        char *buf = NULL;
        size_t n = 0, cap = 0;
        struct stat st;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | (flags & READ_FILE_REGULAR ? O_NONBLOCK : 0));
        if (fd < 0)
                return fail(ret_step, "open", -errno);
        if (fstat(fd, &st) < 0)
                return fail(ret_step, "stat", -errno);
        if (S_ISDIR(st.st_mode))
                return fail(ret_step, "stat", -EISDIR);
        if ((flags & READ_FILE_REGULAR) && !S_ISREG(st.st_mode))
                return fail(ret_step, "stat", -EINVAL);
        if (secret) {
                if (!S_ISREG(st.st_mode))
                        return fail(ret_step, "stat", -EINVAL);
                if ((uint64_t) st.st_size > max)
                        return fail(ret_step, "stat", -EFBIG);
                cap = (size_t) st.st_size + 1;
                buf = malloc(cap);
                if (!buf)
                        return -ENOMEM;
        }
        for (;;) {
                if (!secret && n + 4096 + 1 > cap) {
                        size_t want = MAX(cap * 2, (size_t) 8192);
                        char *b = realloc(buf, want);
                        if (!b) {
                                free(buf);
                                return -ENOMEM;
                        }
                        buf = b;
                        cap = want;
                }
                ssize_t k = read(fd, buf + n, cap - n - 1);
                if (k < 0) {
                        int e = errno;
                        if (e == EINTR)
                                continue;
                        secret ? free_secret(buf, cap) : free(buf);
                        return fail(ret_step, "read", -e);
                }
                if (k == 0)
                        break;
                n += (size_t) k;
                if (n > max) {
                        secret ? free_secret(buf, cap) : free(buf);
                        return fail(ret_step, "read", -EFBIG);
                }
                if (secret && n + 1 == cap)
                        break; /* grew after fstat: what fits is what we judge */
        }
        buf[n] = 0;
        *ret = buf;
        if (ret_size)
                *ret_size = n;
        return 0;
}
