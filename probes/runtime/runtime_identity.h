/* runtime_identity.h: which process IS the runtime (dockerd, containerd), proven rather than assumed:
 * a pid whose executable is the runtime's and that serves the configured socket. Owns nothing but
 * the answer; reads /proc (a variable root, for tests), never signals and never logs. */
#pragma once

#include <sys/types.h>
#include "probes/host/proc_sample.h"

typedef enum RuntimeIdentitySource {
        IDENTITY_NONE,
        IDENTITY_PIDFILE,       /* the configured pid file, confirmed by executable (and socket) */
        IDENTITY_SOCKET_INODE,  /* the process holding the socket's listening inode */
        IDENTITY_PEERCRED,      /* SO_PEERCRED of a connection, confirmed by executable */
        _IDENTITY_SOURCE_MAX,
} RuntimeIdentitySource;

const char *runtime_identity_source_to_string(RuntimeIdentitySource s);

typedef struct RuntimeIdentitySpec {
        const char *proc_root;           /* NULL = /proc */
        const char *pidfile;             /* NULL = none configured */
        const char *socket;              /* the unix socket the runtime serves */
        const char *const *exe_names;    /* basenames that count as the runtime: {"dockerd", NULL} */
} RuntimeIdentitySpec;

typedef struct RuntimeIdentity {
        pid_t pid;                       /* 0: none verified */
        uint64_t start_ticks;            /* /proc/PID/stat field 22 when verified */
        char exe[256];                   /* readlink of /proc/PID/exe, " (deleted)" dropped */
        RuntimeIdentitySource source;
} RuntimeIdentity;

extern const char *const runtime_exe_names_docker[];
extern const char *const runtime_exe_names_containerd[];

/* Find the runtime's main process, in order: the pid file, the holder of the socket's listening
 * inode, SO_PEERCRED. PID 1 and processes whose executable is not one of exe_names never count; a
 * pid file's process must also hold the socket when the socket's inode is known. 0 with *ret filled,
 * or -ESRCH with *ret_why (may be NULL) saying what was tried and why nothing qualified. */
int runtime_identity_resolve(const RuntimeIdentitySpec *spec, RuntimeIdentity *ret, char **ret_why);

/* Is id still that process (same pid, start time and executable name)? 0, or -ESTALE / -ESRCH. */
int runtime_identity_check(const RuntimeIdentitySpec *spec, const RuntimeIdentity *id);

/* Is basename(exe) one of names? */
bool exe_name_in(const char *exe, const char *const *names);
