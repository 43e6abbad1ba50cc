/* read_file.h: the one whole-file reader: config, preheat list, state, machine id, credentials,
 * hosts.toml and containerd's config.toml files all come in through it. No logging: callers word
 * their own messages. */
#pragma once

#include "basic/macro.h"

enum {
        /* The content is a secret (credentials): the buffer is sized once from fstat (max + 1 at most)
         * and never moved, what it held is zeroed on every failure, and a file that grew meanwhile is
         * judged on what fits. Anything but a regular file is refused with -EINVAL. */
        READ_FILE_SECRET = 1U << 0,
        /* Regular files only (anything else but a directory gives -EINVAL), opened non-blocking: a
         * FIFO or device named by someone else's config is refused, never waited on. */
        READ_FILE_REGULAR = 1U << 1,
};

/* Read a whole file, at most max bytes (-EFBIG beyond). *ret is NUL-terminated. A directory gives
 * -EISDIR. On failure *ret_step (when given) says what failed: "open", "stat" or "read". */
int read_file_full_step(const char *path, size_t max, unsigned flags, char **ret, size_t *ret_size,
                        const char **ret_step);
static inline int read_file_full(const char *path, size_t max, char **ret, size_t *ret_size) {
        return read_file_full_step(path, max, 0, ret, ret_size, NULL);
}
