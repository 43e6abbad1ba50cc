#!/usr/bin/env python3
"""tlsfront.py: a TLS-terminating TCP forwarder, the load balancer of report 000 with a private CA.

Listens on --listen HOST:PORT (port 0 = any; the chosen one goes to --port-file as "HOST:PORT"),
terminates TLS with --cert/--key and relays each connection's bytes to --upstream HOST:PORT, both
ways, until either side closes: in plain TCP, or with --upstream-ca FILE over a new TLS connection
verified against that CA (a re-encrypting load balancer, for an upstream that itself speaks TLS).
A thread per connection, relaying both ways; stdlib only."""
import argparse, select, socket, ssl, threading


def relay(a, b):
    """Both directions in one thread: an SSL object must not be read and written from two threads
    at once (measured: with a TLS upstream, two pipe threads hung a GET's body)."""
    peer = {a: b, b: a}
    try:
        while True:
            # bytes OpenSSL already decrypted are not visible to select()
            ready = [s for s in (a, b) if isinstance(s, ssl.SSLSocket) and s.pending()]
            if not ready:
                ready, _, _ = select.select([a, b], [], [])
            for s in ready:
                s.setblocking(False)
                try:
                    data = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue  # a partial TLS record, or a handshake message: no data yet
                finally:
                    s.setblocking(True)
                if not data:
                    return
                peer[s].sendall(data)
    except OSError:
        pass  # a reset on either side ends both, as a load balancer's cut does
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


def serve(conn, ctx, upstream, up_ctx):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()  # a client that refused our certificate: what the test wants to see
        return
    try:
        up = socket.create_connection(upstream)
        if up_ctx is not None:
            up = up_ctx.wrap_socket(up, server_hostname=upstream[0])
    except (ssl.SSLError, OSError):
        tls.close()
        return
    relay(tls, up)
    tls.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--upstream-ca", help="speak TLS to the upstream, trusting this CA")
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    up_ctx = None
    if a.upstream_ca:
        up_ctx = ssl.create_default_context(cafile=a.upstream_ca)
    host, port = a.listen.rsplit(":", 1)
    uh, up = a.upstream.rsplit(":", 1)
    srv = socket.create_server((host, int(port)), reuse_port=False)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%s:%d\n" % (host, srv.getsockname()[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c, ctx, (uh, int(up)), up_ctx), daemon=True).start()


if __name__ == "__main__":
    main()
