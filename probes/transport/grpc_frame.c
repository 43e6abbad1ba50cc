/* grpc_frame.c: gRPC's pure parts: status names, the 5-byte length-prefixed framing both ways, and
 * grpc-message's percent-decoding. No I/O; the calls that use them are in grpc.c. */
#include "probes/transport/grpc.h"

#include <assert.h>
#include <strings.h>

/* Go's codes.Code names: what operators see in containerd's logs and crictl output. */
static const char *const status_names[_GRPC_STATUS_MAX] = {
        [GRPC_OK] = "OK",
        [GRPC_CANCELLED] = "Canceled",
        [GRPC_UNKNOWN] = "Unknown",
        [GRPC_INVALID_ARGUMENT] = "InvalidArgument",
        [GRPC_DEADLINE_EXCEEDED] = "DeadlineExceeded",
        [GRPC_NOT_FOUND] = "NotFound",
        [GRPC_ALREADY_EXISTS] = "AlreadyExists",
        [GRPC_PERMISSION_DENIED] = "PermissionDenied",
        [GRPC_RESOURCE_EXHAUSTED] = "ResourceExhausted",
        [GRPC_FAILED_PRECONDITION] = "FailedPrecondition",
        [GRPC_ABORTED] = "Aborted",
        [GRPC_OUT_OF_RANGE] = "OutOfRange",
        [GRPC_UNIMPLEMENTED] = "Unimplemented",
        [GRPC_INTERNAL] = "Internal",
        [GRPC_UNAVAILABLE] = "Unavailable",
        [GRPC_DATA_LOSS] = "DataLoss",
        [GRPC_UNAUTHENTICATED] = "Unauthenticated",
};

const char *grpc_status_to_string(GrpcStatus s) {
        return s >= 0 && s < _GRPC_STATUS_MAX ? status_names[s] : NULL;
}

GrpcStatus grpc_status_from_string(const char *s) {
        if (!s)
                return _GRPC_STATUS_INVALID;
        for (int i = 0; i < _GRPC_STATUS_MAX; i++)
                if (strcasecmp(status_names[i], s) == 0)
                        return i;
        return _GRPC_STATUS_INVALID;
}

static void frame_header(uint8_t *buf, size_t n) {
        buf[0] = 0;
        buf[1] = (uint8_t) (n >> 24);
        buf[2] = (uint8_t) (n >> 16);
        buf[3] = (uint8_t) (n >> 8);
        buf[4] = (uint8_t) n;
}

int grpc_frame_encode(const ProtobufCMessage *m, uint8_t **ret, size_t *ret_len) {
        _cleanup_free_ uint8_t *buf = NULL;
        size_t n;

        assert(m);
        assert(ret);
        assert(ret_len);
        n = protobuf_c_message_get_packed_size(m);
        if (n > GRPC_MAX_MESSAGE)
                return -EMSGSIZE;
        buf = malloc(5 + n);
        if (!buf)
                return -ENOMEM;
        frame_header(buf, n);
        if (protobuf_c_message_pack(m, buf + 5) != n)
                return -EINVAL;
        *ret = TAKE_PTR(buf);
        *ret_len = 5 + n;
        return 0;
}

int grpc_frame_raw(const uint8_t *data, size_t n, uint8_t **ret, size_t *ret_len) {
        uint8_t *buf;

        assert(data || n == 0);
        assert(ret);
        assert(ret_len);
        if (n > GRPC_MAX_MESSAGE)
                return -EMSGSIZE;
        buf = malloc(5 + n);
        if (!buf)
                return -ENOMEM;
        frame_header(buf, n);
        if (n > 0)
                memcpy(buf + 5, data, n);
        *ret = buf;
        *ret_len = 5 + n;
        return 0;
}

void grpc_decoder_init(GrpcDecoder *d, size_t max_message) {
        *d = (GrpcDecoder) { .max_message = max_message ?: GRPC_MAX_MESSAGE };
}

void grpc_decoder_done(GrpcDecoder *d) {
        free(d->buf);
        d->buf = NULL;
        d->len = d->want = d->header_len = 0;
}

int grpc_decoder_feed(GrpcDecoder *d, const void *data, size_t n, grpc_frame_cb_t cb, void *userdata) {
        const uint8_t *p = data;
        int r;

        if (d->error)
                return d->error;
        while (n > 0) {
                if (d->header_len < 5) {
                        size_t k = MIN(n, 5 - d->header_len);
                        memcpy(d->header + d->header_len, p, k);
                        d->header_len += k;
                        p += k;
                        n -= k;
                        if (d->header_len < 5)
                                break;
                        if (d->header[0] == 1)
                                return (d->error = -EPROTONOSUPPORT);
                        if (d->header[0] != 0)
                                return (d->error = -EBADMSG);
                        d->want = (size_t) d->header[1] << 24 | (size_t) d->header[2] << 16 |
                                  (size_t) d->header[3] << 8 | d->header[4];
                        if (d->want > d->max_message)
                                return (d->error = -EMSGSIZE);
                        d->len = 0;
                        free(d->buf);
                        /* +1 so an empty message still has a non-NULL buffer to hand out */
                        d->buf = malloc(d->want + 1);
                        if (!d->buf)
                                return (d->error = -ENOMEM);
                }
                size_t k = MIN(n, d->want - d->len);
                memcpy(d->buf + d->len, p, k);
                d->len += k;
                p += k;
                n -= k;
                if (d->len < d->want)
                        break;
                r = cb(d->buf, d->len, userdata);
                free(d->buf);
                d->buf = NULL;
                d->header_len = d->len = d->want = 0;
                if (r < 0)
                        return (d->error = r);
        }
        return 0;
}

int grpc_decoder_finish(const GrpcDecoder *d) {
        if (d->error)
                return d->error;
        return d->header_len > 0 ? -EBADMSG : 0;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *grpc_percent_decode(const char *s, size_t n) {
        char *out = malloc(n + 1), *o = out;
        if (!out)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                int hi, lo;
                if (s[i] == '%' && i + 2 < n && (hi = unhex(s[i + 1])) >= 0 && (lo = unhex(s[i + 2])) >= 0) {
                        *o++ = (char) (hi << 4 | lo);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return out;
}
