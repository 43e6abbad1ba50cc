/* list_watch.c: one inotify fd, one watch. The mask on the file's directory covers every way a file's
 * content gets replaced; on a parent it only waits for the missing directory to appear. A new watch is
 * added before the old one is dropped (systemd's timezone watch does the same), so no event falls
 * between the two. Anything under the directory triggers: the owner re-reads and compares, which is
 * cheaper than guessing which names matter (an editor's temp file, `..data`, `..2026_...`). */
#include "daemon/preheat/list_watch.h"

#include <fcntl.h>
#include <libgen.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#define DIR_MASK (IN_CLOSE_WRITE | IN_MOVED_TO | IN_MOVED_FROM | IN_CREATE | IN_DELETE | IN_ATTRIB | \
                  IN_MODIFY | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)
#define PARENT_MASK (IN_CREATE | IN_MOVED_TO | IN_ATTRIB | IN_DELETE_SELF | IN_MOVE_SELF | IN_ONLYDIR)

struct ListWatch {
        sd_event *event;
        char *path;
        char *dir;                /* dirname(path) */
        char *watched;            /* dir or its nearest existing ancestor */
        int fd;
        int wd;
        sd_event_source *io;
        sd_event_source *timer;
        usec_t debounce;
        usec_t first_pending;     /* CLOCK_MONOTONIC of the first event not yet reported; 0 = none */
        list_watch_changed_t changed;
        void *userdata;
};

static int nearest_existing(const char *dir, char **ret) {
        _cleanup_free_ char *d = strdup(dir);
        struct stat st;

        if (!d)
                return -ENOMEM;
        for (;;) {
                if (stat(d, &st) >= 0 && S_ISDIR(st.st_mode))
                        break;
                if (streq(d, "/"))
                        return -ENOENT;
                char *parent = strdup(dirname(d));
                if (!parent)
                        return -ENOMEM;
                free(d);
                d = parent;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* Watch dir when it exists, else its nearest parent; true in *ret_moved when that changed. */
static int rewatch(ListWatch *w, bool *ret_moved) {
        _cleanup_free_ char *target = NULL;
        int r, wd;

        r = nearest_existing(w->dir, &target);
        if (r < 0)
                return r;
        *ret_moved = !streq_ptr(target, w->watched);
        wd = inotify_add_watch(w->fd, target, streq(target, w->dir) ? DIR_MASK : PARENT_MASK);
        if (wd < 0)
                return -errno;
        if (w->wd >= 0 && w->wd != wd)
                (void) inotify_rm_watch(w->fd, w->wd);
        w->wd = wd;
        free(w->watched);
        w->watched = TAKE_PTR(target);
        return 0;
}

static void arm(ListWatch *w) {
        usec_t now = now_monotonic(), at;

        if (w->first_pending == 0)
                w->first_pending = now;
        at = MIN(now + w->debounce, w->first_pending + 4 * w->debounce);
        (void) sd_event_source_set_time(w->timer, at);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        ListWatch *w = userdata;
        w->first_pending = 0;
        w->changed(w, w->userdata);
        return 0;
}

static int on_inotify(sd_event_source *s, int fd, uint32_t revents, void *userdata) {
        ListWatch *w = userdata;
        char buf[16384] __attribute__((aligned(__alignof__(struct inotify_event))));
        bool on_dir = w->watched && streq(w->watched, w->dir), relevant = false, recheck = false;

        for (;;) {
                ssize_t n = read(fd, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        break; /* EAGAIN: drained */
                }
                for (char *p = buf; p < buf + n;) {
                        struct inotify_event *e = (struct inotify_event *) p;
                        p += sizeof(*e) + e->len;
                        if (e->mask & IN_Q_OVERFLOW) {
                                relevant = recheck = true;
                                continue;
                        }
                        if (e->wd != w->wd)
                                continue; /* a watch already replaced */
                        if (e->mask & (IN_DELETE_SELF | IN_MOVE_SELF | IN_IGNORED))
                                recheck = true;
                        else if (on_dir)
                                relevant = true;
                        else
                                recheck = true; /* on a parent: did our directory (or one above it) appear? */
                }
        }
        if (recheck) {
                bool moved = false;
                int r = rewatch(w, &moved);
                if (r < 0)
                        w->wd = -1; /* not even "/" is there; nothing more will come */
                /* The directory appeared or vanished: so did the list, as far as the owner knows. */
                if (r < 0 || on_dir != (w->watched && streq(w->watched, w->dir)))
                        relevant = true;
        }
        if (relevant)
                arm(w);
        return 0;
}

int list_watch_new(sd_event *event, const char *path, usec_t debounce, list_watch_changed_t changed, void *userdata,
                   ListWatch **ret) {
        ListWatch *w;
        _cleanup_free_ char *copy = NULL;
        bool moved;
        int r;

        if (!path || path[0] != '/' || !changed)
                return -EINVAL;
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (ListWatch) { .event = sd_event_ref(event), .fd = -1, .wd = -1, .debounce = debounce,
                           .changed = changed, .userdata = userdata };
        w->path = strdup(path);
        copy = strdup(path);
        if (!w->path || !copy) {
                r = -ENOMEM;
                goto fail;
        }
        w->dir = strdup(dirname(copy));
        if (!w->dir) {
                r = -ENOMEM;
                goto fail;
        }
        w->fd = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (w->fd < 0) {
                r = -errno;
                goto fail;
        }
        r = rewatch(w, &moved);
        if (r < 0)
                goto fail;
        r = sd_event_add_io(event, &w->io, w->fd, EPOLLIN, on_inotify, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(w->io, "list-inotify");
        r = sd_event_add_time(event, &w->timer, CLOCK_MONOTONIC, USEC_INFINITY, 10 * USEC_PER_MSEC, on_timer, w);
        if (r < 0)
                goto fail;
        (void) sd_event_source_set_description(w->timer, "list-settle");
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        *ret = w;
        return 0;
fail:
        list_watch_free(w);
        return r;
}

ListWatch *list_watch_free(ListWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->timer);
        if (w->fd >= 0)
                close(w->fd);
        sd_event_unref(w->event);
        free(w->path);
        free(w->dir);
        free(w->watched);
        free(w);
        return NULL;
}

const char *list_watch_path(const ListWatch *w) { return w->path; }
const char *list_watch_watched_dir(const ListWatch *w) { return w->watched; }
