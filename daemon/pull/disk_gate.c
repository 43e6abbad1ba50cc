/* disk_gate.c: the arithmetic behind disk-pressure, and the measuring it needs. Usage is counted as df counts it (blocks not free),
 * so the percentages match what kubelet's image GC sees on the same filesystem. */
#include "daemon/pull/disk_gate.h"
#include "probes/drivers/runtime_drivers.h"

#include <stdio.h>

uint64_t disk_gate_image_size(const RegistryManifest *m) {
        uint64_t n;

        if (!m || m->n_layers == 0)
                return 0;
        n = m->config_size;
        for (size_t i = 0; i < m->n_layers; i++)
                n += m->layers[i].size;
        return n;
}

DiskFit disk_gate_judge(const ImageFs *fs, uint64_t need, unsigned high_pct, const char *image, char **ret_text) {
        char b_need[32], b_free[32], b_cap[32];
        unsigned now_pct, after_pct;
        DiskFit f;
        int r = 0;

        if (ret_text)
                *ret_text = NULL;
        if (!fs || fs->capacity == 0)
                return DISK_FITS; /* nothing measured: nothing to refuse */
        now_pct = imagefs_percent(fs->used, fs->capacity);
        after_pct = imagefs_percent(fs->used + need, fs->capacity);
        if (need > fs->available)
                f = DISK_NO_ROOM;
        else if (after_pct > high_pct)
                f = DISK_OVER_HIGH;
        else
                return DISK_FITS;
        if (!ret_text)
                return f;
        format_bytes_human(need, b_need, sizeof(b_need));
        format_bytes_human(fs->available, b_free, sizeof(b_free));
        format_bytes_human(fs->capacity, b_cap, sizeof(b_cap));
        if (f == DISK_NO_ROOM)
                r = asprintf(ret_text,
                             "%s needs %s but only %s is free on %s (%s, %u%% used): the pull cannot fit; free "
                             "space there (prune unused images) or grow the filesystem.",
                             image ?: "the image", b_need, b_free, fs->path ?: "the image filesystem", b_cap, now_pct);
        else
                r = asprintf(ret_text,
                             "%s needs %s of the %s free on %s (%s): usage would go from %u%% to %u%%, past "
                             "kubelet's image GC high threshold of %u%%, and kubelet would start deleting images; "
                             "free space there or grow the filesystem.",
                             image ?: "the image", b_need, b_free, fs->path ?: "the image filesystem", b_cap, now_pct,
                             after_pct, high_pct);
        if (r < 0)
                *ret_text = NULL;
        return f;
}

DiskFit disk_gate_check(const Config *config, const char *fs_path, uint64_t need, const char *image,
                        char **ret_text) {
        ImageFs fs = {};
        DiskFit f;

        if (ret_text)
                *ret_text = NULL;
        if (!fs_path || imagefs_stat(fs_path, &fs) < 0)
                return _DISK_FIT_MAX;
        f = disk_gate_judge(&fs, need, config->kubelet.image_gc_high_threshold, image, ret_text);
        imagefs_done(&fs);
        return f;
}

uint64_t disk_gate_remaining(RuntimeKind runtime, uint64_t image_size, uint64_t reported, uint64_t stored) {
        uint64_t size = image_size > 0 ? image_size : reported;
        const RuntimeDriver *d = runtime_driver_get(runtime);
        return d && d->keeps_partial && stored < size ? size - stored : size;
}
