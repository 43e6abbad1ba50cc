/* atomic_file.h: replace a file's whole content at once (temp file beside it, fsync, rename, fsync of
 * the directory), so a reader or a crash sees the old file or the new one, never a torn one. No logging. */
#pragma once

#include <sys/types.h>
#include "basic/macro.h"

/* Write data to path atomically with mode. The directory must exist. 0 or -errno. Safe from two
 * threads at once (the state writer's and the loop's). */
int write_file_atomic(const char *path, const void *data, size_t size, mode_t mode);
/* The same rename, so readers never see a torn file, without the two fsyncs: for files rebuilt from
 * memory after a crash anyway (metrics), whose fsyncs only held the event loop. */
int write_file_replace(const char *path, const void *data, size_t size, mode_t mode);

/* mkdir -p of path itself with mode for the directories created. 0 or -errno. */
int mkdir_p(const char *path, mode_t mode);

/* The reader is read_file.h's read_file_full(). */
#include "basic/read_file.h"
