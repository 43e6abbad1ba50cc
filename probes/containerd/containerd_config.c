/* containerd_config.c: containerd's config.toml (and what it imports), read for the CRI registry
 * config_path only. containerd 2.x's CRI Status reports the runtime config, not the images config, so
 * this file is where 2.x's config_path is found. The whole TOML file is walked (tables, dotted keys,
 * inline tables, arrays, every string form) so a key is matched by its full path; values other than
 * version, imports and config_path are skipped. Syntax pullwatch cannot follow is an error naming
 * file, line and field, never a guess. The file comes in through basic/read_file.c; strings, keys and
 * comments are read by basic/toml.c (shared with hosts_toml.c); the grammar above them is here. */
#include "probes/containerd/containerd_config.h"

#include <ctype.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <unistd.h>

#include "basic/macro.h"
#include "basic/read_file.h"
#include "basic/toml.h"

#define MAX_FILE (1024 * 1024)
#define MAX_DEPTH 8
#define MAX_PATH_SEGS 16

typedef struct File {
        TomlScan s;               /* the file's name as the runtime names it, where the scan is */
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
        _cleanup_free_ char *field = k && k->n ? path_string(k) : NULL;
        va_list ap;
        va_start(ap, fmt);
        int r = toml_failv(&f->s, field, fmt, ap);
        va_end(ap);
        return r;
}

/* Any TOML string at f->s.p; errors name the key k. */
static int parse_string(File *f, const Path *k, char **ret) {
        _cleanup_free_ char *field = k && k->n ? path_string(k) : NULL;
        return toml_string(&f->s, field, ret);
}

/* One key segment: bare or quoted. */
static int parse_key_seg(File *f, const Path *k, char **ret) {
        _cleanup_free_ char *field = k && k->n ? path_string(k) : NULL;
        return toml_key_segment(&f->s, field, ret);
}

/* A dotted key appended to k. */
static int parse_key(File *f, Path *k) {
        for (;;) {
                char *s;
                toml_skip(&f->s, false);
                if (k->n == MAX_PATH_SEGS)
                        return fail(f, k, "key nested too deep");
                int r = parse_key_seg(f, k, &s);
                if (r < 0)
                        return r;
                k->seg[k->n++] = s;
                toml_skip(&f->s, false);
                if (*f->s.p != '.')
                        return 0;
                f->s.p++;
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
        if (*f->s.p == '"' || *f->s.p == '\'') {
                _cleanup_free_ char *s = NULL;
                unsigned line = f->s.line;
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
        if ((*f->s.p == '[' || *f->s.p == '{') && depth == 0 && (path_is(k, key_version) || is_config_path(k)))
                return fail(f, k, path_is(k, key_version) ? "expected an integer" : "expected a string");
        if (*f->s.p == '{' && depth == 0 && path_is(k, key_imports))
                return fail(f, k, "expected an array of file names");
        if (*f->s.p == '[') {
                bool imports = depth == 0 && path_is(k, key_imports);
                f->s.p++;
                for (;;) {
                        toml_skip(&f->s, true);
                        if (*f->s.p == ']') {
                                f->s.p++;
                                return 0;
                        }
                        if (imports) {
                                char *s;
                                if (*f->s.p != '"' && *f->s.p != '\'')
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
                        toml_skip(&f->s, true);
                        if (*f->s.p == ',')
                                f->s.p++;
                        else if (*f->s.p != ']')
                                return fail(f, k, "expected ',' or ']' in the array");
                }
        }
        if (*f->s.p == '{') {
                /* inline table: its keys continue k */
                f->s.p++;
                toml_skip(&f->s, false);
                if (*f->s.p == '}') {
                        f->s.p++;
                        return 0;
                }
                for (;;) {
                        if ((r = parse_key(f, k)) < 0)
                                return r;
                        if (*f->s.p != '=')
                                return fail(f, k, "expected '=' after the key");
                        f->s.p++;
                        toml_skip(&f->s, false);
                        r = parse_value(f, k, depth);
                        path_clear(k, base);
                        if (r < 0)
                                return r;
                        toml_skip(&f->s, false);
                        if (*f->s.p == '}') {
                                f->s.p++;
                                return 0;
                        }
                        if (*f->s.p != ',')
                                return fail(f, k, "expected ',' or '}' in the inline table");
                        f->s.p++;
                }
        }
        /* a bare scalar: integer, float, boolean, date-time */
        const char *s = f->s.p;
        while (isalnum((unsigned char) *f->s.p) || strchr("_+-.:", *f->s.p))
                f->s.p++;
        /* a date-time may separate date and time by one space */
        if (f->s.p - s == 10 && s[4] == '-' && *f->s.p == ' ' && isdigit((unsigned char) f->s.p[1]))
                for (f->s.p++; isalnum((unsigned char) *f->s.p) || strchr("_+-.:", *f->s.p); f->s.p++)
                        ;
        if (f->s.p == s)
                return fail(f, k, "expected a value");
        if (depth == 0 && path_is(k, key_version)) {
                char *end;
                long v = strtol(s, &end, 10);
                if (end != f->s.p || v < 0 || v > 3)
                        return fail(f, k, "expected 1, 2 or 3");
                f->version = v;
        } else if (depth == 0 && (path_is(k, key_imports) || is_config_path(k)))
                return fail(f, k, path_is(k, key_imports) ? "expected an array of file names" : "expected a string");
        return 0;
}

/* The rest of a line after a header or a key's value. */
static int end_of_line(File *f, const Path *k) {
        _cleanup_free_ char *field = k && k->n ? path_string(k) : NULL;
        return toml_end_of_line(&f->s, field);
}

static int parse_file(File *f, const char *text) {
        Path table = {}, k = {};
        int r = 0;

        f->s.p = text;
        f->s.line = 1;
        for (;;) {
                toml_skip(&f->s, true);
                if (!*f->s.p)
                        break;
                if (*f->s.p == '[') {
                        bool array = f->s.p[1] == '[';
                        f->s.p += array ? 2 : 1;
                        path_clear(&table, 0);
                        if ((r = parse_key(f, &table)) < 0)
                                break;
                        if (*f->s.p != ']' || (array && f->s.p[1] != ']')) {
                                r = fail(f, &table, "expected '%s' to close the table header", array ? "]]" : "]");
                                break;
                        }
                        f->s.p += array ? 2 : 1;
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
                if (*f->s.p != '=') {
                        r = fail(f, &k, "expected '=' after the key");
                        break;
                }
                f->s.p++;
                toml_skip(&f->s, false);
                if ((r = parse_value(f, &k, 0)) < 0 || (r = end_of_line(f, &k)) < 0)
                        break;
        }
out:
        path_clear(&table, 0);
        path_clear(&k, 0);
        return r;
}

static void file_done(File *f) {
        toml_scan_done(&f->s);
        for (size_t i = 0; i < ELEMENTSOF(f->cp); i++)
                free(f->cp[i]);
        strv_free(f->imports);
}

/* The file as the runtime sees it: below root_prefix, else (no access to the runtime's root: not root,
 * no hostPID) the same path in ours. Regular files only, never waited on (a FIFO is refused), no NULs. */
static int read_text(const char *root_prefix, const char *name, char **ret) {
        _cleanup_free_ char *full = NULL, *b = NULL;
        size_t n = 0;
        int r;

        if (asprintf(&full, "%s%s", root_prefix ?: "", name) < 0)
                return -ENOMEM;
        r = read_file_full_step(full, MAX_FILE, READ_FILE_REGULAR, &b, &n, NULL);
        if (r < 0 && root_prefix && (r == -EACCES || r == -EPERM))
                r = read_file_full_step(name, MAX_FILE, READ_FILE_REGULAR, &b, &n, NULL);
        if (r == -EISDIR || r == -EINVAL)
                return -EBADMSG;
        if (r < 0)
                return r;
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
        ErrorDetail error;
        char **seen;
} Walk;

static int walk(Walk *w, const char *name, unsigned depth) {
        _cleanup_free_ char *text = NULL;
        File f = { .s.name = name };
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
                return error_detail_set(&w->error, EINVAL, name, 0, 0, NULL, "%s",
                                        r == -EBADMSG ? "not a regular text file" : strerror(-r));
        r = parse_file(&f, text);
        if (r == -EINVAL) {
                error_detail_move(&w->error, &f.s.error);
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
                        r = error_detail_set(&w->error, EINVAL, name, 0, 0, NULL, "imports nested deeper than %d files",
                                             MAX_DEPTH);
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
                                    char **ret_from, ErrorDetail *ret_error) {
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
                error_detail_move(ret_error, &w.error);
        free(w.config_path);
        free(w.from);
        error_detail_done(&w.error);
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

int runtime_registry_read_containerd_config(RuntimeRegistry *rt, const char *root_prefix, const char *path) {
        _cleanup_free_ char *cp = NULL, *from = NULL;
        _cleanup_(error_detail_done) ErrorDetail error = {};
        int r = containerd_config_registry_path(root_prefix, path, &cp, &from, &error);

        if (r == -EINVAL) {
                free(rt->error);
                rt->error = error.message ? error_detail_format(&error) : NULL;
                return r;
        }
        if (r < 0)
                return r;
        if (!cp)
                return -ENOENT;
        free(rt->certs_dir);
        free(rt->certs_dir_from);
        rt->certs_dir = TAKE_PTR(cp);
        rt->certs_dir_from = TAKE_PTR(from);
        return 0;
}
