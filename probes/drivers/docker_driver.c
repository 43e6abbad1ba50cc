/* docker_driver.c: the Docker Engine's row of the runtime driver table: its pull operations
 * (probes/docker/docker.c), where it extracts and keeps its images, its registry settings' defaults,
 * and how a diagnosis names it. */
#include "probes/drivers/runtime_drivers.h"

#include <assert.h>

#include "probes/docker/docker.h"
#include "probes/docker/docker_info.h"
#include "probes/drivers/imagefs.h"

#include <jansson.h>

static int docker_registry_defaults(RuntimeRegistry *rt, const Config *c) {
        /* dockerd treats loopback as insecure without being told */
        static const char *const insecure[] = { "127.0.0.0/8", NULL };

        assert(rt);
        return runtime_registry_init(rt, RUNTIME_DOCKER, REGISTRY_HOPS_CERTS_D,
                                     c && c->docker_certs_dir ? c->docker_certs_dir : "/etc/docker/certs.d", insecure);
}

/* dockerd extracts into <DockerRootDir>/overlay2/<layer>/diff */
static int docker_extract_at(CurlGlue *glue, const Config *c, runtime_op_done_t done, void *userdata,
                             RuntimeOp **ret) {
        assert(c);
        return docker_extraction_dir(glue, c->docker_socket ?: "/var/run/docker.sock", done, userdata, ret);
}

/* the Engine's /version (and its API version), and its image store: the containerd image store pulls
 * through a containerd of its own choosing */
static int docker_describe(const Config *config, json_t *v) {
        _cleanup_free_ char *version = NULL, *api = NULL;
        DockerStore s = {};
        int r;

        assert(config);
        assert(v);
        r = docker_version(config->docker_socket, &version, &api);
        if (r < 0)
                return r;
        json_object_set_new(v, "version", json_string(version));
        json_object_set_new(v, "api_version", json_string(api));
        r = docker_store_query(config->docker_socket, &s);
        if (r < 0)
                return r;
        json_object_set_new(v, "store", json_string(docker_store_name(&s)));
        if (s.driver)
                json_object_set_new(v, "storage_driver", json_string(s.driver));
        if (s.containerd && s.containerd_address)
                json_object_set_new(v, "containerd_address", json_string(s.containerd_address));
        if (s.containerd && s.containerd_namespace)
                json_object_set_new(v, "containerd_namespace", json_string(s.containerd_namespace));
        docker_store_done(&s);
        return 0;
}

static const RuntimeWording docker_wording = {
        .process = "dockerd",
        .config_section = "docker",
        .storage_root = "/var/lib/docker",
        .ca_dir = "/etc/docker/certs.d/",
        .ca_file = "/ca.crt",
        .ca_remedy = " (no restart needed)",
        .octet_skipper = "Docker's containerd image store (measured on 28.5)",
        .octet_remedy = "rebuild and push the image with a current builder, or pull it with Docker's classic "
                        "image store (the containerd image store refuses it)",
        .scheme_remedy = "serve it over TLS with its CA in /etc/docker/certs.d/{host}/ca.crt. On the classic image "
                         "store, listing it in insecure-registries in /etc/docker/daemon.json also works; on the "
                         "containerd image store (Docker 29's default) that alone does not: give it a TLS endpoint.",
        .igzip_remedy = "set CONTAINERD_DISABLE_IGZIP=1 and CONTAINERD_DISABLE_PIGZ=1 in the environment of the "
                        "containerd that dockerd pulls through (systemctl edit containerd) and restart it, so it "
                        "decompresses in-process",
        .pigz_remedy = "set MOBY_DISABLE_PIGZ=true in dockerd's environment (systemctl edit docker) and restart it, "
                       "so dockerd decompresses in-process",
        /* Measured on the bed (dockerd 20.10.24, registry-mirrors = [silent, cache]): the mirror's
         * /v2/ ping ends after 15 s ("context deadline exceeded", or "net/http: request canceled
         * (Client.Timeout exceeded while awaiting headers)"), then "Attempting next endpoint for pull
         * after error" and the pull completes through the next mirror (15.7 s in all; the same on 26.1.5
         * and 28.5.2); a refused mirror falls through at once ("connect: connection refused", 0.5 s).
         * mirror.bats checks it on every row. */
        .mirror_where = "registry-mirrors in /etc/docker/daemon.json",
        .mirror_silent = "dockerd gives a silent mirror 15 s (its /v2/ ping times out), then tries the next endpoint "
                         "(\"Attempting next endpoint for pull after error\" in its log), so every pull of that "
                         "registry pays 15 s per silent mirror (measured on 20.10.24, 26.1.5 and 28.5.2)",
        /* Measured on the bed (dockerd 28.5.2 on the containerd image store, containerd 2.1.9,
         * registry-mirrors = [silent, cache]): it resolved through containerd's resolver, which waited
         * on the silent mirror until the client gave up after 100 s ("trying next host ... context
         * canceled" for both hosts at that moment); the cache was never asked. */
        .mirror_silent_store = "dockerd on the containerd image store resolves through containerd's resolver, which "
                               "does not fall back from a mirror that accepts and stays silent (as containerd "
                               "#10624): its pulls of that registry wait on the mirror (measured on 28.5.2)",
        .mirror_refused = "dockerd tries the next endpoint at once (\"Attempting next endpoint for pull after error\")",
        .mirror_remedy = "repair the mirror, or remove it from registry-mirrors in /etc/docker/daemon.json and reload "
                         "dockerd (SIGHUP, no restart)",
};

const RuntimeDriver docker_driver = {
        .kind = RUNTIME_DOCKER,
        .name = "docker",
        .wording = &docker_wording,
        .auth_header = true,
        .registry_defaults = docker_registry_defaults,
        .extraction_dir = docker_extract_at,
        .extract_subdir = "diff",
        .imagefs_dir = imagefs_locate_engine,
        .describe = docker_describe,
        .abandon = docker_abandon,
        .expect_layers = docker_expect_layers,
        .start = docker_start,
        .cancel = docker_cancel,
        .free = docker_free,
        .process = docker_process,
        .confirm = docker_confirm,
        .ping_async = docker_ping_async,
        .ping = docker_ping,
};
