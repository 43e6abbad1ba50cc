/* imagefs.c: where a runtime keeps its images and how full that filesystem is. CRI's ImageFsInfo
 * names the snapshotter root but no free space, and dockerd's /info names its root and nothing about
 * the disk, so both end in a statvfs of the path they name. The question goes on the curl glue (a
 * RuntimeOp); only statvfs runs in place. */
#include "probes/drivers/imagefs.h"

#include <stdio.h>
#include <sys/statvfs.h>

#include <jansson.h>

#include "probes/containerd/containerd.h"
#include "probes/cri/cri_client.h"
#include "probes/runtime/runtime_op.h"

void imagefs_done(ImageFs *fs) {
        if (!fs)
                return;
        free(fs->path);
        *fs = (ImageFs) {};
}

int imagefs_stat(const char *path, ImageFs *ret) {
        struct statvfs v;
        char *copy;

        if (!path)
                return -EINVAL;
        if (statvfs(path, &v) < 0)
                return -errno;
        copy = strdup(path);
        if (!copy)
                return -ENOMEM;
        *ret = (ImageFs) {
                .path = copy,
                .capacity = (uint64_t) v.f_blocks * v.f_frsize,
                .available = (uint64_t) v.f_bavail * v.f_frsize,
                .used = (uint64_t) (v.f_blocks - v.f_bfree) * v.f_frsize,
        };
        return 0;
}

unsigned imagefs_percent(uint64_t used, uint64_t capacity) {
        if (capacity == 0)
                return 0;
        return (unsigned) ((used * 100.0L + capacity - 1) / capacity);
}

/* ---- where: asked on the curl glue ---- */

static int cri_parse(const char *socket, GrpcReply *g, char **ret_text) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        const char *mountpoint = NULL;
        CriReply reply;
        int r = cri_reply_read(CRI_IMAGE_FS_INFO, g, &reply);

        if (r < 0)
                return r;
        r = reply.error;
        if (r < 0) {
                error_detail_move(&e, &reply.detail);
                *ret_text = error_detail_format(&e);
        } else if (cri_image_fs_mountpoint(cri_reply_image_fs_info(&reply), &mountpoint) < 0) {
                r = -ENODATA;
                if (asprintf(ret_text, "ImageFsInfo on %s named no filesystem", socket) < 0)
                        *ret_text = NULL;
        } else if (!(*ret_text = strdup(mountpoint)))
                r = -ENOMEM;
        cri_reply_done(&reply);
        return r;
}

static int info_parse(const char *socket, int r, long status, const char *body, char **ret_text) {
        _cleanup_(json_decrefp) json_t *j = NULL;
        const char *root;

        if (r >= 0 && status != 200)
                r = -EIO;
        if (r >= 0 && !(j = json_loads(body, 0, NULL)))
                r = -EPROTO;
        root = j ? json_string_value(json_object_get(j, "DockerRootDir")) : NULL;
        if (r >= 0 && (!root || root[0] != '/'))
                r = -ENODATA;
        if (r < 0) {
                int k = status && status != 200 ? asprintf(ret_text, "GET /info on %s: HTTP %ld", socket, status)
                                                 : asprintf(ret_text, "GET /info on %s: %s", socket, strerror(-r));
                if (k < 0)
                        *ret_text = NULL;
                return r;
        }
        *ret_text = strdup(root);
        return *ret_text ? 0 : -ENOMEM;
}

int imagefs_locate_cri(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                       RuntimeOp **ret) {
        const char *sock = config->containerd_socket ?: CONTAINERD_DEFAULT_SOCKET;
        CriRequest req;

        cri_request_image_fs_info(&req);
        return runtime_op_grpc(glue, &(GrpcTarget) { .socket = sock, .namespace = CONTAINERD_CRI_NAMESPACE },
                               cri_method_path(req.method), &req.base, cri_method_reply_type(req.method), cri_parse,
                               sock, done, userdata, ret);
}

int imagefs_locate_engine(CurlGlue *glue, const Config *config, runtime_op_done_t done, void *userdata,
                          RuntimeOp **ret) {
        const char *sock = config->docker_socket ?: "/var/run/docker.sock";

        return runtime_op_http_shared(glue, sock, "/info", RUNTIME_OP_SETTINGS_TTL, info_parse, sock, done, userdata, ret);
}
