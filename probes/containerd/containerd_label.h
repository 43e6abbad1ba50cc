/* containerd_label.h: the two questions preheat.pin asks containerd, as RuntimeOps on the curl glue (the
 * daemon never blocks on a runtime): which references CRI keeps for an image, and one label of one
 * image reference set or removed. Facts only; which references to label is the caller's choice. */
#pragma once

#include "probes/runtime/runtime.h"

/* CRI ImageStatus of image in k8s.io. done gets 0 with text "ID\nREPO_DIGEST\n..." (the image id, then
 * every "repo@sha256:..." CRI lists, one a line), -ENOENT when CRI has no such image, or another -errno
 * with a one-line reason. */
int containerd_image_refs_start(CurlGlue *glue, const char *socket, const char *image, runtime_op_done_t done,
                                void *userdata, RuntimeOp **ret);

/* Images.Update of the label key of image reference name in namespace: set to value, removed when value
 * is NULL; nothing else of the image changes. done gets 0, -ENOENT when there is no such reference, or
 * another -errno with a one-line reason. ret == NULL: fire and forget (done may be NULL). */
int containerd_image_label_start(CurlGlue *glue, const char *socket, const char *namespace, const char *name,
                                 const char *key, const char *value, runtime_op_done_t done, void *userdata,
                                 RuntimeOp **ret);
