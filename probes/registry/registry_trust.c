/* registry_trust.c: the hops and trust the runtime uses for a registry host. dockerd's rules are
 * moby 20.10+'s registry service (certs.d per host[:port], 127.0.0.0/8 and --insecure-registry tried
 * over https without verification then http, mirrors for docker.io only); containerd's are
 * core/remotes/docker/config/hosts.go (hosts.toml, else the certs in the host's dir, else defaults). */
#include "probes/registry/registry_trust.h"

#include <assert.h>
#include "basic/read_file.h"
#include "probes/registry/registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <jansson.h>
#include <sys/stat.h>

void runtime_registry_done(RuntimeRegistry *rt) {
        if (!rt)
                return;
        free(rt->version);
        free(rt->certs_dir);
        free(rt->certs_dir_from);
        free(rt->error);
        strv_free(rt->mirrors);
        strv_free(rt->insecure);
        *rt = (RuntimeRegistry) {};
}

static int strv_copy(char *const *from, char ***to) {
        *to = NULL;
        for (char *const *s = from; s && *s; s++)
                if (registry_strv_push(to, *s) < 0)
                        return -ENOMEM;
        return 0;
}

int runtime_registry_copy(const RuntimeRegistry *from, RuntimeRegistry *to) {
        *to = (RuntimeRegistry) { .kind = from->kind, .hop_style = from->hop_style, .from_runtime = from->from_runtime,
                                  .containerd_store = from->containerd_store };
        if ((from->version && !(to->version = strdup(from->version))) ||
            (from->certs_dir && !(to->certs_dir = strdup(from->certs_dir))) ||
            (from->certs_dir_from && !(to->certs_dir_from = strdup(from->certs_dir_from))) ||
            (from->error && !(to->error = strdup(from->error))) || strv_copy(from->mirrors, &to->mirrors) < 0 ||
            strv_copy(from->insecure, &to->insecure) < 0) {
                runtime_registry_done(to);
                return -ENOMEM;
        }
        return 0;
}

int runtime_registry_init(RuntimeRegistry *rt, RuntimeKind kind, RegistryHopStyle style, const char *certs_dir,
                          const char *const *insecure) {
        assert(rt);
        assert(certs_dir);

        *rt = (RuntimeRegistry) { .kind = kind, .hop_style = style };
        if (!(rt->certs_dir = strdup(certs_dir))) {
                runtime_registry_done(rt);
                return -ENOMEM;
        }
        for (const char *const *i = insecure; i && *i; i++)
                if (registry_strv_push(&rt->insecure, *i) < 0) {
                        runtime_registry_done(rt);
                        return -ENOMEM;
                }
        return 0;
}

int runtime_registry_parse_docker_info(RuntimeRegistry *rt, const char *text) {
        json_error_t err;
        json_t *root = json_loads(text, 0, &err), *rc, *v, *idx;
        const char *name;
        size_t i;
        int r = 0;

        if (!root)
                return -EBADMSG;
        rc = json_object_get(root, "RegistryConfig");
        if (!json_is_object(rc)) {
                json_decref(root);
                return -EBADMSG;
        }
        strv_free(rt->mirrors);
        strv_free(rt->insecure);
        rt->mirrors = rt->insecure = NULL;
        json_array_foreach(json_object_get(rc, "Mirrors"), i, v)
                if (json_is_string(v) && registry_strv_push(&rt->mirrors, json_string_value(v)) < 0)
                        r = -ENOMEM;
        json_array_foreach(json_object_get(rc, "InsecureRegistryCIDRs"), i, v)
                if (json_is_string(v) && registry_strv_push(&rt->insecure, json_string_value(v)) < 0)
                        r = -ENOMEM;
        json_object_foreach(json_object_get(rc, "IndexConfigs"), name, idx)
                if (json_is_false(json_object_get(idx, "Secure")) && registry_strv_push(&rt->insecure, name) < 0)
                        r = -ENOMEM;
        /* the containerd image store: "DriverStatus": [["driver-type", "io.containerd.snapshotter.v1"]] */
        rt->containerd_store = false;
        json_array_foreach(json_object_get(root, "DriverStatus"), i, v)
                if (streq_ptr(json_string_value(json_array_get(v, 0)), "driver-type") &&
                    streq_ptr(json_string_value(json_array_get(v, 1)), "io.containerd.snapshotter.v1"))
                        rt->containerd_store = true;
        json_decref(root);
        if (r >= 0)
                rt->from_runtime = true;
        return r;
}

int runtime_registry_parse_cri_config(RuntimeRegistry *rt, const char *text) {
        json_error_t err;
        json_t *root = json_loads(text, 0, &err);
        const char *p;
        int r = -ENOENT;

        if (!root)
                return -EBADMSG;
        p = json_string_value(json_object_get(json_object_get(root, "registry"), "configPath"));
        rt->from_runtime = true;
        if (p && *p) {
                free(rt->certs_dir);
                free(rt->certs_dir_from);
                rt->certs_dir_from = NULL;
                r = (rt->certs_dir = strdup(p)) && (rt->certs_dir_from = strdup("CRI Status")) ? 0 : -ENOMEM;
        }
        json_decref(root);
        return r;
}

int runtime_version_cmp(const char *version, unsigned major, unsigned minor, unsigned patch) {
        unsigned v[3] = {};
        const char *p = version;
        if (!p)
                return -EINVAL;
        if (*p == 'v')
                p++;
        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (int i = 0; i < 3 && isdigit((unsigned char) *p); i++) {
                char *end;
                v[i] = (unsigned) strtoul(p, &end, 10);
                p = end;
                if (*p != '.')
                        break;
                p++;
        }
        unsigned w[3] = { major, minor, patch };
        for (int i = 0; i < 3; i++)
                if (v[i] != w[i])
                        return v[i] < w[i] ? -1 : 1;
        return 0;
}

/* ---- hops ---- */

/* Forget the hops (a hosts.toml the runtime fails on too: the legacy hops follow). */
static void hops_clear(RegistryHosts *h) {
        for (size_t i = 0; i < h->n_hops; i++) {
                free(h->hops[i].root);
                free(h->hops[i].host);
                strv_free(h->hops[i].ca_files);
                free(h->hops[i].client_cert);
                free(h->hops[i].client_key);
        }
        h->n_hops = 0;
}

RegistryHosts *registry_hosts_free(RegistryHosts *h) {
        if (!h)
                return NULL;
        hops_clear(h);
        free(h->hops);
        free(h->domain);
        free(h->source);
        free(h->ca_where);
        free(h->error);
        free(h);
        return NULL;
}

static int hop_add(RegistryHosts *h, const char *scheme, const char *host, bool mirror, RegistryHop **ret) {
        RegistryHop *t = realloc(h->hops, (h->n_hops + 1) * sizeof(RegistryHop));
        if (!t)
                return -ENOMEM;
        h->hops = t;
        RegistryHop *hop = &h->hops[h->n_hops];
        *hop = (RegistryHop) { .mirror = mirror, .resolve = true, .pull = true };
        if (!(hop->host = strdup(host)) || asprintf(&hop->root, "%s://%s/v2", scheme, host) < 0) {
                free(hop->host);
                return -ENOMEM;
        }
        h->n_hops++;
        if (ret)
                *ret = hop;
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                closedir(*d);
}

static int strcmp_ptr(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool is_loopback_host(const char *hostport) {
        return registry_host_is_loopback(hostport);
}

/* certs.d/<host>/: *.crt are CAs, *.cert + *.key a client pair (moby ReadCertsDirectory, and
 * containerd's loadCertFiles for a host dir without hosts.toml). 0 when the dir exists. */
static int read_certs_dir(const char *dir, RegistryHop *hop, char **ret_first_ca) {
        _cleanup_(closedirp) DIR *d = opendir(dir);
        struct dirent *de;
        char **names = NULL;

        if (!d)
                return -errno;
        while ((de = readdir(d)))
                if (de->d_name[0] != '.' && registry_strv_push(&names, de->d_name) < 0) {
                        strv_free(names);
                        return -ENOMEM;
                }
        qsort(names, strv_length(names), sizeof(char *), strcmp_ptr);
        for (char **n = names; n && *n; n++) {
                size_t l = strlen(*n);
                _cleanup_free_ char *full = NULL;
                if (asprintf(&full, "%s/%s", dir, *n) < 0)
                        break;
                if (l > 4 && streq(*n + l - 4, ".crt")) {
                        if (hop && registry_strv_push(&hop->ca_files, full) < 0)
                                break;
                        if (ret_first_ca && !*ret_first_ca)
                                *ret_first_ca = strdup(full);
                } else if (l > 5 && streq(*n + l - 5, ".cert") && hop && !hop->client_cert) {
                        hop->client_cert = TAKE_PTR(full);
                        if (asprintf(&hop->client_key, "%s/%.*s.key", dir, (int) (l - 5), *n) < 0)
                                hop->client_key = NULL;
                }
        }
        strv_free(names);
        return 0;
}

static int read_file(const char *path, char **ret);

/* dockerd on the containerd image store resolves with containerd's ConfigureHosts on its certs.d
 * root (moby daemon/hosts.go): a certs.d/<host>/hosts.toml there names the hops as containerd's
 * does. moby merges its legacy settings only into a single-host answer: the insecure rules are
 * (docker_hops); registry-mirrors for such a docker.io are not yet. 1 when hosts.toml named more
 * than one hop, 0 when it named one (kept as hops[0]) or there is none. */
static int docker_store_hosts_toml(const RuntimeRegistry *rt, const char *domain, bool hub, RegistryHosts *h) {
        _cleanup_free_ char *file = NULL, *text = NULL, *server = NULL, *error = NULL;
        int r;

        if (asprintf(&file, "%s/%s/hosts.toml", rt->certs_dir ?: "/etc/docker/certs.d", hub ? "docker.io" : domain) < 0 ||
            asprintf(&server, "https://%s", hub ? "registry-1.docker.io" : domain) < 0)
                return -ENOMEM;
        r = read_file(file, &text);
        if (r == -ENOENT)
                return 0;
        if (r >= 0) {
                ErrorDetail detail = {};
                r = hosts_toml_parse(file, text, h, server, &detail);
                if (detail.message && !(error = error_detail_format(&detail)))
                        r = -ENOMEM;
                error_detail_done(&detail);
        }
        if (r == -EINVAL || (r < 0 && r != -ENOMEM)) {
                /* containerd's resolver fails on it too; the probe goes the legacy way and says why */
                if (!h->error && (error ? !(h->error = TAKE_PTR(error)) : asprintf(&h->error, "%s: %s", file, strerror(-r)) < 0))
                        return -ENOMEM;
                hops_clear(h);
                return 0;
        }
        if (r < 0)
                return r;
        if (asprintf(&h->source, "hosts.toml %s (dockerd's containerd image store)", file) < 0)
                return -ENOMEM;
        for (size_t i = 0; i < h->n_hops; i++) {
                h->hops[i].mirror = !streq(h->hops[i].host, hub ? "registry-1.docker.io" : domain);
                if (!h->ca_where && h->hops[i].ca_files && !(h->ca_where = strdup(h->hops[i].ca_files[0])))
                        return -ENOMEM;
        }
        if (!h->ca_where && !(h->ca_where = strdup(file)))
                return -ENOMEM;
        return h->n_hops > 1;
}

static int docker_hops(const RuntimeRegistry *rt, const RegistryConfig *own, const char *domain, RegistryHosts *h) {
        bool hub = streq(domain, "docker.io") || streq(domain, "index.docker.io");
        RegistryConfig merged = { .insecure = rt->insecure };
        _cleanup_strv_free_ char **ins = NULL, **mirrors = NULL;
        int r;

        if (rt->containerd_store && (r = docker_store_hosts_toml(rt, domain, hub, h)) != 0)
                return r < 0 ? r : 0;
        if (h->n_hops == 1) {
                /* one host from hosts.toml: moby merges its insecure rules into it (mergeLegacyConfig) */
                _cleanup_free_ char *host = strdup(h->hops[0].host);
                if (!host)
                        return -ENOMEM;
                bool insecure = registry_host_is_insecure(&(RegistryConfig) { .insecure = rt->insecure }, host) ||
                                (is_loopback_host(host) &&
                                 registry_host_is_insecure(&(RegistryConfig) { .insecure = rt->insecure }, "127.0.0.1"));
                if (insecure && startswith(h->hops[0].root, "https:")) {
                        h->hops[0].skip_verify = true;
                        return hop_add(h, "http", host, h->hops[0].mirror, NULL);
                }
                return 0;
        }

        if ((r = strv_copy(rt->insecure, &ins)) < 0 || (r = strv_copy(rt->mirrors, &mirrors)) < 0)
                return r;
        for (char **s = own ? own->insecure : NULL; s && *s; s++)
                if ((r = registry_strv_push(&ins, *s)) < 0)
                        return r;
        for (char **s = own ? own->mirrors : NULL; s && *s; s++)
                if ((r = registry_strv_push(&mirrors, *s)) < 0)
                        return r;
        merged.insecure = ins;
        const char *hosts[strv_length(mirrors) + 2];
        size_t n = 0;
        for (char **m = hub ? mirrors : NULL; m && *m; m++)
                hosts[n++] = *m;
        hosts[n++] = hub ? "registry-1.docker.io" : domain;

        for (size_t i = 0; i < n; i++) {
                bool mirror = i + 1 < n;
                _cleanup_free_ char *host = NULL, *dir = NULL;
                const char *scheme = "https";
                if (strstr(hosts[i], "://")) {
                        if (registry_url_host(hosts[i], &host) < 0)
                                continue;
                        if (startswith(hosts[i], "http://"))
                                scheme = "http";
                } else if (!(host = strdup(hosts[i])))
                        return -ENOMEM;
                /* moby's isCIDRMatch resolves names; "localhost" is the one we can resolve offline */
                bool insecure = registry_host_is_insecure(&merged, host) ||
                                (is_loopback_host(host) && registry_host_is_insecure(&merged, "127.0.0.1"));
                RegistryHop *hop;
                if ((r = hop_add(h, scheme, host, mirror, &hop)) < 0)
                        return r;
                hop->skip_verify = insecure;
                if (asprintf(&dir, "%s/%s", rt->certs_dir ?: "/etc/docker/certs.d", host) < 0)
                        return -ENOMEM;
                _cleanup_free_ char *ca = NULL;
                if (read_certs_dir(dir, hop, &ca) >= 0 && !mirror && !h->source) {
                        if (asprintf(&h->source, "certs.d %s/", dir) < 0)
                                return -ENOMEM;
                }
                /* where dockerd would read it: the file there, else the name its docs give */
                if (!mirror && !h->ca_where && (ca ? !(h->ca_where = TAKE_PTR(ca)) :
                                                     asprintf(&h->ca_where, "%s/ca.crt", dir) < 0))
                        return -ENOMEM;
                /* an insecure registry that does not speak TLS is asked over http next */
                if (insecure && streq(scheme, "https") && (r = hop_add(h, "http", host, mirror, NULL)) < 0)
                        return r;
        }
        return 0;
}

static int read_file(const char *path, char **ret) {
        return read_file_full(path, 256 * 1024 - 1, ret, NULL);
}

static int containerd_hops(const RuntimeRegistry *rt, const char *domain, RegistryHosts *h) {
        bool hub = streq(domain, "docker.io");
        bool local = is_loopback_host(domain);
        _cleanup_free_ char *server = NULL, *paths = strdup(rt->certs_dir ?: "/etc/containerd/certs.d");
        int r;

        if (!paths)
                return -ENOMEM;
        if (asprintf(&server, "%s://%s", local && runtime_version_cmp(rt->version, 1, 7, 0) < 0 ? "http" : "https",
                     hub ? "registry-1.docker.io" : domain) < 0)
                return -ENOMEM;
        /* each config_path root in turn; the host's dir, then _default (containerd's hostDirFromRoots) */
        const char *names[] = { domain, "_default" };
        for (size_t k = 0; k < ELEMENTSOF(names); k++)
                for (char *save = NULL, *root = strtok_r(paths, ":", &save); root; root = strtok_r(NULL, ":", &save)) {
                        _cleanup_free_ char *dir = NULL, *file = NULL, *text = NULL;
                        _cleanup_(error_detail_done) ErrorDetail error = {};
                        struct stat st;
                        if (asprintf(&dir, "%s/%s", root, names[k]) < 0 || asprintf(&file, "%s/hosts.toml", dir) < 0)
                                return -ENOMEM;
                        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                                continue;
                        r = read_file(file, &text);
                        if (r == -ENOENT) {
                                /* a docker-style dir: its certs apply to the default host */
                                RegistryHop *hop;
                                _cleanup_free_ char *ca = NULL;
                                if ((r = hop_add(h, startswith(server, "http:") ? "http" : "https", hub ? "registry-1.docker.io" : domain,
                                                 false, &hop)) < 0)
                                        return r;
                                (void) read_certs_dir(dir, hop, &ca);
                                if (asprintf(&h->source, "certs dir %s/%s%s%s", dir, rt->certs_dir_from ? " (config_path from " : "",
                                             rt->certs_dir_from ?: "", rt->certs_dir_from ? ")" : "") < 0 ||
                                    !(h->ca_where = ca ?: strdup(dir)))
                                        return -ENOMEM;
                                ca = NULL;
                                return 0;
                        }
                        if (r < 0) {
                                if (asprintf(&h->error, "%s: %s", file, strerror(-r)) < 0)
                                        return -ENOMEM;
                                goto defaults;
                        }
                        if (asprintf(&h->source, "hosts.toml %s%s%s%s", file, rt->certs_dir_from ? " (config_path from " : "",
                                     rt->certs_dir_from ?: "", rt->certs_dir_from ? ")" : "") < 0)
                                return -ENOMEM;
                        r = hosts_toml_parse(file, text, h, server, &error);
                        if (r == -EINVAL) {
                                h->error = error.message ? error_detail_format(&error) : NULL;
                                hops_clear(h);
                                goto defaults;
                        }
                        if (r < 0)
                                return r;
                        for (size_t i = 0; i < h->n_hops; i++) {
                                h->hops[i].mirror = !streq(h->hops[i].host, hub ? "registry-1.docker.io" : domain);
                                if (!h->ca_where && h->hops[i].ca_files && !(h->ca_where = strdup(h->hops[i].ca_files[0])))
                                        return -ENOMEM;
                        }
                        if (!h->ca_where && !(h->ca_where = strdup(file)))
                                return -ENOMEM;
                        return 0;
                }
defaults:
        /* where an operator would add one: the first config_path root */
        if (!h->ca_where && asprintf(&h->ca_where, "%.*s/%s/hosts.toml", (int) strcspn(rt->certs_dir ?: "/etc/containerd/certs.d", ":"),
                                     rt->certs_dir ?: "/etc/containerd/certs.d", domain) < 0)
                return -ENOMEM;
        /* 1.7+ tries https first on localhost and falls back to http (HTTPFallback); 1.6 speaks http */
        if ((r = hop_add(h, startswith(server, "http:") ? "http" : "https", hub ? "registry-1.docker.io" : domain, false,
                         NULL)) < 0)
                return r;
        if (local && startswith(server, "https:"))
                return hop_add(h, "http", domain, false, NULL);
        return 0;
}

static int own_hops(const RegistryConfig *own, const char *domain, RegistryHosts *h) {
        _cleanup_strv_free_ char **bases = NULL;
        int r = registry_base_urls(own, domain, &bases);
        if (r < 0)
                return r;
        size_t n = strv_length(bases);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *host = NULL;
                RegistryHop *hop;
                if ((r = registry_url_host(bases[i], &host)) < 0 ||
                    (r = hop_add(h, startswith(bases[i], "http:") ? "http" : "https", host, i + 1 < n, &hop)) < 0)
                        return r;
                /* a mirror entry may carry a path */
                free(hop->root);
                if (asprintf(&hop->root, "%s/v2", bases[i]) < 0) {
                        hop->root = NULL;
                        return -ENOMEM;
                }
        }
        return 0;
}

int registry_hosts_for(const RuntimeRegistry *rt, const RegistryConfig *own, const char *domain, RegistryHosts **ret) {
        RegistryHosts *h;
        int r;

        if (!domain || !*domain || strpbrk(domain, "/?#@ "))
                return -EINVAL;
        if (!(h = calloc(1, sizeof(*h))) || !(h->domain = strdup(domain))) {
                free(h);
                return -ENOMEM;
        }
        h->kind = rt ? rt->kind : RUNTIME_AUTO;
        r = !rt ? own_hops(own, domain, h) :
            rt->hop_style == REGISTRY_HOPS_HOSTS_TOML ? containerd_hops(rt, domain, h) : docker_hops(rt, own, domain, h);
        if (r < 0 || h->n_hops == 0) {
                registry_hosts_free(h);
                return r < 0 ? r : -ENOENT;
        }
        /* the runtime's own config file could not be read: its hosts dir is a guess, say so */
        if (!h->error && rt && rt->error && !(h->error = strdup(rt->error))) {
                registry_hosts_free(h);
                return -ENOMEM;
        }
        *ret = h;
        return 0;
}

char *registry_hosts_describe(const RegistryHosts *h) {
        char *s = NULL;
        size_t n_mirrors = 0;
        bool ca = false, plain = false;
        for (size_t i = 0; i < h->n_hops; i++) {
                n_mirrors += h->hops[i].mirror;
                ca |= h->hops[i].ca_files != NULL;
                plain |= startswith(h->hops[i].root, "http:");
        }
        if (asprintf(&s, "%s; %zu hop%s (%zu mirror%s)%s%s%s", h->source ?: "no runtime settings for this host",
                     h->n_hops, h->n_hops == 1 ? "" : "s", n_mirrors, n_mirrors == 1 ? "" : "s",
                     ca ? "; CA " : "", ca ? h->ca_where : "", plain ? "; plain http allowed" : "") < 0)
                return NULL;
        return s;
}

static bool strv_has(char **l, const char *s) {
        for (size_t i = 0; l && l[i]; i++)
                if (streq(l[i], s))
                        return true;
        return false;
}

/* The hosts dirs under root that hold a hosts.toml, appended to *l once each. */
static int hosts_dirs_under(const char *root, char ***l) {
        DIR *d = opendir(root);
        struct dirent *de;
        int r = 0;

        if (!d)
                return 0; /* no such root: no settings there */
        while (r >= 0 && (de = readdir(d))) {
                _cleanup_free_ char *file = NULL;
                if (de->d_name[0] == '.' || streq(de->d_name, "_default") || strv_has(*l, de->d_name))
                        continue;
                if (asprintf(&file, "%s/%s/hosts.toml", root, de->d_name) < 0)
                        r = -ENOMEM;
                else if (access(file, F_OK) >= 0)
                        r = registry_strv_push(l, de->d_name);
        }
        closedir(d);
        return r;
}

int registry_hosts_domains(const RuntimeRegistry *rt, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        _cleanup_free_ char *paths = NULL;
        int r;

        assert(rt && ret);
        if (rt->mirrors && rt->mirrors[0] && (r = registry_strv_push(&l, "docker.io")) < 0)
                return r;
        if (rt->hop_style == REGISTRY_HOPS_HOSTS_TOML) {
                if (!(paths = strdup(rt->certs_dir ?: "/etc/containerd/certs.d")))
                        return -ENOMEM;
                for (char *save = NULL, *root = strtok_r(paths, ":", &save); root; root = strtok_r(NULL, ":", &save))
                        if ((r = hosts_dirs_under(root, &l)) < 0)
                                return r;
        } else if (rt->containerd_store && (r = hosts_dirs_under(rt->certs_dir ?: "/etc/docker/certs.d", &l)) < 0)
                return r;
        *ret = TAKE_PTR(l);
        return 0;
}
