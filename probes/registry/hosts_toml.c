/* hosts_toml.c: containerd's hosts.toml (docs/hosts.md), read strictly: the subset those files use
 * (strings, booleans, arrays, [host."URL"] tables) and only the fields containerd knows. Anything else
 * is an error naming file, line and field, because a guess would probe a host the runtime does not use.
 * Strings, keys and comments are read by basic/toml.c, as for containerd's config.toml. */
#include "probes/registry/registry_trust.h"

#include "basic/toml.h"

typedef enum ValueKind { V_STRING, V_BOOL, V_ARRAY } ValueKind;

typedef struct Value {
        ValueKind kind;
        char *s;
        bool b;
        struct Value *items;
        size_t n;
} Value;

static void value_done(Value *v) {
        free(v->s);
        for (size_t i = 0; i < v->n; i++)
                value_done(&v->items[i]);
        free(v->items);
        *v = (Value) {};
}

static int parse_value(TomlScan *ps, const char *field, Value *v, unsigned depth) {
        int r;
        *v = (Value) {};
        if (*ps->p == '"' || *ps->p == '\'') {
                v->kind = V_STRING;
                return toml_string(ps, field, &v->s);
        }
        if (startswith(ps->p, "true") || startswith(ps->p, "false")) {
                v->kind = V_BOOL;
                v->b = *ps->p == 't';
                ps->p += v->b ? 4 : 5;
                return 0;
        }
        if (*ps->p != '[')
                return toml_fail(ps, field, "expected a string, true/false or an array");
        if (depth > 2)
                return toml_fail(ps, field, "arrays nested too deep");
        v->kind = V_ARRAY;
        ps->p++;
        for (;;) {
                toml_skip(ps, true);
                if (*ps->p == ']') {
                        ps->p++;
                        return 0;
                }
                Value *t = realloc(v->items, (v->n + 1) * sizeof(Value));
                if (!t)
                        return -ENOMEM;
                v->items = t;
                r = parse_value(ps, field, &v->items[v->n], depth + 1);
                if (r < 0)
                        return r;
                v->n++;
                toml_skip(ps, true);
                if (*ps->p == ',')
                        ps->p++;
                else if (*ps->p != ']')
                        return toml_fail(ps, field, "expected ',' or ']' in the array");
        }
}

int registry_strv_push(char ***l, const char *s) {
        size_t n = strv_length(*l);
        char **t = realloc(*l, (n + 2) * sizeof(char *));
        if (!t)
                return -ENOMEM;
        *l = t;
        if (!(t[n] = strdup(s)))
                return -ENOMEM;
        t[n + 1] = NULL;
        return 0;
}

/* Relative paths in hosts.toml are relative to its directory. */
static int file_path(const char *dir, const char *p, char **ret) {
        if (p[0] == '/')
                return (*ret = strdup(p)) ? 0 : -ENOMEM;
        return asprintf(ret, "%s/%s", dir, p) < 0 ? -ENOMEM : 0;
}

/* Settings of one table (the root's apply to the server). */
typedef struct Section {
        char *url;                /* [host."URL"]; the root: server */
        bool has_caps, resolve, pull;
        bool skip_verify, override_path;
        char **ca;
        char *cert, *key;
} Section;

static void section_done(Section *s) {
        free(s->url);
        strv_free(s->ca);
        free(s->cert);
        free(s->key);
}

static int set_field(TomlScan *ps, const char *dir, Section *s, bool root, const char *key, const Value *v) {
        int r;
        if (streq(key, "server") && root) {
                if (v->kind != V_STRING || !strstr(v->s, "://"))
                        return toml_fail(ps, key, "expected a URL string like \"https://registry:5000\"");
                free(s->url);
                return (s->url = strdup(v->s)) ? 0 : -ENOMEM;
        }
        if (streq(key, "capabilities")) {
                if (v->kind != V_ARRAY)
                        return toml_fail(ps, key, "expected an array of \"pull\", \"resolve\", \"push\"");
                s->has_caps = true;
                s->resolve = s->pull = false;
                for (size_t i = 0; i < v->n; i++) {
                        const Value *c = &v->items[i];
                        if (c->kind != V_STRING || !(streq(c->s, "pull") || streq(c->s, "resolve") || streq(c->s, "push")))
                                return toml_fail(ps, key, "expected \"pull\", \"resolve\" or \"push\"");
                        s->pull |= streq(c->s, "pull");
                        s->resolve |= streq(c->s, "resolve");
                }
                return 0;
        }
        if (streq(key, "skip_verify") || streq(key, "override_path")) {
                if (v->kind != V_BOOL)
                        return toml_fail(ps, key, "expected true or false");
                *(streq(key, "skip_verify") ? &s->skip_verify : &s->override_path) = v->b;
                return 0;
        }
        if (streq(key, "ca")) {
                size_t n = v->kind == V_STRING ? 1 : v->kind == V_ARRAY ? v->n : 0;
                if (n == 0)
                        return toml_fail(ps, key, "expected a file name or an array of them");
                for (size_t i = 0; i < n; i++) {
                        const Value *e = v->kind == V_STRING ? v : &v->items[i];
                        _cleanup_free_ char *f = NULL;
                        if (e->kind != V_STRING)
                                return toml_fail(ps, key, "expected a file name or an array of them");
                        if ((r = file_path(dir, e->s, &f)) < 0 || (r = registry_strv_push(&s->ca, f)) < 0)
                                return r;
                }
                return 0;
        }
        if (streq(key, "client")) {
                /* "cert", ["cert", "key"], or [["cert", "key"], ...]: the first pair is what a probe needs */
                const Value *pair = v->kind == V_ARRAY && v->n > 0 && v->items[0].kind == V_ARRAY ? &v->items[0] : v;
                const char *cert = pair->kind == V_STRING ? pair->s :
                                   pair->kind == V_ARRAY && pair->n >= 1 && pair->items[0].kind == V_STRING ? pair->items[0].s : NULL;
                const char *k = pair->kind == V_ARRAY && pair->n == 2 && pair->items[1].kind == V_STRING ? pair->items[1].s : NULL;
                if (!cert || (pair->kind == V_ARRAY && pair->n > 2))
                        return toml_fail(ps, key, "expected \"cert\", [\"cert\", \"key\"] or [[\"cert\", \"key\"]]");
                free(s->cert);
                free(s->key);
                s->cert = s->key = NULL;
                if ((r = file_path(dir, cert, &s->cert)) < 0 || (k && (r = file_path(dir, k, &s->key)) < 0))
                        return r;
                return 0;
        }
        if (streq(key, "dial_timeout")) /* containerd 1.7+: how long to dial, not where */
                return v->kind == V_STRING ? 0 : toml_fail(ps, key, "expected a duration string");
        return toml_fail(ps, key, "unknown field (known: %sca, client, skip_verify, override_path, capabilities)",
                    root ? "server, " : "");
}

static int add_hop(RegistryHosts *h, const Section *s, bool mirror) {
        _cleanup_free_ char *host = NULL, *root = NULL;
        const char *u = strstr(s->url, "://");
        if (!u)
                return -EINVAL;
        size_t hl = strcspn(u + 3, "/?#");
        if (hl == 0 || !(host = strndup(u + 3, hl)))
                return hl == 0 ? -EINVAL : -ENOMEM;
        const char *path = u + 3 + hl;
        size_t pl = strcspn(path, "?#");
        while (pl > 0 && path[pl - 1] == '/')
                pl--;
        /* containerd appends /v2 unless the path already ends in it or override_path says it is the API */
        bool has_v2 = pl >= 3 && strncmp(path + pl - 3, "/v2", 3) == 0;
        if (asprintf(&root, "%.*s%.*s%s", (int) (path - s->url), s->url, (int) pl, path,
                     s->override_path || has_v2 ? "" : "/v2") < 0)
                return -ENOMEM;
        RegistryHop *t = realloc(h->hops, (h->n_hops + 1) * sizeof(RegistryHop));
        if (!t)
                return -ENOMEM;
        h->hops = t;
        RegistryHop *hop = &h->hops[h->n_hops++];
        *hop = (RegistryHop) {
                .root = TAKE_PTR(root), .host = TAKE_PTR(host), .mirror = mirror,
                .resolve = s->has_caps ? s->resolve : true, .pull = s->has_caps ? s->pull : true,
                .skip_verify = s->skip_verify,
        };
        for (char **c = s->ca; c && *c; c++)
                if (registry_strv_push(&hop->ca_files, *c) < 0)
                        return -ENOMEM;
        if ((s->cert && !(hop->client_cert = strdup(s->cert))) || (s->key && !(hop->client_key = strdup(s->key))))
                return -ENOMEM;
        return 0;
}

int hosts_toml_parse(const char *path, const char *text, RegistryHosts *h, const char *default_server,
                     ErrorDetail *ret_error) {
        TomlScan ps = toml_scan(path, text);
        Section root = {}, *hosts = NULL, *cur = &root;
        size_t n_hosts = 0;
        bool in_header = false;
        _cleanup_free_ char *dir = strndup(path, strrchr(path, '/') ? (size_t) (strrchr(path, '/') - path) : 1);
        int r = dir ? 0 : -ENOMEM;

        while (r >= 0 && *ps.p) {
                toml_skip(&ps, false);
                if (*ps.p == '\n') {
                        ps.p++;
                        ps.line++;
                        continue;
                }
                if (!*ps.p)
                        break;
                if (*ps.p == '[') {
                        _cleanup_free_ char *a = NULL, *b = NULL, *c = NULL;
                        ps.p++;
                        toml_skip(&ps, false);
                        if ((r = toml_key_segment(&ps, NULL, &a)) < 0)
                                break;
                        if (*ps.p == '.' && (ps.p++, (r = toml_key_segment(&ps, NULL, &b)) < 0))
                                break;
                        if (*ps.p == '.' && (ps.p++, (r = toml_key_segment(&ps, NULL, &c)) < 0))
                                break;
                        toml_skip(&ps, false);
                        if (*ps.p++ != ']') {
                                r = toml_fail(&ps, a, "expected ']' closing the table name");
                                break;
                        }
                        in_header = (streq(a, "header") && !b) || (streq(a, "host") && c && streq(c, "header"));
                        if (streq(a, "host") && b && (!c || in_header)) {
                                if (!strstr(b, "://")) {
                                        r = toml_fail(&ps, "host", "table name must be a URL like \"https://mirror:5000\"");
                                        break;
                                }
                                if (!c) {
                                        Section *t = realloc(hosts, (n_hosts + 1) * sizeof(Section));
                                        if (!t) {
                                                r = -ENOMEM;
                                                break;
                                        }
                                        hosts = t;
                                        cur = &hosts[n_hosts++];
                                        *cur = (Section) { .url = TAKE_PTR(b) };
                                }
                        } else if (!in_header) {
                                r = toml_fail(&ps, a, "unknown table (known: [host.\"URL\"], [header], [host.\"URL\".header])");
                                break;
                        }
                } else {
                        _cleanup_free_ char *key = NULL;
                        Value v = {};
                        if ((r = toml_key_segment(&ps, NULL, &key)) < 0)
                                break;
                        toml_skip(&ps, false);
                        if (*ps.p++ != '=') {
                                r = toml_fail(&ps, key, "expected '='");
                                break;
                        }
                        toml_skip(&ps, false);
                        r = parse_value(&ps, key, &v, 0);
                        if (r >= 0 && !in_header)
                                r = set_field(&ps, dir, cur, cur == &root, key, &v);
                        value_done(&v);
                        if (r < 0)
                                break;
                }
                r = toml_end_of_line(&ps, NULL);
        }
        /* hosts in file order (containerd keeps it), then the server, which can do everything */
        for (size_t i = 0; r >= 0 && i < n_hosts; i++)
                r = add_hop(h, &hosts[i], true);
        if (r >= 0 && (root.url || default_server)) {
                if (!root.url && !(root.url = strdup(default_server)))
                        r = -ENOMEM;
                root.has_caps = false;
                if (r >= 0)
                        r = add_hop(h, &root, false);
        }
        section_done(&root);
        for (size_t i = 0; i < n_hosts; i++)
                section_done(&hosts[i]);
        free(hosts);
        if (r == -EINVAL && ret_error)
                error_detail_move(ret_error, &ps.error);
        toml_scan_done(&ps);
        return r;
}
