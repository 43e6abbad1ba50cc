/* registry_trust.h: a registry host as the runtime sees it: which hops (mirrors, then the host) to try
 * in which order, over which scheme, trusting which CA. Reads certs.d and hosts.toml; no network, no logs. */
#pragma once

#include "basic/error_detail.h"
#include "config/config.h"

/* Which files name a runtime's hops for a registry: dockerd's certs.d/<host>/ (CA, client certs) with
 * registry-mirrors and insecure-registries from its daemon config, or containerd's
 * <config_path>/<host>/hosts.toml. The runtime's driver says which (probes/runtime/runtime.h). */
typedef enum RegistryHopStyle {
        REGISTRY_HOPS_CERTS_D,
        REGISTRY_HOPS_HOSTS_TOML,
        _REGISTRY_HOP_STYLE_MAX,
        _REGISTRY_HOP_STYLE_INVALID = -EINVAL,
} RegistryHopStyle;

/* The runtime's registry settings, as it reported them (or its defaults). */
typedef struct RuntimeRegistry {
        RuntimeKind kind;         /* whose settings (a label; the hops follow hop_style) */
        RegistryHopStyle hop_style;
        char *version;            /* "20.10.24+dfsg1", "1.6.20~ds1", "v2.1.9"; NULL = unknown */
        char *certs_dir;          /* dockerd: certs.d root; containerd: config_path (':'-separated) */
        char *certs_dir_from;     /* containerd: where config_path was found ("CRI Status",
                                   * "/etc/containerd/config.toml:52"); NULL = pullwatch's containerd.hosts_dir */
        char *error;              /* containerd: its config file unreadable, "FILE:LINE: FIELD: what" */
        char **mirrors;           /* dockerd's registry-mirrors (docker.io only) */
        char **insecure;          /* dockerd's insecure registries: host[:port] names and CIDRs */
        bool from_runtime;        /* the runtime answered; else these are its defaults */
        bool containerd_store;    /* dockerd on the containerd image store (/info DriverStatus): its
                                   * resolver also reads certs.d/<host>/hosts.toml */
} RuntimeRegistry;

void runtime_registry_done(RuntimeRegistry *rt);
int runtime_registry_copy(const RuntimeRegistry *from, RuntimeRegistry *to);
/* A runtime's settings before it answered: its certs_dir and the registries it treats as insecure
 * (NULL: none). Each runtime's driver gives its own (RuntimeDriver.registry_defaults). */
int runtime_registry_init(RuntimeRegistry *rt, RuntimeKind kind, RegistryHopStyle style, const char *certs_dir,
                          const char *const *insecure);
/* Engine GET /info body: RegistryConfig's Mirrors, InsecureRegistryCIDRs, IndexConfigs[].Secure=false. */
int runtime_registry_parse_docker_info(RuntimeRegistry *rt, const char *json);
/* CRI Status verbose info["config"]: registry.configPath (containerd 1.x). -ENOENT when it names none
 * (2.x reports the runtime config only). */
int runtime_registry_parse_cri_config(RuntimeRegistry *rt, const char *json);
/* Version ordering on "1.7.24", "v2.1.9", "20.10.24+dfsg1", "1.6.20~ds1": -1, 0, 1 against
 * major.minor.patch; -EINVAL when version is unknown or has no number. */
int runtime_version_cmp(const char *version, unsigned major, unsigned minor, unsigned patch);

typedef struct RegistryHop {
        char *root;               /* API root, "https://h:5000/v2" (the override path when set) */
        char *host;               /* host[:port] */
        bool mirror;              /* a hop other than the registry itself */
        bool resolve, pull;       /* capabilities: manifests by tag / blobs and digests */
        bool skip_verify;
        char **ca_files;          /* PEM files; none = the system bundle */
        char *client_cert, *client_key;
} RegistryHop;

typedef struct RegistryHosts {
        char *domain;             /* as in the reference: "docker.io", "reg:5000" */
        RuntimeKind kind;
        RegistryHop *hops;
        size_t n_hops;
        char *source;             /* what was read: a hosts.toml, a certs.d dir; NULL = nothing */
        char *ca_where;           /* where the runtime reads this host's CA from (file or dir) */
        char *error;              /* "FILE:LINE: FIELD: what" when the runtime's file is unreadable */
} RegistryHosts;

RegistryHosts *registry_hosts_free(RegistryHosts *h);
static inline void registry_hosts_freep(RegistryHosts **h) { registry_hosts_free(*h); }

/* The hops for domain. rt NULL: pullwatch's own settings only (loopback and insecure hosts plain
 * http, mirrors first for docker.io). own may be NULL. A broken hosts.toml is not fatal: its error
 * is kept and the runtime's default host is used. */
int registry_hosts_for(const RuntimeRegistry *rt, const RegistryConfig *own, const char *domain,
                       RegistryHosts **ret);

/* The registries rt has hops of its own for: docker.io when dockerd has registry-mirrors, and each
 * <config_path>/<host> that holds a hosts.toml (containerd; dockerd on the containerd store). *ret is
 * NULL-terminated, NULL when none. */
int registry_hosts_domains(const RuntimeRegistry *rt, char ***ret);

/* hosts.toml (hosts_toml.c): the strict subset containerd's files use. Appends the [host] hops in
 * file order, then the server (default_server when the file names none). -EINVAL on anything else,
 * with ret_error (may be NULL) naming source path, line and field: "PATH:LINE: FIELD: what". */
int hosts_toml_parse(const char *path, const char *text, RegistryHosts *h, const char *default_server,
                     ErrorDetail *ret_error);
/* hosts_toml.c: append a copy of s to a NULL-terminated list. */
int registry_strv_push(char ***l, const char *s);

/* One short line for status: "hosts.toml /x/hosts.toml: 2 hops, CA /x/ca.crt". Caller frees. */
char *registry_hosts_describe(const RegistryHosts *h);
