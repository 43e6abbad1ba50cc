#!/usr/bin/env python3
"""wait_ready.py SOCKET PATTERN [TIMEOUT [PID]]: ask a pullwatch daemon's control socket for its status
every 100 ms, from one process, until the status summary contains PATTERN (e.g. "10/10 ready"); exit 0
then, 1 at TIMEOUT seconds (default 600) or as soon as PID is gone. The bench's clock for a preheat: a
`pullwatch status` process per poll cost a dynamic load of some 40 libraries each time, CPU taken from
the runtime being measured; the daemon answers the same status requests either way."""
import json
import os
import socket
import sys
import time

def summary(path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(b'{"cmd":"status"}\n')
        buf = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            buf += chunk
            line, sep, _ = buf.partition(b"\n")
            if sep:
                return json.loads(line).get("summary", "")
    return json.loads(buf).get("summary", "") if buf else ""

def main():
    path, pattern = sys.argv[1], sys.argv[2]
    deadline = time.monotonic() + float(sys.argv[3] if len(sys.argv) > 3 else 600)
    pid = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    while time.monotonic() < deadline:
        if pid:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return 1
        try:
            if pattern in summary(path):
                return 0
        except (OSError, ValueError):
            pass  # not listening yet, or restarting
        time.sleep(0.1)
    return 1

if __name__ == "__main__":
    sys.exit(main())
