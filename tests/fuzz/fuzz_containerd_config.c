/* fuzz_containerd_config: containerd's config.toml as containerd_config.c reads it for the registry
 * config_path (every TOML form walked, imports followed). The input is the file, through a memfd. */
#include "tests/fuzz/fuzz_util.h"

#include <sys/mman.h>
#include <unistd.h>

#include "basic/macro.h"
#include "probes/containerd/containerd_config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64], *cp = NULL, *from = NULL;
        ErrorDetail error = {};
        int fd = memfd_create("config.toml", MFD_CLOEXEC), r;

        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(write(fd, data, size) == (ssize_t) size);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
        r = containerd_config_registry_path(NULL, path, &cp, &from, &error);
        if (r == 0)
                FUZZ_CHECK(!cp || (*cp && from));
        if (r == -EINVAL)
                FUZZ_CHECK(error.message && *error.message && error.source);
        else
                FUZZ_CHECK(!error.message);
        free(cp);
        free(from);
        error_detail_done(&error);
        close(fd);
        return 0;
}
