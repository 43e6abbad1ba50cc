/* reference.h: image references parsed and normalized the way docker/distribution does it
 * ("busybox" = docker.io/library/busybox:latest). Pure string work: no I/O, no registry lookups. */
#pragma once

#include "basic/macro.h"

typedef struct ImageRef {
        char *domain;  /* "docker.io", "127.0.0.1:5000", "[::1]:5000" */
        char *path;    /* "library/busybox" */
        char *tag;     /* "latest" when neither tag nor digest was given; NULL with a digest only */
        char *digest;  /* "sha256:<64 hex>" or NULL */
} ImageRef;

/* Parse and normalize s. Invalid: -EINVAL (and, with the _reason variant, a static sentence saying
 * why, e.g. "repository name must be lowercase"). */
int reference_parse(const char *s, ImageRef **ret);
int reference_parse_reason(const char *s, ImageRef **ret, const char **ret_reason);

ImageRef *reference_free(ImageRef *r);
static inline void reference_freep(ImageRef **r) { reference_free(*r); }
#define _cleanup_reference_ _cleanup_(reference_freep)

/* "docker.io/library/busybox:latest", "host/a:tag@sha256:..." (both kept, as docker prints them). */
int reference_to_string(const ImageRef *r, char **ret);
/* "docker.io/library/busybox": domain/path, the repository without tag or digest. */
int reference_repository(const ImageRef *r, char **ret);
/* The key docker's config.json uses for this registry: "https://index.docker.io/v1/" for Docker Hub,
 * the domain otherwise. Points into r or to a constant. */
const char *reference_registry_host(const ImageRef *r);
