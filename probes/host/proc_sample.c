/* proc_sample.c: see proc_sample.h. The runtime's subtree only, found through each thread's children
 * file; where the kernel has none, one readdir of /proc with a stat of everything. io for the tree. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stddef.h>
#include <sys/types.h>

#include "probes/host/proc_sample.h"

/* stat lines are ~300 bytes; only the first 22 fields are needed, so a cut tail does no harm. */
#define STAT_BUF 1024
#define IO_BUF 512

typedef struct Entries {
        ProcInfo *v;
        size_t n, allocated;
} Entries;

static void entries_done(Entries *e) { free(e->v); }

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static uint64_t clock_ticks(void) {
        static uint64_t cached;
        if (cached == 0) {
                long t = sysconf(_SC_CLK_TCK);
                cached = t > 0 ? (uint64_t) t : 100;
        }
        return cached;
}

static uint64_t ticks_to_usec(uint64_t ticks) {
        uint64_t hz = clock_ticks();
        return ticks / hz * USEC_PER_SEC + ticks % hz * USEC_PER_SEC / hz;
}

/* Reads at most size-1 bytes of dirfd/path in one read() (procfs renders these files whole) and
 * NUL-terminates. Returns the length or a negative errno. */
static ssize_t read_small(int dirfd, const char *path, char *buf, size_t size) {
        _cleanup_close_ int fd = -1;
        ssize_t n;

        fd = openat(dirfd, path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        n = read(fd, buf, size - 1);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        return n;
}

static bool parse_u64(const char *s, char **end, uint64_t *ret) {
        if (!isdigit((unsigned char) *s))
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, end, 10);
        if (errno != 0)
                return false;
        *ret = v;
        return true;
}

/* "pid (comm) S ppid ..." where comm may hold spaces and parentheses: it ends at the LAST ')'. */
static int parse_stat(const char *buf, ProcInfo *p) {
        const char *open_paren = strchr(buf, '('), *close_paren = strrchr(buf, ')'), *s;
        uint64_t ppid = 0, utime = 0, stime = 0, start = 0;
        size_t len;

        if (!open_paren || !close_paren || close_paren < open_paren)
                return -EBADMSG;
        len = MIN((size_t) (close_paren - open_paren - 1), sizeof(p->comm) - 1);
        memcpy(p->comm, open_paren + 1, len);
        p->comm[len] = 0;

        s = close_paren + 1;
        /* Field 3 (state) is index 0 here; ppid is 4, utime 14, stime 15, starttime 22. */
        for (unsigned field = 3; field <= 22; field++) {
                char *end = NULL;

                while (*s == ' ')
                        s++;
                if (*s == 0 || *s == '\n')
                        return -EBADMSG;
                if (field == 3)
                        p->state = *s;
                else if (field == 4 || field == 14 || field == 15 || field == 22) {
                        uint64_t v;
                        if (!parse_u64(s, &end, &v))
                                return -EBADMSG;
                        if (field == 4)
                                ppid = v;
                        else if (field == 14)
                                utime = v;
                        else if (field == 15)
                                stime = v;
                        else
                                start = v;
                        s = end;
                        continue;
                }
                while (*s != ' ' && *s != 0 && *s != '\n')
                        s++;
        }

        if (ppid > INT32_MAX)
                return -EBADMSG;
        p->ppid = (pid_t) ppid;
        p->cpu_usec = ticks_to_usec(utime + stime);
        p->start_ticks = start;
        return 0;
}

static void read_io(int proc_fd, ProcInfo *p) {
        char path[32], buf[IO_BUF];
        unsigned seen = 0;

        p->io_ok = false;
        snprintf(path, sizeof(path), "%d/io", (int) p->pid);
        if (read_small(proc_fd, path, buf, sizeof(buf)) < 0)
                return;

        static const struct {
                const char *key;
                size_t offset;
        } keys[] = {
                { "rchar: ", offsetof(ProcInfo, rchar) },
                { "wchar: ", offsetof(ProcInfo, wchar) },
                { "read_bytes: ", offsetof(ProcInfo, read_bytes) },
                { "write_bytes: ", offsetof(ProcInfo, write_bytes) },
        };
        for (char *line = buf; *line;) {
                char *eol = strchrnul(line, '\n');

                for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                        if (startswith(line, keys[i].key)) {
                                uint64_t v;
                                if (parse_u64(line + strlen(keys[i].key), NULL, &v)) {
                                        memcpy((char *) p + keys[i].offset, &v, sizeof(v));
                                        seen |= 1U << i;
                                }
                                break;
                        }
                line = *eol ? eol + 1 : eol;
        }
        p->io_ok = seen == (1U << ELEMENTSOF(keys)) - 1;
}

/* A re-exec through /proc/self/exe names the process "exe"; argv[0] says what it is. */
static void fix_exe_comm(int proc_fd, ProcInfo *p) {
        char path[32], buf[64];
        const char *base;

        if (!streq(p->comm, "exe"))
                return;
        snprintf(path, sizeof(path), "%d/cmdline", (int) p->pid);
        if (read_small(proc_fd, path, buf, sizeof(buf)) <= 0 || buf[0] == 0)
                return;
        base = strrchr(buf, '/');
        base = base ? base + 1 : buf;
        if (*base) {
                size_t len = strnlen(base, sizeof(p->comm) - 1);
                memcpy(p->comm, base, len);
                p->comm[len] = 0;
        }
}

static int entries_push(Entries *e, const ProcInfo *p) {
        if (e->n == e->allocated) {
                size_t a = MAX(e->allocated * 2, (size_t) 256);
                ProcInfo *v = reallocarray(e->v, a, sizeof(ProcInfo));
                if (!v)
                        return -ENOMEM;
                e->v = v;
                e->allocated = a;
        }
        e->v[e->n++] = *p;
        return 0;
}

static int cmp_ppid(const void *a, const void *b) {
        pid_t x = ((const ProcInfo *) a)->ppid, y = ((const ProcInfo *) b)->ppid;
        return (x > y) - (x < y);
}

/* First index in v (sorted by ppid) whose ppid is >= ppid. */
static size_t lower_bound_ppid(const ProcInfo *v, size_t n, pid_t ppid) {
        size_t lo = 0, hi = n;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (v[mid].ppid < ppid)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static bool is_pid_name(const char *s) {
        if (!*s)
                return false;
        for (; *s; s++)
                if (*s < '0' || *s > '9')
                        return false;
        return true;
}

/* The children of pid, from every thread's task/TID/children (a child is listed under the thread that
 * forked it; Go forks from any thread), appended to *v. -ENOTSUP when the kernel has no such file
 * (CONFIG_PROC_CHILDREN off, or a fake tree without it), -ESRCH when pid is gone. */
static int read_children(int proc_fd, pid_t pid, pid_t **v, size_t *n, size_t *allocated) {
        _cleanup_(closedirp) DIR *tasks = NULL;
        struct dirent *de;
        char path[300];
        int task_fd;

        snprintf(path, sizeof(path), "%d/task", (int) pid);
        task_fd = openat(proc_fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (task_fd < 0)
                return errno == ENOENT ? -ENOTSUP : -errno;
        tasks = fdopendir(task_fd);
        if (!tasks) {
                int r = -errno;
                close(task_fd);
                return r;
        }
        while ((errno = 0, de = readdir(tasks))) {
                _cleanup_close_ int fd = -1;
                _cleanup_free_ char *text = NULL;
                size_t len = 0, size = 0;
                ssize_t k;

                if (!is_pid_name(de->d_name))
                        continue;
                snprintf(path, sizeof(path), "%s/children", de->d_name);
                fd = openat(dirfd(tasks), path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
                if (fd < 0) {
                        if (errno == ENOENT && faccessat(dirfd(tasks), de->d_name, F_OK, 0) >= 0)
                                return -ENOTSUP; /* the thread is there, its children file is not */
                        continue;                /* the thread ended since the readdir */
                }
                /* procfs renders it whole; a long list comes in more than one read */
                do {
                        if (size - len < 512) {
                                char *nt = realloc(text, size = MAX(size * 2, (size_t) 1024));
                                if (!nt)
                                        return -ENOMEM;
                                text = nt;
                        }
                        k = read(fd, text + len, size - len - 1);
                        if (k > 0)
                                len += (size_t) k;
                } while (k > 0);
                if (!text)
                        continue;
                text[len] = 0;
                for (char *s = text, *end; *s; s = end) {
                        unsigned long c = strtoul(s, &end, 10);
                        if (end == s) {
                                end = s + 1; /* a separator */
                                continue;
                        }
                        if (c == 0 || c > INT32_MAX)
                                continue;
                        if (*n == *allocated) {
                                size_t na = MAX(*allocated * 2, (size_t) 16);
                                pid_t *nv = reallocarray(*v, na, sizeof(pid_t));
                                if (!nv)
                                        return -ENOMEM;
                                *v = nv;
                                *allocated = na;
                        }
                        (*v)[(*n)++] = (pid_t) c;
                }
        }
        if (errno != 0)
                return errno == ENOENT ? -ESRCH : -errno;
        return 0;
}

static int cmp_pid(const void *a, const void *b) {
        pid_t x = *(const pid_t *) a, y = *(const pid_t *) b;
        return (x > y) - (x < y);
}

/* The subtree of root_pid alone, breadth-first, each parent's children in pid order: its cost is the
 * subtree's (a stat per process, a children file per thread), not the node's. -ENOTSUP without
 * children files (the caller walks /proc instead). */
static int sample_subtree(int proc_fd, pid_t root_pid, ProcTree *t, ProcInfo *desc) {
        _cleanup_free_ pid_t *kids = NULL;
        size_t n_kids = 0, allocated = 0;
        char path[64], buf[STAT_BUF];
        ssize_t k;
        int r;

        snprintf(path, sizeof(path), "%d/stat", (int) root_pid);
        k = read_small(proc_fd, path, buf, sizeof(buf));
        if (k < 0)
                return k == -ENOENT ? -ESRCH : (int) k;
        t->n_scanned++;
        t->root = (ProcInfo) { .pid = root_pid };
        r = parse_stat(buf, &t->root);
        if (r < 0)
                return r;
        for (size_t q = 0; q <= t->n_desc && !t->truncated; q++) {
                pid_t parent = q == 0 ? root_pid : desc[q - 1].pid;

                n_kids = 0;
                r = read_children(proc_fd, parent, &kids, &n_kids, &allocated);
                if (r == -ENOTSUP && q == 0)
                        return r;
                if (r < 0)
                        continue; /* a descendant gone since: no children to follow */
                if (n_kids > 1) /* kids is NULL while no process had children yet: qsort wants an array */
                        qsort(kids, n_kids, sizeof(pid_t), cmp_pid);
                for (size_t i = 0; i < n_kids; i++) {
                        ProcInfo p = { .pid = kids[i] };
                        if (kids[i] == root_pid)
                                continue;
                        snprintf(path, sizeof(path), "%d/stat", (int) kids[i]);
                        if (read_small(proc_fd, path, buf, sizeof(buf)) < 0)
                                continue; /* exited since */
                        t->n_scanned++;
                        if (parse_stat(buf, &p) < 0 || p.ppid != parent)
                                continue; /* unparsable, or reparented since */
                        if (t->n_desc >= PROC_TREE_MAX_DESC) {
                                t->truncated = true;
                                break;
                        }
                        desc[t->n_desc++] = p;
                }
        }
        return 0;
}

/* Every process's stat, then the tree from their ppids. */
static int sample_walk(DIR *d, pid_t root_pid, ProcTree *t, ProcInfo *desc) {
        _cleanup_(entries_done) Entries all = {};
        struct dirent *de;
        bool have_root = false;
        int root_r = -ESRCH, proc_fd = dirfd(d), r;

        for (errno = 0; (de = readdir(d)); errno = 0) {
                char path[300], buf[STAT_BUF];
                ProcInfo p = {};
                unsigned long pid;

                if (!is_pid_name(de->d_name))
                        continue;
                pid = strtoul(de->d_name, NULL, 10);
                if (pid == 0 || pid > INT32_MAX)
                        continue;
                p.pid = (pid_t) pid;

                snprintf(path, sizeof(path), "%s/stat", de->d_name);
                /* A process that exited since readdir is simply not part of this sample. */
                if (read_small(proc_fd, path, buf, sizeof(buf)) < 0)
                        continue;
                t->n_scanned++;
                r = parse_stat(buf, &p);
                if (p.pid == root_pid) {
                        root_r = r;
                        if (r >= 0) {
                                t->root = p;
                                have_root = true;
                        }
                        continue;
                }
                if (r < 0)
                        continue;
                r = entries_push(&all, &p);
                if (r < 0)
                        return r;
        }
        if (errno != 0)
                return -errno;
        if (!have_root)
                return root_r;

        /* Breadth-first over children; the output array doubles as the queue. */
        qsort(all.v, all.n, sizeof(ProcInfo), cmp_ppid);
        for (size_t q = 0;; q++) {
                pid_t parent = q == 0 ? root_pid : desc[q - 1].pid;

                if (q > t->n_desc)
                        break;
                for (size_t i = lower_bound_ppid(all.v, all.n, parent); i < all.n && all.v[i].ppid == parent;
                     i++) {
                        if (all.v[i].pid == root_pid) /* a cycle in a fake tree; the kernel has none */
                                continue;
                        if (t->n_desc >= PROC_TREE_MAX_DESC) {
                                t->truncated = true;
                                break;
                        }
                        desc[t->n_desc++] = all.v[i];
                }
                if (t->truncated)
                        break;
        }
        return 0;
}

int proc_tree_sample(const char *proc_root, pid_t root_pid, usec_t now, ProcTree **ret) {
        _cleanup_free_ ProcTree *t = NULL;
        _cleanup_free_ ProcInfo *desc = NULL;
        _cleanup_(closedirp) DIR *d = NULL;
        int proc_fd, r;

        if (root_pid <= 0 || !ret)
                return -EINVAL;

        d = opendir(proc_root ?: "/proc");
        if (!d)
                return -errno;
        proc_fd = dirfd(d);

        t = calloc(1, sizeof(ProcTree));
        desc = calloc(PROC_TREE_MAX_DESC, sizeof(ProcInfo));
        if (!t || !desc)
                return -ENOMEM;
        r = sample_subtree(proc_fd, root_pid, t, desc);
        if (r == -ENOTSUP) {
                *t = (ProcTree) {};
                r = sample_walk(d, root_pid, t, desc);
        }
        if (r < 0)
                return r;

        read_io(proc_fd, &t->root);
        fix_exe_comm(proc_fd, &t->root);
        for (size_t i = 0; i < t->n_desc; i++) {
                read_io(proc_fd, &desc[i]);
                fix_exe_comm(proc_fd, &desc[i]);
        }

        t->at = now;
        if (t->n_desc > 0) {
                ProcInfo *shrunk = reallocarray(desc, t->n_desc, sizeof(ProcInfo));
                if (shrunk)
                        desc = shrunk;
                t->desc = TAKE_PTR(desc);
        }
        *ret = TAKE_PTR(t);
        return 0;
}

ProcTree *proc_tree_free(ProcTree *t) {
        if (!t)
                return NULL;
        free(t->desc);
        free(t);
        return NULL;
}

static int cmp_pinfo_pid(const void *a, const void *b) {
        pid_t x = (*(const ProcInfo *const *) a)->pid, y = (*(const ProcInfo *const *) b)->pid;
        return (x > y) - (x < y);
}

static uint64_t sub_sat(uint64_t a, uint64_t b) { return a > b ? a - b : 0; }

int proc_tree_delta(const ProcTree *old, const ProcTree *new, ProcDelta **ret, size_t *ret_n) {
        _cleanup_free_ const ProcInfo **index = NULL;
        _cleanup_free_ ProcDelta *out = NULL;
        size_t n_old = 0, n = 0;

        if (!new || !ret || !ret_n)
                return -EINVAL;

        if (old) {
                index = calloc(old->n_desc + 1, sizeof(ProcInfo *));
                if (!index)
                        return -ENOMEM;
                index[n_old++] = &old->root;
                for (size_t i = 0; i < old->n_desc; i++)
                        index[n_old++] = &old->desc[i];
                qsort(index, n_old, sizeof(ProcInfo *), cmp_pinfo_pid);
        }

        out = calloc(new->n_desc + 1, sizeof(ProcDelta));
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i <= new->n_desc; i++) {
                const ProcInfo *p = i == 0 ? &new->root : &new->desc[i - 1], *o = NULL, *const *hit;
                ProcDelta *dl = &out[n++];

                hit = n_old > 0 ? bsearch(&p, index, n_old, sizeof(ProcInfo *), cmp_pinfo_pid) : NULL;
                if (hit && (*hit)->start_ticks == p->start_ticks)
                        o = *hit;

                dl->pid = p->pid;
                memcpy(dl->comm, p->comm, sizeof(dl->comm));
                dl->state = p->state;
                dl->is_root = i == 0;
                dl->is_new = !o;
                dl->cpu_usec = sub_sat(p->cpu_usec, o ? o->cpu_usec : 0);
                dl->io_ok = p->io_ok && (!o || o->io_ok);
                if (dl->io_ok) {
                        dl->io_chars = sub_sat(p->rchar + p->wchar, o ? o->rchar + o->wchar : 0);
                        dl->io_bytes = sub_sat(p->read_bytes + p->write_bytes,
                                               o ? o->read_bytes + o->write_bytes : 0);
                }
        }

        *ret = TAKE_PTR(out);
        *ret_n = n;
        return 0;
}

static bool comm_in(const char *comm, const char *const *names) {
        if (!comm)
                return false;
        for (; *names; names++)
                if (streq(comm, *names))
                        return true;
        return false;
}

bool proc_is_decompressor(const char *comm) {
        static const char *const names[] = {
                "unpigz", "pigz", "igzip", "gzip", "gunzip", "zstd", "unzstd", "xz", "unxz", NULL,
        };
        return comm_in(comm, names);
}

bool proc_is_untar_helper(const char *comm) {
        static const char *const names[] = { "docker-untar", "tar", NULL };
        return comm_in(comm, names);
}

static int open_proc_root(const char *proc_root) {
        int fd = open(proc_root ?: "/proc", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

int proc_read_info(const char *proc_root, pid_t pid, ProcInfo *ret) {
        _cleanup_close_ int proc_fd = -1;
        char path[32], buf[STAT_BUF];
        ProcInfo p = { .pid = pid };
        ssize_t n;
        int r;

        if (pid <= 0 || !ret)
                return -EINVAL;
        proc_fd = open_proc_root(proc_root);
        if (proc_fd < 0)
                return proc_fd;
        snprintf(path, sizeof(path), "%d/stat", (int) pid);
        n = read_small(proc_fd, path, buf, sizeof(buf));
        if (n < 0)
                return n == -ENOENT ? -ESRCH : (int) n;
        r = parse_stat(buf, &p);
        if (r < 0)
                return r;
        *ret = p;
        return 0;
}

int proc_read_exe(const char *proc_root, pid_t pid, char *buf, size_t size) {
        char path[PATH_MAX];
        ssize_t n;

        if (pid <= 0 || !buf || size < 2)
                return -EINVAL;
        snprintf(path, sizeof(path), "%s/%d/exe", proc_root ?: "/proc", (int) pid);
        n = readlink(path, buf, size - 1);
        if (n < 0)
                return -errno;
        if ((size_t) n >= size - 1)
                return -ENAMETOOLONG;
        buf[n] = 0;
        static const char deleted[] = " (deleted)";
        if ((size_t) n > strlen(deleted) && streq(buf + n - strlen(deleted), deleted))
                buf[n - strlen(deleted)] = 0;
        return 0;
}
