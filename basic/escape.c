/* escape.c: one escaping for every line pullwatch prints or logs that carries text from outside. */
#include "basic/escape.h"

#include <stdlib.h>
#include <string.h>

/* Length of a valid UTF-8 sequence at s (2-4), 0 when it is not one. Overlongs and surrogates fail. */
static size_t utf8_len(const unsigned char *s) {
        if (s[0] >= 0xc2 && s[0] <= 0xdf)
                return (s[1] & 0xc0) == 0x80 ? 2 : 0;
        if (s[0] >= 0xe0 && s[0] <= 0xef) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80)
                        return 0;
                if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] >= 0xa0))
                        return 0;
                return 3;
        }
        if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                if ((s[1] & 0xc0) != 0x80 || (s[2] & 0xc0) != 0x80 || (s[3] & 0xc0) != 0x80)
                        return 0;
                if ((s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] >= 0x90))
                        return 0;
                return 4;
        }
        return 0;
}

static bool priority_prefix(const char *s) {
        size_t n = 0;
        if (s[0] != '<')
                return false;
        while (s[1 + n] >= '0' && s[1 + n] <= '9')
                n++;
        return n > 0 && s[1 + n] == '>';
}

/* Writes the escaped form of s into out (when not NULL, at most size-1 bytes, terminated); returns
 * the full escaped length. */
static size_t escape_into(const char *s, char *out, size_t size) {
        const unsigned char *p = (const unsigned char *) s;
        size_t len = 0;
        bool lead = priority_prefix(s);

        while (*p) {
                char e[8];
                size_t n;
                const char *piece = e;

                if (lead) {
                        memcpy(e, "\\x3c", 5);
                        n = 4;
                        lead = false;
                        p++;
                } else if (*p == '\\') {
                        memcpy(e, "\\\\", 3);
                        n = 2;
                        p++;
                } else if (*p == '\n' || *p == '\r' || *p == '\t') {
                        e[0] = '\\';
                        e[1] = *p == '\n' ? 'n' : *p == '\r' ? 'r' : 't';
                        n = 2;
                        p++;
                } else if (*p < 0x20 || *p == 0x7f) {
                        n = (size_t) snprintf(e, sizeof(e), "\\x%02x", *p);
                        p++;
                } else if (*p < 0x80) {
                        piece = (const char *) p;
                        n = 1;
                        p++;
                } else if ((n = utf8_len(p)) == 0) {
                        n = (size_t) snprintf(e, sizeof(e), "\\x%02x", *p);
                        p++;
                } else if (n == 2 && p[0] == 0xc2 && p[1] < 0xa0) {
                        n = (size_t) snprintf(e, sizeof(e), "\\u%04x", p[1]); /* C1: CSI and friends */
                        p += 2;
                } else {
                        piece = (const char *) p;
                        p += n;
                }
                if (out && len + n < size)
                        memcpy(out + len, piece, n);
                else if (out && len < size)
                        size = len + 1; /* cut here, at a character boundary; nothing later fits either */
                len += n;
        }
        if (out && size > 0)
                out[MIN(len, size - 1)] = 0;
        return len;
}

char *escape_line(const char *s) {
        char *r;
        size_t n;

        if (!s)
                return NULL;
        n = escape_into(s, NULL, 0);
        r = malloc(n + 1);
        if (r)
                escape_into(s, r, n + 1);
        return r;
}

void escape_line_buf(const char *s, char *buf, size_t size) {
        if (size == 0)
                return;
        escape_into(s ? s : "", buf, size);
}

int vfprintf_line(FILE *f, const char *fmt, va_list ap) {
        _cleanup_free_ char *raw = NULL, *line = NULL;

        if (vasprintf(&raw, fmt, ap) < 0)
                return -ENOMEM;
        line = escape_line(raw);
        if (!line)
                return -ENOMEM;
        fputs(line, f);
        fputc('\n', f);
        return 0;
}

int fprintf_line(FILE *f, const char *fmt, ...) {
        va_list ap;
        int r;

        va_start(ap, fmt);
        r = vfprintf_line(f, fmt, ap);
        va_end(ap);
        return r;
}
