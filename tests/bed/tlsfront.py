#!/usr/bin/env python3
"""tlsfront.py: a TLS-terminating TCP forwarder, the load balancer of report 000 with a private CA.

Listens on --listen HOST:PORT (port 0 = any; the chosen one goes to --port-file as "HOST:PORT"),
terminates TLS with --cert/--key and relays each connection's bytes to --upstream HOST:PORT, both
ways, until either side closes: in plain TCP, or with --upstream-ca FILE over a new TLS connection
verified against that CA (a re-encrypting load balancer, for an upstream that itself speaks TLS).
A thread per connection, relaying both ways; stdlib only."""
import argparse, select, socket, ssl, struct, threading


class UpstreamTLS:
    """TLS to the upstream over a plain socket and memory BIOs: the socket's own reads tell a reset
    (ECONNRESET) from a close, which Python's SSLSocket reports alike (an EOF)."""

    def __init__(self, sock, ctx, hostname):
        self.sock = sock
        self.inc, self.out = ssl.MemoryBIO(), ssl.MemoryBIO()
        self.obj = ctx.wrap_bio(self.inc, self.out, server_hostname=hostname)
        self.starved = False
        while True:
            try:
                self.obj.do_handshake()
                break
            except ssl.SSLWantReadError:
                self._flush()
                if not self._fill():
                    raise ConnectionResetError("upstream closed during the handshake")
        self._flush()

    def fileno(self):
        return self.sock.fileno()

    def _flush(self):
        data = self.out.read()
        if data:
            self.sock.sendall(data)

    def _fill(self):
        data = self.sock.recv(65536)  # raises ConnectionResetError on a reset
        if not data:
            self.inc.write_eof()
            return False
        self.inc.write(data)
        return True

    def pending(self):
        # decrypted bytes, or whole records read from the socket but not yet decrypted
        return self.obj.pending() > 0 or (self.inc.pending > 0 and not self.starved)

    def recv(self, n):
        """Decrypted bytes; b"" once the upstream closed; BlockingIOError when no whole record is
        there yet. Reads the socket only when select() says it has bytes (never blocks)."""
        while True:
            try:
                data = self.obj.read(n)
                self.starved = False
                self._flush()  # a TLS 1.3 key update may want an answer
                return data
            except ssl.SSLWantReadError:
                self.starved = True
            except (ssl.SSLZeroReturnError, ssl.SSLEOFError):
                return b""
            if not select.select([self.sock], [], [], 0)[0]:
                raise BlockingIOError
            if not self._fill():
                return b""
            self.starved = False

    def sendall(self, data):
        self.obj.write(data)
        self._flush()

    def setblocking(self, flag):
        pass  # reads go to the socket only after select() said it is readable

    def shutdown(self, how):
        self.sock.shutdown(how)

    def setsockopt(self, *args):
        self.sock.setsockopt(*args)

    def close(self):
        self.sock.close()


def relay(a, b):
    """Both directions in one thread: an SSL object must not be read and written from two threads
    at once (measured: with a TLS upstream, two pipe threads hung a GET's body)."""
    peer = {a: b, b: a}
    reset = None
    try:
        while True:
            # bytes OpenSSL already decrypted are not visible to select()
            ready = [s for s in (a, b) if hasattr(s, "pending") and s.pending()]
            if not ready:
                ready, _, _ = select.select([a, b], [], [])
            for s in ready:
                s.setblocking(False)
                try:
                    data = s.recv(65536)
                except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                    continue  # a partial TLS record, or a handshake message: no data yet
                except ConnectionResetError:
                    reset = s
                    raise
                finally:
                    s.setblocking(True)
                if not data:
                    return
                try:
                    peer[s].sendall(data)
                except ConnectionResetError:
                    reset = peer[s]
                    raise
    except ConnectionResetError:
        # a reset on one side is passed on as a reset (SO_LINGER 0), as the fault proxy's cut reaches
        # a client without this front: a runtime tells a reset from a clean close (containerd's
        # client resumes after an unexpected EOF by itself, but fails the pull on a reset)
        if reset is not None:
            try:
                peer[reset].setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            except OSError:
                pass
    except OSError:
        pass
    finally:
        for s in (a, b):
            if reset is not None and s is peer[reset]:
                continue  # no FIN before the close's RST
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
            up = UpstreamTLS(up, up_ctx, upstream[0])
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
