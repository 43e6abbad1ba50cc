/* fuzz_docker_stream: dockerd's pull progress stream (POST /images/create) fed in input-chosen chunks;
 * every message mapped with docker_message_parse, every error text classified. Cutting must not
 * matter: the chunked feed delivers the same messages with the same result as one whole feed. */
#include "tests/fuzz/fuzz_util.h"
#include "probes/docker/docker_stream.h"

typedef struct Seen {
        uint64_t n;
        uint64_t hash;          /* of the parsed kinds, phases and numbers, in order */
} Seen;

static int on_message(json_t *msg, void *userdata) {
        Seen *s = userdata;
        DockerMessage m;
        int r = docker_message_parse(msg, &m);

        s->n++;
        s->hash = s->hash * 31 + (uint64_t) (r < 0 ? 99 : m.kind);
        if (r < 0)
                return 0;
        FUZZ_CHECK(m.kind <= DOCKER_MSG_OTHER);
        FUZZ_CHECK(m.phase == _PHASE_INVALID || (m.phase >= 0 && m.phase < _PHASE_MAX));
        s->hash = s->hash * 31 + (uint64_t) m.phase + m.current * 7 + m.total * 13;
        /* borrowed strings must be readable */
        if (m.id)
                s->hash += strlen(m.id);
        if (m.status)
                s->hash += strlen(m.status);
        if (m.digest)
                s->hash += strlen(m.digest);
        if (m.error) {
                ErrorClass c = docker_classify_error(m.error);
                FUZZ_CHECK(c < _ERROR_CLASS_MAX);
                s->hash += strlen(m.error) + c;
        }
        return 0;
}

static int run(const uint8_t *data, size_t size, bool chunked, Seen *seen) {
        DockerStream *ds = NULL;
        FuzzRng rng = fuzz_rng(data, size);
        int r = 0;

        if (docker_stream_new(on_message, seen, &ds) < 0)
                abort();
        for (size_t off = 0; off < size;) {
                size_t c = chunked ? fuzz_chunk(&rng) : size, k = MIN(c, size - off); /* MIN evaluates twice */
                r = docker_stream_feed(ds, (const char *) data + off, k);
                if (r < 0)
                        break;
                off += k;
        }
        if (r >= 0)
                r = docker_stream_finish(ds);
        if (r < 0) {
                FUZZ_CHECK(docker_stream_error(ds) != NULL);
                FUZZ_CHECK(docker_stream_feed(ds, "{}\n", 3) < 0); /* sticky */
        }
        FUZZ_CHECK(docker_stream_messages(ds) <= seen->n);
        docker_stream_free(ds);
        return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        Seen whole = {}, chunks = {};
        int rw = run(data, size, false, &whole);
        int rc = run(data, size, true, &chunks);

        FUZZ_CHECK(rw == rc);
        FUZZ_CHECK(whole.n == chunks.n);
        FUZZ_CHECK(whole.hash == chunks.hash);

        /* error texts arrive on their own too: the HTTP error body's "message" */
        char *s = fuzz_strndup(data, size);
        for (char *line = s, *next; line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                FUZZ_CHECK(docker_classify_error(line) < _ERROR_CLASS_MAX);
        }
        free(s);
        return 0;
}
