/* containerd_label.c: CRI ImageStatus (the references, through the CRI client) and containerd's
 * Images.Update (one label) on the curl glue; see containerd_label.h. */
#include "probes/containerd/containerd_label.h"

#include <stdio.h>

#include "containerd_images.pb-c.h"
#include "probes/containerd/containerd.h"
#include "probes/cri/cri_client.h"
#include "probes/runtime/runtime_op.h"

static int refs_parse(const char *image, GrpcReply *g, char **ret_text) {
        _cleanup_free_ char *text = NULL;
        _cleanup_(error_detail_done) ErrorDetail e = {};
        const Runtime__V1__Image *img = NULL;
        CriReply reply;
        size_t len = 0;
        FILE *f;
        int r;

        r = cri_reply_read(CRI_IMAGE_STATUS, g, &reply);
        if (r < 0)
                return r;
        r = reply.error;
        if (r < 0) {
                error_detail_move(&e, &reply.detail);
                if (reply.transport_error == -ENOENT)
                        r = -ENXIO; /* no socket: that says nothing about the image */
        } else
                /* CRI answers an empty status for an absent image */
                r = cri_image_status_image(cri_reply_image_status(&reply), image, CONTAINERD_CRI_NAMESPACE, &img, &e);
        if (r < 0) {
                cri_reply_done(&reply);
                *ret_text = error_detail_format(&e);
                return r;
        }
        f = open_memstream(&text, &len);
        if (f) {
                fputs(img->id, f);
                for (size_t i = 0; i < img->n_repo_digests; i++)
                        if (img->repo_digests[i] && *img->repo_digests[i] && !strchr(img->repo_digests[i], '\n'))
                                fprintf(f, "\n%s", img->repo_digests[i]);
        }
        cri_reply_done(&reply);
        if (!f || fclose(f) != 0)
                return -ENOMEM;
        *ret_text = TAKE_PTR(text);
        return 0;
}

int containerd_image_refs_start(CurlGlue *glue, const char *socket, const char *image, runtime_op_done_t done,
                                void *userdata, RuntimeOp **ret) {
        CriRequest req;

        if (!socket || !image)
                return -EINVAL;
        cri_request_image_status(&req, image, false);
        return runtime_op_grpc(glue, &(GrpcTarget) { .socket = socket, .namespace = CONTAINERD_CRI_NAMESPACE },
                               cri_method_path(req.method), &req.base, cri_method_reply_type(req.method), refs_parse,
                               image, done, userdata, ret);
}

static int label_parse(const char *name, GrpcReply *reply, char **ret_text) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        int r = grpc_reply_error(reply, "Images.Update", &e);
        if (r < 0)
                *ret_text = error_detail_format(&e);
        if (r == -ENOENT && reply->error == -ENOENT) {
                /* no socket is not "no such image" */
                r = -ENXIO;
        }
        return r;
}

int containerd_image_label_start(CurlGlue *glue, const char *socket, const char *namespace, const char *name,
                                 const char *key, const char *value, runtime_op_done_t done, void *userdata,
                                 RuntimeOp **ret) {
        Containerd__Services__Images__V1__UpdateImageRequest req =
                CONTAINERD__SERVICES__IMAGES__V1__UPDATE_IMAGE_REQUEST__INIT;
        Containerd__Services__Images__V1__Image img = CONTAINERD__SERVICES__IMAGES__V1__IMAGE__INIT;
        Containerd__Services__Images__V1__Descriptor target = CONTAINERD__SERVICES__IMAGES__V1__DESCRIPTOR__INIT;
        Containerd__Services__Images__V1__LabelEntry entry = CONTAINERD__SERVICES__IMAGES__V1__LABEL_ENTRY__INIT;
        Containerd__Services__Images__V1__LabelEntry *entries[1] = { &entry };
        Containerd__Services__Images__V1__FieldMask mask = CONTAINERD__SERVICES__IMAGES__V1__FIELD_MASK__INIT;
        _cleanup_free_ char *path = NULL;
        char *paths[1];

        if (!socket || !name || !key)
                return -EINVAL;
        /* The mask names one label: only it changes, and an absent value deletes it. */
        if (asprintf(&path, "labels.%s", key) < 0)
                return -ENOMEM;
        paths[0] = path;
        mask.n_paths = 1;
        mask.paths = paths;
        img.name = (char *) name;
        /* An empty target, never none: containerd 2.1.9 converts the image before applying the mask and
         * dereferences a missing target (a panic: containerd exits); the mask keeps the image's own. */
        img.target = &target;
        if (value) {
                entry.key = (char *) key;
                entry.value = (char *) value;
                img.n_labels = 1;
                img.labels = entries;
        }
        req.image = &img;
        req.update_mask = &mask;
        return runtime_op_grpc(glue, &(GrpcTarget) { .socket = socket, .namespace = namespace },
                               "/containerd.services.images.v1.Images/Update", &req.base,
                               &containerd__services__images__v1__update_image_response__descriptor, label_parse,
                               name, done, userdata, ret);
}
