#!/usr/bin/env python3
"""tcpfwd.py: a TCP forwarder (LISTEN_HOST:0 -> UPSTREAM_HOST:PORT); prints the port it listens on.

On the node's own non-loopback address it puts the bed's registry where a runtime treats it as any
remote registry: dockerd and containerd fall back to plain http only for 127.0.0.0/8 and localhost.

    tcpfwd.py LISTEN_HOST UPSTREAM_HOST:PORT
"""
import os
import socket
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from unixfwd import pump  # noqa: E402  (one pump for both forwarders)


def main():
    host = sys.argv[1]
    up_host, up_port = sys.argv[2].rsplit(":", 1)
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    srv.bind((host, 0))
    srv.listen(64)
    print(srv.getsockname()[1], flush=True)
    while True:
        c, _ = srv.accept()
        try:
            u = socket.create_connection((up_host, int(up_port)))
        except OSError:
            c.close()
            continue
        threading.Thread(target=pump, args=(c, u), daemon=True).start()
        threading.Thread(target=pump, args=(u, c), daemon=True).start()


if __name__ == "__main__":
    main()
