/* docker_info.h: where dockerd extracts layers, asked without blocking (GET /info on the curl glue):
 * the disk-growth probe's target for a pull through dockerd. */
#pragma once

#include "probes/runtime/runtime_op.h"

/* done gets 0 with "<DockerRootDir>/overlay2" as text when dockerd stores layers with overlay2;
 * -EOPNOTSUPP (text NULL) for another storage driver (the containerd image store's overlayfs
 * snapshotter included); another -errno with a one-line reason when dockerd did not say. */
int docker_extraction_dir(CurlGlue *glue, const char *socket, runtime_op_done_t done, void *userdata,
                          RuntimeOp **ret);
