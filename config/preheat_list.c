/* preheat_list.c: the preheat list loader: a YAML sequence of references or {image, runtime, platform,
 * namespace, priority, recheck} mappings, with the same file:line:column errors as pullwatch.yaml. */
#include <limits.h>

#include "config/config_yaml.h"
#include "config/preheat_list.h"
#include "basic/reference.h"

static const char *const preheat_runtime_table[_PREHEAT_RUNTIME_MAX] = {
        [PREHEAT_RUNTIME_DEFAULT] = "default",
        [PREHEAT_RUNTIME_DOCKER] = "docker",
        [PREHEAT_RUNTIME_CONTAINERD] = "containerd",
        [PREHEAT_RUNTIME_BOTH] = "both",
};

const char *preheat_runtime_to_string(PreheatRuntime r) {
        if (r < 0 || r >= _PREHEAT_RUNTIME_MAX)
                return NULL;
        return preheat_runtime_table[r];
}

PreheatRuntime preheat_runtime_from_string(const char *s) {
        int r = string_table_lookup(preheat_runtime_table, _PREHEAT_RUNTIME_MAX, s);
        /* "default" is what an absent key means, not something to write */
        return r == PREHEAT_RUNTIME_DEFAULT ? _PREHEAT_RUNTIME_INVALID : r;
}

static void item_done(PreheatItem *i) {
        free(i->image);
        free(i->image_raw);
        free(i->platform);
        free(i->namespace);
        *i = (PreheatItem) {};
}

PreheatList *preheat_list_free(PreheatList *l) {
        if (!l)
                return NULL;
        for (size_t i = 0; i < l->n; i++)
                item_done(&l->items[i]);
        free(l->items);
        free(l);
        return NULL;
}

typedef struct Loader {
        const char *file;
        yaml_document_t *doc;
        ErrorDetail *err;
        const yaml_node_t **image_nodes; /* per item, for duplicate messages */
} Loader;

static int expected_error(Loader *l, const yaml_node_t *n, const char *key, const char *expected) {
        return config_yaml_expected(l->file, n, key, expected, l->err);
}

static int scalar_value(Loader *l, const yaml_node_t *n, const char *key, const char *expected,
                        const char **ret) {
        return config_yaml_scalar(l->file, n, key, expected, ret, l->err);
}

static int parse_image(Loader *l, const yaml_node_t *n, const char *key, PreheatItem *item) {
        _cleanup_reference_ ImageRef *ref = NULL;
        _cleanup_free_ char *q = NULL;
        const char *s = NULL, *why = NULL;
        int r;

        r = scalar_value(l, n, key, "an image reference like busybox:1.36 or registry.local/app:v2", &s);
        if (r < 0)
                return r;
        r = reference_parse_reason(s, &ref, &why);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                q = config_quote(s);
                if (!q)
                        return -ENOMEM;
                return config_error_set(l->err, r, l->file, &n->start_mark, key, "invalid image reference %s: %s", q,
                                        why ?: "invalid reference format");
        }
        r = reference_to_string(ref, &item->image);
        if (r < 0)
                return r;
        item->image_raw = strdup(s);
        return item->image_raw ? 0 : -ENOMEM;
}

/* Optional string that a validator accepts; null leaves it unset. */
static int parse_optional(Loader *l, const yaml_node_t *n, const char *key, const char *expected,
                          bool (*valid)(const char *), char **ret) {
        const char *s = NULL;
        int r;

        if (config_yaml_is_null(n))
                return 0;
        r = scalar_value(l, n, key, expected, &s);
        if (r < 0)
                return r;
        if (!valid(s))
                return expected_error(l, n, key, expected);
        free(*ret);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int parse_field(Loader *l, const char *name, const yaml_node_t *v, const char *key, PreheatItem *item,
                       const yaml_node_t **namespace_node) {
        const char *s = NULL;
        int r;

        if (streq(name, "image")) {
                return parse_image(l, v, key, item);
        } else if (streq(name, "runtime")) {
                const char *expected = "one of docker, containerd, both";
                r = scalar_value(l, v, key, expected, &s);
                if (r < 0)
                        return r;
                item->runtime = preheat_runtime_from_string(s);
                if (item->runtime < 0)
                        return expected_error(l, v, key, expected);
        } else if (streq(name, "platform")) {
                return parse_optional(l, v, key, "a platform like linux/amd64 or linux/arm64/v8",
                                      config_platform_is_valid, &item->platform);
        } else if (streq(name, "namespace")) {
                *namespace_node = v;
                return parse_optional(l, v, key, "a containerd namespace like k8s.io", config_namespace_is_valid,
                                      &item->namespace);
        } else if (streq(name, "priority")) {
                const char *expected = "a whole number like 10 or -5";
                long long p;
                r = scalar_value(l, v, key, expected, &s);
                if (r < 0)
                        return r;
                r = config_parse_integer(s, INT_MIN, INT_MAX, &p);
                if (r == -ERANGE)
                        return expected_error(l, v, key, "a whole number between -2147483648 and 2147483647");
                if (r < 0)
                        return expected_error(l, v, key, expected);
                item->priority = (int) p;
        } else if (streq(name, "recheck")) {
                const char *expected = "a duration like 30m, 2h or 1d";
                r = scalar_value(l, v, key, expected, &s);
                if (r < 0)
                        return r;
                r = parse_duration(s, &item->recheck);
                if (r < 0 || item->recheck == USEC_INFINITY)
                        return expected_error(l, v, key, expected);
        } else
                return -ENOENT;
        return 0;
}

static int parse_mapping(Loader *l, yaml_node_t *map, const char *prefix, PreheatItem *item,
                         const yaml_node_t **ret_image_node) {
        const yaml_node_t *namespace_node = NULL;
        int r;

        r = config_yaml_check_keys(l->doc, map, l->file, prefix, l->err);
        if (r < 0)
                return r;

        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
                yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
                yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
                const char *name = (const char *) k->data.scalar.value;
                _cleanup_free_ char *key = config_key_join(prefix, name);

                if (!key)
                        return -ENOMEM;
                r = parse_field(l, name, v, key, item, &namespace_node);
                if (r == -ENOENT)
                        return config_error_set(l->err, EINVAL, l->file, &k->start_mark, key,
                                                "unknown key; known keys here: image, runtime, platform, "
                                                "namespace, priority, recheck");
                if (r < 0)
                        return r;
                if (streq(name, "image"))
                        *ret_image_node = v;
        }

        if (!item->image)
                return config_error_set(l->err, EINVAL, l->file, &map->start_mark, prefix,
                                        "missing required key \"image\"");
        if (item->namespace && item->runtime == PREHEAT_RUNTIME_DOCKER) {
                _cleanup_free_ char *key = config_key_join(prefix, "namespace");
                if (!key)
                        return -ENOMEM;
                return config_error_set(l->err, EINVAL, l->file, &namespace_node->start_mark, key,
                                        "expected no namespace: it applies to containerd only, and runtime is docker");
        }
        return 0;
}

static bool runtimes_overlap(PreheatRuntime a, PreheatRuntime b) {
        return a == b || a == PREHEAT_RUNTIME_BOTH || b == PREHEAT_RUNTIME_BOTH;
}

static int check_duplicate(Loader *l, const PreheatList *list, size_t i, const char *key) {
        const PreheatItem *x = &list->items[i];

        for (size_t j = 0; j < i; j++) {
                const PreheatItem *y = &list->items[j];

                if (!streq(x->image, y->image) || !streq_ptr(x->platform, y->platform) ||
                    !runtimes_overlap(x->runtime, y->runtime))
                        continue;
                return config_error_set(l->err, EINVAL, l->file, &l->image_nodes[i]->start_mark, key,
                                        "listed twice: lines %u and %u both preheat %s for the same runtime "
                                        "and platform",
                                        y->line, x->line, x->image);
        }
        return 0;
}

int preheat_list_parse(const char *name, const char *text, size_t size, PreheatList **ret, ErrorDetail *err) {
        _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
        _cleanup_free_ const yaml_node_t **image_nodes = NULL;
        _cleanup_preheat_list_ PreheatList *list = NULL;
        yaml_node_t *root;
        size_t count = 0;
        Loader l;
        int r;

        r = config_yaml_parse(name, text, size, &doc, err);
        if (r < 0)
                return r;
        l = (Loader) { .file = name, .doc = &doc, .err = err };

        list = calloc(1, sizeof(PreheatList));
        if (!list)
                return -ENOMEM;

        root = yaml_document_get_root_node(&doc);
        if (root && !config_yaml_is_null(root)) {
                if (root->type != YAML_SEQUENCE_NODE)
                        return expected_error(&l, root, NULL, "a list of images at the top level");
                count = (size_t) (root->data.sequence.items.top - root->data.sequence.items.start);
        }

        list->items = calloc(count ?: 1, sizeof(PreheatItem));
        image_nodes = calloc(count ?: 1, sizeof(yaml_node_t *));
        if (!list->items || !image_nodes)
                return -ENOMEM;
        l.image_nodes = image_nodes;

        for (size_t i = 0; i < count; i++) {
                yaml_node_t *n = yaml_document_get_node(&doc, root->data.sequence.items.start[i]);
                PreheatItem *item = &list->items[i];
                char prefix[32];

                list->n = i + 1; /* so a failure frees what this item holds */
                snprintf(prefix, sizeof prefix, "[%zu]", i);
                item->line = (unsigned) n->start_mark.line + 1;

                if (n->type == YAML_MAPPING_NODE)
                        r = parse_mapping(&l, n, prefix, item, &image_nodes[i]);
                else if (n->type == YAML_SCALAR_NODE && !config_yaml_is_null(n)) {
                        image_nodes[i] = n;
                        r = parse_image(&l, n, prefix, item);
                } else
                        r = expected_error(&l, n, prefix, "an image reference or a mapping with \"image\"");
                if (r < 0)
                        return r;

                if (n->type == YAML_MAPPING_NODE)
                        strncat(prefix, ".image", sizeof prefix - strlen(prefix) - 1);
                r = check_duplicate(&l, list, i, prefix);
                if (r < 0)
                        return r;
        }

        *ret = TAKE_PTR(list);
        return 0;
}

int preheat_list_load(const char *path, bool missing_ok, PreheatList **ret, ErrorDetail *err) {
        _cleanup_free_ char *text = NULL;
        size_t size;
        int r;

        r = config_file_read(path, missing_ok, &text, &size, err);
        if (r < 0)
                return r;
        if (!text) {
                *ret = calloc(1, sizeof(PreheatList));
                return *ret ? 0 : -ENOMEM;
        }
        return preheat_list_parse(path, text, size, ret, err);
}
