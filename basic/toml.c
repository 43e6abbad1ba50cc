/* toml.c: TOML's lexical layer (toml.h): skipping, strings, key segments, errors naming file:line:field. */
#include "basic/toml.h"

#include <ctype.h>
#include <stdio.h>

int toml_failv(TomlScan *t, const char *field, const char *fmt, va_list ap) {
        if (!t->error.message)
                (void) error_detail_setv(&t->error, EINVAL, t->name, t->line, 0, field, fmt, ap);
        return -EINVAL;
}

int toml_fail(TomlScan *t, const char *field, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = toml_failv(t, field, fmt, ap);
        va_end(ap);
        return r;
}

void toml_skip(TomlScan *t, bool newlines) {
        for (;;) {
                while (*t->p == ' ' || *t->p == '\t' || *t->p == '\r')
                        t->p++;
                if (*t->p == '#')
                        while (*t->p && *t->p != '\n')
                                t->p++;
                if (newlines && *t->p == '\n') {
                        t->p++;
                        t->line++;
                        continue;
                }
                return;
        }
}

static void put_utf8(FILE *o, unsigned long c) {
        if (c < 0x80)
                fputc((int) c, o);
        else if (c < 0x800)
                fprintf(o, "%c%c", (int) (0xC0 | c >> 6), (int) (0x80 | (c & 0x3F)));
        else if (c < 0x10000)
                fprintf(o, "%c%c%c", (int) (0xE0 | c >> 12), (int) (0x80 | ((c >> 6) & 0x3F)), (int) (0x80 | (c & 0x3F)));
        else
                fprintf(o, "%c%c%c%c", (int) (0xF0 | c >> 18), (int) (0x80 | ((c >> 12) & 0x3F)),
                        (int) (0x80 | ((c >> 6) & 0x3F)), (int) (0x80 | (c & 0x3F)));
}

int toml_string(TomlScan *t, const char *field, char **ret) {
        char q = *t->p;
        bool multi = t->p[1] == q && t->p[2] == q;
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        FILE *o;

        t->p += multi ? 3 : 1;
        if (multi && *t->p == '\n') /* a newline right after the opening quotes is not content */
                t->p++, t->line++;
        if (!(o = open_memstream(&s, &len)))
                return -ENOMEM;
        for (;;) {
                char c = *t->p;
                if (!c || (c == '\n' && !multi)) {
                        fclose(o);
                        return toml_fail(t, field, "unterminated string");
                }
                if (c == q && !multi) {
                        t->p++;
                        break;
                }
                if (c == q && t->p[1] == q && t->p[2] == q) {
                        /* a run of 4 or 5 quotes ends with 1 or 2 quotes of content ("""a""""") */
                        size_t run = 3;
                        while (t->p[run] == q && run < 5)
                                run++;
                        for (size_t i = 3; i < run; i++)
                                fputc(q, o);
                        t->p += run;
                        break;
                }
                t->p++;
                if (c == '\n')
                        t->line++;
                if (c != '\\' || q == '\'') {
                        fputc(c, o);
                        continue;
                }
                c = *t->p++;
                switch (c) {
                case 'b': fputc('\b', o); break;
                case 't': fputc('\t', o); break;
                case 'n': fputc('\n', o); break;
                case 'f': fputc('\f', o); break;
                case 'r': fputc('\r', o); break;
                case '"': case '\\': fputc(c, o); break;
                case 'u': case 'U': {
                        unsigned n = c == 'u' ? 4 : 8;
                        char hex[9] = {};
                        for (unsigned i = 0; i < n; i++) {
                                if (!isxdigit((unsigned char) t->p[i])) {
                                        fclose(o);
                                        return toml_fail(t, field, "bad \\%c escape", c);
                                }
                                hex[i] = t->p[i];
                        }
                        t->p += n;
                        put_utf8(o, strtoul(hex, NULL, 16));
                        break;
                }
                default:
                        if (multi && (c == '\n' || c == ' ' || c == '\t' || c == '\r')) {
                                /* line-ending backslash: trim up to the next non-blank */
                                t->p--;
                                for (; *t->p == ' ' || *t->p == '\t' || *t->p == '\r' || *t->p == '\n'; t->p++)
                                        if (*t->p == '\n')
                                                t->line++;
                                break;
                        }
                        fclose(o);
                        if (!c)
                                t->p--; /* stay on the terminating NUL */
                        return toml_fail(t, field, "unsupported escape \\%c", c ? c : '0');
                }
        }
        if (fclose(o) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

int toml_key_segment(TomlScan *t, const char *field, char **ret) {
        if (*t->p == '"' || *t->p == '\'') {
                if (t->p[1] == *t->p && t->p[2] == *t->p)
                        return toml_fail(t, field, "a multi-line string cannot be a key");
                return toml_string(t, field, ret);
        }
        const char *s = t->p;
        while (isalnum((unsigned char) *t->p) || *t->p == '_' || *t->p == '-')
                t->p++;
        if (t->p == s)
                return toml_fail(t, field, "expected a key");
        return (*ret = strndup(s, t->p - s)) ? 0 : -ENOMEM;
}

int toml_end_of_line(TomlScan *t, const char *field) {
        toml_skip(t, false);
        if (*t->p && *t->p != '\n')
                return toml_fail(t, field, "unexpected text after the value");
        return 0;
}
