/* fuzz_credentials: a docker config.json (often hand-edited, sometimes another tool's) read by the real
 * file path, a memfd standing in for the file. Every registry key form is looked up in it; a credential
 * found must encode to an X-Registry-Auth header; a refused file comes with a reason. */
#include <sys/mman.h>

#include "tests/fuzz/fuzz_util.h"
#include "probes/registry/credentials.h"

static const char *const hosts[] = {
        "https://index.docker.io/v1/", "docker.io", "127.0.0.1:5000", "ghcr.io", "reg.example.com",
        "[::1]:5000",
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char path[64], *files[3];
        int fd;

        fd = memfd_create("config.json", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        FUZZ_CHECK(write(fd, data, size) == (ssize_t) size);
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        files[0] = (char *) "/nonexistent/pullwatch-fuzz/config.json"; /* skipped: missing */
        files[1] = path;
        files[2] = NULL;

        for (size_t i = 0; i < ELEMENTSOF(hosts); i++) {
                Credential *c = NULL;
                ErrorDetail error = {};
                char *header = NULL;
                int r = credentials_lookup_full(files, hosts[i], &c, &error);

                if (r < 0) {
                        FUZZ_CHECK(!c);
                        FUZZ_CHECK(r == -ENOMEM || error.message);
                } else if (c) {
                        FUZZ_CHECK(c->username || c->identity_token);
                        FUZZ_CHECK(c->server && streq(c->server, hosts[i]));
                        FUZZ_CHECK(credential_to_docker_auth_header(c, &header) == 0);
                        FUZZ_CHECK(header && *header);
                }
                credential_secret_free(header);
                credential_free(c);
                error_detail_done(&error);
        }
        close(fd);
        return 0;
}
