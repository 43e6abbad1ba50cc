/* runtime_drivers.c: the runtime driver table, indexed by kind, as crun picks its cgroup manager: the
 * only switch from a kind (or a preheat item's runtime) to a driver. */
#include "probes/drivers/runtime_drivers.h"

#include <assert.h>

static const RuntimeDriver *const by_kind[_RUNTIME_KIND_MAX] = {
        [RUNTIME_DOCKER] = &docker_driver,
        [RUNTIME_CONTAINERD] = &containerd_driver,
};

const RuntimeDriver *const runtime_drivers[] = { &docker_driver, &containerd_driver, NULL };

const RuntimeDriver *runtime_driver_get(RuntimeKind kind) {
        return kind >= 0 && kind < _RUNTIME_KIND_MAX ? by_kind[kind] : NULL;
}

const RuntimeDriver *runtime_driver_by_name(const char *name) {
        return runtime_driver_get(runtime_kind_from_string(name));
}

const RuntimeDriver *runtime_driver_auto_probe(void) { return &containerd_driver; }
const RuntimeDriver *runtime_driver_auto_fallback(void) { return &docker_driver; }

RuntimeKind runtime_kind_resolve(RuntimeKind configured, RuntimeKind detected) {
        return configured != RUNTIME_AUTO ? configured :
               detected != RUNTIME_AUTO   ? detected :
                                            runtime_driver_auto_fallback()->kind;
}

size_t runtime_kinds_of_preheat(PreheatRuntime r, RuntimeKind default_kind, RuntimeKind ret[static _RUNTIME_KIND_MAX]) {
        size_t n = 0;

        assert(ret);
        switch (r) {
        case PREHEAT_RUNTIME_DOCKER:
                ret[n++] = RUNTIME_DOCKER;
                break;
        case PREHEAT_RUNTIME_CONTAINERD:
                ret[n++] = RUNTIME_CONTAINERD;
                break;
        case PREHEAT_RUNTIME_BOTH:
                for (const RuntimeDriver *const *d = runtime_drivers; *d; d++)
                        ret[n++] = (*d)->kind;
                break;
        default:
                ret[n++] = default_kind;
        }
        return n;
}

int imagefs_locate(CurlGlue *glue, const Config *config, RuntimeKind kind, runtime_op_done_t done, void *userdata,
                   RuntimeOp **ret) {
        const RuntimeDriver *d = runtime_driver_get(kind);

        if (!d || !d->imagefs_dir)
                return -EOPNOTSUPP;
        return d->imagefs_dir(glue, config, done, userdata, ret);
}
