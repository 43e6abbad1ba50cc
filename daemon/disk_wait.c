/* disk_wait.c: one timer serves both waits: the gate's deadline (pulled in to now when the size
 * arrives) and the polls for space. Callbacks run from that timer only, so the pull job may finish
 * (and its owner free it) inside one. */
#include "daemon/disk_wait.h"

#include <stdio.h>

typedef enum WaitState { WAIT_IDLE, WAIT_GATE, WAIT_SPACE } WaitState;

struct DiskWait {
        const Config *config;
        RuntimeKind runtime;
        char *image;
        disk_wait_done_t cb;
        void *userdata;
        sd_event_source *timer;
        WaitState state;
        uint64_t size, need;
        usec_t interval, give_up_at;
        char *fs_path;
};

static void arm(DiskWait *w, usec_t delay) {
        (void) sd_event_source_set_time_relative(w->timer, delay);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DiskWait *w = userdata;
        WaitState st = w->state;
        char *text = NULL;
        DiskFit f;

        w->state = WAIT_IDLE;
        if (st == WAIT_GATE) {
                f = w->size > 0 ? disk_gate_check(w->config, w->runtime, &w->fs_path, w->size, w->image, &text)
                                : DISK_FITS;
                w->cb(w, f, text, w->userdata);
        } else if (st == WAIT_SPACE) {
                f = disk_gate_check(w->config, w->runtime, &w->fs_path, w->need, w->image, NULL);
                if (f == DISK_FITS || f == _DISK_FIT_MAX)
                        w->cb(w, f, NULL, w->userdata);
                else if (now_monotonic() >= w->give_up_at) {
                        if (asprintf(&text, "gave up waiting for space on %s", w->fs_path ?: "the image filesystem") < 0)
                                text = NULL;
                        w->cb(w, DISK_NO_ROOM, text, w->userdata);
                } else {
                        w->state = WAIT_SPACE;
                        arm(w, w->interval);
                }
        }
        return 0;
}

int disk_wait_new(sd_event *event, const Config *config, RuntimeKind runtime, const char *image,
                  disk_wait_done_t cb, void *userdata, DiskWait **ret) {
        DiskWait *w = calloc(1, sizeof(*w));
        int r;

        if (!w)
                return -ENOMEM;
        *w = (DiskWait) { .config = config, .runtime = runtime, .cb = cb, .userdata = userdata,
                          .image = image ? strdup(image) : NULL };
        r = image && !w->image ? -ENOMEM
                               : sd_event_add_time_relative(event, &w->timer, CLOCK_MONOTONIC, USEC_PER_SEC,
                                                            10 * USEC_PER_MSEC, on_timer, w);
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0) {
                disk_wait_free(w);
                return r;
        }
        *ret = w;
        return 0;
}

DiskWait *disk_wait_free(DiskWait *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->timer);
        free(w->image);
        free(w->fs_path);
        free(w);
        return NULL;
}

bool disk_wait_measurable(DiskWait *w) {
        return disk_gate_check(w->config, w->runtime, &w->fs_path, 0, w->image, NULL) != _DISK_FIT_MAX;
}

void disk_wait_set_size(DiskWait *w, uint64_t size) {
        w->size = size;
        if (w->state == WAIT_GATE)
                arm(w, 0);
}

uint64_t disk_wait_size(const DiskWait *w) { return w->size; }

void disk_wait_gate(DiskWait *w, usec_t timeout) {
        w->state = WAIT_GATE;
        arm(w, timeout);
}

void disk_wait_space(DiskWait *w, uint64_t need, usec_t interval, usec_t give_up) {
        w->state = WAIT_SPACE;
        w->need = need;
        w->interval = interval;
        w->give_up_at = now_monotonic() + give_up;
        arm(w, interval);
}

void disk_wait_stop(DiskWait *w) {
        if (!w)
                return;
        w->state = WAIT_IDLE;
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
}

const char *disk_wait_path(const DiskWait *w) { return w->fs_path; }
