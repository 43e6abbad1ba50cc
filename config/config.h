/* config.h: pullwatch's settings, their built-in defaults, and the YAML loader for pullwatch.yaml.
 * Owns parsing and validation only; it never logs and never touches the runtime. */
#pragma once

#include <stdio.h>
#include "basic/error_detail.h"
#include "basic/macro.h"
#include "basic/units.h"

typedef enum RuntimeKind {
        RUNTIME_AUTO,
        RUNTIME_DOCKER,
        RUNTIME_CONTAINERD,
        _RUNTIME_KIND_MAX,
        _RUNTIME_KIND_INVALID = -EINVAL,
} RuntimeKind;

/* The names, in config_schema.c. */
const char *runtime_kind_to_string(RuntimeKind k);
RuntimeKind runtime_kind_from_string(const char *s);

typedef struct WatchdogConfig {
        usec_t sample_interval;   /* how often probes sample and the detector runs */
        usec_t network_stall;     /* resolve/downloading: no new bytes for this long = stalled */
        usec_t silent_min;        /* floor of a silent phase's budget */
        uint64_t silent_min_rate; /* bytes/s: silent budget = max(silent_min, size / rate) */
        usec_t hang_quiet;        /* silent phase with no liveness evidence this long = hung */
        usec_t livelock_window;   /* CPU burning, no output this long = hung (livelock) */
        uint64_t trickle_rate;    /* bytes/s below which a download is degraded ... */
        usec_t trickle_window;    /* ... when sustained this long */
        usec_t waiting_max;       /* a layer waiting while nothing in the pull moves */
} WatchdogConfig;

typedef struct RetryConfig {
        unsigned attempts;        /* total attempts, the first included */
        usec_t backoff;           /* first delay */
        usec_t backoff_max;       /* cap */
} RetryConfig;

typedef struct PreheatConfig {
        char *list;               /* preheat list path */
        unsigned concurrency;
        usec_t splay;
        usec_t recheck;
        usec_t evict_window;      /* a second eviction within this stops re-pulls (churn with image GC) */
        bool pin;                 /* containerd: label preheated images io.cri-containerd.pinned */
        usec_t mirror_wait;       /* a node-local first mirror down this long: said in journald */
        bool mirror_fallback;     /* and then pull anyway (the runtime goes past it, to the origin) */
} PreheatConfig;

/* The node guard: other clients' pulls. */
typedef struct GuardConfig {
        bool enabled;
        bool act;                 /* false: report only */
        char **namespaces;        /* containerd namespaces watched */
} GuardConfig;

/* kubelet's image garbage collection, mirrored so pullwatch does not fight it. */
typedef struct KubeletConfig {
        unsigned image_gc_high_threshold; /* % of the image filesystem; a pull may not push usage past it */
        unsigned image_gc_low_threshold;  /* % kubelet frees down to; held-back images retry below it */
} KubeletConfig;

typedef struct RegistryConfig {
        char **insecure;          /* host[:port] spoken to over plain HTTP; loopback always is */
        char **mirrors;           /* mirror base URLs tried before the registry itself */
} RegistryConfig;

typedef struct Config {
        char *path;               /* file it was loaded from, NULL when defaults only */
        RuntimeKind runtime;
        char *docker_socket;
        char *docker_pidfile;
        char *docker_certs_dir;   /* dockerd's certs.d root */
        char *containerd_socket;
        char *containerd_namespace;
        char *containerd_pidfile;
        char *containerd_hosts_dir; /* registry config_path when neither CRI Status nor containerd's config file names one */
        char **credentials;       /* docker config.json files, first match wins */
        char *platform;           /* default platform, NULL = runtime's own */
        PreheatConfig preheat;
        KubeletConfig kubelet;
        char *state_dir;
        char *control_socket;
        GuardConfig guard;
        char *cri_listen;         /* CRI image service for kubelet; NULL = only a socket-activated one */
        char *metrics_textfile;   /* NULL = metrics off */
        usec_t alert_rate_limit;  /* one alert per image and kind per this interval */
        WatchdogConfig watchdog;
        RetryConfig retry;
        RegistryConfig registry;
} Config;

/* Bad input comes back as an ErrorDetail (basic/error_detail.h): source is the file, line and
 * column (1-based; 0 when unknown, e.g. an unreadable file) where, field the dotted key
 * ("watchdog.hang_quiet"; NULL when none); error_detail_format() gives "file:line:column: key: message". */

/* Built-in defaults. Returns 0 or -ENOMEM. */
int config_new_default(Config **ret);

/* Load path over the defaults. A missing file is not an error when missing_ok (returns defaults,
 * path unset). Bad input: -EINVAL (or -errno for I/O) with *err filled; nothing leaks. */
int config_load(const char *path, bool missing_ok, Config **ret, ErrorDetail *err);

/* The same from memory; name is used in errors only (c->path stays NULL). */
int config_parse(const char *name, const char *text, size_t size, Config **ret, ErrorDetail *err);

/* Same settings (path is not compared): lets a reload tell whether anything changed. */
bool config_equal(const Config *a, const Config *b);

Config *config_free(Config *c);
static inline void config_freep(Config **c) { config_free(*c); }
#define _cleanup_config_ _cleanup_(config_freep)

/* Print the effective config as YAML that config_load accepts back. */
int config_dump(const Config *c, FILE *f);

#define PULLWATCH_DEFAULT_CONFIG "/etc/pullwatch/pullwatch.yaml"
