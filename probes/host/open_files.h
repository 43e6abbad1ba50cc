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

/* One walk of <proc_root>/PID/fd for two callers: the regular files under dir (as open_files_under(),
 * into *ret_files) and the socket fds (as tcp_socket_fds(), into *ret_socks: fd and socket inode). The
 * node guard takes both each sample (the blobs a runtime downloads or unpacks, and the sockets its
 * registry connections are), and a runtime holds hundreds of fds: one readdir and one readlink each,
 * not two. Free the files with open_files_free(), the sockets with free(). Errors as open_files_under(). */
typedef struct TcpSockFd TcpSockFd;
int open_files_and_sockets(const char *proc_root, pid_t pid, const char *dir, const char *name_prefix,
                           OpenFile **ret_files, size_t *ret_n_files, TcpSockFd **ret_socks, size_t *ret_n_socks);

/* The prefix of dockerd's blob download temp files. */
#define OPEN_FILES_DOCKER_BLOB_PREFIX "GetImageBlob"
