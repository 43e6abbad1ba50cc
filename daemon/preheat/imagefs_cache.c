/* imagefs_cache.c: the image filesystem of each runtime, located once and measured when asked. The
 * location is a RuntimeOp on the curl glue (a hung runtime must not stall the loop); only statvfs
 * runs in place. */
#include "daemon/preheat/imagefs_cache.h"

#include <assert.h>

#include "probes/drivers/runtime_drivers.h"
#include "probes/runtime/runtime_op.h"

static void on_located(RuntimeOp *op, int r, const char *text, void *userdata) {
        ImageFsPlace *at = userdata;

        at->op = NULL; /* it frees itself */
        if (r >= 0 && text) {
                free(at->path);
                at->path = strdup(text);
        }
}

void imagefs_cache_locate(ImageFsCache *c, CurlGlue *glue, const Config *config, RuntimeKind kind) {
        ImageFsPlace *at;

        assert(c);
        assert(config);
        if (kind < 0 || kind >= _RUNTIME_KIND_MAX)
                return;
        at = &c->at[kind];
        if (at->path || at->op)
                return;
        (void) imagefs_locate(glue, config, kind, on_located, at, &at->op);
}

int imagefs_cache_measure(ImageFsCache *c, CurlGlue *glue, const Config *config, RuntimeKind kind, ImageFs *ret) {
        ImageFsPlace *at;

        assert(c);
        assert(ret);
        if (kind < 0 || kind >= _RUNTIME_KIND_MAX)
                return -EINVAL;
        at = &c->at[kind];
        if (at->path && imagefs_stat(at->path, ret) >= 0)
                return 0;
        at->path = mfree(at->path);
        imagefs_cache_locate(c, glue, config, kind);
        return -EAGAIN;
}

void imagefs_cache_forget(ImageFsCache *c) {
        assert(c);
        for (size_t k = 0; k < _RUNTIME_KIND_MAX; k++) {
                c->at[k].op = runtime_op_free(c->at[k].op);
                c->at[k].path = mfree(c->at[k].path);
        }
}
