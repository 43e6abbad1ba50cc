/* open_files.h: the regular files a process holds open under one directory, with their sizes now,
 * read from /proc/PID/fd (dockerd's in-flight layer downloads). Reads /proc only; never logs.
 *
 * dockerd (classic graphdriver store) writes each blob it downloads to a temp file made by
 * os.CreateTemp("", "GetImageBlob") (ioutil.TempFile in older releases), in distribution/pull_v2.go;
 * at start it points TMPDIR at <DockerRootDir>/tmp, or at $DOCKER_TMPDIR when that is set
 * (prepareTempDir in daemon/daemon.go). So open_files_under(NULL, dockerd, "<root>/tmp",
 * "GetImageBlob", ...) lists the downloads in flight, one file per layer, growing as bytes arrive.
 * On the containerd image store the blobs go to containerd's ingest instead, and none is listed. */
#pragma once

#include <sys/types.h>

#include "basic/macro.h"

typedef struct OpenFile {
        int fd;                  /* in the process that holds it */
        char *path;              /* as /proc/PID/fd names it, a " (deleted)" suffix dropped */
        bool deleted;            /* no name left (unlinked, or an O_TMPFILE) */
        uint64_t size;           /* st_size now, through the fd: right after unlink and across mount
                                  * namespaces, where the path would name another file or none */
        uint64_t inode;
} OpenFile;

/* The regular files pid holds open whose path is under dir (dir itself excluded; dir given without
 * a trailing slash or with one) and, when name_prefix is not NULL, whose basename starts with it.
 * In fd order, into *ret (free with open_files_free()). An fd closed between the readdir and its
 * stat is skipped. proc_root NULL = /proc. -ESRCH when pid is gone, -EACCES without ptrace-read
 * access to it (CAP_SYS_PTRACE for dockerd, see docs/security.md). */
int open_files_under(const char *proc_root, pid_t pid, const char *dir, const char *name_prefix, OpenFile **ret,
                     size_t *ret_n);
OpenFile *open_files_free(OpenFile *v, size_t n);

/* The prefix of dockerd's blob download temp files. */
#define OPEN_FILES_DOCKER_BLOB_PREFIX "GetImageBlob"
