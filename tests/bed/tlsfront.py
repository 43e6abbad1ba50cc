#!/usr/bin/env python3
"""tlsfront.py: a TLS-terminating TCP forwarder, the load balancer of report 000 with a private CA.

Listens on --listen HOST:PORT (port 0 = any; the chosen one goes to --port-file as "HOST:PORT"),
terminates TLS with --cert/--key and relays each connection's bytes to --upstream HOST:PORT in
plain TCP, both ways, until either side closes. A thread per connection; stdlib only."""
import argparse, socket, ssl, threading


def pipe(src, dst):
    try:
        while True:
            b = src.recv(65536)
            if not b:
                break
            dst.sendall(b)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def serve(conn, ctx, upstream):
    try:
        tls = ctx.wrap_socket(conn, server_side=True)
    except (ssl.SSLError, OSError):
        conn.close()  # a client that refused our certificate: what the test wants to see
        return
    try:
        up = socket.create_connection(upstream)
    except OSError:
        tls.close()
        return
    t = threading.Thread(target=pipe, args=(up, tls), daemon=True)
    t.start()
    pipe(tls, up)
    t.join()
    tls.close()
    up.close()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--port-file", required=True)
    a = ap.parse_args()
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(a.cert, a.key)
    host, port = a.listen.rsplit(":", 1)
    uh, up = a.upstream.rsplit(":", 1)
    srv = socket.create_server((host, int(port)), reuse_port=False)
    with open(a.port_file + ".tmp", "w") as f:
        f.write("%s:%d\n" % (host, srv.getsockname()[1]))
    import os
    os.rename(a.port_file + ".tmp", a.port_file)
    while True:
        c, _ = srv.accept()
        threading.Thread(target=serve, args=(c, ctx, (uh, int(up))), daemon=True).start()


if __name__ == "__main__":
    main()
