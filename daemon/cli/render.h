/* render.h: how pull events look to a person or a program: one JSON object per line (--json), a
 * per-layer table redrawn in place on a terminal, or plain lines on a pipe. Owns formatting only. */
#pragma once

#include <stdio.h>
#include <jansson.h>
#include "daemon/pull/pull_event_json.h"

typedef struct TtyView TtyView;
int tty_view_new(FILE *out, bool interactive, TtyView **ret);
TtyView *tty_view_free(TtyView *v);
void tty_view_event(TtyView *v, const PullEvent *e, usec_t now);
