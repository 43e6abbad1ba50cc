/* runtime_identity.c: see runtime_identity.h. A runtime is what serves its socket AND runs the
 * runtime's executable; a listener in between (systemd's docker.socket, PID 1) is neither. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>

#include "probes/runtime/runtime.h"
#include "probes/runtime/runtime_identity.h"

const char *const runtime_exe_names_docker[] = { "dockerd", NULL };
const char *const runtime_exe_names_containerd[] = { "containerd", NULL };

static const char *const source_names[_IDENTITY_SOURCE_MAX] = {
        [IDENTITY_NONE] = "none",
        [IDENTITY_PIDFILE] = "pidfile",
        [IDENTITY_SOCKET_INODE] = "socket-inode",
        [IDENTITY_PEERCRED] = "peercred",
};

const char *runtime_identity_source_to_string(RuntimeIdentitySource s) {
        return s >= 0 && s < _IDENTITY_SOURCE_MAX ? source_names[s] : NULL;
}

bool exe_name_in(const char *exe, const char *const *names) {
        const char *base;
        if (!exe || !names)
                return false;
        base = strrchr(exe, '/');
        base = base ? base + 1 : exe;
        for (; *names; names++)
                if (streq(base, *names))
                        return true;
        return false;
}

/* Why nothing qualified, one clause per source tried. */
typedef struct Why {
        char text[512];
        size_t len;
} Why;

_printf_(2, 3) static void why_add(Why *w, const char *fmt, ...) {
        va_list ap;
        int n;
        if (w->len >= sizeof(w->text) - 1)
                return;
        if (w->len > 0) {
                n = snprintf(w->text + w->len, sizeof(w->text) - w->len, "; ");
                w->len = MIN(w->len + (size_t) MAX(n, 0), sizeof(w->text) - 1);
        }
        va_start(ap, fmt);
        n = vsnprintf(w->text + w->len, sizeof(w->text) - w->len, fmt, ap);
        va_end(ap);
        w->len = MIN(w->len + (size_t) MAX(n, 0), sizeof(w->text) - 1);
}

/* Fill id for pid when it is a runtime process: not PID 1, executable in names. */
static int qualify(const RuntimeIdentitySpec *spec, pid_t pid, RuntimeIdentity *id, char *exe_seen, size_t exe_size) {
        ProcInfo info;
        int r;

        exe_seen[0] = 0;
        if (pid <= 1)
                return -EPERM;
        r = proc_read_exe(spec->proc_root, pid, id->exe, sizeof(id->exe));
        if (r < 0)
                return r;
        snprintf(exe_seen, exe_size, "%s", id->exe);
        if (!exe_name_in(id->exe, spec->exe_names))
                return -EPERM;
        r = proc_read_info(spec->proc_root, pid, &info);
        if (r < 0)
                return r;
        id->pid = pid;
        id->start_ticks = info.start_ticks;
        return 0;
}

/* The path a socket was bound to, as the caller may spell it (/var/run is a link to /run). */
static bool same_socket_path(const char *bound, const char *wanted, const char *wanted_real) {
        if (streq(bound, wanted))
                return true;
        /* bind() made the last component, the socket itself, never a link: its name is the real
         * path's last name. Only those are resolved: a realpath() of every listening socket's path,
         * once per pull, was the largest share of the daemon's CPU preheating 2,000 tiny images. */
        const char *b = strrchr(bound, '/'), *w = wanted_real ? strrchr(wanted_real, '/') : NULL;
        if (!w || !streq(b ? b + 1 : bound, w + 1))
                return false;
        if (wanted_real) {
                char real[PATH_MAX];
                if (realpath(bound, real) && streq(real, wanted_real))
                        return true;
        }
        return false;
}

/* Inodes of listening unix sockets bound at path, from <proc>/net/unix. */
static int listening_inodes(const RuntimeIdentitySpec *spec, unsigned long *inodes, size_t max, size_t *ret_n) {
        char path[PATH_MAX], wanted_real[PATH_MAX], *line = NULL;
        _cleanup_fclose_ FILE *f = NULL;
        size_t n = 0, cap = 0;
        bool have_real;

        snprintf(path, sizeof(path), "%s/net/unix", spec->proc_root ?: "/proc");
        f = fopen(path, "re");
        if (!f)
                return -errno;
        have_real = realpath(spec->socket, wanted_real) != NULL;
        while (getline(&line, &cap, f) > 0) {
                unsigned long flags, inode;
                unsigned type, state;
                int off = 0;
                char *bound;

                /* Num RefCount Protocol Flags Type St Inode Path */
                if (sscanf(line, "%*s %*s %*s %lx %x %x %lu %n", &flags, &type, &state, &inode, &off) != 4 || off == 0)
                        continue;
                bound = line + off;
                bound[strcspn(bound, "\n")] = 0;
                if (!(flags & 0x10000) || !*bound) /* __SO_ACCEPTCON: a listener */
                        continue;
                if (!same_socket_path(bound, spec->socket, have_real ? wanted_real : NULL))
                        continue;
                if (n < max)
                        inodes[n++] = inode;
        }
        free(line);
        *ret_n = n;
        return 0;
}

static bool holds_inode(const RuntimeIdentitySpec *spec, pid_t pid, const unsigned long *inodes, size_t n) {
        char path[PATH_MAX];
        struct dirent *de;
        DIR *d;
        bool found = false;

        snprintf(path, sizeof(path), "%s/%d/fd", spec->proc_root ?: "/proc", (int) pid);
        d = opendir(path);
        if (!d)
                return false;
        while (!found && (de = readdir(d))) {
                char link[64], want[64];
                ssize_t len;
                if (de->d_name[0] == '.')
                        continue;
                len = readlinkat(dirfd(d), de->d_name, link, sizeof(link) - 1);
                if (len <= 0)
                        continue;
                link[len] = 0;
                for (size_t i = 0; i < n && !found; i++) {
                        snprintf(want, sizeof(want), "socket:[%lu]", inodes[i]);
                        found = streq(link, want);
                }
        }
        closedir(d);
        return found;
}

static pid_t read_pidfile(const char *path) {
        _cleanup_fclose_ FILE *f = fopen(path, "re");
        int pid;
        if (!f || fscanf(f, "%d", &pid) != 1 || pid <= 0)
                return 0;
        return pid;
}

/* The runtime process among those holding the socket: the executable is checked first, so only a
 * handful of fd directories are read on a node with thousands of processes. */
static int find_inode_holder(const RuntimeIdentitySpec *spec, const unsigned long *inodes, size_t n,
                             RuntimeIdentity *ret) {
        DIR *d = opendir(spec->proc_root ?: "/proc");
        struct dirent *de;
        int r = -ESRCH;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                char exe[256], *end;
                RuntimeIdentity id = {};
                long pid = strtol(de->d_name, &end, 10);
                if (*end || pid <= 1 || pid > INT32_MAX)
                        continue;
                if (qualify(spec, (pid_t) pid, &id, exe, sizeof(exe)) < 0 || !holds_inode(spec, (pid_t) pid, inodes, n))
                        continue;
                id.source = IDENTITY_SOCKET_INODE;
                *ret = id;
                r = 0;
                break;
        }
        closedir(d);
        return r;
}

int runtime_identity_resolve(const RuntimeIdentitySpec *spec, RuntimeIdentity *ret, char **ret_why) {
        unsigned long inodes[8];
        size_t n_inodes = 0;
        bool inodes_known;
        RuntimeIdentity id = {};
        char exe[256];
        Why why = {};
        pid_t pid;
        int r;

        if (!spec || !spec->socket || !spec->exe_names || !ret)
                return -EINVAL;
        *ret = (RuntimeIdentity) {};
        inodes_known = listening_inodes(spec, inodes, ELEMENTSOF(inodes), &n_inodes) >= 0 && n_inodes > 0;

        if (spec->pidfile) {
                pid = read_pidfile(spec->pidfile);
                if (pid == 0)
                        why_add(&why, "pid file %s: none", spec->pidfile);
                else if ((r = qualify(spec, pid, &id, exe, sizeof(exe))) < 0)
                        why_add(&why, "pid file %s: pid %d is %s", spec->pidfile, (int) pid,
                                r == -EPERM ? (*exe ? exe : "PID 1") : "gone");
                else if (inodes_known && !holds_inode(spec, pid, inodes, n_inodes))
                        why_add(&why, "pid file %s: pid %d does not serve %s", spec->pidfile, (int) pid, spec->socket);
                else {
                        id.source = IDENTITY_PIDFILE;
                        *ret = id;
                        return 0;
                }
        }

        if (inodes_known) {
                if (find_inode_holder(spec, inodes, n_inodes, &id) >= 0) {
                        *ret = id;
                        return 0;
                }
                why_add(&why, "socket %s: no process running %s holds it", spec->socket, spec->exe_names[0]);
        } else
                why_add(&why, "socket %s: not among the listening sockets", spec->socket);

        r = socket_peer_pid(spec->socket, &pid);
        if (r < 0)
                why_add(&why, "peer of %s: %s", spec->socket, strerror(-r));
        else if (qualify(spec, pid, &id, exe, sizeof(exe)) < 0)
                why_add(&why, "peer of %s is pid %d (%s), not %s", spec->socket, (int) pid,
                        pid == 1 ? "PID 1" : *exe ? exe : "unreadable", spec->exe_names[0]);
        else {
                id.source = IDENTITY_PEERCRED;
                *ret = id;
                return 0;
        }

        if (ret_why)
                *ret_why = strdup(why.text);
        return -ESRCH;
}

int runtime_identity_check(const RuntimeIdentitySpec *spec, const RuntimeIdentity *id) {
        char exe[256];
        ProcInfo info;
        int r;

        if (!spec || !id || id->pid <= 1)
                return -EINVAL;
        r = proc_read_info(spec->proc_root, id->pid, &info);
        if (r < 0)
                return -ESRCH;
        if (info.start_ticks != id->start_ticks)
                return -ESTALE;
        r = proc_read_exe(spec->proc_root, id->pid, exe, sizeof(exe));
        if (r < 0 || !exe_name_in(exe, spec->exe_names))
                return -ESTALE;
        return 0;
}
