/* docker_stream.c: incremental cutting of dockerd's JSON message stream and mapping of its statuses
 * (moby distribution/xfer progress strings) onto pullwatch's phases. */
#include "probes/docker/docker_stream.h"

#include <assert.h>
#include <stdio.h>
#include <strings.h>

struct DockerStream {
        docker_stream_message_t cb;
        void *userdata;
        char *buf;
        size_t len, alloc;
        bool discarding;        /* after an error nothing more is delivered */
        uint64_t messages;
        char error[256];
};

int docker_stream_new(docker_stream_message_t cb, void *userdata, DockerStream **ret) {
        _cleanup_free_ DockerStream *s = NULL;

        assert(cb);
        assert(ret);
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->cb = cb;
        s->userdata = userdata;
        *ret = TAKE_PTR(s);
        return 0;
}

DockerStream *docker_stream_free(DockerStream *s) {
        if (!s)
                return NULL;
        free(s->buf);
        free(s);
        return NULL;
}

const char *docker_stream_error(const DockerStream *s) { return s->error[0] ? s->error : NULL; }
uint64_t docker_stream_messages(const DockerStream *s) { return s->messages; }

static int stream_fail(DockerStream *s, int r, const char *what) {
        snprintf(s->error, sizeof(s->error), "message %llu from dockerd %s",
                 (unsigned long long) s->messages + 1, what);
        s->discarding = true;
        return r;
}

static int deliver(DockerStream *s, const char *line, size_t n) {
        json_error_t jerr;
        json_t *msg;
        int r;

        while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
                n--;
        while (n > 0 && (*line == ' ' || *line == '\t' || *line == '\r')) {
                line++;
                n--;
        }
        if (n == 0)
                return 0;
        msg = json_loadb(line, n, JSON_REJECT_DUPLICATES, &jerr);
        if (!msg || !json_is_object(msg)) {
                char what[200];
                snprintf(what, sizeof(what), "is not a JSON object (%s)", msg ? "not an object" : jerr.text);
                json_decref(msg);
                return stream_fail(s, -EBADMSG, what);
        }
        r = s->cb(msg, s->userdata);
        s->messages++;
        json_decref(msg);
        return r;
}

int docker_stream_feed(DockerStream *s, const char *data, size_t len) {
        if (s->discarding)
                return -EBADMSG;
        while (len > 0) {
                const char *nl = memchr(data, '\n', len);
                size_t take = nl ? (size_t) (nl - data) : len;
                int r;

                if (s->len + take > DOCKER_STREAM_MAX_MESSAGE)
                        return stream_fail(s, -EMSGSIZE, "is larger than 1 MiB");
                if (nl && s->len == 0) {
                        /* Common case: a whole message inside this read, no copy. */
                        r = deliver(s, data, take);
                } else {
                        if (s->len + take + 1 > s->alloc) {
                                size_t a = MAX(s->alloc * 2, s->len + take + 1);
                                a = MAX(a, (size_t) 4096);
                                char *b = realloc(s->buf, a);
                                if (!b)
                                        return -ENOMEM;
                                s->buf = b;
                                s->alloc = a;
                        }
                        memcpy(s->buf + s->len, data, take);
                        s->len += take;
                        r = 0;
                        if (nl) {
                                r = deliver(s, s->buf, s->len);
                                s->len = 0;
                        }
                }
                if (r < 0)
                        return r;
                if (!nl)
                        break;
                data = nl + 1;
                len -= take + 1;
        }
        return 0;
}

int docker_stream_finish(DockerStream *s) {
        int r;
        if (s->discarding)
                return -EBADMSG;
        if (s->len == 0)
                return 0;
        r = deliver(s, s->buf, s->len);
        s->len = 0;
        return r;
}

static uint64_t detail_number(json_t *detail, const char *key) {
        json_t *v = json_object_get(detail, key);
        if (json_is_integer(v) && json_integer_value(v) > 0)
                return (uint64_t) json_integer_value(v);
        return 0;
}

int docker_message_parse(json_t *msg, DockerMessage *ret) {
        DockerMessage m = { .kind = DOCKER_MSG_OTHER, .phase = _PHASE_INVALID };
        json_t *detail;

        if (!json_is_object(msg))
                return -EBADMSG;
        m.id = json_string_value(json_object_get(msg, "id"));
        m.status = json_string_value(json_object_get(msg, "status"));
        m.error = json_string_value(json_object_get(msg, "error"));
        if (!m.error)
                m.error = json_string_value(json_object_get(json_object_get(msg, "errorDetail"), "message"));
        if (m.error) {
                m.kind = DOCKER_MSG_ERROR;
                *ret = m;
                return 0;
        }
        if (!m.status) {
                /* A message with neither status nor error is none of dockerd's. */
                if (json_object_size(msg) == 0 || !json_object_get(msg, "progressDetail"))
                        return -EBADMSG;
                *ret = m;
                return 0;
        }
        detail = json_object_get(msg, "progressDetail");
        /* On the containerd image store dockerd counts extraction in seconds ("units": "s"): a
         * clock ticking is no evidence of bytes moving, so only byte counters are kept. */
        m.units = json_string_value(json_object_get(detail, "units"));
        if (!m.units || streq(m.units, "B") || streq(m.units, "bytes")) {
                m.current = detail_number(detail, "current");
                m.total = detail_number(detail, "total");
        }

        static const struct {
                const char *status;
                Phase phase;
        } layer_statuses[] = {
                /* In a download slot, request sent, no byte yet: a network phase already. */
                { "Pulling fs layer", PHASE_DOWNLOADING },
                { "Waiting", PHASE_WAITING },
                { "Downloading", PHASE_DOWNLOADING },
                { "Verifying Checksum", PHASE_VERIFYING },
                /* Downloaded; dockerd extracts in layer order, so it waits for its parent. */
                { "Download complete", PHASE_WAITING },
                { "Extracting", PHASE_EXTRACTING },
                { "Pull complete", PHASE_DONE },
                { "Already exists", PHASE_DONE },
        };

        if (startswith(m.status, "Pulling from ") || startswith(m.status, "Status: ") ||
            startswith(m.status, "Pulling repository")) {
                m.kind = DOCKER_MSG_IMAGE;
                m.id = NULL; /* "Pulling from" carries the tag as id, not a layer */
        } else if (startswith(m.status, "Digest: ")) {
                m.kind = DOCKER_MSG_IMAGE;
                m.digest = m.status + strlen("Digest: ");
                m.id = NULL;
        } else if (startswith(m.status, "Retrying in ")) {
                m.kind = m.id ? DOCKER_MSG_RETRY : DOCKER_MSG_OTHER;
        } else if (m.id) {
                for (size_t i = 0; i < ELEMENTSOF(layer_statuses); i++)
                        if (streq(m.status, layer_statuses[i].status)) {
                                m.kind = DOCKER_MSG_LAYER;
                                m.phase = layer_statuses[i].phase;
                                break;
                        }
        }
        *ret = m;
        return 0;
}

ErrorClass docker_classify_error(const char *message) {
        /* Retrying cannot help these: the registry said no, or the reference is wrong. */
        static const char *const permanent[] = {
                "manifest unknown",
                "not found",
                "repository does not exist",
                "pull access denied",
                "unauthorized",
                "authentication required",
                "denied",
                "no matching manifest for",
                "invalid reference format",
                "invalid reference",
                "does not match the specified platform",
                "image operating system",
                "unsupported media type",
                "schema 1 manifest not supported",
                "not implemented: media type",
                "x509: ", /* the registry's certificate is not trusted: fixed by trust, not time */
                /* a plain-http registry spoken to with HTTPS: wrong until its scheme changes */
                "server gave http response to https client",
                "does not look like a tls handshake",
                "tls: failed to verify certificate",
        };
        if (!message)
                return ERROR_TRANSIENT;
        for (size_t i = 0; i < ELEMENTSOF(permanent); i++)
                if (strcasestr(message, permanent[i]))
                        return ERROR_PERMANENT;
        return ERROR_TRANSIENT;
}
