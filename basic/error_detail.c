/* error_detail.c: ErrorDetail's life cycle (set, copy, move, done) and its one text format. */
#include "basic/error_detail.h"

#include <assert.h>
#include <inttypes.h>

#include "basic/escape.h"

void error_detail_done(ErrorDetail *e) {
        if (!e)
                return;
        free(e->context);
        free(e->source);
        free(e->field);
        free(e->code);
        free(e->message);
        free(e->realm);
        *e = (ErrorDetail) {};
}

static int dup_part(const char *from, char **to) {
        if (from && !(*to = strdup(from)))
                return -ENOMEM;
        return 0;
}

int error_detail_copy(const ErrorDetail *from, ErrorDetail *to) {
        *to = (ErrorDetail) { .line = from->line, .column = from->column, .http_status = from->http_status,
                              .retry_after = from->retry_after };
        if (dup_part(from->context, &to->context) < 0 || dup_part(from->source, &to->source) < 0 || dup_part(from->field, &to->field) < 0 ||
            dup_part(from->code, &to->code) < 0 || dup_part(from->message, &to->message) < 0 ||
            dup_part(from->realm, &to->realm) < 0) {
                error_detail_done(to);
                return -ENOMEM;
        }
        return 0;
}

void error_detail_move(ErrorDetail *to, ErrorDetail *from) {
        error_detail_done(to);
        *to = *from;
        *from = (ErrorDetail) {};
}

int error_detail_setv(ErrorDetail *e, int error, const char *source, unsigned line, unsigned column,
                      const char *field, const char *fmt, va_list ap) {
        error = -abs(error);
        if (!e)
                return error;

        error_detail_done(e);
        if (vasprintf(&e->message, fmt, ap) < 0) {
                e->message = NULL;
                return -ENOMEM;
        }
        if (dup_part(source, &e->source) < 0 || dup_part(field, &e->field) < 0) {
                error_detail_done(e);
                return -ENOMEM;
        }
        e->line = line;
        e->column = column;
        return error;
}

int error_detail_set(ErrorDetail *e, int error, const char *source, unsigned line, unsigned column,
                     const char *field, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_detail_setv(e, error, source, line, column, field, fmt, ap);
        va_end(ap);
        return r;
}

int error_detail_setf(ErrorDetail *e, int error, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = error_detail_setv(e, error, NULL, 0, 0, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int error_detail_wrap(ErrorDetail *e, int error, const char *fmt, ...) {
        _cleanup_free_ char *context = NULL;
        char *m;
        va_list ap;
        int k;

        assert(fmt);
        error = -abs(error);
        if (!e)
                return error;
        va_start(ap, fmt);
        k = vasprintf(&context, fmt, ap);
        va_end(ap);
        if (k < 0)
                return -ENOMEM;
        if (!e->context)
                m = TAKE_PTR(context);
        else if (asprintf(&m, "%s: %s", context, e->context) < 0)
                return -ENOMEM;
        free(e->context);
        e->context = m;
        return error;
}

char *error_detail_format(const ErrorDetail *e) {
        char *s = NULL;
        size_t n = 0;
        FILE *f;

        if (!e)
                return NULL;
        f = open_memstream(&s, &n);
        if (!f)
                return NULL;
        if (e->context)
                fprintf(f, "%s: ", e->context);
        if (e->source)
                fputs(e->source, f);
        if (e->line > 0)
                fprintf(f, e->source ? ":%u" : "%u", e->line);
        if (e->line > 0 && e->column > 0)
                fprintf(f, ":%u", e->column);
        if (e->source || e->line > 0)
                fputs(": ", f);
        if (e->field)
                fprintf(f, "%s: ", e->field);
        if (e->http_status > 0)
                fprintf(f, "HTTP %d", e->http_status);
        if (e->code)
                fprintf(f, "%s%s", e->http_status > 0 ? " " : "", e->code);
        if ((e->http_status > 0 || e->code) && e->message)
                fputs(": ", f);
        if (e->message)
                fputs(e->message, f);
        else if (e->http_status <= 0 && !e->code)
                fputs("unknown error", f);
        if (e->realm)
                fprintf(f, " (auth realm %s)", e->realm);
        if (e->retry_after > 0)
                fprintf(f, " (retry after %" PRIu64 "s)", e->retry_after);
        if (fclose(f) != 0) {
                free(s);
                return NULL;
        }
        return s;
}

char *error_detail_format_line(const ErrorDetail *e) {
        _cleanup_free_ char *s = error_detail_format(e);
        return s ? escape_line(s) : NULL;
}
