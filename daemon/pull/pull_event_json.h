/* pull_event_json.h: a PullEvent's JSON form, both ways (the --json lines and the control protocol's
 * pull stream). Owns the encoding only: it prints nothing and sends nothing. */
#pragma once

#include <jansson.h>
#include "daemon/pull/pull_job.h"

/* The --json form of an event; t is seconds since the pull started. Caller decrefs. */
json_t *pull_event_to_json(const PullEvent *e, double t);

/* A --json line back into the event (the daemon's pull stream, read by the CLI). Strings point into
 * o. 0, or -EBADMSG when o names no known event. */
int pull_event_from_json(json_t *o, PullEvent *e);
