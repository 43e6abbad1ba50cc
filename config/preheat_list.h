/* preheat_list.h: the preheat list file (/etc/pullwatch/preheat.yaml), parsed, validated and normalized.
 * Owns parsing only: scheduling, splay and pulling belong to the preheater; it never logs. */
#pragma once

#include "config/config.h"

typedef enum PreheatRuntime {
        PREHEAT_RUNTIME_DEFAULT,    /* not given: the config's runtime */
        PREHEAT_RUNTIME_DOCKER,
        PREHEAT_RUNTIME_CONTAINERD,
        PREHEAT_RUNTIME_BOTH,
        _PREHEAT_RUNTIME_MAX,
        _PREHEAT_RUNTIME_INVALID = -EINVAL,
} PreheatRuntime;

const char *preheat_runtime_to_string(PreheatRuntime r);   /* "default", "docker", "containerd", "both" */
PreheatRuntime preheat_runtime_from_string(const char *s);  /* docker, containerd, both */

typedef struct PreheatItem {
        char *image;              /* normalized: "docker.io/library/busybox:1.36" */
        char *image_raw;          /* as written: "busybox:1.36" */
        PreheatRuntime runtime;
        char *platform;           /* NULL = the config's platform */
        char *namespace;          /* NULL = containerd.namespace from the config */
        int priority;             /* higher first; 0 when not given */
        usec_t recheck;           /* 0 = preheat.recheck from the config */
        unsigned line;            /* 1-based line of the item, for messages */
} PreheatItem;

typedef struct PreheatList {
        PreheatItem *items;       /* in file order */
        size_t n;
} PreheatList;

/* Load a list: a YAML sequence whose items are an image reference or a mapping with image (required),
 * runtime, platform, namespace, priority and recheck. An empty file is an empty list; a missing one
 * too when missing_ok. Errors as config_load(), keys like "[3].priority" (0-based item index). */
int preheat_list_load(const char *path, bool missing_ok, PreheatList **ret, ErrorDetail *err);
int preheat_list_parse(const char *name, const char *text, size_t size, PreheatList **ret, ErrorDetail *err);

PreheatList *preheat_list_free(PreheatList *l);
static inline void preheat_list_freep(PreheatList **l) { preheat_list_free(*l); }
#define _cleanup_preheat_list_ _cleanup_(preheat_list_freep)
