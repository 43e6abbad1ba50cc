/* docker_stream.h: the Engine API's pull progress stream: "\r\n"-separated JSON messages cut into
 * whole messages whatever the read boundaries, and each message mapped to a layer phase or error.
 * Pure parsing: no I/O, no logging, no decisions about retries beyond naming an error's class. */
#pragma once

#include <jansson.h>
#include "basic/phase.h"
#include "probes/runtime/runtime.h"

#define DOCKER_STREAM_MAX_MESSAGE (1024 * 1024)

typedef struct DockerStream DockerStream;

/* Called with each whole message, parsed. Return <0 to stop feeding (passed back from feed). */
typedef int (*docker_stream_message_t)(json_t *msg, void *userdata);

int docker_stream_new(docker_stream_message_t cb, void *userdata, DockerStream **ret);
DockerStream *docker_stream_free(DockerStream *s);

/* Feed bytes as they arrive. -EMSGSIZE for a message over the cap, -EBADMSG for one that is not a
 * JSON object; docker_stream_error() then says which and where. A callback's error is returned. */
int docker_stream_feed(DockerStream *s, const char *data, size_t len);
/* End of stream: a trailing message without newline is still delivered; a torn one is -EBADMSG. */
int docker_stream_finish(DockerStream *s);
const char *docker_stream_error(const DockerStream *s);
uint64_t docker_stream_messages(const DockerStream *s);

typedef enum DockerMessageKind {
        DOCKER_MSG_LAYER,       /* a layer's status: phase, bytes */
        DOCKER_MSG_RETRY,       /* dockerd retrying a layer itself */
        DOCKER_MSG_IMAGE,       /* image-level: "Pulling from", "Digest:", "Status:" */
        DOCKER_MSG_ERROR,       /* error / errorDetail: the pull failed */
        DOCKER_MSG_OTHER,
} DockerMessageKind;

typedef struct DockerMessage {
        DockerMessageKind kind;
        const char *id;         /* layer short id (borrowed from the json) */
        const char *status;     /* raw status text */
        Phase phase;
        uint64_t current, total;  /* bytes; 0 when the counter is not bytes (see units) */
        const char *units;      /* progressDetail.units when given: "s" is a seconds counter */
        const char *digest;     /* "Digest: sha256:..." */
        const char *error;      /* error text */
} DockerMessage;

/* Map one parsed message. Strings are borrowed from msg. -EBADMSG when it is none of dockerd's. */
int docker_message_parse(json_t *msg, DockerMessage *ret);

/* Name the class of an error dockerd reported, in the stream or as an HTTP error body. */
ErrorClass docker_classify_error(const char *message);
