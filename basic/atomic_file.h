/* atomic_file.h: replace a file's whole content at once (temp file beside it, fsync, rename, fsync of
 * the directory), so a reader or a crash sees the old file or the new one, never a torn one. No logging. */
#pragma once

#include <sys/types.h>
#include "basic/macro.h"

/* Write data to path atomically with mode. The directory must exist. 0 or -errno. */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);

/* mkdir -p of path itself with mode for the directories created. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* The reader is read_file.h's read_file_full(). */
#include "basic/read_file.h"
