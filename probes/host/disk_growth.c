/* disk_growth.c: see disk_growth.h for what is watched, the signal and the cost bound. */
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>

#include "probes/host/disk_growth.h"

#define HOT_POOL 8    /* per candidate, for directories and again for files */
#define DEPTH_MAX 16  /* how deep a freshly found directory is listed at once */

typedef struct Hot {
        char *path;            /* relative to the candidate's root; "." is the root */
        int64_t ctime_ns;
        uint64_t blocks;
        uint64_t last_fresh;   /* sample number it last changed in */
} Hot;

typedef struct Candidate {
        char *name;            /* entry of dir, "" for a single target */
        int fd;                /* dir/name/subdir */
        int64_t born_ns;       /* ctime of dir/name: the ordering */
        Hot dirs[HOT_POOL], files[HOT_POOL];
        /* The resumable breadth-first sweep. */
        DIR *sweep;
        char *sweep_path;
        char **queue;
        size_t q_head, q_len, q_alloc;
        bool pass_begun;       /* this sample: never lap a small tree twice */
        uint64_t passes, pass_entries, pass_bytes, last_entries, last_bytes;
} Candidate;

struct DiskGrowth {
        char *dir, *subdir;
        Candidate *cand[DISK_GROWTH_CANDIDATES]; /* newest first */
        size_t n_cand;
        unsigned budget;
        uint64_t samples, refreshed_at;
        bool refreshed;
        int64_t top_ctime_ns;
        int64_t watermark_ns;  /* newest ctime ever seen */
        int64_t prev_rt_ns;    /* wall clock when the previous sample started */
        uint64_t signal;
        usec_t at;
        /* Per sample. */
        int64_t threshold_ns, new_watermark_ns;
        uint64_t cost, limit, evidence;
        unsigned list_left;
};

static int64_t ts_ns(struct timespec ts) { return (int64_t) ts.tv_sec * 1000000000 + ts.tv_nsec; }

static int64_t rt_now_ns(void) {
        struct timespec ts;
        /* The coarse clock is the one the kernel stamps ctime with. */
        if (clock_gettime(CLOCK_REALTIME_COARSE, &ts) < 0)
                return 0;
        return ts_ns(ts);
}

static void hot_clear(Hot *h) {
        free(h->path);
        *h = (Hot) {};
}

static Candidate *candidate_free(Candidate *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < HOT_POOL; i++) {
                hot_clear(&c->dirs[i]);
                hot_clear(&c->files[i]);
        }
        if (c->sweep)
                closedir(c->sweep);
        free(c->sweep_path);
        for (size_t i = c->q_head; i < c->q_head + c->q_len; i++)
                free(c->queue[i]);
        free(c->queue);
        if (c->fd >= 0)
                close(c->fd);
        free(c->name);
        free(c);
        return NULL;
}

static void candidate_freep(Candidate **c) { candidate_free(*c); }

static int candidate_new(const DiskGrowth *d, const char *name, int64_t born_ns, Candidate **ret) {
        _cleanup_(candidate_freep) Candidate *c = NULL;
        _cleanup_free_ char *path = NULL;

        c = calloc(1, sizeof(Candidate));
        if (!c)
                return -ENOMEM;
        c->fd = -1;
        c->born_ns = born_ns;
        c->name = strdup(name);
        if (!c->name)
                return -ENOMEM;
        if (d->subdir) {
                if (asprintf(&path, "%s/%s/%s", d->dir, name, d->subdir) < 0)
                        return -ENOMEM;
                c->fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        } else
                c->fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (c->fd < 0)
                return -errno;
        *ret = TAKE_PTR(c);
        return 0;
}

static char *join(const char *parent, const char *name) {
        char *s;
        if (streq(parent, "."))
                return strdup(name);
        if (strlen(parent) + strlen(name) + 2 > PATH_MAX)
                return NULL;
        return asprintf(&s, "%s/%s", parent, name) < 0 ? NULL : s;
}

static Hot *hot_find(Hot *pool, const char *path) {
        for (size_t i = 0; i < HOT_POOL; i++)
                if (pool[i].path && streq(pool[i].path, path))
                        return &pool[i];
        return NULL;
}

/* Replaces the stalest entry (least recently changed, then oldest ctime) if it is staler than this
 * one. last_fresh 0 offers an entry that did not change, to seed the set with the newest ones. */
static void hot_add(Hot *pool, const char *path, const struct stat *st, uint64_t last_fresh) {
        Hot *victim = &pool[0];
        int64_t ctime_ns = ts_ns(st->st_ctim);
        char *copy;

        for (size_t i = 0; i < HOT_POOL; i++) {
                Hot *h = &pool[i];
                if (!h->path) {
                        victim = h;
                        break;
                }
                if (h->last_fresh < victim->last_fresh ||
                    (h->last_fresh == victim->last_fresh && h->ctime_ns < victim->ctime_ns))
                        victim = h;
        }
        if (victim->path && (victim->last_fresh > last_fresh ||
                             (victim->last_fresh == last_fresh && victim->ctime_ns >= ctime_ns)))
                return;
        copy = strdup(path);
        if (!copy)
                return; /* only a lost hint */
        hot_clear(victim);
        *victim = (Hot) { .path = copy, .ctime_ns = ctime_ns, .blocks = (uint64_t) st->st_blocks,
                          .last_fresh = last_fresh };
}

static bool budget_left(const DiskGrowth *d) { return d->cost < d->limit; }

static void list_dir(DiskGrowth *d, Candidate *c, const char *path, unsigned depth);

/* An entry met outside the hot set is fresh when it changed since the previous sample began and after
 * the newest change seen so far (which was counted already); then it is evidence and becomes hot. A
 * change found later than that is history, not life. seed: offer it to the hot set anyway (a first
 * pass, looking for the newest entries). */
static bool examine(DiskGrowth *d, Candidate *c, const char *path, const struct stat *st, bool seed) {
        int64_t ctime_ns = ts_ns(st->st_ctim);
        Hot *pool = S_ISDIR(st->st_mode) ? c->dirs : c->files;

        d->new_watermark_ns = MAX(d->new_watermark_ns, ctime_ns);
        if (ctime_ns <= d->threshold_ns) {
                if (seed)
                        hot_add(pool, path, st, 0);
                return false;
        }
        if (!hot_find(pool, path)) {
                d->evidence += 1 + (uint64_t) st->st_blocks * 512;
                hot_add(pool, path, st, d->samples);
        }
        return true;
}

/* Lists a directory that changed, and (depth-bounded) the fresh directories in it. */
static void list_dir(DiskGrowth *d, Candidate *c, const char *path, unsigned depth) {
        DIR *dir;
        int fd;

        if (depth >= DEPTH_MAX || d->list_left == 0 || !budget_left(d))
                return;
        fd = openat(c->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return;
        dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return;
        }
        for (struct dirent *de; d->list_left > 0 && budget_left(d) && (de = readdir(dir));) {
                _cleanup_free_ char *child = NULL;
                struct stat st;

                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                d->cost++;
                d->list_left--;
                if (fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                child = join(path, de->d_name);
                if (!child)
                        continue;
                if (examine(d, c, child, &st, false) && S_ISDIR(st.st_mode))
                        list_dir(d, c, child, depth + 1);
        }
        closedir(dir);
}

/* Re-stat one hot entry; a change is evidence, a changed directory gets listed. */
static void hot_check(DiskGrowth *d, Candidate *c, Hot *h, bool is_dir) {
        _cleanup_free_ char *path = NULL;
        struct stat st;
        int64_t ctime_ns;
        bool list;

        d->cost++;
        if (fstatat(c->fd, h->path, &st, AT_SYMLINK_NOFOLLOW) < 0) {
                if (errno == ENOENT || errno == ENOTDIR)
                        hot_clear(h);
                return;
        }
        if (S_ISDIR(st.st_mode) != is_dir) {
                hot_clear(h);
                return;
        }
        ctime_ns = ts_ns(st.st_ctim);
        d->new_watermark_ns = MAX(d->new_watermark_ns, ctime_ns);
        if (ctime_ns == h->ctime_ns && (uint64_t) st.st_blocks == h->blocks)
                return;
        d->evidence += 1 + ((uint64_t) st.st_blocks > h->blocks ? ((uint64_t) st.st_blocks - h->blocks) * 512 : 0);
        list = is_dir && ctime_ns != h->ctime_ns;
        h->last_fresh = d->samples;
        h->blocks = (uint64_t) st.st_blocks;
        h->ctime_ns = ctime_ns;
        /* Listing may evict h from the pool: work on a copy of its path. */
        if (list && (path = strdup(h->path)))
                list_dir(d, c, path, 0);
}

/* The directory holding the latest change: an extraction moving on creates its next entry there or
 * in one of its ancestors, which may have left the hot set long ago. */
static void check_ancestors(DiskGrowth *d, Candidate *c) {
        const Hot *latest = NULL;
        char path[PATH_MAX];

        for (size_t i = 0; i < 2 * HOT_POOL; i++) {
                const Hot *h = i < HOT_POOL ? &c->dirs[i] : &c->files[i - HOT_POOL];
                if (h->path && (!latest || h->last_fresh > latest->last_fresh ||
                                (h->last_fresh == latest->last_fresh && h->ctime_ns > latest->ctime_ns)))
                        latest = h;
        }
        if (!latest || strlen(latest->path) >= sizeof(path))
                return;
        strcpy(path, latest->path);
        for (unsigned n = 0; n < DEPTH_MAX && !streq(path, ".") && budget_left(d); n++) {
                char *slash = strrchr(path, '/');
                struct stat st;

                if (slash)
                        *slash = 0;
                else
                        strcpy(path, ".");
                if (hot_find(c->dirs, path))
                        continue; /* checked already */
                d->cost++;
                if (fstatat(c->fd, path, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        return;
                if (examine(d, c, path, &st, false))
                        list_dir(d, c, path, 0);
        }
}

static void queue_push(Candidate *c, char *path) {
        if (c->q_len >= DISK_GROWTH_QUEUE_MAX) {
                free(path); /* a sweep missing a subtree once is better than unbounded memory */
                return;
        }
        if (c->q_head + c->q_len == c->q_alloc) {
                if (c->q_head > 0) {
                        memmove(c->queue, c->queue + c->q_head, c->q_len * sizeof(char *));
                        c->q_head = 0;
                } else {
                        size_t a = MAX(c->q_alloc * 2, (size_t) 64);
                        char **q = reallocarray(c->queue, a, sizeof(char *));
                        if (!q) {
                                free(path);
                                return;
                        }
                        c->queue = q;
                        c->q_alloc = a;
                }
        }
        c->queue[c->q_head + c->q_len++] = path;
}

static char *queue_pop(Candidate *c) {
        if (c->q_len == 0)
                return NULL;
        c->q_len--;
        return c->queue[c->q_head++];
}

static void sweep(DiskGrowth *d, Candidate *c, uint64_t quota) {
        uint64_t stop = d->cost + quota;

        while (d->cost < stop && budget_left(d)) {
                _cleanup_free_ char *child = NULL;
                struct dirent *de;
                struct stat st;

                if (!c->sweep) {
                        _cleanup_free_ char *path = queue_pop(c);
                        int fd;

                        if (!path) {
                                if (c->pass_begun)
                                        return;
                                /* A pass is complete (or this is the first): start the next one. */
                                c->pass_begun = true;
                                if (c->passes > 0) {
                                        c->last_entries = c->pass_entries;
                                        c->last_bytes = c->pass_bytes;
                                }
                                c->passes++;
                                c->pass_entries = c->pass_bytes = 0;
                                d->cost++;
                                if (fstat(c->fd, &st) < 0)
                                        return;
                                examine(d, c, ".", &st, c->passes == 1);
                                path = strdup(".");
                                if (!path)
                                        return;
                        }
                        fd = openat(c->fd, path, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (fd < 0)
                                continue;
                        c->sweep = fdopendir(fd);
                        if (!c->sweep) {
                                close(fd);
                                continue;
                        }
                        c->sweep_path = TAKE_PTR(path);
                }

                de = readdir(c->sweep);
                if (!de) {
                        closedir(c->sweep);
                        c->sweep = NULL;
                        free(c->sweep_path);
                        c->sweep_path = NULL;
                        continue;
                }
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                d->cost++;
                if (fstatat(dirfd(c->sweep), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        continue;
                c->pass_entries++;
                c->pass_bytes += (uint64_t) st.st_blocks * 512;
                child = join(c->sweep_path, de->d_name);
                if (!child)
                        continue;
                examine(d, c, child, &st, c->passes == 1);
                if (S_ISDIR(st.st_mode))
                        queue_push(c, TAKE_PTR(child));
        }
}

typedef struct TopEntry {
        char *name;
        int64_t ctime_ns;
} TopEntry;

static int cmp_top(const void *a, const void *b) {
        const TopEntry *x = a, *y = b;
        if (x->ctime_ns != y->ctime_ns)
                return x->ctime_ns < y->ctime_ns ? 1 : -1; /* newest first */
        return -strcmp(x->name, y->name);
}

static bool is_candidate(DiskGrowth *d, int top_fd, const char *name) {
        char path[2 * NAME_MAX + 2];
        struct stat st;
        size_t len = strlen(name);

        if (len >= 5 && streq(name + len - 5, "-init"))
                return false; /* dockerd's per-container init layer */
        snprintf(path, sizeof(path), "%s/%s", name, d->subdir);
        d->cost++;
        return fstatat(top_fd, path, &st, AT_SYMLINK_NOFOLLOW) >= 0 && S_ISDIR(st.st_mode);
}

/* Picks the newest entries of dir that have subdir, keeping the state of those already watched. */
static int refresh(DiskGrowth *d, int top_fd) {
        Candidate *next[DISK_GROWTH_CANDIDATES] = {};
        TopEntry *v = NULL;
        size_t n = 0, n_next = 0, tried = 0;
        DIR *dir;
        int fd, r = 0;

        fd = openat(top_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        dir = fdopendir(fd);
        if (!dir) {
                r = -errno;
                close(fd);
                return r;
        }
        v = calloc(DISK_GROWTH_TOP_MAX, sizeof(TopEntry));
        if (!v) {
                closedir(dir);
                return -ENOMEM;
        }
        for (struct dirent *de; n < DISK_GROWTH_TOP_MAX && (de = readdir(dir));) {
                struct stat st;

                if (de->d_name[0] == '.' || (de->d_type != DT_DIR && de->d_type != DT_UNKNOWN))
                        continue;
                d->cost++;
                if (fstatat(top_fd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode))
                        continue;
                v[n].name = strdup(de->d_name);
                if (!v[n].name) {
                        r = -ENOMEM;
                        goto finish;
                }
                v[n++].ctime_ns = ts_ns(st.st_ctim);
        }
        qsort(v, n, sizeof(TopEntry), cmp_top);

        for (size_t i = 0; i < n && n_next < DISK_GROWTH_CANDIDATES && tried < 4 * DISK_GROWTH_CANDIDATES; i++) {
                Candidate *c = NULL;

                for (size_t j = 0; j < d->n_cand; j++)
                        if (d->cand[j] && streq(d->cand[j]->name, v[i].name)) {
                                c = TAKE_PTR(d->cand[j]);
                                break;
                        }
                if (!c) {
                        tried++;
                        if (!is_candidate(d, top_fd, v[i].name) ||
                            candidate_new(d, v[i].name, v[i].ctime_ns, &c) < 0)
                                continue;
                        if (d->refreshed && v[i].ctime_ns > d->threshold_ns)
                                d->evidence++; /* a layer born since the previous sample */
                }
                next[n_next++] = c;
        }
        for (size_t j = 0; j < d->n_cand; j++)
                d->cand[j] = candidate_free(d->cand[j]);
        memcpy(d->cand, next, sizeof(next));
        d->n_cand = n_next;
finish:
        for (size_t i = 0; i < n; i++)
                free(v[i].name);
        free(v);
        closedir(dir);
        return r;
}

int disk_growth_new(const char *dir, const char *subdir, DiskGrowth **ret) {
        _cleanup_(disk_growth_freep) DiskGrowth *d = NULL;

        if (!dir || !*dir || !ret || (subdir && (!*subdir || strchr(subdir, '/') || strlen(subdir) > NAME_MAX)))
                return -EINVAL;
        d = calloc(1, sizeof(DiskGrowth));
        if (!d)
                return -ENOMEM;
        d->budget = DISK_GROWTH_BUDGET_DEFAULT;
        d->dir = strdup(dir);
        if (!d->dir)
                return -ENOMEM;
        if (subdir) {
                d->subdir = strdup(subdir);
                if (!d->subdir)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

DiskGrowth *disk_growth_free(DiskGrowth *d) {
        if (!d)
                return NULL;
        for (size_t i = 0; i < d->n_cand; i++)
                candidate_free(d->cand[i]);
        free(d->dir);
        free(d->subdir);
        free(d);
        return NULL;
}

int disk_growth_set_budget(DiskGrowth *d, unsigned entries) {
        if (!d || entries < DISK_GROWTH_BUDGET_MIN)
                return -EINVAL;
        d->budget = entries;
        return 0;
}

/* Opens or refreshes what is watched; counts its own cost. */
static int update_candidates(DiskGrowth *d) {
        _cleanup_close_ int top_fd = -1;
        struct stat st;
        int r;

        if (!d->subdir) {
                Candidate *c = NULL;
                if (d->n_cand > 0) {
                        d->cost++;
                        if (fstat(d->cand[0]->fd, &st) >= 0 && st.st_nlink > 0)
                                return 0;
                        d->cand[0] = candidate_free(d->cand[0]); /* removed: watch its successor */
                        d->n_cand = 0;
                }
                d->cost++;
                r = candidate_new(d, "", 0, &c);
                if (r < 0)
                        return r;
                d->cand[d->n_cand++] = c;
                return 0;
        }

        top_fd = open(d->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (top_fd < 0)
                return -errno;
        d->cost++;
        if (fstat(top_fd, &st) < 0)
                return -errno;
        if (d->refreshed && (ts_ns(st.st_ctim) == d->top_ctime_ns ||
                             d->samples - d->refreshed_at < DISK_GROWTH_REFRESH_EVERY))
                return 0;
        r = refresh(d, top_fd);
        if (r < 0)
                return r;
        d->refreshed = true;
        d->refreshed_at = d->samples;
        d->top_ctime_ns = ts_ns(st.st_ctim);
        return 0;
}

int disk_growth_sample(DiskGrowth *d, usec_t now, uint64_t *ret_signal, uint64_t *ret_cost_entries) {
        int64_t rt_ns;
        int r;

        if (!d)
                return -EINVAL;

        rt_ns = rt_now_ns();
        if (rt_ns < d->prev_rt_ns) /* the clock stepped back: start over from now */
                d->watermark_ns = d->prev_rt_ns = rt_ns;

        d->samples++;
        d->cost = 0;
        d->evidence = 0;
        /* The first sample is the baseline: nothing before it is news, the newest entries seed the
         * hot set. */
        d->threshold_ns = d->samples == 1 ? rt_ns : MAX(d->watermark_ns, d->prev_rt_ns);
        d->new_watermark_ns = d->watermark_ns;

        r = update_candidates(d);
        if (r < 0) {
                d->samples--;
                return r;
        }
        /* Everything below is held to the budget; dir's stat and a refresh come on top. Listing
         * changed directories may take half, so the sweep always moves on. */
        d->limit = d->cost + d->budget;
        d->list_left = d->budget / 2;

        for (size_t i = 0; i < d->n_cand; i++) {
                Candidate *c = d->cand[i];
                for (size_t j = 0; j < HOT_POOL && budget_left(d); j++)
                        if (c->dirs[j].path)
                                hot_check(d, c, &c->dirs[j], true);
                for (size_t j = 0; j < HOT_POOL && budget_left(d); j++)
                        if (c->files[j].path)
                                hot_check(d, c, &c->files[j], false);
                check_ancestors(d, c);
        }
        for (size_t i = 0; i < d->n_cand; i++) {
                uint64_t left = d->limit > d->cost ? d->limit - d->cost : 0;
                sweep(d, d->cand[i], left / (d->n_cand - i));
        }
        for (size_t i = 0; i < d->n_cand; i++)
                d->cand[i]->pass_begun = false;

        d->watermark_ns = d->new_watermark_ns;
        d->prev_rt_ns = rt_ns;
        d->signal += d->evidence;
        d->at = now;
        if (ret_signal)
                *ret_signal = d->signal;
        if (ret_cost_entries)
                *ret_cost_entries = d->cost;
        return 0;
}

void disk_growth_stats(const DiskGrowth *d, DiskGrowthStats *ret) {
        const Candidate *c = d->n_cand > 0 ? d->cand[0] : NULL;

        *ret = (DiskGrowthStats) { .at = d->at, .n_candidates = (unsigned) d->n_cand };
        for (size_t i = 0; i < d->n_cand; i++)
                for (size_t j = 0; j < HOT_POOL; j++)
                        ret->n_hot += !!d->cand[i]->dirs[j].path + !!d->cand[i]->files[j].path;
        if (c) {
                ret->newest = c->name;
                ret->passes = c->passes;
                ret->pass_entries = c->last_entries;
                ret->pass_bytes = c->last_bytes;
        }
}
