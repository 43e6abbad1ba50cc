/* config_yaml.c: filling an ErrorDetail from a YAML mark, file reading, one-document YAML
 * parsing, error positions and small validators shared by the config and preheat list loaders. */
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "basic/read_file.h"
#include "config/config_yaml.h"

int config_error_set(ErrorDetail *e, int error, const char *file, const yaml_mark_t *mark, const char *key,
                     const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_detail_setv(e, error, file, mark ? (unsigned) mark->line + 1 : 0,
                              mark ? (unsigned) mark->column + 1 : 0, key, fmt, ap);
        va_end(ap);
        return r;
}

int config_file_read(const char *path, bool missing_ok, char **ret_text, size_t *ret_size, ErrorDetail *err) {
        const char *step = NULL;
        char ebuf[128];
        int r;

        r = read_file_full_step(path, CONFIG_FILE_MAX, 0, ret_text, ret_size, &step);
        if (r == -ENOENT && missing_ok && streq_ptr(step, "open")) {
                *ret_text = NULL;
                *ret_size = 0;
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        if (r == -EISDIR)
                return config_error_set(err, EISDIR, path, NULL, NULL, "is a directory, expected a YAML file");
        if (r == -EFBIG)
                return config_error_set(err, EFBIG, path, NULL, NULL, "larger than %u bytes", CONFIG_FILE_MAX);
        if (r < 0)
                return config_error_set(err, -r, path, NULL, NULL, "cannot %s: %s", step ?: "read",
                                        strerror_r(-r, ebuf, sizeof ebuf));
        return 0;
}

/* libyaml gives reader errors (bad UTF-8, control characters) as a byte offset only. */
static yaml_mark_t mark_from_offset(const char *text, size_t size, size_t offset) {
        yaml_mark_t m = { .index = offset };

        for (size_t i = 0; i < offset && i < size; i++) {
                if (text[i] == '\n') {
                        m.line++;
                        m.column = 0;
                } else if (((unsigned char) text[i] & 0xC0) != 0x80)
                        m.column++;
        }
        return m;
}

static int parser_error(yaml_parser_t *p, const char *file, const char *text, size_t size, ErrorDetail *err) {
        const char *problem = p->problem ?: "malformed input";

        switch (p->error) {
        case YAML_MEMORY_ERROR:
                return -ENOMEM;
        case YAML_READER_ERROR: {
                yaml_mark_t m = mark_from_offset(text, size, p->problem_offset);
                if (p->problem_value >= 0)
                        return config_error_set(err, EINVAL, file, &m, NULL, "invalid YAML: %s (byte 0x%02X)",
                                                problem, (unsigned) p->problem_value);
                return config_error_set(err, EINVAL, file, &m, NULL, "invalid YAML: %s", problem);
        }
        default:
                if (p->context)
                        return config_error_set(err, EINVAL, file, &p->problem_mark, NULL,
                                                "invalid YAML: %s (%s at line %zu column %zu)", problem,
                                                p->context, p->context_mark.line + 1,
                                                p->context_mark.column + 1);
                return config_error_set(err, EINVAL, file, &p->problem_mark, NULL, "invalid YAML: %s", problem);
        }
}

static void yaml_parser_deletep(yaml_parser_t *p) {
        yaml_parser_delete(p);
}

int config_yaml_parse(const char *file, const char *text, size_t size, yaml_document_t *ret, ErrorDetail *err) {
        _cleanup_(yaml_parser_deletep) yaml_parser_t parser = {};
        _cleanup_(yaml_document_deletep) yaml_document_t doc = {};
        _cleanup_(yaml_document_deletep) yaml_document_t extra = {};

        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, (const unsigned char *) text, size);

        if (!yaml_parser_load(&parser, &doc))
                return parser_error(&parser, file, text, size, err);
        if (!yaml_parser_load(&parser, &extra))
                return parser_error(&parser, file, text, size, err);
        if (yaml_document_get_root_node(&extra))
                return config_error_set(err, EINVAL, file, &yaml_document_get_root_node(&extra)->start_mark,
                                        NULL, "expected a single YAML document, found a second one here");

        *ret = doc;
        doc = (yaml_document_t) {};
        return 0;
}

int config_yaml_expected(const char *file, const yaml_node_t *n, const char *key, const char *expected,
                         ErrorDetail *err) {
        _cleanup_free_ char *what = config_yaml_describe(n);

        if (!what)
                return -ENOMEM;
        return config_error_set(err, EINVAL, file, &n->start_mark, key, "expected %s, got %s", expected, what);
}

int config_yaml_scalar(const char *file, const yaml_node_t *n, const char *key, const char *expected,
                       const char **ret, ErrorDetail *err) {
        if (n->type != YAML_SCALAR_NODE || config_yaml_is_null(n))
                return config_yaml_expected(file, n, key, expected, err);
        if (strlen((const char *) n->data.scalar.value) != n->data.scalar.length)
                return config_error_set(err, EINVAL, file, &n->start_mark, key,
                                        "expected %s, got a value with a NUL character", expected);
        *ret = (const char *) n->data.scalar.value;
        return 0;
}

bool config_yaml_is_null(const yaml_node_t *n) {
        const char *v;

        if (!n || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
                return false;
        v = (const char *) n->data.scalar.value;
        return streq(v, "") || streq(v, "~") || streq(v, "null") || streq(v, "Null") || streq(v, "NULL");
}

char *config_yaml_describe(const yaml_node_t *n) {
        if (!n)
                return strdup("nothing");
        switch (n->type) {
        case YAML_MAPPING_NODE:
                return strdup("a mapping");
        case YAML_SEQUENCE_NODE:
                return strdup("a list");
        case YAML_SCALAR_NODE:
                if (config_yaml_is_null(n))
                        return strdup(n->data.scalar.length == 0 ? "nothing" : "null");
                return config_quote((const char *) n->data.scalar.value);
        default:
                return strdup("nothing");
        }
}

char *config_key_join(const char *prefix, const char *key) {
        char *s;

        if (!prefix)
                return strdup(key);
        if (asprintf(&s, "%s.%s", prefix, key) < 0)
                return NULL;
        return s;
}

int config_yaml_check_keys(yaml_document_t *doc, yaml_node_t *map, const char *file, const char *prefix,
                           ErrorDetail *err) {
        yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;

        for (yaml_node_pair_t *i = start; i < top; i++) {
                yaml_node_t *k = yaml_document_get_node(doc, i->key);
                _cleanup_free_ char *what = NULL, *path = NULL;

                if (!k || k->type != YAML_SCALAR_NODE) {
                        what = config_yaml_describe(k);
                        return config_error_set(err, EINVAL, file, k ? &k->start_mark : &map->start_mark, prefix,
                                                "expected a plain key, got %s", what ?: "something else");
                }
                if (strlen((const char *) k->data.scalar.value) != k->data.scalar.length)
                        return config_error_set(err, EINVAL, file, &k->start_mark, prefix,
                                                "key contains a NUL character");

                for (yaml_node_pair_t *j = start; j < i; j++) {
                        yaml_node_t *o = yaml_document_get_node(doc, j->key);

                        if (!streq((const char *) o->data.scalar.value, (const char *) k->data.scalar.value))
                                continue;
                        path = config_key_join(prefix, (const char *) k->data.scalar.value);
                        if (!path)
                                return -ENOMEM;
                        return config_error_set(err, EINVAL, file, &k->start_mark, path,
                                                "duplicate key, first set at line %zu", o->start_mark.line + 1);
                }
        }
        return 0;
}

char *config_quote(const char *s) {
        const size_t cut = 64;
        size_t n = strlen(s), len = n;
        char *out, *p;

        if (len > cut) {
                len = cut;
                while (len > 0 && ((unsigned char) s[len] & 0xC0) == 0x80)
                        len--;
        }
        out = p = malloc(len * 4 + 8);
        if (!out)
                return NULL;
        *p++ = '"';
        for (size_t i = 0; i < len; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '"' || c == '\\') {
                        *p++ = '\\';
                        *p++ = (char) c;
                } else if (c == '\n') {
                        *p++ = '\\';
                        *p++ = 'n';
                } else if (c == '\t') {
                        *p++ = '\\';
                        *p++ = 't';
                } else if (c < 0x20 || c == 0x7F)
                        p += sprintf(p, "\\x%02X", c);
                else
                        *p++ = (char) c;
        }
        *p++ = '"';
        if (len < n)
                p = stpcpy(p, "...");
        *p = 0;
        return out;
}

static bool is_lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c) {
        return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

bool config_platform_is_valid(const char *s) {
        unsigned parts = 1;
        size_t run = 0;

        for (; *s; s++) {
                if (*s == '/') {
                        if (run == 0 || ++parts > 3)
                                return false;
                        run = 0;
                } else if (is_lower_alnum(*s) || *s == '_' || *s == '.' || *s == '-')
                        run++;
                else
                        return false;
        }
        return parts >= 2 && run > 0;
}

bool config_namespace_is_valid(const char *s) {
        size_t n = strlen(s);

        if (n == 0 || n > 76 || !is_alnum(s[0]) || !is_alnum(s[n - 1]))
                return false;
        for (size_t i = 1; i < n; i++) {
                bool sep = s[i] == '.' || s[i] == '_' || s[i] == '-';
                if (!sep && !is_alnum(s[i]))
                        return false;
                if (sep && !is_alnum(s[i - 1]))
                        return false;
        }
        return true;
}

bool config_host_port_is_valid(const char *s) {
        const char *p = s;

        if (*p == '[') {
                const char *e = strchr(p, ']');
                if (!e || e == p + 1)
                        return false;
                for (const char *q = p + 1; q < e; q++)
                        if (!strchr("0123456789abcdefABCDEF:.", *q))
                                return false;
                p = e + 1;
        } else {
                const char *start = p;
                for (; *p && *p != ':'; p++)
                        if (!is_alnum(*p) && *p != '-' && *p != '.')
                                return false;
                if (p == start || strchr(".-", *start) || strchr(".-", p[-1]))
                        return false;
        }
        if (*p == 0)
                return true;
        if (*p != ':')
                return false;
        long long port;
        return config_parse_integer(p + 1, 1, 65535, &port) == 0;
}

int config_parse_integer(const char *s, long long min, long long max, long long *ret) {
        const char *d = s;
        long long v;
        char *end;

        if (*d == '-' && min < 0)
                d++;
        if (*d < '0' || *d > '9')
                return -EINVAL;
        for (const char *q = d; *q; q++)
                if (*q < '0' || *q > '9')
                        return -EINVAL;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno == ERANGE || v < min || v > max)
                return -ERANGE;
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}
