/* containerd_config.c: containerd's config.toml (and what it imports), read for the CRI registry
 * config_path only. containerd 2.x's CRI Status reports the runtime config, not the images config, so
 * this file is where 2.x's config_path is found. The whole TOML file is walked (tables, dotted keys,
 * inline tables, arrays, every string form) so a key is matched by its full path; values other than
 * version, imports and config_path are skipped. Syntax pullwatch cannot follow is an error naming
 * file, line and field, never a guess. */
#include "probes/containerd_config.h"

#include <ctype.h>
#include <fcntl.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#include "basic/macro.h"

#define MAX_FILE (1024 * 1024)
#define MAX_DEPTH 8
#define MAX_PATH_SEGS 16

typedef struct File {
        const char *name;         /* as the runtime names it */
        const char *p;
        unsigned line;
        char *error;
        long version;             /* 0 = not set (containerd reads it as 1) */
        char *cp[4];              /* config_path under each version's key (index 1..3) */
        unsigned cp_line[4];
        char **imports;
} File;

typedef struct Path {
        char *seg[MAX_PATH_SEGS];
        size_t n;
} Path;

static void path_clear(Path *k, size_t keep) {
        while (k->n > keep)
                free(k->seg[--k->n]);
}

static char *path_string(const Path *k) {
        char *s = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&s, &len);
        if (!f)
                return NULL;
        for (size_t i = 0; i < k->n; i++) {
                bool bare = *k->seg[i];
                for (const char *c = k->seg[i]; *c; c++)
                        bare &= isalnum((unsigned char) *c) || *c == '_' || *c == '-';
                fprintf(f, bare ? "%s%s" : "%s\"%s\"", i ? "." : "", k->seg[i]);
        }
        fclose(f);
        return s;
}

_printf_(3, 4) static int fail(File *f, const Path *k, const char *fmt, ...) {
        _cleanup_free_ char *what = NULL, *field = k && k->n ? path_string(k) : NULL;
        va_list ap;
        va_start(ap, fmt);
        int n = vasprintf(&what, fmt, ap);
        va_end(ap);
        if (!f->error && n >= 0 &&
            asprintf(&f->error, "%s:%u: %s%s%s", f->name, f->line, field ?: "", field ? ": " : "", what) < 0)
                f->error = NULL;
        return -EINVAL;
}

/* Blanks and comments; newlines too when nl. */
static void skip(File *f, bool nl) {
        for (;;) {
                while (*f->p == ' ' || *f->p == '\t' || *f->p == '\r')
                        f->p++;
                if (*f->p == '#')
                        while (*f->p && *f->p != '\n')
                                f->p++;
                if (nl && *f->p == '\n') {
                        f->p++;
                        f->line++;
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

/* Any TOML string at f->p: "basic", 'literal', """multi-line""", '''multi-line'''. */
static int parse_string(File *f, const Path *k, char **ret) {
        char q = *f->p;
        bool multi = f->p[1] == q && f->p[2] == q;
        _cleanup_free_ char *s = NULL;
        size_t len = 0;
        FILE *o;

        f->p += multi ? 3 : 1;
        if (multi && *f->p == '\n') /* a newline right after the opening quotes is not content */
                f->p++, f->line++;
        if (!(o = open_memstream(&s, &len)))
                return -ENOMEM;
        for (;;) {
                char c = *f->p;
                if (!c || (c == '\n' && !multi)) {
                        fclose(o);
                        return fail(f, k, "unterminated string");
                }
                if (c == q && !multi) {
                        f->p++;
                        break;
                }
                if (c == q && f->p[1] == q && f->p[2] == q) {
                        /* a run of 4 or 5 quotes ends with 1 or 2 quotes of content ("""a""""") */
                        size_t run = 3;
                        while (f->p[run] == q && run < 5)
                                run++;
                        for (size_t i = 3; i < run; i++)
                                fputc(q, o);
                        f->p += run;
                        break;
                }
                f->p++;
                if (c == '\n')
                        f->line++;
                if (c != '\\' || q == '\'') {
                        fputc(c, o);
                        continue;
                }
                c = *f->p++;
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
                                if (!isxdigit((unsigned char) f->p[i])) {
                                        fclose(o);
                                        return fail(f, k, "bad \\%c escape", c);
                                }
                                hex[i] = f->p[i];
                        }
                        f->p += n;
                        put_utf8(o, strtoul(hex, NULL, 16));
                        break;
                }
                default:
                        if (multi && (c == '\n' || c == ' ' || c == '\t' || c == '\r')) {
                                /* line-ending backslash: trim up to the next non-blank */
                                f->p--;
                                for (; *f->p == ' ' || *f->p == '\t' || *f->p == '\r' || *f->p == '\n'; f->p++)
                                        if (*f->p == '\n')
                                                f->line++;
                                break;
                        }
                        fclose(o);
                        return fail(f, k, "unsupported escape \\%c", c ? c : '0');
                }
        }
        if (fclose(o) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(s);
        return 0;
}

/* One key segment: bare or quoted. */
static int parse_key_seg(File *f, const Path *k, char **ret) {
        if (*f->p == '"' || *f->p == '\'') {
                if (f->p[1] == *f->p && f->p[2] == *f->p)
                        return fail(f, k, "a multi-line string cannot be a key");
                return parse_string(f, k, ret);
        }
        const char *s = f->p;
        while (isalnum((unsigned char) *f->p) || *f->p == '_' || *f->p == '-')
                f->p++;
        if (f->p == s)
                return fail(f, k, "expected a key");
        return (*ret = strndup(s, f->p - s)) ? 0 : -ENOMEM;
}

/* A dotted key appended to k. */
static int parse_key(File *f, Path *k) {
        for (;;) {
                char *s;
                skip(f, false);
                if (k->n == MAX_PATH_SEGS)
                        return fail(f, k, "key nested too deep");
                int r = parse_key_seg(f, k, &s);
                if (r < 0)
                        return r;
                k->seg[k->n++] = s;
                skip(f, false);
                if (*f->p != '.')
                        return 0;
                f->p++;
        }
}

static bool path_is(const Path *k, const char *const *want) {
        size_t i = 0;
        for (; want[i]; i++)
                if (i >= k->n || !streq(k->seg[i], want[i]))
                        return false;
        return i == k->n;
}

static const char *const key_version[] = { "version", NULL };
static const char *const key_imports[] = { "imports", NULL };
static const char *const *const key_config_path[4] = {
        [1] = (const char *const[]) { "plugins", "cri", "registry", "config_path", NULL },
        [2] = (const char *const[]) { "plugins", "io.containerd.grpc.v1.cri", "registry", "config_path", NULL },
        [3] = (const char *const[]) { "plugins", "io.containerd.cri.v1.images", "registry", "config_path", NULL },
};

static bool is_config_path(const Path *k) {
        for (int v = 1; v <= 3; v++)
                if (path_is(k, key_config_path[v]))
                        return true;
        return false;
}

/* Any value, skipped unless k is one of the keys read. */
static int parse_value(File *f, Path *k, unsigned depth) {
        size_t base = k->n;
        int r;

        if (depth > 16)
                return fail(f, k, "values nested too deep");
        if (*f->p == '"' || *f->p == '\'') {
                _cleanup_free_ char *s = NULL;
                unsigned line = f->line;
                if ((r = parse_string(f, k, &s)) < 0)
                        return r;
                for (int v = 1; v <= 3; v++)
                        if (depth == 0 && path_is(k, key_config_path[v])) {
                                free(f->cp[v]);
                                f->cp[v] = TAKE_PTR(s);
                                f->cp_line[v] = line;
                                return 0;
                        }
                if (depth == 0 && (path_is(k, key_version) || path_is(k, key_imports)))
                        return fail(f, k, path_is(k, key_version) ? "expected an integer" : "expected an array of file names");
                return 0;
        }
        if ((*f->p == '[' || *f->p == '{') && depth == 0 && (path_is(k, key_version) || is_config_path(k)))
                return fail(f, k, path_is(k, key_version) ? "expected an integer" : "expected a string");
        if (*f->p == '{' && depth == 0 && path_is(k, key_imports))
                return fail(f, k, "expected an array of file names");
        if (*f->p == '[') {
                bool imports = depth == 0 && path_is(k, key_imports);
                f->p++;
                for (;;) {
                        skip(f, true);
                        if (*f->p == ']') {
                                f->p++;
                                return 0;
                        }
                        if (imports) {
                                char *s;
                                if (*f->p != '"' && *f->p != '\'')
                                        return fail(f, k, "expected an array of file names");
                                if ((r = parse_string(f, k, &s)) < 0)
                                        return r;
                                size_t n = strv_length(f->imports);
                                char **t = realloc(f->imports, (n + 2) * sizeof(char *));
                                if (!t) {
                                        free(s);
                                        return -ENOMEM;
                                }
                                f->imports = t;
                                t[n] = s;
                                t[n + 1] = NULL;
                        } else if ((r = parse_value(f, k, depth + 1)) < 0)
                                return r;
                        skip(f, true);
                        if (*f->p == ',')
                                f->p++;
                        else if (*f->p != ']')
                                return fail(f, k, "expected ',' or ']' in the array");
                }
        }
        if (*f->p == '{') {
                /* inline table: its keys continue k */
                f->p++;
                skip(f, false);
                if (*f->p == '}') {
                        f->p++;
                        return 0;
                }
                for (;;) {
                        if ((r = parse_key(f, k)) < 0)
                                return r;
                        if (*f->p != '=')
                                return fail(f, k, "expected '=' after the key");
                        f->p++;
                        skip(f, false);
                        r = parse_value(f, k, depth);
                        path_clear(k, base);
                        if (r < 0)
                                return r;
                        skip(f, false);
                        if (*f->p == '}') {
                                f->p++;
                                return 0;
                        }
                        if (*f->p != ',')
                                return fail(f, k, "expected ',' or '}' in the inline table");
                        f->p++;
                }
        }
        /* a bare scalar: integer, float, boolean, date-time */
        const char *s = f->p;
        while (isalnum((unsigned char) *f->p) || strchr("_+-.:", *f->p))
                f->p++;
        /* a date-time may separate date and time by one space */
        if (f->p - s == 10 && s[4] == '-' && *f->p == ' ' && isdigit((unsigned char) f->p[1]))
                for (f->p++; isalnum((unsigned char) *f->p) || strchr("_+-.:", *f->p); f->p++)
                        ;
        if (f->p == s)
                return fail(f, k, "expected a value");
        if (depth == 0 && path_is(k, key_version)) {
                char *end;
                long v = strtol(s, &end, 10);
                if (end != f->p || v < 0 || v > 3)
                        return fail(f, k, "expected 1, 2 or 3");
                f->version = v;
        } else if (depth == 0 && (path_is(k, key_imports) || is_config_path(k)))
                return fail(f, k, path_is(k, key_imports) ? "expected an array of file names" : "expected a string");
        return 0;
}

/* The rest of a line after a header or a key's value. */
static int end_of_line(File *f, const Path *k) {
        skip(f, false);
        if (*f->p && *f->p != '\n')
                return fail(f, k, "unexpected text after the value");
        return 0;
}

static int parse_file(File *f, const char *text) {
        Path table = {}, k = {};
        int r = 0;

        f->p = text;
        f->line = 1;
        for (;;) {
                skip(f, true);
                if (!*f->p)
                        break;
                if (*f->p == '[') {
                        bool array = f->p[1] == '[';
                        f->p += array ? 2 : 1;
                        path_clear(&table, 0);
                        if ((r = parse_key(f, &table)) < 0)
                                break;
                        if (*f->p != ']' || (array && f->p[1] != ']')) {
                                r = fail(f, &table, "expected '%s' to close the table header", array ? "]]" : "]");
                                break;
                        }
                        f->p += array ? 2 : 1;
                        if ((r = end_of_line(f, &table)) < 0)
                                break;
                        continue;
                }
                path_clear(&k, 0);
                for (size_t i = 0; i < table.n; i++)
                        if (!(k.seg[k.n++] = strdup(table.seg[i]))) {
                                r = -ENOMEM;
                                goto out;
                        }
                if ((r = parse_key(f, &k)) < 0)
                        break;
                if (*f->p != '=') {
                        r = fail(f, &k, "expected '=' after the key");
                        break;
                }
                f->p++;
                skip(f, false);
                if ((r = parse_value(f, &k, 0)) < 0 || (r = end_of_line(f, &k)) < 0)
                        break;
        }
out:
        path_clear(&table, 0);
        path_clear(&k, 0);
        return r;
}

static void file_done(File *f) {
        free(f->error);
        for (size_t i = 0; i < ELEMENTSOF(f->cp); i++)
                free(f->cp[i]);
        strv_free(f->imports);
}

static int read_text(const char *root_prefix, const char *name, char **ret) {
        _cleanup_free_ char *full = NULL, *b = NULL;
        _cleanup_fclose_ FILE *fp = NULL;
        size_t n;

        if (asprintf(&full, "%s%s", root_prefix ?: "", name) < 0)
                return -ENOMEM;
        /* non-blocking open and regular files only: a FIFO or device never stalls the loop */
        int fd = open(full, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        /* no access to the runtime's root (not root, no hostPID): the same path in ours */
        if (fd < 0 && root_prefix && (errno == EACCES || errno == EPERM))
                fd = open(name, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        struct stat st;
        int e = fstat(fd, &st) < 0 ? -errno : !S_ISREG(st.st_mode) ? -EBADMSG : 0;
        if (e == 0 && !(fp = fdopen(fd, "re")))
                e = -errno;
        if (e < 0) {
                close(fd);
                return e;
        }
        if (!(b = malloc(MAX_FILE + 1)))
                return -ENOMEM;
        n = fread(b, 1, MAX_FILE, fp);
        if (ferror(fp))
                return -EIO;
        if (!feof(fp))
                return -EFBIG;
        b[n] = 0;
        if (memchr(b, 0, n))
                return -EBADMSG;
        *ret = TAKE_PTR(b);
        return 0;
}

/* "/a/b/../c/./d" -> "/a/c/d" (absolute paths), as Go's filepath.Join names containerd's imports. */
static void path_clean(char *p) {
        char *out = p, *seg = p;
        for (;;) {
                while (*seg == '/')
                        seg++;
                if (!*seg)
                        break;
                size_t l = strcspn(seg, "/");
                if (l == 2 && seg[0] == '.' && seg[1] == '.') {
                        while (out > p && *--out != '/')
                                ;
                } else if (!(l == 1 && seg[0] == '.')) {
                        *out++ = '/';
                        memmove(out, seg, l);
                        out += l;
                }
                seg += l;
        }
        if (out == p)
                *out++ = '/';
        *out = 0;
}

typedef struct Walk {
        const char *root_prefix;
        char *config_path;
        char *from;
        char *error;
        char **seen;
} Walk;

static int walk(Walk *w, const char *name, unsigned depth) {
        _cleanup_free_ char *text = NULL;
        File f = { .name = name };
        int r;

        for (char **s = w->seen; s && *s; s++)
                if (streq(*s, name))
                        return 0; /* imported twice: containerd loads a file once */
        size_t n = strv_length(w->seen);
        char **t = realloc(w->seen, (n + 2) * sizeof(char *));
        if (!t)
                return -ENOMEM;
        w->seen = t;
        if (!(t[n] = strdup(name)))
                return -ENOMEM;
        t[n + 1] = NULL;

        r = read_text(w->root_prefix, name, &text);
        if (r == -ENOENT && depth == 0)
                return r;
        if (r < 0)
                return asprintf(&w->error, "%s: %s", name, r == -EBADMSG ? "not a regular text file" : strerror(-r)) < 0 ? -ENOMEM : -EINVAL;
        r = parse_file(&f, text);
        if (r == -EINVAL) {
                w->error = TAKE_PTR(f.error);
                file_done(&f);
                return r;
        }
        long v = f.version ?: 1;
        if (r >= 0 && f.cp[v]) {
                free(w->config_path);
                free(w->from);
                w->from = NULL;
                w->config_path = *f.cp[v] ? TAKE_PTR(f.cp[v]) : NULL;
                if (asprintf(&w->from, "%s:%u", name, f.cp_line[v]) < 0)
                        r = -ENOMEM;
        }
        /* imports, relative to this file's directory, glob-expanded; each overrides what came before */
        _cleanup_free_ char *dir = strdup(name);
        if (r >= 0 && !dir)
                r = -ENOMEM;
        if (dir) {
                char *slash = strrchr(dir, '/');
                if (slash)
                        *slash = 0;
        }
        for (char **imp = f.imports; r >= 0 && imp && *imp; imp++) {
                _cleanup_free_ char *pattern = NULL;
                glob_t g = {};
                if (depth + 1 >= MAX_DEPTH) {
                        r = asprintf(&w->error, "%s: imports nested deeper than %d files", name, MAX_DEPTH) < 0 ? -ENOMEM : -EINVAL;
                        break;
                }
                if (asprintf(&pattern, "%s%s%s%s", w->root_prefix ?: "", **imp == '/' ? "" : dir, **imp == '/' ? "" : "/",
                             *imp) < 0) {
                        r = -ENOMEM;
                        break;
                }
                int gr = glob(pattern, 0, NULL, &g);
                if (gr == GLOB_NOSPACE)
                        r = -ENOMEM;
                for (size_t i = 0; r >= 0 && gr == 0 && i < g.gl_pathc; i++) {
                        _cleanup_free_ char *imported = strdup(g.gl_pathv[i] + strlen(w->root_prefix ?: ""));
                        if (!imported) {
                                r = -ENOMEM;
                                break;
                        }
                        path_clean(imported);
                        r = walk(w, imported, depth + 1);
                }
                globfree(&g);
        }
        file_done(&f);
        return r;
}

int containerd_config_registry_path(const char *root_prefix, const char *path, char **ret_config_path,
                                    char **ret_from, char **ret_error) {
        Walk w = { .root_prefix = root_prefix };
        int r;

        if (!path || path[0] != '/' || !ret_config_path || !ret_from)
                return -EINVAL;
        r = walk(&w, path, 0);
        strv_free(w.seen);
        if (r >= 0) {
                *ret_config_path = TAKE_PTR(w.config_path);
                *ret_from = TAKE_PTR(w.from);
        } else if (r == -EINVAL && ret_error)
                *ret_error = TAKE_PTR(w.error);
        free(w.config_path);
        free(w.from);
        free(w.error);
        return r;
}

int containerd_config_file_of(const char *proc_root, pid_t pid, char **ret) {
        _cleanup_free_ char *file = NULL, *args = NULL, *cwd_link = NULL;
        _cleanup_fclose_ FILE *fp = NULL;
        const char *config = NULL;
        size_t n;

        if (pid <= 0 || !ret)
                return -EINVAL;
        if (asprintf(&file, "%s/%d/cmdline", proc_root ?: "/proc", (int) pid) < 0 || !(args = malloc(64 * 1024 + 1)))
                return -ENOMEM;
        if (!(fp = fopen(file, "re")))
                return -errno;
        n = fread(args, 1, 64 * 1024, fp);
        if (ferror(fp))
                return -EIO;
        args[n] = 0;
        /* Go's flag forms: -c X, -c=X, --config X, --config=X, -config X; global flags only (before
         * the first word that is not a flag), as containerd's own parser reads them */
        const char *end = args + n;
        for (const char *a = args + strlen(args) + 1; a < end; a += strlen(a) + 1) {
                const char *name = a[0] == '-' ? a + 1 + (a[1] == '-') : NULL;
                if (!name || !*name)
                        break;
                size_t l = strcspn(name, "=");
                if ((l == 1 && name[0] == 'c') || (l == 6 && startswith(name, "config"))) {
                        if (name[l] == '=')
                                config = name + l + 1;
                        else if (a + strlen(a) + 1 < end)
                                config = a + strlen(a) + 1;
                        break;
                }
                /* another flag: its value may be the next word (--log-level debug) */
                if (!name[l] && a + strlen(a) + 1 < end && a[strlen(a) + 1] != '-' &&
                    !streq(name, "v") && !streq(name, "version") && !streq(name, "h") && !streq(name, "help"))
                        a += strlen(a) + 1;
        }
        if (!config || !*config)
                return (*ret = strdup("/etc/containerd/config.toml")) ? 0 : -ENOMEM;
        if (config[0] == '/')
                return (*ret = strdup(config)) ? 0 : -ENOMEM;
        char buf[PATH_MAX];
        ssize_t l;
        if (asprintf(&cwd_link, "%s/%d/cwd", proc_root ?: "/proc", (int) pid) < 0)
                return -ENOMEM;
        if ((l = readlink(cwd_link, buf, sizeof buf - 1)) < 0)
                return -errno;
        buf[l] = 0;
        return asprintf(ret, "%s/%s", streq(buf, "/") ? "" : buf, config) < 0 ? -ENOMEM : 0;
}
