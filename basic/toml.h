/* toml.h: the lexical layer of TOML that pullwatch's two TOML readers share (containerd's config.toml:
 * probes/containerd/containerd_config.c; hosts.toml: probes/registry/hosts_toml.c): blanks and comments, every string
 * form, key segments, the end of a line, and the error (an ErrorDetail naming file, line and field,
 * "FILE:LINE: FIELD: what") with the line the scan has reached. Which tables, keys and values mean something, and the grammar above strings
 * and keys, belong to each reader. No I/O, no logging. */
#pragma once

#include <stdarg.h>

#include "basic/error_detail.h"
#include "basic/macro.h"

typedef struct TomlScan {
        const char *name;         /* the file, as errors name it */
        const char *p;            /* where the scan is */
        unsigned line;            /* p's line, from 1 */
        ErrorDetail error;        /* the first error: source NAME, line, field (NULL when none), message */
} TomlScan;

static inline TomlScan toml_scan(const char *name, const char *text) {
        return (TomlScan) { .name = name, .p = text, .line = 1 };
}
static inline void toml_scan_done(TomlScan *t) {
        error_detail_done(&t->error);
}

/* Record an error at the current line (the first one only; field may be NULL). Returns -EINVAL. */
_printf_(3, 4) int toml_fail(TomlScan *t, const char *field, const char *fmt, ...);
_printf_(3, 0) int toml_failv(TomlScan *t, const char *field, const char *fmt, va_list ap);

/* Blanks and comments; newlines too when newlines (counting lines). */
void toml_skip(TomlScan *t, bool newlines);
/* Any TOML string at t->p: "basic", 'literal', """multi-line basic""", '''multi-line literal''', with
 * every escape TOML has (\uXXXX and \UXXXXXXXX as UTF-8). Errors name field. */
int toml_string(TomlScan *t, const char *field, char **ret);
/* One segment of a key: bare (A-Za-z0-9_-) or quoted (not multi-line). */
int toml_key_segment(TomlScan *t, const char *field, char **ret);
/* Only blanks or a comment may follow on this line (after a header or a value). */
int toml_end_of_line(TomlScan *t, const char *field);
