/* docker_pace.h: when dockerd's pull progress stream is read. dockerd writes a message per layer up to
 * ten times a second; reading each on its own wakeup cost more CPU than the rest of a pull. The transfer
 * is paused for a short while after a read, so one wakeup takes what came meanwhile, except near the
 * pull's end (its last layer extracting, the digest or an error seen), where a pause would delay the
 * result. Owns the pause and its timer only: it neither parses nor decides anything about the pull. */
#pragma once

#include <curl/curl.h>
#include <systemd/sd-event.h>
#include "basic/phase.h"

/* The longest a message waits unread: well under any sample interval, so no verdict sees it late. */
#define DOCKER_PACE_USEC (200 * 1000ULL)

typedef struct DockerPace DockerPace;

/* Called when resuming the transfer failed (a message delivered at the resume was refused): the
 * transfer is stopped and the owner must end it. */
typedef void (*docker_pace_failed_t)(void *userdata, CURLcode code);

int docker_pace_new(sd_event *event, CURL *easy, docker_pace_failed_t failed, void *userdata, DockerPace **ret);
/* Stops the timer; the transfer is left as it is (its owner removes it). */
DockerPace *docker_pace_free(DockerPace *p);

/* What the stream said: a layer's phase, or that the end is near (the digest, an error). */
int docker_pace_layer(DockerPace *p, const char *id, Phase phase);
void docker_pace_end_near(DockerPace *p);
/* From the transfer's write callback, after the data was taken: pause reading if worth it. */
void docker_pace_after_write(DockerPace *p);
/* How many times reading was paused (tests). */
unsigned docker_pace_pauses(const DockerPace *p);
