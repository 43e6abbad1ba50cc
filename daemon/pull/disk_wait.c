/* disk_wait.c: one timer serves both waits: the gate's deadline (pulled in to now when the size or the
 * filesystem's location arrives) and the polls for space. Where the image filesystem is comes from the
 * runtime once, as a RuntimeOp on the curl glue (the loop never blocks on a runtime); after that only
 * statvfs runs. Callbacks run from that timer only, so the pull job may finish (and its owner free it)
 * inside one. */
#include "daemon/pull/disk_wait.h"

#include <assert.h>

#include <stdio.h>

typedef enum WaitState { WAIT_IDLE, WAIT_GATE, WAIT_SPACE } WaitState;

struct DiskWait {
        CurlGlue *glue;
        const Config *config;
        RuntimeKind runtime;
        imagefs_locate_t locate;
        char *image;
        disk_wait_done_t cb;
        void *userdata;
        sd_event_source *timer;
        WaitState state;
        uint64_t size, need;
        bool size_said;           /* the size's answer came, even "unknown" (the manifest failed) */
        usec_t interval, give_up_at, gate_deadline;
        char *fs_path;
        RuntimeOp *op;            /* asking the runtime where its images are */
        int locate_error;         /* the last answer's error; 0 = none (yet) */
};

static void arm_at(DiskWait *w, usec_t at) {
        (void) sd_event_source_set_time(w->timer, at);
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_ONESHOT);
}

static void arm(DiskWait *w, usec_t delay) { arm_at(w, now_monotonic() + delay); }

static void on_located(RuntimeOp *op, int r, const char *text, void *userdata) {
        DiskWait *w = userdata;

        w->op = NULL; /* it frees itself */
        w->locate_error = r < 0 ? r : 0;
        if (r >= 0 && text) {
                free(w->fs_path);
                w->fs_path = strdup(text);
                if (!w->fs_path)
                        w->locate_error = -ENOMEM;
        } else if (r >= 0)
                w->locate_error = -ENODATA;
        if (w->state != WAIT_IDLE)
                arm(w, 0); /* decide from the timer, as always */
}

static void locate(DiskWait *w) {
        int r;

        if (w->fs_path || w->op)
                return;
        w->locate_error = 0;
        r = w->locate ? w->locate(w->glue, w->config, w->runtime, on_located, w, &w->op) : -EOPNOTSUPP;
        if (r < 0)
                w->locate_error = r;
}

/* The path stopped measuring (the runtime moved its root, a mount went): ask again next time. */
static DiskFit check(DiskWait *w, uint64_t need, char **text) {
        DiskFit f = disk_gate_check(w->config, w->fs_path, need, w->image, text);
        if (f == _DISK_FIT_MAX) {
                free(w->fs_path);
                w->fs_path = NULL;
        }
        return f;
}

static void on_gate(DiskWait *w) {
        bool timed_out = now_monotonic() >= w->gate_deadline;
        char *text = NULL;
        DiskFit f;

        if (!w->fs_path && w->locate_error < 0) {
                /* a runtime that cannot say where it keeps images is not held up */
                w->state = WAIT_IDLE;
                w->cb(w, _DISK_FIT_MAX, NULL, w->userdata);
        } else if (w->fs_path && (w->size > 0 || w->size_said || timed_out)) {
                w->state = WAIT_IDLE;
                f = w->size > 0 ? check(w, w->size, &text) : DISK_FITS;
                w->cb(w, f, text, w->userdata);
        } else if (timed_out) {
                /* no answer on where (its RuntimeOp keeps asking, bounded): go on unmeasured */
                w->state = WAIT_IDLE;
                w->cb(w, _DISK_FIT_MAX, NULL, w->userdata);
        } else
                arm_at(w, w->gate_deadline); /* the size or the location is still to come */
}

static void on_space(DiskWait *w) {
        char *text = NULL;
        DiskFit f;

        if (!w->fs_path && w->locate_error < 0) {
                w->state = WAIT_IDLE;
                w->cb(w, _DISK_FIT_MAX, NULL, w->userdata);
                return;
        }
        f = w->fs_path ? check(w, w->need, NULL) : DISK_NO_ROOM;
        if (f == DISK_FITS || f == _DISK_FIT_MAX) {
                w->state = WAIT_IDLE;
                w->cb(w, f, NULL, w->userdata);
        } else if (now_monotonic() >= w->give_up_at) {
                w->state = WAIT_IDLE;
                if (asprintf(&text, "gave up waiting for space on %s", w->fs_path ?: "the image filesystem") < 0)
                        text = NULL;
                w->cb(w, DISK_NO_ROOM, text, w->userdata);
        } else {
                locate(w); /* not located yet: ask (once at a time) */
                arm(w, w->interval);
        }
}

static int on_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        DiskWait *w = userdata;

        if (w->state == WAIT_GATE)
                on_gate(w);
        else if (w->state == WAIT_SPACE)
                on_space(w);
        return 0;
}

int disk_wait_new(CurlGlue *glue, const Config *config, RuntimeKind runtime, imagefs_locate_t locate_fn,
                  const char *image, disk_wait_done_t cb, void *userdata, DiskWait **ret) {
        _cleanup_(disk_wait_freep) DiskWait *w = NULL;
        int r;

        assert(glue);
        assert(ret);
        w = calloc(1, sizeof(*w));
        if (!w)
                return -ENOMEM;
        *w = (DiskWait) { .glue = glue, .config = config, .runtime = runtime, .locate = locate_fn, .cb = cb,
                          .userdata = userdata, .image = image ? strdup(image) : NULL };
        r = image && !w->image ? -ENOMEM
                               : sd_event_add_time_relative(curl_glue_event(glue), &w->timer, CLOCK_MONOTONIC,
                                                            USEC_PER_SEC, 10 * USEC_PER_MSEC, on_timer, w);
        if (r >= 0)
                (void) sd_event_source_set_description(w->timer, "disk-wait");
        if (r >= 0)
                r = sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(w);
        return 0;
}

DiskWait *disk_wait_free(DiskWait *w) {
        if (!w)
                return NULL;
        runtime_op_free(w->op);
        sd_event_source_disable_unref(w->timer);
        free(w->image);
        free(w->fs_path);
        free(w);
        return NULL;
}

void disk_wait_set_size(DiskWait *w, uint64_t size) {
        w->size = size;
        w->size_said = true; /* 0 too: no size is coming (a 404 manifest), so do not wait out the gate */
        if (w->state == WAIT_GATE)
                arm(w, 0);
}

uint64_t disk_wait_size(const DiskWait *w) { return w->size; }

void disk_wait_gate(DiskWait *w, usec_t timeout) {
        w->state = WAIT_GATE;
        w->gate_deadline = now_monotonic() + timeout;
        locate(w);
        arm_at(w, w->gate_deadline);
        if (w->locate_error < 0)
                arm(w, 0); /* could not even ask: decide (go on) from the loop */
}

void disk_wait_space(DiskWait *w, uint64_t need, usec_t interval, usec_t give_up) {
        w->state = WAIT_SPACE;
        w->need = need;
        w->interval = interval;
        w->give_up_at = now_monotonic() + give_up;
        locate(w);
        arm(w, interval);
}

void disk_wait_stop(DiskWait *w) {
        if (!w)
                return;
        w->state = WAIT_IDLE;
        (void) sd_event_source_set_enabled(w->timer, SD_EVENT_OFF);
}

const char *disk_wait_path(const DiskWait *w) { return w->fs_path; }
