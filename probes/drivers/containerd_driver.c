/* containerd_driver.c: containerd's row of the runtime driver table: its CRI pull operations
 * (probes/containerd/containerd_pull.c), where it keeps its images, its registry settings' defaults,
 * and how a diagnosis names it. */
#include "probes/drivers/runtime_drivers.h"

#include <assert.h>

#include "probes/containerd/containerd.h"
#include "probes/drivers/imagefs.h"

#include <jansson.h>

static int containerd_registry_defaults(RuntimeRegistry *rt, const Config *c) {
        assert(rt);
        return runtime_registry_init(rt, RUNTIME_CONTAINERD, REGISTRY_HOPS_HOSTS_TOML,
                                     c && c->containerd_hosts_dir ? c->containerd_hosts_dir : "/etc/containerd/certs.d",
                                     NULL);
}

/* containerd's Version service, and its own CRI pull progress timeout where it reports it, with a
 * warning when the value is a known-bad one */
static int containerd_describe(const Config *config, json_t *v) {
        _cleanup_free_ char *version = NULL, *timeout = NULL;
        const char *warning;
        int r;

        assert(config);
        assert(v);
        r = containerd_version(config->containerd_socket, &version, NULL);
        if (r < 0)
                return r;
        json_object_set_new(v, "version", json_string(version));
        r = containerd_cri_progress_timeout(config->containerd_socket, &timeout, NULL);
        if (r < 0)
                return r;
        json_object_set_new(v, "image_pull_progress_timeout", json_string(timeout));
        warning = containerd_progress_timeout_warning(timeout, version);
        if (warning)
                json_object_set_new(v, "warning", json_sprintf("image_pull_progress_timeout %s: %s", timeout, warning));
        return 0;
}

static const RuntimeWording containerd_wording = {
        .process = "containerd",
        .config_section = "containerd",
        .storage_root = "/var/lib/containerd",
        .ca_dir = "/etc/containerd/certs.d/",
        .ca_file = "/hosts.toml (ca = ...)",
        .ca_remedy = " (hosts.toml ca = \"...\"; no restart needed)",
        .octet_skipper = "containerd 1.4 to 2.0",
        .octet_remedy = "rebuild and push the image with a current builder, or pull it through Docker",
        .octet_config_refused = true,
        .scheme_remedy = "serve it over TLS (its CA in /etc/containerd/certs.d/{host}/), or declare it plain http "
                         "with server = \"http://{host}\" in /etc/containerd/certs.d/{host}/hosts.toml.",
        .igzip_remedy = "set CONTAINERD_DISABLE_IGZIP=1 and CONTAINERD_DISABLE_PIGZ=1 in containerd's environment "
                        "(systemctl edit containerd) and restart it, so containerd decompresses in-process",
        .pigz_remedy = "set CONTAINERD_DISABLE_PIGZ=1 in containerd's environment (and CONTAINERD_DISABLE_IGZIP=1 on "
                       "containerd 2.0+, which would otherwise switch to igzip where it is installed; systemctl edit "
                       "containerd) and restart it, so containerd decompresses in-process",
        /* core/remotes/docker/resolver.go tries the next host on an error, but a response that never
         * comes is no error: no response-header timeout (containerd #10624; Spegel #739, #1159). */
        .mirror_where = "hosts.toml",
        .mirror_silent = "containerd does not fall back from a mirror that accepts and stays silent (containerd "
                         "#10624): its pulls of this registry hang until the mirror answers or is removed",
        .mirror_refused = "containerd tries the next host at once, so pulls still work but bypass the mirror",
        .mirror_remedy = "repair the mirror, or remove its [host] entry from hosts.toml (read at every pull, no "
                         "restart); on containerd 2.1+ dial_timeout in hosts.toml covers only the connect, not a "
                         "mirror that accepts and stays silent",
};

const RuntimeDriver containerd_driver = {
        .kind = RUNTIME_CONTAINERD,
        .name = "containerd",
        .wording = &containerd_wording,
        .keeps_partial = true,
        .pin_labels = true,
        .cancels_stalled = true,
        .watchable = true,
        .registry_defaults = containerd_registry_defaults,
        /* no disk-growth target yet: the snapshotter's fs dirs would be it (HACKING.md, issue 13) */
        .imagefs_dir = imagefs_locate_cri,
        .describe = containerd_describe,
        .expect = cd_expect,
        .expect_layers = cd_expect_layers,
        .abandon = cd_abandon,
        .start = cd_start,
        .cancel = cd_cancel,
        .free = cd_pull_free,
        .process = cd_process,
        .confirm = cd_confirm,
        .ping_async = cd_ping_async,
        .ping = cd_ping,
};
