#!/usr/bin/env python3
"""unixfwd.py: a unix-socket forwarder (LISTEN -> UPSTREAM), one thread pair per connection.

In front of dockerd it is what a node's socket looks like when the process serving it is not the
runtime (a proxy, an authorization plugin's shim): neither the listener nor the peer is dockerd.

    unixfwd.py LISTEN_PATH UPSTREAM_PATH [--most FILE]

--most FILE: the most connections it held open at once, rewritten (by rename) each time it grows: how
many requests a client keeps in flight (preheat_load.bats: the daemon's to dockerd).
"""
import os
import socket
import sys
import threading


def pump(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class Count:
    """Connections open now, and the most at once, written to a file when it grows."""

    def __init__(self, path):
        self.path, self.now, self.most, self.lock = path, 0, 0, threading.Lock()
        self.write()

    def write(self):
        if self.path:
            with open(self.path + ".tmp", "w") as f:
                f.write("%d\n" % self.most)
            os.replace(self.path + ".tmp", self.path)

    def add(self, d):
        with self.lock:
            self.now += d
            if self.now > self.most:
                self.most = self.now
                self.write()


def serve(c, u, count):
    """Both directions, then the connection counted closed."""
    t = threading.Thread(target=pump, args=(u, c), daemon=True)
    t.start()
    pump(c, u)
    t.join()
    c.close()
    u.close()
    count.add(-1)


def main():
    listen, upstream = sys.argv[1], sys.argv[2]
    count = Count(sys.argv[4] if len(sys.argv) > 4 and sys.argv[3] == "--most" else None)
    try:
        os.unlink(listen)
    except FileNotFoundError:
        pass
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    srv.listen(64)
    while True:
        c, _ = srv.accept()
        u = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            u.connect(upstream)
        except OSError:
            c.close()
            continue
        count.add(1)
        threading.Thread(target=serve, args=(c, u, count), daemon=True).start()


if __name__ == "__main__":
    main()
