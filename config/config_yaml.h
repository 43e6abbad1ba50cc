/* config_yaml.h: the plumbing shared by the pullwatch.yaml and preheat list loaders: reading a file,
 * parsing one YAML document, filling an ErrorDetail from marks, key checks and value validators.
 * Owns no settings and knows no schema; it never logs. */
#pragma once

#include <yaml.h>
#include "config/config.h"

/* Largest file either loader reads; a config or a list beyond this is a mistake. */
#define CONFIG_FILE_MAX (16U * 1024U * 1024U)

/* Fill e (when not NULL) and return -abs(error), or -ENOMEM when the message cannot be built.
 * mark is libyaml's 0-based position (NULL = unknown); key may be NULL. */
int config_error_set(ErrorDetail *e, int error, const char *file, const yaml_mark_t *mark, const char *key,
                     const char *fmt, ...) _printf_(6, 7);

/* Whole file into memory (NUL-terminated). A missing file with missing_ok gives 0 and *ret_text NULL. */
int config_file_read(const char *path, bool missing_ok, char **ret_text, size_t *ret_size, ErrorDetail *err);

/* Exactly one YAML document; syntax errors come back as -EINVAL with line and column. The document
 * must be released with yaml_document_delete() after success; on failure nothing is held. */
int config_yaml_parse(const char *file, const char *text, size_t size, yaml_document_t *ret, ErrorDetail *err);

static inline void yaml_document_deletep(yaml_document_t *d) {
        if (d->nodes.start)
                yaml_document_delete(d);
}

/* Both loaders' value errors: "expected EXPECTED, got <what n is>" at n, -EINVAL (or -ENOMEM). */
int config_yaml_expected(const char *file, const yaml_node_t *n, const char *key, const char *expected,
                         ErrorDetail *err);
/* A scalar usable as a C string (neither null nor holding a NUL), or that error at the node. */
int config_yaml_scalar(const char *file, const yaml_node_t *n, const char *key, const char *expected,
                       const char **ret, ErrorDetail *err);

/* Plain "", "~", "null", "Null", "NULL". */
bool config_yaml_is_null(const yaml_node_t *n);
/* "a mapping", "a list", "nothing" or the quoted scalar, for "expected X, got Y". Caller frees. */
char *config_yaml_describe(const yaml_node_t *n);
/* Every key of the mapping is a scalar, and none appears twice. */
int config_yaml_check_keys(yaml_document_t *doc, yaml_node_t *map, const char *file, const char *prefix,
                           ErrorDetail *err);
/* "prefix.key", or "key" when prefix is NULL. Caller frees. */
char *config_key_join(const char *prefix, const char *key);

/* Double-quoted, escaped, cut after 64 characters: safe to put in a message. Caller frees. */
char *config_quote(const char *s);

/* "linux/amd64", "linux/arm64/v8": two or three lowercase components. */
bool config_platform_is_valid(const char *s);
/* containerd's identifier rule: alphanumerics joined by single '.', '_' or '-', at most 76. */
bool config_namespace_is_valid(const char *s);
/* "host", "host:port", "[v6]:port". */
bool config_host_port_is_valid(const char *s);
/* Strict decimal integer within [min, max] (no '+', no spaces, no hex): -EINVAL or -ERANGE. */
int config_parse_integer(const char *s, long long min, long long max, long long *ret);
