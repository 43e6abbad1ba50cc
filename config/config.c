/* config.c: defaults, loading and dumping of pullwatch.yaml by walking the schema table. */
#include "config/config.h"
#include "config/config_schema.h"
#include "config/config_yaml.h"

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < config_options_count; i++)
                config_option_free(c, &config_options[i]);
        free(c->path);
        free(c);
        return NULL;
}

static char **strv_copy(const char *const *l) {
        size_t n = strv_length((char *const *) l);
        char **copy = calloc(n + 1, sizeof(char *));

        if (!copy)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (!(copy[i] = strdup(l[i]))) {
                        strv_free(copy);
                        return NULL;
                }
        return copy;
}

int config_new_default(Config **ret) {
        _cleanup_config_ Config *c = NULL;

        c = calloc(1, sizeof(Config));
        if (!c)
                return -ENOMEM;

        for (size_t i = 0; i < config_options_count; i++) {
                const ConfigOption *o = &config_options[i];

                if (o->type == CONFIG_TYPE_STRV) {
                        char **l = strv_copy(o->def_list);
                        if (!l)
                                return -ENOMEM;
                        config_option_set_strv(c, o, l);
                } else if (o->def) {
                        int r = config_option_set(c, o, o->def, NULL);
                        if (r < 0)
                                return r == -ENOMEM ? r : -EINVAL; /* a bad built-in default: tests catch it */
                }
        }

        *ret = TAKE_PTR(c);
        return 0;
}

bool config_equal(const Config *a, const Config *b) {
        if (!a || !b)
                return a == b;
        for (size_t i = 0; i < config_options_count; i++)
                if (!config_option_equal(a, b, &config_options[i]))
                        return false;
        return true;
}

typedef struct Loader {
        const char *file;
        yaml_document_t *doc;
        Config *config;
        ErrorDetail *err;
        const yaml_node_t **where; /* per option: its value node when the file sets it */
} Loader;

static int expected_error(Loader *l, const yaml_node_t *n, const char *key, const char *expected) {
        return config_yaml_expected(l->file, n, key, expected, l->err);
}

static int scalar_value(Loader *l, const yaml_node_t *n, const char *key, const char *expected,
                        const char **ret) {
        return config_yaml_scalar(l->file, n, key, expected, ret, l->err);
}

static int load_list(Loader *l, const ConfigOption *o, const yaml_node_t *n) {
        _cleanup_strv_free_ char **list = NULL;
        size_t count = 0;
        int r;

        if (n->type == YAML_MAPPING_NODE)
                return expected_error(l, n, o->key, config_option_expected(o));

        if (n->type == YAML_SEQUENCE_NODE)
                count = (size_t) (n->data.sequence.items.top - n->data.sequence.items.start);
        else if (!config_yaml_is_null(n))
                count = 1;
        list = calloc(count + 1, sizeof(char *));
        if (!list)
                return -ENOMEM;

        for (size_t i = 0; i < count; i++) {
                const yaml_node_t *item = n->type == YAML_SEQUENCE_NODE ?
                        yaml_document_get_node(l->doc, n->data.sequence.items.start[i]) : n;
                _cleanup_free_ char *key = NULL;
                _cleanup_(error_detail_done) ErrorDetail e = {};
                const char *s = NULL;

                if (n->type == YAML_SEQUENCE_NODE) {
                        if (asprintf(&key, "%s[%zu]", o->key, i) < 0)
                                return -ENOMEM;
                }
                r = scalar_value(l, item, key ?: o->key, config_option_expected_item(o), &s);
                if (r < 0)
                        return r;
                r = config_option_check_item(o, s, &e);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return config_error_set(l->err, r, l->file, &item->start_mark, key ?: o->key, "%s", e.message);
                list[i] = strdup(s);
                if (!list[i])
                        return -ENOMEM;
        }

        config_option_set_strv(l->config, o, TAKE_PTR(list));
        return 0;
}

static int load_value(Loader *l, const ConfigOption *o, const yaml_node_t *n) {
        _cleanup_(error_detail_done) ErrorDetail e = {};
        const char *s = NULL;
        int r;

        l->where[o - config_options] = n;

        if (o->type == CONFIG_TYPE_STRV)
                return load_list(l, o, n);

        if (o->type == CONFIG_TYPE_STRING_OPT && config_yaml_is_null(n)) {
                config_option_unset(l->config, o);
                return 0;
        }
        r = scalar_value(l, n, o->key, config_option_expected(o), &s);
        if (r < 0)
                return r;
        r = config_option_set(l->config, o, s, &e);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return config_error_set(l->err, r, l->file, &n->start_mark, o->key, "%s", e.message);
        return 0;
}

/* "unknown key; known keys here: a, b, c": the next path component of every key under prefix. */
static int unknown_key(Loader *l, const yaml_node_t *k, const char *prefix, const char *path) {
        _cleanup_free_ char *known = NULL;
        size_t n = 0, plen = prefix ? strlen(prefix) + 1 : 0;
        FILE *f = open_memstream(&known, &n);

        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < config_options_count; i++) {
                const char *key = config_options[i].key, *rest, *dot;
                size_t len;
                bool seen = false;

                if (prefix && (strncmp(key, prefix, plen - 1) != 0 || key[plen - 1] != '.'))
                        continue;
                rest = key + plen;
                dot = strchr(rest, '.');
                len = dot ? (size_t) (dot - rest) : strlen(rest);
                for (size_t j = 0; j < i && !seen; j++) {
                        const char *other = config_options[j].key;
                        seen = strncmp(other, key, plen + len) == 0 &&
                               (other[plen + len] == 0 || other[plen + len] == '.');
                }
                if (!seen)
                        fprintf(f, "%s%.*s", ftell(f) > 0 ? ", " : "", (int) len, rest);
        }
        if (fclose(f) != 0)
                return -ENOMEM;
        return config_error_set(l->err, EINVAL, l->file, &k->start_mark, path, "unknown key; known keys here: %s",
                                known ?: "");
}

static int load_mapping(Loader *l, yaml_node_t *map, const char *prefix) {
        int r;

        r = config_yaml_check_keys(l->doc, map, l->file, prefix, l->err);
        if (r < 0)
                return r;

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
                yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
                _cleanup_free_ char *path = config_key_join(prefix, (const char *) k->data.scalar.value);
                const ConfigOption *o;

                if (!path)
                        return -ENOMEM;

                o = config_option_find(path);
                if (o)
                        r = load_value(l, o, v);
                else if (!config_section_exists(path))
                        r = unknown_key(l, k, prefix, path);
                else if (v->type == YAML_MAPPING_NODE)
                        r = load_mapping(l, v, path);
                else if (config_yaml_is_null(v))
                        r = 0; /* "metrics:" with nothing under it: all defaults */
                else {
                        _cleanup_free_ char *expected = NULL;
                        if (asprintf(&expected, "a mapping of %s settings", path) < 0)
                                return -ENOMEM;
                        r = expected_error(l, v, path, expected);
                }
                if (r < 0)
                        return r;
        }
        return 0;
}

static uint64_t option_value(const Config *c, const ConfigOption *o) {
        const char *p = (const char *) c + o->offset;
        return o->type == CONFIG_TYPE_UNSIGNED ? *(const unsigned *) p : *(const uint64_t *) p;
}

/* lo must not exceed hi. Blame whichever of the two the file set last; both are of one type. */
static int check_order(Loader *l, const ConfigOption *lo, const ConfigOption *hi) {
        const yaml_node_t *wl = l->where[lo - config_options], *wh = l->where[hi - config_options];
        _cleanup_free_ char *vl = NULL, *vh = NULL;
        bool blame_lo;

        if (option_value(l->config, lo) <= option_value(l->config, hi))
                return 0;

        vl = config_option_to_string(l->config, lo);
        vh = config_option_to_string(l->config, hi);
        if (!vl || !vh)
                return -ENOMEM;

        blame_lo = wl && (!wh || wl->start_mark.index >= wh->start_mark.index);
        if (blame_lo)
                return config_error_set(l->err, EINVAL, l->file, &wl->start_mark, lo->key,
                                        "expected at most %s (%s), got %s", hi->key, vh, vl);
        if (wh)
                return config_error_set(l->err, EINVAL, l->file, &wh->start_mark, hi->key,
                                        "expected at least %s (%s), got %s", lo->key, vl, vh);
        return config_error_set(l->err, EINVAL, l->file, NULL, lo->key, "expected at most %s (%s), got %s",
                                hi->key, vh, vl);
}

static int check_relations(Loader *l) {
        const ConfigOption *sample = config_option_find("watchdog.sample_interval");
        int r;

        for (size_t i = 0; i < config_options_count; i++)
                if (config_options[i].flags & CONFIG_AT_LEAST_SAMPLE) {
                        r = check_order(l, sample, &config_options[i]);
                        if (r < 0)
                                return r;
                }

        r = check_order(l, config_option_find("kubelet.image_gc_low_threshold"),
                        config_option_find("kubelet.image_gc_high_threshold"));
        if (r < 0)
                return r;
        return check_order(l, config_option_find("retry.backoff"), config_option_find("retry.backoff_max"));
}

int config_parse(const char *name, const char *text, size_t size, Config **ret, ErrorDetail *err) {
        _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
        _cleanup_free_ const yaml_node_t **where = NULL;
        _cleanup_config_ Config *c = NULL;
        yaml_node_t *root;
        Loader l;
        int r;

        r = config_new_default(&c);
        if (r < 0)
                return r;

        r = config_yaml_parse(name, text, size, &doc, err);
        if (r < 0)
                return r;

        where = calloc(config_options_count, sizeof(yaml_node_t *));
        if (!where)
                return -ENOMEM;
        l = (Loader) { .file = name, .doc = &doc, .config = c, .err = err, .where = where };

        root = yaml_document_get_root_node(&doc);
        if (root && !config_yaml_is_null(root)) {
                if (root->type != YAML_MAPPING_NODE)
                        return expected_error(&l, root, NULL, "a mapping of settings at the top level");
                r = load_mapping(&l, root, NULL);
                if (r < 0)
                        return r;
        }

        r = check_relations(&l);
        if (r < 0)
                return r;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_load(const char *path, bool missing_ok, Config **ret, ErrorDetail *err) {
        _cleanup_config_ Config *c = NULL;
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = config_file_read(path, missing_ok, &text, &size, err);
        if (r < 0)
                return r;
        if (!text)
                return config_new_default(ret);

        r = config_parse(path, text, size, &c, err);
        if (r < 0)
                return r;
        c->path = strdup(path);
        if (!c->path)
                return -ENOMEM;

        *ret = TAKE_PTR(c);
        return 0;
}

int config_dump(const Config *c, FILE *f) {
        const char *section = NULL;
        size_t section_len = 0;
        int r;

        fputs("# pullwatch configuration: every key with its effective value\n", f);
        for (size_t i = 0; i < config_options_count; i++) {
                const ConfigOption *o = &config_options[i];
                const char *dot = strchr(o->key, '.');
                unsigned indent = 0;

                if (dot) {
                        size_t len = (size_t) (dot - o->key);
                        if (!section || section_len != len || strncmp(section, o->key, len) != 0) {
                                fprintf(f, "%.*s:\n", (int) len, o->key);
                                section = o->key;
                                section_len = len;
                        }
                        fprintf(f, "  %s:", dot + 1);
                        indent = 2;
                } else {
                        section = NULL;
                        fprintf(f, "%s:", o->key);
                }
                r = config_option_dump(c, o, indent, f);
                if (r < 0)
                        return r;
        }
        if (fflush(f) != 0 || ferror(f))
                return -EIO;
        return 0;
}
