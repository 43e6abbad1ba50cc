/* fuzz_grpc_server: bytes from a client of pullwatch's gRPC server (the CRI image-service endpoint),
 * split at input-chosen points and fed to one connection: HTTP/2 frames, headers, gRPC message framing.
 * The handler answers every call at once, alternately OK and an error, or holds it to be cancelled
 * when the connection goes. Nothing may crash or leak, and a broken peer ends only its connection. */
#include "tests/fuzz/fuzz_util.h"
#include "basic/macro.h"
#include "probes/transport/grpc_server.h"

#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

typedef struct Seen {
        unsigned calls, cancelled;
        GrpcServerCall *held;
} Seen;

static void on_call(GrpcServerCall *call, const char *path, const uint8_t *msg, size_t len, void *userdata) {
        Seen *s = userdata;
        FUZZ_CHECK(path);
        FUZZ_CHECK(msg || len == 0);
        switch (s->calls++ % 3) {
        case 0:
                (void) grpc_server_call_reply(call, msg, len);
                break;
        case 1:
                (void) grpc_server_call_fail(call, GRPC_UNIMPLEMENTED, path);
                break;
        default:
                if (!s->held)
                        s->held = call; /* answered never: cancelled when the connection goes */
                else
                        (void) grpc_server_call_fail(call, GRPC_NOT_FOUND, "held already");
        }
}

static void on_cancelled(GrpcServerCall *call, void *userdata) {
        Seen *s = userdata;
        s->cancelled++;
        if (s->held == call)
                s->held = NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        sd_event *e = NULL;
        GrpcServer *server = NULL;
        GrpcServerConn *conn = NULL;
        Seen seen = {};
        int sp[2], lfd;
        FuzzRng rng = fuzz_rng(data, size);

        signal(SIGPIPE, SIG_IGN);
        if (sd_event_new(&e) < 0 || socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sp) < 0)
                abort();
        lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0); /* never listened on: adopt only */
        if (lfd < 0 || grpc_server_new(e, lfd, 4096, &(GrpcServerHandlers) { on_call, on_cancelled }, &seen, &server) < 0)
                abort();
        FUZZ_CHECK(grpc_server_adopt(server, sp[0], &conn) == 0);
        for (size_t off = 0; off < size;) {
                size_t chunk = fuzz_chunk(&rng), n = MIN(chunk, size - off); /* MIN evaluates twice */
                /* drain what the server wrote so its socket never fills */
                char sink[65536];
                while (read(sp[1], sink, sizeof(sink)) > 0)
                        ;
                if (grpc_server_conn_feed(conn, data + off, n) < 0) {
                        conn = NULL;
                        break;
                }
                off += n;
        }
        GrpcServerStats st;
        grpc_server_stats(server, &st);
        FUZZ_CHECK(st.open_calls <= st.calls);
        grpc_server_free(server); /* cancels what is held */
        FUZZ_CHECK(!seen.held);
        close(sp[1]);
        sd_event_unref(e);
        return 0;
}
