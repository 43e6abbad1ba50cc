/* disk_gate.h: whether an image fits on the runtime's image filesystem without pushing it past kubelet's
 * image GC high threshold. Pure: the figures come in, a verdict and one sentence with the numbers go
 * out; the pull job decides what to do with them. */
#pragma once

#include "probes/drivers/imagefs.h"
#include "probes/registry/registry.h"

typedef enum DiskFit {
        DISK_FITS,
        DISK_NO_ROOM,             /* need more than is free */
        DISK_OVER_HIGH,           /* fits, but usage would pass the high threshold */
        _DISK_FIT_MAX,
} DiskFit;

/* Bytes a pull of m stores: every layer blob plus the config (the compressed sizes: what the content
 * store holds; unpacked layers take more, which the threshold's headroom absorbs). 0 when unknown. */
uint64_t disk_gate_image_size(const RegistryManifest *m);

/* statvfs fs_path (the image filesystem, located by imagefs_locate()) and judge need bytes against it
 * with config's high threshold. _DISK_FIT_MAX when it cannot be measured. */
DiskFit disk_gate_check(const Config *config, const char *fs_path, uint64_t need, const char *image,
                        char **ret_text);

/* What a retry after ENOSPC still has to store: the image (image_size, or the sizes the runtime
 * reported when the manifest is unknown), less what containerd kept of the partial download (stored);
 * dockerd starts unfinished layers again. */
uint64_t disk_gate_remaining(RuntimeKind runtime, uint64_t image_size, uint64_t reported, uint64_t stored);

/* Judge need bytes against fs with high_pct (1..100). ret_text (may be NULL) gets one sentence with
 * the image, the free space, the filesystem and the usage before and after. */
DiskFit disk_gate_judge(const ImageFs *fs, uint64_t need, unsigned high_pct, const char *image, char **ret_text);
