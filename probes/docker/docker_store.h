/* docker_store.h: which image store a dockerd uses, from its /info: the classic graph drivers, or
 * the containerd image store (Docker 29's default), where pulls run through containerd's content
 * store and unpacker and the decompressors are containerd's children. Pure parsing; no I/O. */
#pragma once

#include <jansson.h>
#include "basic/macro.h"

typedef struct DockerStore {
        bool containerd;              /* DriverStatus driver-type io.containerd.snapshotter.v1 */
        char *driver;                 /* "overlay2", "overlayfs", "vfs"... */
        char *root;                   /* DockerRootDir */
        char *containerd_address;     /* Containerd.Address (API 1.46+), NULL when not reported */
        char *containerd_namespace;   /* Containerd.Namespaces.Containers, "moby" by default */
} DockerStore;

/* Fill ret from a parsed /info body. -EBADMSG when it is not an object. */
int docker_store_from_info(json_t *info, DockerStore *ret);
void docker_store_done(DockerStore *s);
/* "containerd" or "classic" */
const char *docker_store_name(const DockerStore *s);
