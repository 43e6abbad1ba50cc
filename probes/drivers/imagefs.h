/* imagefs.h: the runtime's image filesystem, measured: where it is (dockerd's DockerRootDir from /info,
 * containerd's snapshotter root from CRI ImageFsInfo) and its size and free space (statvfs). Facts only;
 * it never decides and never logs. */
#pragma once

#include "config/config.h"
#include "probes/runtime/runtime.h"

typedef struct ImageFs {
        char *path;               /* the directory measured: DockerRootDir or the CRI mountpoint */
        uint64_t capacity;        /* bytes of the filesystem holding path */
        uint64_t available;       /* bytes an unprivileged writer could still use (f_bavail) */
        uint64_t used;            /* capacity minus free blocks (f_bfree), as df counts it */
} ImageFs;

void imagefs_done(ImageFs *fs);

/* statvfs(path) into the byte figures; path is copied. */
int imagefs_stat(const char *path, ImageFs *ret);

/* Ask a runtime where its images live, on the curl glue: done gets 0 with the directory as text, or
 * -errno with one line naming the socket. The caller measures it with imagefs_stat(). _cri asks CRI
 * ImageFsInfo on config's containerd socket, _engine GET /info on dockerd's; each is a driver's
 * imagefs_dir (runtime.h), and imagefs_locate() (runtime_drivers.h) picks by kind. */
int imagefs_locate_cri(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                       RuntimeOp **ret);
int imagefs_locate_engine(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                          RuntimeOp **ret);
typedef int (*imagefs_locate_t)(CurlGlue *glue, const Config *config, RuntimeKind runtime, runtime_op_done_t done,
                                void *userdata, RuntimeOp **ret);

/* Percent of capacity used, rounded up (0 when capacity is 0). */
unsigned imagefs_percent(uint64_t used, uint64_t capacity);
