/* docker_info.c: dockerd's DockerRootDir and storage driver from GET /info, read into the directory
 * its overlay2 layers are extracted under. */
#include "probes/docker/docker_info.h"

#include <jansson.h>

static int parse_info(const char *socket, int r, long status, const char *body, char **ret_text) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *root, *driver;

        if (r < 0)
                return asprintf(ret_text, "GET /info on %s: %s", socket, strerror(-r)) < 0 ? -ENOMEM : r;
        if (status != 200)
                return asprintf(ret_text, "GET /info on %s: HTTP %ld", socket, status) < 0 ? -ENOMEM : -EIO;
        j = json_loads(body ?: "", 0, NULL);
        root = json_string_value(json_object_get(j, "DockerRootDir"));
        driver = json_string_value(json_object_get(j, "Driver"));
        if (!root || !driver)
                return asprintf(ret_text, "GET /info on %s: no DockerRootDir or Driver", socket) < 0 ? -ENOMEM : -EPROTO;
        if (!streq(driver, "overlay2"))
                return -EOPNOTSUPP;
        return asprintf(ret_text, "%s/overlay2", root) < 0 ? -ENOMEM : 0;
}

int docker_extraction_dir(CurlGlue *glue, const char *socket, runtime_op_done_t done, void *userdata,
                          RuntimeOp **ret) {
        return runtime_op_http_shared(glue, socket, "/info", RUNTIME_OP_SETTINGS_TTL, parse_info, socket, done, userdata,
                                      ret);
}
