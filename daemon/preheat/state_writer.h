/* state_writer.h: writes state.json's text on a worker thread, so the write and its two fsyncs never
 * hold the event loop (a busy disk made them take seconds there). Owns the thread and at most one text
 * waiting; it never builds the text (state.c does) and never decides when to save (agent_report.c). */
#pragma once

#include <stdbool.h>
#include <systemd/sd-event.h>

typedef struct StateWriter StateWriter;

/* On the loop, after each write the worker finished: r 0 or a negative errno, and the path written. */
typedef void (*StateWriterDone)(int r, const char *path, void *userdata);

int state_writer_new(sd_event *event, StateWriterDone done, void *userdata, StateWriter **ret);
/* Queue text for path (both taken; freed by the writer). One write runs at a time; a text still
 * waiting for its turn is replaced by a newer one (it is the older state). Without a thread (none
 * could be started) it is written here, at once. Returns the result of that write, else 0. */
int state_writer_submit(StateWriter *w, char *path, char *text);
/* Wait for the write in flight, then write what waits, on the caller's thread: at stop, so the file is
 * on disk before the process exits. Returns the last write's result. */
int state_writer_sync(StateWriter *w);
/* A write is in flight or waiting. */
bool state_writer_busy(StateWriter *w);
/* Syncs first. */
StateWriter *state_writer_free(StateWriter *w);
static inline void state_writer_freep(StateWriter **w) { state_writer_free(*w); }
