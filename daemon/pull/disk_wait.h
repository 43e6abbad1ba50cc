/* disk_wait.h: the waiting side of disk-aware pulls, on the pull's event loop: before attempt 1 the wait
 * for the image's size and for where the runtime keeps images (both bounded), then the judgement; after
 * ENOSPC, statvfs polls until the rest of the image fits. Owns its timer, the locating RuntimeOp and the
 * measured path; the pull job decides what a verdict means. */
#pragma once

#include <systemd/sd-event.h>
#include "daemon/pull/disk_gate.h"

typedef struct DiskWait DiskWait;

/* From the loop, never inside a disk_wait_* call. fit: DISK_FITS or _DISK_FIT_MAX (not measured) mean go
 * on; DISK_NO_ROOM / DISK_OVER_HIGH come with text (handed over) saying why, with the numbers. */
typedef void (*disk_wait_done_t)(DiskWait *w, DiskFit fit, char *text, void *userdata);

/* locate: imagefs_locate (tests give their own); NULL: never measured (every verdict _DISK_FIT_MAX). */
int disk_wait_new(CurlGlue *glue, const Config *config, RuntimeKind runtime, imagefs_locate_t locate,
                  const char *image, disk_wait_done_t cb, void *userdata, DiskWait **ret);
DiskWait *disk_wait_free(DiskWait *w);
static inline void disk_wait_freep(DiskWait **w) { disk_wait_free(*w); }

/* The image's size is known (0 = not); a gate waiting for it decides now. */
void disk_wait_set_size(DiskWait *w, uint64_t size);
uint64_t disk_wait_size(const DiskWait *w);
/* Judge the image against the disk once its size and the filesystem are known; after timeout without
 * the size: DISK_FITS; without the filesystem, or when the runtime cannot say where it is: _DISK_FIT_MAX
 * (go on unmeasured). Returns at once; cb follows from the loop. */
void disk_wait_gate(DiskWait *w, usec_t timeout);
/* Poll every interval until need bytes fit (cb with DISK_FITS); after give_up, cb with DISK_NO_ROOM. */
void disk_wait_space(DiskWait *w, uint64_t need, usec_t interval, usec_t give_up);
void disk_wait_stop(DiskWait *w);
/* The filesystem measured, NULL before the first measurement. */
const char *disk_wait_path(const DiskWait *w);
