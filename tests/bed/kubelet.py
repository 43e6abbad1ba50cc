#!/usr/bin/env python3
"""kubelet.py: a kubelet-shaped CRI image client for the bed.

Pulls IMAGE... the way kubelet does when pods need them:

  - CRI runtime.v1.ImageService/PullImage with NO deadline on the call (kubelet sets none);
  - one pull at a time (serializeImagePulls: true), or N at once with --parallel N
    (maxParallelImagePulls); one image is never pulled by two calls at once;
  - kubelet's image back-off between failed calls of the same image: 10 s after the first failure,
    doubled after each further one, at most 300 s (--backoff-initial / --backoff-max), counted from
    the end of the failed call;
  - credentials from --username/--password go into the request's AuthConfig (field 2), as kubelet
    passes what its keyring found.

Output, one JSON object per line on stdout, flushed as it happens (times are epoch seconds):

  {"event": "start", "call": 1, "image": "...", "start": T}                  a call begins
  {"event": "call", "call": 1, "image": "...", "start": T, "end": T, "duration": S,
   "outcome": "ok|error|transport|open", "grpc_status": 0, "grpc_message": "", "image_ref": "sha256:..."}
  {"event": "summary", "ok": true, "reason": "done|give-up|signal", "calls": N, "open": N,
   "start": T, "end": T, "images": {"IMAGE": {"calls": n, "failures": n, "open": n, "ok": true, "image_ref": "..."}}}

`outcome`: ok (grpc-status 0), error (another grpc-status; the message is the runtime's),
transport (no grpc-status at all: the connection failed or broke), open (the call was still in
flight when the client stopped: `end` is when it stopped, `grpc_status` null).

It stops by itself: when every image is pulled, after --give-up-after SECONDS (in-flight calls are
abandoned by closing their stream and reported as open), after --calls N answered calls (a test that
wants one failed call's answer, where kubelet would call again after its back-off), or on
SIGTERM/SIGINT (the same). Exit 0
when every image was pulled, 1 otherwise, 2 on usage errors.

The gRPC/protobuf encoding is tests/bed/cri.py's; curl (--http2-prior-knowledge over the unix
socket) carries each call, one curl per call, without --max-time.
"""
import argparse
import os
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.parse
import json

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import cri  # noqa: E402  (the bed's encoder: varint, field_bytes, decode)


class Client:
    def __init__(self, a):
        self.a = a
        self.lock = threading.Condition()
        self.out_lock = threading.Lock()
        self.stop = False
        self.stop_reason = None
        self.calls = 0
        self.t0 = time.time()
        self.images = {img: {"calls": 0, "failures": 0, "open": 0, "ok": False, "image_ref": None,
                             "next": 0.0, "backoff": 0.0, "busy": False}
                       for img in a.images}
        self.order = list(a.images)
        self.inflight = {}  # call number -> (Popen, image, start)
        self.n_open = 0
        self.answered = 0

    def emit(self, obj):
        with self.out_lock:
            sys.stdout.write(json.dumps(obj) + "\n")
            sys.stdout.flush()

    # ------------------------------------------------------------ scheduling
    def pending(self):
        return [i for i in self.order if not self.images[i]["ok"]]

    def take(self):
        """Next image to pull (not done, not busy, back-off over), or None when nothing is left."""
        with self.lock:
            while not self.stop:
                left = self.pending()
                if not left:
                    return None
                now = time.time()
                ready = [i for i in left if not self.images[i]["busy"] and self.images[i]["next"] <= now]
                if ready:
                    img = ready[0]
                    # kubelet's pods sync in turn: the next image's turn comes after this one
                    self.order.remove(img)
                    self.order.append(img)
                    self.images[img]["busy"] = True
                    self.calls += 1
                    return img, self.calls
                waits = [self.images[i]["next"] - now for i in left if not self.images[i]["busy"]]
                self.lock.wait(timeout=min(waits) if waits else None)
            return None

    def finish(self, img, ok, image_ref):
        with self.lock:
            st = self.images[img]
            st["busy"] = False
            st["calls"] += 1
            if ok:
                st["ok"] = True
                st["image_ref"] = image_ref
            else:
                st["failures"] += 1
                # kubelet's flowcontrol.Backoff: initial, then doubled, capped; from the failure
                st["backoff"] = self.a.backoff_initial if st["backoff"] == 0 else \
                    min(st["backoff"] * 2, self.a.backoff_max)
                st["next"] = time.time() + st["backoff"]
            self.answered += 1
            if self.a.calls and self.answered >= self.a.calls and not self.stop:
                self.stop = True
                self.stop_reason = "calls"
            self.lock.notify_all()

    # ------------------------------------------------------------ one call
    def request(self, img):
        msg = cri.field_bytes(1, cri.field_bytes(1, img.encode()))
        if self.a.username is not None or self.a.password is not None:
            auth = b""
            if self.a.username is not None:
                auth += cri.field_bytes(1, self.a.username.encode())
            if self.a.password is not None:
                auth += cri.field_bytes(2, self.a.password.encode())
            if self.a.server_address:
                auth += cri.field_bytes(4, self.a.server_address.encode())
            msg += cri.field_bytes(2, auth)
        return b"\0" + struct.pack(">I", len(msg)) + msg

    def call(self, img, n):
        start = time.time()
        with self.lock:
            if self.stop:
                self.calls -= 1  # never made
                return None
        self.emit({"event": "start", "call": n, "image": img, "start": round(start, 3)})
        rec = {"event": "call", "call": n, "image": img, "start": round(start, 3), "end": None,
               "duration": None, "outcome": None, "grpc_status": None, "grpc_message": None,
               "image_ref": None}
        with tempfile.TemporaryDirectory(prefix="kubelet.") as d:
            req, hdr, body = (os.path.join(d, x) for x in ("req", "hdr", "body"))
            with open(req, "wb") as f:
                f.write(self.request(img))
            cmd = ["curl", "-sS", "--http2-prior-knowledge", "--unix-socket", self.a.sock,
                   "-H", "content-type: application/grpc", "-H", "te: trailers",
                   "-H", "user-agent: grpc-go/1.0 kubelet.py", "--data-binary", "@" + req,
                   "-D", hdr, "-o", body, "http://localhost/runtime.v1.ImageService/PullImage"]
            with self.lock:
                p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
                self.inflight[n] = (p, img, start)
            err = p.communicate()[1].decode("utf-8", "replace").strip()
            end = time.time()
            with self.lock:
                self.inflight.pop(n, None)
                abandoned = self.stop
            rec["end"] = round(end, 3)
            rec["duration"] = round(end - start, 3)
            if abandoned:
                rec["outcome"] = "open"
                with self.lock:
                    self.n_open += 1
                    self.images[img]["calls"] += 1
                    self.images[img]["open"] += 1
                self.emit(rec)
                return None
            status, message = None, ""
            try:
                with open(hdr, "rb") as f:
                    for line in f.read().decode("utf-8", "replace").splitlines():
                        k, _, v = line.partition(":")
                        if k.strip().lower() == "grpc-status":
                            status = int(v.strip())
                        elif k.strip().lower() == "grpc-message":
                            message = urllib.parse.unquote(v.strip())
                with open(body, "rb") as f:
                    data = f.read()
            except OSError:
                data = b""
        rec["grpc_status"] = status
        if status == 0:
            ref = ""
            if len(data) >= 5:
                n_ = struct.unpack(">I", data[1:5])[0]
                ref = cri.decode(data[5:5 + n_]).get(1, [b""])[0].decode()
            rec["outcome"] = "ok"
            rec["image_ref"] = ref
            rec["grpc_message"] = ""
        elif status is None:
            rec["outcome"] = "transport"
            rec["grpc_message"] = "curl exit %d: %s" % (p.returncode, err)
        else:
            rec["outcome"] = "error"
            rec["grpc_message"] = message
        self.emit(rec)
        return rec

    def worker(self):
        while True:
            t = self.take()
            if t is None:
                return
            img, n = t
            rec = self.call(img, n)
            if rec is None:
                return
            self.finish(img, rec["outcome"] == "ok", rec["image_ref"])

    # ------------------------------------------------------------ stopping
    def halt(self, reason):
        with self.lock:
            if self.stop:
                return
            self.stop = True
            self.stop_reason = reason
            for p, _, _ in self.inflight.values():
                try:
                    p.terminate()  # closes the stream: the call is abandoned, as when kubelet exits
                except OSError:
                    pass
            self.lock.notify_all()

    def run(self):
        workers = [threading.Thread(target=self.worker, daemon=True) for _ in range(self.a.parallel)]
        for w in workers:
            w.start()
        deadline = self.t0 + self.a.give_up_after if self.a.give_up_after else None
        while any(w.is_alive() for w in workers):
            if deadline is not None and time.time() >= deadline:
                self.halt("give-up")
            if self.stop:
                break
            time.sleep(0.1)
        for w in workers:
            w.join(timeout=10)
        ok = all(st["ok"] for st in self.images.values())
        summary = {"event": "summary", "ok": ok,
                   "reason": self.stop_reason or "done", "calls": self.calls, "open": self.n_open,
                   "start": round(self.t0, 3), "end": round(time.time(), 3),
                   "images": {i: {k: st[k] for k in ("calls", "failures", "open", "ok", "image_ref")}
                              for i, st in self.images.items()}}
        self.emit(summary)
        return 0 if ok else 1


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sock", default=os.environ.get("CONTAINERD_SOCK"), help="CRI socket (default $CONTAINERD_SOCK)")
    ap.add_argument("--parallel", type=int, default=1, metavar="N",
                    help="pulls at once (maxParallelImagePulls); 1 = serializeImagePulls (default)")
    ap.add_argument("--give-up-after", type=float, default=600, metavar="SECONDS",
                    help="stop after this long, abandoning calls in flight (default 600; 0 = never)")
    ap.add_argument("--calls", type=int, default=0, metavar="N",
                    help="stop after N answered calls (default 0: no limit); use with --parallel 1")
    ap.add_argument("--backoff-initial", type=float, default=10, metavar="SECONDS")
    ap.add_argument("--backoff-max", type=float, default=300, metavar="SECONDS")
    ap.add_argument("--username")
    ap.add_argument("--password")
    ap.add_argument("--server-address", help="AuthConfig.server_address (kubelet leaves it empty)")
    ap.add_argument("images", nargs="+", metavar="IMAGE")
    a = ap.parse_args()
    if not a.sock:
        ap.error("no --sock and no $CONTAINERD_SOCK")
    if a.parallel < 1:
        ap.error("--parallel must be at least 1")
    if len(set(a.images)) != len(a.images):
        ap.error("an image is named twice")
    c = Client(a)
    for s in (signal.SIGTERM, signal.SIGINT):
        signal.signal(s, lambda *_: c.halt("signal"))
    sys.exit(c.run())


if __name__ == "__main__":
    main()
