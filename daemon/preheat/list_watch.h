/* list_watch.h: tells its owner, debounced, that a file may have changed: inotify on the file's
 * directory (falling back to the nearest existing parent while it is missing), so renames, in-place
 * writes, delete + re-create and ConfigMap `..data` symlink swaps all count. It never reads the file. */
#pragma once

#include <systemd/sd-event.h>
#include "basic/macro.h"

typedef struct ListWatch ListWatch;
typedef void (*list_watch_changed_t)(ListWatch *w, void *userdata);

/* debounce: quiet time after the last event before changed is called (at most 4x that after the first). */
int list_watch_new(sd_event *event, const char *path, usec_t debounce, list_watch_changed_t changed, void *userdata,
                   ListWatch **ret);
ListWatch *list_watch_free(ListWatch *w);
static inline void list_watch_freep(ListWatch **w) { list_watch_free(*w); }

const char *list_watch_path(const ListWatch *w);
/* The directory being watched now: the file's own, or a parent while that is missing. */
const char *list_watch_watched_dir(const ListWatch *w);
