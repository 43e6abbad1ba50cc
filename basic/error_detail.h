/* error_detail.h: owns ErrorDetail, the one error-detail type every module fills: set, wrap, copy, move, done, its text.
 * Must not know the modules that fill it, and never logs: callers format it once, where they print or log.
 * It says where the failure came from (a file, a request, a gRPC method or socket), the position and
 * field in it, what a server answered, the message, and the context callers wrapped around it. The
 * config and preheat list loaders, the registry probe, credentials, hosts.toml, runtime pings, the
 * control socket, the gRPC transport, the CRI client and containerd's questions all return one.
 *
 * How to return one: take an `ErrorDetail *ret_error` (may be NULL: then only the errno comes back),
 * fill it with error_detail_set() (or set fields after it) and return its result, -abs(errno). The
 * caller starts from `ErrorDetail e = {}` and calls error_detail_done(&e) whatever happened; a module
 * passing a callee's error on adds what it was doing with error_detail_wrap().
 *
 * The registry's parts (realm, retry_after) stay in the type rather than in an extension: they are two
 * optional fields that print as suffixes, and one type keeps copy, done and format in one place (a
 * registry error is copied across the sync wrappers and into the pull's diagnosis). ErrorClass
 * (probes/runtime/runtime.h) is a classification of a pull outcome, not a detail, and stays where it is. */
#pragma once

#include <stdarg.h>
#include "basic/macro.h"

typedef struct ErrorDetail {
        char *context;            /* what the callers were doing, outermost first ("cannot reach containerd: PullImage"),
                                   * added by error_detail_wrap(); NULL when none */
        char *source;             /* where: a file path, or the request "GET https://h/v2/r/manifests/t"
                                   * (query cut, never credentials); NULL when none */
        unsigned line, column;    /* 1-based position in source; 0 when unknown */
        char *field;              /* key or field: "watchdog.hang_quiet", "capabilities"; NULL when none */
        int http_status;          /* 0 when no HTTP answer came */
        char *code;               /* a server's error code: MANIFEST_UNKNOWN, UNAUTHORIZED, ...; NULL when none */
        char *message;            /* what went wrong, in words; NULL only when code or status say it */
        /* registry: */
        char *realm;              /* auth realm when a challenge was involved */
        uint64_t retry_after;     /* seconds from Retry-After (429/503); 0 = none */
} ErrorDetail;

void error_detail_done(ErrorDetail *e);
/* Deep copy into to (overwritten, not freed first). 0 or -ENOMEM (to then empty). */
int error_detail_copy(const ErrorDetail *from, ErrorDetail *to);
/* Move: *to gets from's contents (to is done first), from is left empty. */
void error_detail_move(ErrorDetail *to, ErrorDetail *from);

/* Fill e (when not NULL; what it held is dropped) with source, position, field and a printf message,
 * and return -abs(error), or -ENOMEM when the detail cannot be built. Strings are copied. */
int error_detail_set(ErrorDetail *e, int error, const char *source, unsigned line, unsigned column,
                     const char *field, const char *fmt, ...) _printf_(7, 8);
int error_detail_setv(ErrorDetail *e, int error, const char *source, unsigned line, unsigned column,
                      const char *field, const char *fmt, va_list ap) _printf_(7, 0);
/* A message only. */
int error_detail_setf(ErrorDetail *e, int error, const char *fmt, ...) _printf_(3, 4);

/* Context added as the error travels up (crun_error_wrap): the text then starts "CONTEXT: " before
 * everything else, each wrap in front of the last, so it reads like a path through the program; source,
 * position, field, the server's parts and the message stay as they were. Returns -abs(error), or
 * -ENOMEM with e unchanged when the text cannot be built. e NULL: -abs(error) only. */
int error_detail_wrap(ErrorDetail *e, int error, const char *fmt, ...) _printf_(3, 4);

/* One text, parts that are unknown left out:
 *   "CONTEXT: SOURCE:LINE:COLUMN: FIELD: HTTP STATUS CODE: MESSAGE (auth realm REALM) (retry after Ns)"
 *   e.g. "/etc/pullwatch/pullwatch.yaml:3:15: watchdog.hang_quiet: expected a duration",
 *        "GET https://h/v2/r/manifests/t: HTTP 404 MANIFEST_UNKNOWN: manifest unknown".
 * Without a message, status or code the message reads "unknown error". The text is raw (it may carry a
 * server's bytes): compose it into a line printed with fprintf_line()/log_line(), which escape, or use
 * error_detail_format_line(). NULL for NULL or on OOM. Caller frees. */
char *error_detail_format(const ErrorDetail *e);
/* The same, escaped with escape_line() (basic/escape.h): safe as one stderr or journal line. */
char *error_detail_format_line(const ErrorDetail *e);
