/* proc_fd.h: one walk over a process's open fds (/proc/PID/fd), each with the target its link names.
 * Owns the walk only: what an fd means (a socket, a file under a dir) is the caller's. */
#pragma once

#include <sys/types.h>

/* cb(dirfd, name, fd, target, userdata) for every numeric entry of <proc_root>/PID/fd whose link can be
 * read (an fd closed since the readdir is skipped); dirfd and name let the caller fstatat() the open
 * file itself. cb returns 0 to go on, < 0 to stop with that error. proc_root NULL = /proc. 0, -ESRCH
 * when pid is gone, another -errno, or cb's error. */
typedef int (*proc_fd_cb_t)(int dirfd, const char *name, int fd, const char *target, void *userdata);
int proc_fd_foreach(const char *proc_root, pid_t pid, proc_fd_cb_t cb, void *userdata);
