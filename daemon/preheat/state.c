/* state.c: state.json. Version 1: {"version":1,"images":[{"image","runtime","digest","last_success",
 * "last_attempt","attempts","last_error"}]}; times are RFC 3339 UTC so an operator can read the file. */
#include "daemon/preheat/state.h"
#include "basic/atomic_file.h"

#include <stdio.h>
#include <sys/stat.h>

#define STATE_VERSION 1

static void entry_done(StateEntry *e) {
        free(e->image);
        free(e->runtime);
        free(e->digest);
        free(e->last_error);
        *e = (StateEntry) {};
}

static void entries_clear(State *s) {
        for (size_t i = 0; i < s->n; i++)
                entry_done(&s->entries[i]);
        free(s->entries);
        s->entries = NULL;
        s->n = 0;
        free(s->index);
        s->index = NULL;
        s->index_size = 0;
}

/* ---- the index: FNV-1a of "image\0runtime", linear probing ---- */

static size_t key_hash(const char *image, const char *runtime) {
        uint64_t h = 0xcbf29ce484222325ULL;
        for (const unsigned char *c = (const unsigned char *) image; *c; c++)
                h = (h ^ *c) * 0x100000001b3ULL;
        h = (h ^ 0xff) * 0x100000001b3ULL; /* separator */
        for (const unsigned char *c = (const unsigned char *) runtime; *c; c++)
                h = (h ^ *c) * 0x100000001b3ULL;
        return (size_t) (h ^ (h >> 29));
}

static void index_put(State *s, size_t i) {
        size_t mask = s->index_size - 1, k = key_hash(s->entries[i].image, s->entries[i].runtime) & mask;
        while (s->index[k])
                k = (k + 1) & mask;
        s->index[k] = i + 1;
}

/* Rebuilt whole (after a removal shifted positions, or to grow): size for at least min entries. */
static int index_rebuild(State *s, size_t min) {
        size_t size = 16;
        while (size < 2 * min)
                size *= 2;
        size_t *index = calloc(size, sizeof(*index));
        if (!index)
                return -ENOMEM;
        free(s->index);
        s->index = index;
        s->index_size = size;
        for (size_t i = 0; i < s->n; i++)
                index_put(s, i);
        return 0;
}

/* entries[s->n] is filled: count it and index it. */
static int entry_append_indexed(State *s) {
        if (2 * (s->n + 1) > s->index_size) {
                int r = index_rebuild(s, 2 * (s->n + 1));
                if (r < 0)
                        return r;
        }
        s->n++;
        index_put(s, s->n - 1);
        return 0;
}

State *state_free(State *s) {
        if (!s)
                return NULL;
        entries_clear(s);
        free(s->path);
        free(s);
        return NULL;
}

int state_set_dir(State *s, const char *dir) {
        char *p;
        if (asprintf(&p, "%s/%s", dir, STATE_FILE_NAME) < 0)
                return -ENOMEM;
        free(s->path);
        s->path = p;
        s->dirty = true;
        return 0;
}

int state_new(const char *dir, State **ret) {
        State *s = calloc(1, sizeof(*s));
        int r;

        if (!s)
                return -ENOMEM;
        r = state_set_dir(s, dir);
        if (r < 0) {
                state_free(s);
                return r;
        }
        s->dirty = false;
        *ret = s;
        return 0;
}

static int set_time(json_t *o, const char *key, uint64_t usec) {
        char buf[32];
        if (usec == 0)
                return json_object_set_new(o, key, json_null());
        if (format_timestamp(usec, buf, sizeof(buf)) < 0)
                return -EINVAL;
        return json_object_set_new(o, key, json_string(buf));
}

static json_t *string_or_null(const char *s) {
        return s ? json_string(s) : json_null();
}

static json_t *entry_to_json(const StateEntry *e) {
        json_t *o = json_object();

        if (!o)
                return NULL;
        if (json_object_set_new(o, "image", json_string(e->image)) < 0 ||
            json_object_set_new(o, "runtime", json_string(e->runtime)) < 0 ||
            json_object_set_new(o, "digest", string_or_null(e->digest)) < 0 ||
            set_time(o, "last_success", e->last_success) < 0 ||
            set_time(o, "last_attempt", e->last_attempt) < 0 ||
            json_object_set_new(o, "attempts", json_integer(e->attempts)) < 0 ||
            json_object_set_new(o, "last_error", string_or_null(e->last_error)) < 0) {
                json_decref(o);
                return NULL;
        }
        return o;
}

json_t *state_to_json(const State *s) {
        json_t *root = json_object(), *arr = json_array();

        if (!root || !arr)
                goto fail;
        json_object_set_new(root, "version", json_integer(STATE_VERSION));
        for (size_t i = 0; i < s->n; i++)
                if (json_array_append_new(arr, entry_to_json(&s->entries[i])) < 0)
                        goto fail;
        json_object_set_new(root, "images", arr);
        return root;
fail:
        json_decref(arr);
        json_decref(root);
        return NULL;
}

static int dup_opt(const json_t *o, const char *key, char **ret) {
        const json_t *v = json_object_get(o, key);
        *ret = NULL;
        if (!v || json_is_null(v))
                return 0;
        if (!json_is_string(v))
                return -EBADMSG;
        *ret = strdup(json_string_value(v));
        return *ret ? 0 : -ENOMEM;
}

static int get_time(const json_t *o, const char *key, uint64_t *ret) {
        const json_t *v = json_object_get(o, key);
        *ret = 0;
        if (!v || json_is_null(v))
                return 0;
        return json_is_string(v) ? parse_timestamp(json_string_value(v), ret) : -EBADMSG;
}

/* One entry; -EBADMSG drops it, -ENOMEM fails the load. */
static int entry_from_json(const json_t *o, StateEntry *e) {
        const json_t *att = json_object_get(o, "attempts");
        int r;

        if (!json_is_object(o) || !json_is_string(json_object_get(o, "image")) ||
            !json_is_string(json_object_get(o, "runtime")))
                return -EBADMSG;
        if (att && !(json_is_integer(att) && json_integer_value(att) >= 0 && json_integer_value(att) < 1000000))
                return -EBADMSG;
        e->attempts = att ? (unsigned) json_integer_value(att) : 0;
        if ((r = dup_opt(o, "image", &e->image)) < 0 || (r = dup_opt(o, "runtime", &e->runtime)) < 0 ||
            (r = dup_opt(o, "digest", &e->digest)) < 0 || (r = dup_opt(o, "last_error", &e->last_error)) < 0)
                return r;
        if (get_time(o, "last_success", &e->last_success) < 0 || get_time(o, "last_attempt", &e->last_attempt) < 0)
                return -EBADMSG;
        return 0;
}

int state_from_json(const json_t *j, State *s) {
        const json_t *images = json_object_get(j, "images"), *v;
        size_t i;

        if (!json_is_object(j) || !json_is_integer(json_object_get(j, "version")) ||
            json_integer_value(json_object_get(j, "version")) != STATE_VERSION || !json_is_array(images))
                return -EBADMSG;
        entries_clear(s);
        json_array_foreach(images, i, v) {
                StateEntry e = {};
                int r = entry_from_json(v, &e);
                if (r == -EBADMSG || (r >= 0 && state_find(s, e.image, e.runtime))) {
                        entry_done(&e);
                        continue;
                }
                if (r < 0) {
                        entry_done(&e);
                        return r;
                }
                StateEntry *n = realloc(s->entries, (s->n + 1) * sizeof(*n));
                if (!n) {
                        entry_done(&e);
                        return -ENOMEM;
                }
                s->entries = n;
                s->entries[s->n] = e;
                r = entry_append_indexed(s);
                if (r < 0) {
                        entry_done(&s->entries[s->n]);
                        return r;
                }
        }
        return 0;
}

int state_load(const char *dir, State **ret) {
        _cleanup_state_ State *s = NULL;
        _cleanup_free_ char *text = NULL;
        json_t *j;
        size_t size;
        int r;

        r = state_new(dir, &s);
        if (r < 0)
                return r;
        r = read_file_full(s->path, STATE_FILE_MAX, &text, &size);
        if (r == -ENOENT) {
                *ret = TAKE_PTR(s);
                return 0;
        }
        if (r == -EFBIG)
                return -EBADMSG;
        if (r < 0)
                return r;
        j = json_loadb(text, size, JSON_REJECT_DUPLICATES, NULL);
        if (!j)
                return -EBADMSG;
        r = state_from_json(j, s);
        json_decref(j);
        if (r < 0)
                return r;
        s->dirty = false;
        *ret = TAKE_PTR(s);
        return 0;
}

int state_write_text(const char *path, const char *text) {
        _cleanup_free_ char *dir = strdup(path);
        char *slash;
        int r;

        if (!dir)
                return -ENOMEM;
        slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                r = mkdir_p(dir, 0700);
                if (r < 0)
                        return r;
        }
        return write_file_atomic(path, text, strlen(text), 0600);
}

/* Append to the text being built: n bytes at *len, growing the buffer by halves. */
static int text_reserve(char **text, size_t *size, size_t len, size_t n) {
        if (len + n + 1 <= *size)
                return 0;
        size_t want = MAX(len + n + 1, *size + *size / 2);
        char *t = realloc(*text, want);
        if (!t)
                return -ENOMEM;
        *text = t;
        *size = want;
        return 0;
}

/* One entry at a time, one line each: the whole state as one JSON tree and jansson's doubling dump
 * buffer were ~3 MiB at 2,000 entries, freed at once into a heap that kept it. The same document as
 * state_to_json() gives. */
int state_serialize(State *s, bool force, char **ret_text) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0, len = 0;
        int r;

        *ret_text = NULL;
        if (!s->dirty && !force)
                return 0;
        r = text_reserve(&text, &size, 0, 64 + s->n * 256);
        if (r < 0)
                return r;
        len = (size_t) snprintf(text, size, "{\"version\": %d, \"images\": [", STATE_VERSION);
        for (size_t i = 0; i < s->n; i++) {
                _cleanup_(json_decrefp) json_t *o = entry_to_json(&s->entries[i]);
                size_t n;

                if (!o)
                        return -ENOMEM;
                n = json_dumpb(o, NULL, 0, JSON_PRESERVE_ORDER);
                if (n == 0 || text_reserve(&text, &size, len, n + 4) < 0)
                        return -ENOMEM;
                len += (size_t) snprintf(text + len, size - len, "%s\n  ", i > 0 ? "," : "");
                len += json_dumpb(o, text + len, size - len, JSON_PRESERVE_ORDER);
        }
        if (text_reserve(&text, &size, len, 4) < 0)
                return -ENOMEM;
        len += (size_t) snprintf(text + len, size - len, "%s]}\n", s->n > 0 ? "\n" : "");
        s->dirty = false;
        *ret_text = realloc(text, len + 1) ?: text; /* give back the spare */
        text = NULL;
        return 0;
}

int state_save(State *s, bool force) {
        _cleanup_free_ char *text = NULL;
        int r = state_serialize(s, force, &text);
        if (r < 0 || !text)
                return r;
        r = state_write_text(s->path, text);
        if (r < 0)
                s->dirty = true;
        return r;
}

StateEntry *state_find(const State *s, const char *image, const char *runtime) {
        if (s->index_size == 0) { /* none yet, or none after a failed rebuild */
                for (size_t i = 0; i < s->n; i++)
                        if (streq(s->entries[i].image, image) && streq(s->entries[i].runtime, runtime))
                                return &s->entries[i];
                return NULL;
        }
        size_t mask = s->index_size - 1;
        for (size_t k = key_hash(image, runtime) & mask; s->index[k]; k = (k + 1) & mask) {
                StateEntry *e = &s->entries[s->index[k] - 1];
                if (streq(e->image, image) && streq(e->runtime, runtime))
                        return e;
        }
        return NULL;
}

int state_ensure(State *s, const char *image, const char *runtime, StateEntry **ret) {
        StateEntry *e = state_find(s, image, runtime), *n;

        if (!e) {
                n = realloc(s->entries, (s->n + 1) * sizeof(*n));
                if (!n)
                        return -ENOMEM;
                s->entries = n;
                e = &s->entries[s->n];
                *e = (StateEntry) { .image = strdup(image), .runtime = strdup(runtime) };
                if (!e->image || !e->runtime || entry_append_indexed(s) < 0) {
                        entry_done(e);
                        return -ENOMEM;
                }
                s->dirty = true;
        }
        *ret = e;
        return 0;
}

void state_remove(State *s, const char *image, const char *runtime) {
        StateEntry *e = state_find(s, image, runtime);
        if (!e)
                return;
        entry_done(e);
        size_t i = (size_t) (e - s->entries);
        memmove(e, e + 1, (s->n - i - 1) * sizeof(*e));
        s->n--;
        s->dirty = true;
        /* positions after i moved: index again (a list edit, rare); without memory for it, no index
         * (state_find() scans) until the next append rebuilds one */
        if (index_rebuild(s, s->n) < 0) {
                free(s->index);
                s->index = NULL;
                s->index_size = 0;
        }
}

static int replace(char **field, const char *v) {
        char *c = NULL;
        if (streq_ptr(*field, v))
                return 0;
        if (v && !(c = strdup(v)))
                return -ENOMEM;
        free(*field);
        *field = c;
        return 0;
}

int state_record_success(State *s, const char *image, const char *runtime, const char *digest,
                         unsigned attempts, uint64_t when) {
        StateEntry *e;
        int r = state_ensure(s, image, runtime, &e);
        if (r < 0)
                return r;
        if (digest && (r = replace(&e->digest, digest)) < 0)
                return r;
        e->last_success = e->last_attempt = when;
        e->attempts = attempts;
        s->dirty = true;
        return replace(&e->last_error, NULL);
}

int state_record_failure(State *s, const char *image, const char *runtime, const char *error,
                         unsigned attempts, uint64_t when) {
        StateEntry *e;
        int r = state_ensure(s, image, runtime, &e);
        if (r < 0)
                return r;
        e->last_attempt = when;
        e->attempts = attempts;
        s->dirty = true;
        return replace(&e->last_error, error ? error : "failed");
}

int state_record_present(State *s, const char *image, const char *runtime, const char *digest, uint64_t when) {
        StateEntry *e;
        int r = state_ensure(s, image, runtime, &e);
        if (r < 0)
                return r;
        if (digest && !streq_ptr(e->digest, digest)) {
                r = replace(&e->digest, digest);
                s->dirty = true;
        }
        if (e->last_success == 0) {
                /* Found present without our pull: as good as a success for "re-pull nothing present". */
                e->last_success = when;
                s->dirty = true;
        }
        return r;
}
