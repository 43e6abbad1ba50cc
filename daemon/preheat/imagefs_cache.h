/* imagefs_cache.h: where each runtime keeps its images, asked once per runtime on the loop (its driver's
 * imagefs_dir) and remembered until forgotten, then measured with statvfs on demand. Owns the questions
 * in flight and the paths; it decides nothing and never logs. */
#pragma once

#include "probes/drivers/imagefs.h"

typedef struct ImageFsPlace {
        char *path;               /* NULL until the runtime said */
        RuntimeOp *op;            /* asking, in flight */
} ImageFsPlace;

typedef struct ImageFsCache {
        ImageFsPlace at[_RUNTIME_KIND_MAX];
} ImageFsCache;

/* Ask kind's runtime where its images are, unless known or being asked. */
void imagefs_cache_locate(ImageFsCache *c, CurlGlue *glue, const Config *config, RuntimeKind kind);
/* Measure kind's image filesystem into ret (imagefs_done() it). -EAGAIN when its place is not known
 * (asked now, for the next time; a place that no longer measures is forgotten and asked again). */
int imagefs_cache_measure(ImageFsCache *c, CurlGlue *glue, const Config *config, RuntimeKind kind, ImageFs *ret);
/* Forget every place (config reload, shutdown): cancels the questions in flight. */
void imagefs_cache_forget(ImageFsCache *c);
