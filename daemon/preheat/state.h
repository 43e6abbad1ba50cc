/* state.h: what the daemon remembers across restarts (state.json in state_dir): per preheated image
 * and runtime the last success, digest, attempts and last error. Owns the file format and its atomic
 * write; it never logs and never decides what to pull. */
#pragma once

#include <jansson.h>
#include "basic/timestamp.h"

#define STATE_FILE_NAME "state.json"
#define STATE_FILE_MAX (16U * 1024U * 1024U)

typedef struct StateEntry {
        char *image;              /* normalized reference */
        char *runtime;            /* "docker", "containerd" */
        char *digest;             /* last pulled or confirmed digest; NULL when unknown */
        uint64_t last_success;    /* CLOCK_REALTIME usec; 0 = never */
        uint64_t last_attempt;    /* CLOCK_REALTIME usec the last pull ended; 0 = never */
        unsigned attempts;        /* attempts the last pull took */
        char *last_error;         /* NULL when the last pull succeeded */
} StateEntry;

typedef struct State {
        char *path;               /* the state.json it loads from and saves to */
        StateEntry *entries;
        size_t n;
        bool dirty;               /* changed since loaded or saved */
        /* (image, runtime) -> entries[] position + 1 (0 = empty slot), open addressing: state_find() is
         * called per target by status and per pull; a scan was O(entries) each (2,000 at a time). */
        size_t *index;
        size_t index_size;        /* a power of two, at least twice n; 0 = none yet */
} State;

/* An empty state bound to path (<dir>/state.json). */
int state_new(const char *dir, State **ret);
/* Load <dir>/state.json: a missing file is an empty state. -EBADMSG when the file is not a state
 * file (bad JSON, wrong shape, wrong version); entries with bad fields are dropped. */
int state_load(const char *dir, State **ret);
/* Write atomically when dirty (or always with force). Creates dir (0700) when missing. */
int state_save(State *s, bool force);
/* The file's text when dirty (or always with force), and the state counts as saved: *ret_text NULL when
 * there is nothing to write. A caller that then fails to write it calls state_mark_dirty(). For a
 * write elsewhere (state_writer.c: off the event loop). */
int state_serialize(State *s, bool force, char **ret_text);
static inline void state_mark_dirty(State *s) { s->dirty = true; }
/* Write text to path atomically (temp, fsync, rename, fsync the directory), creating the directory
 * (0700) when missing. Touches no State: safe on another thread. */
int state_write_text(const char *path, const char *text);
/* Point an existing state at another directory (config reload); marks it dirty. */
int state_set_dir(State *s, const char *dir);

State *state_free(State *s);
static inline void state_freep(State **s) { state_free(*s); }
#define _cleanup_state_ _cleanup_(state_freep)

StateEntry *state_find(const State *s, const char *image, const char *runtime);
/* Find or add. */
int state_ensure(State *s, const char *image, const char *runtime, StateEntry **ret);
void state_remove(State *s, const char *image, const char *runtime);

int state_record_success(State *s, const char *image, const char *runtime, const char *digest,
                         unsigned attempts, uint64_t when);
int state_record_failure(State *s, const char *image, const char *runtime, const char *error,
                         unsigned attempts, uint64_t when);
/* A confirmation (present, maybe with its digest) without a pull. */
int state_record_present(State *s, const char *image, const char *runtime, const char *digest, uint64_t when);

/* The file's JSON and back (exported for tests). */
json_t *state_to_json(const State *s);
int state_from_json(const json_t *j, State *s);
