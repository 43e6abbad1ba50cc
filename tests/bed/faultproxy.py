#!/usr/bin/env python3
"""faultproxy: an HTTP/1.1 reverse proxy in front of a registry that injects faults into blob bodies.

Python 3 standard library only. See tests/bed/README.md for the rule format and the control API.

  faultproxy.py --upstream 127.0.0.1:5000 [--listen 127.0.0.1:0] [--control 127.0.0.1:0]
                [--port-file F] [--log F]

Every request is relayed to the upstream (methods HEAD GET PUT POST PATCH DELETE), bodies streamed
in chunks both ways (never buffered whole), the Host header passed through so the registry's
Location headers point back at the proxy. Rules (set through the control port) apply to requests
whose path matches /v2/<name>/blobs/<digest> (or a custom "path" regex).
"""
import argparse
import itertools
import json
import os
import re
import select
import socket
import socketserver
import struct
import sys
import threading
import time
import http.client
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CHUNK = 64 * 1024
BLOB_RE = re.compile(r"^/v2/(?P<name>.+)/blobs/(?P<digest>[A-Za-z0-9_+.-]+:[A-Fa-f0-9]+)$")
MANIFEST_RE = re.compile(r"^/v2/(?P<name>.+)/manifests/(?P<ref>[^/]+)$")
HOP = {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
       "te", "trailer", "trailers", "transfer-encoding", "upgrade", "expect"}
RULE_KEYS = {"id", "digest", "path", "methods", "nth", "first", "times", "cuts", "stall_at", "stall_for",
             "reset_after", "reset_at", "throttle", "ignore_range", "status", "message", "delay", "retry_after"}

LOG = sys.stderr
LOCK = threading.RLock()
RULES = []             # list of dicts (validated), each with a private "_hits" counter
RULE_SEQ = itertools.count(1)
COUNTERS = {}          # filled by reset_counters()
HELD = {}              # conn id -> (event, socket) for connections held by a forever stall
RESUMED = set()        # conn ids whose stall ends by /resume: the body goes on instead of a reset
CONN_SEQ = itertools.count(1)
UPSTREAM = None


def log(msg):
    try:
        LOG.write("%s %s\n" % (time.strftime("%H:%M:%S"), msg))
        LOG.flush()
    except Exception:
        pass


def reset_counters():
    with LOCK:
        COUNTERS.clear()
        COUNTERS.update({"requests": 0, "total_bytes": 0, "blob_bytes": 0, "blob_requests": 0,
                         "range_requests": 0, "resets": 0, "stalls": 0, "statuses_injected": 0,
                         "ranges_ignored": 0, "active": 0, "held": 0, "blobs": {}, "manifests": {},
                         "started": time.time()})


def blob_counter(digest):
    b = COUNTERS["blobs"].get(digest)
    if b is None:
        b = {"bytes": 0, "requests": 0, "gets": 0, "range_requests": 0, "ranges": [], "statuses": {},
             "completed": 0, "resets": 0, "stalls": 0, "aborted": 0, "injected": 0}
        COUNTERS["blobs"][digest] = b
    return b


def parse_duration(v, name):
    """None/"forever"/negative -> None (forever); number -> float seconds."""
    if v is None or v == "forever" or v == "inf":
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        raise ValueError("%s: expected seconds or \"forever\", got %r" % (name, v))
    return None if f < 0 else f


def validate_rule(r):
    if not isinstance(r, dict):
        raise ValueError("a rule is a JSON object")
    unknown = set(r) - RULE_KEYS
    if unknown:
        raise ValueError("unknown rule keys: %s" % ", ".join(sorted(unknown)))
    r = dict(r)
    if "digest" not in r and "path" not in r:
        r["digest"] = "*"
    if "path" in r:
        re.compile(r["path"])
    methods = r.get("methods", ["GET"])
    if isinstance(methods, str):
        methods = [methods]
    r["methods"] = [m.upper() for m in methods]
    if "times" in r and "first" not in r:
        r["first"] = r.pop("times")
    r.pop("times", None)
    for k in ("nth", "first", "cuts", "stall_at", "reset_at", "status"):
        if k in r and r[k] is not None:
            if not isinstance(r[k], int) or r[k] < 0:
                raise ValueError("%s: expected a non-negative integer" % k)
    for k in ("reset_after", "throttle", "delay", "retry_after"):
        if k in r and r[k] is not None:
            if not isinstance(r[k], (int, float)) or r[k] < 0:
                raise ValueError("%s: expected a non-negative number" % k)
    if "stall_at" in r:
        r["_stall_for"] = parse_duration(r.get("stall_for"), "stall_for")
    if "status" in r and not (100 <= r["status"] <= 599):
        raise ValueError("status: expected an HTTP status code")
    if "message" in r and not isinstance(r["message"], str):
        raise ValueError("message: expected a string")
    if "id" not in r:
        r["id"] = "r%d" % next(RULE_SEQ)
    r["id"] = str(r["id"])
    r["_hits"] = 0
    r["_applied"] = 0
    r["_cuts"] = 0
    return r


def public_rule(r):
    d = {k: v for k, v in r.items() if not k.startswith("_")}
    d["hits"] = r["_hits"]
    d["applied"] = r["_applied"]
    d["cut"] = r["_cuts"]
    return d


def pick_rule(method, path, digest):
    """Count this request against every rule whose filter matches; return the first one in force."""
    chosen = None
    with LOCK:
        for r in RULES:
            if method not in r["methods"]:
                continue
            if "path" in r:
                if not re.search(r["path"], path):
                    continue
            if "digest" in r:
                if digest is None:
                    continue
                if r["digest"] != "*" and r["digest"] != digest:
                    continue
            r["_hits"] += 1
            n = r["_hits"]
            if "nth" in r and n != r["nth"]:
                continue
            if "first" in r and n > r["first"]:
                continue
            if "cuts" in r and r["_cuts"] >= r["cuts"]:
                continue
            if chosen is None:
                chosen = r
                r["_applied"] += 1
    return chosen


class Abort(Exception):
    """The client connection was reset on purpose or went away; stop relaying."""


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy/1"
    timeout = 600  # idle keep-alive connections

    def log_message(self, fmt, *args):
        log("%s %s" % (self.address_string(), fmt % args))

    def log_request(self, code="-", size="-"):
        pass  # we log our own line per request

    # one method for all verbs
    def do_GET(self):
        self.relay()

    do_HEAD = do_PUT = do_POST = do_PATCH = do_DELETE = do_GET

    # ----- client side I/O -----
    def reset_client(self):
        """Close the client connection abruptly: SO_LINGER 0 makes close() send a TCP RST."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        except OSError:
            pass
        try:
            self.rfile.close()  # drops the makefile reference so close() really closes the fd
        except Exception:
            pass
        try:
            self.connection.close()
        except OSError:
            pass

    def send_raw(self, data, deadline=None, stop_event=None):
        """Send all of data; returns early (raising Abort after a reset) if deadline passes."""
        sock = self.connection
        view = memoryview(data)
        while view:
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError
            try:
                _, w, _ = select.select([], [sock], [], 0.2)
            except (OSError, ValueError):
                raise Abort("client socket gone")
            if not w:
                continue
            try:
                n = sock.send(view)
            except (BrokenPipeError, ConnectionResetError, OSError) as e:
                raise Abort("client went away: %s" % e)
            view = view[n:]

    # ----- request body -----
    def request_body_chunks(self):
        te = self.headers.get("Transfer-Encoding", "").lower()
        if "chunked" in te:
            while True:
                line = self.rfile.readline(65537)
                if not line:
                    raise Abort("client closed during chunked body")
                size = int(line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while True:  # trailers until an empty line
                        t = self.rfile.readline(65537)
                        if not t or t in (b"\r\n", b"\n"):
                            break
                    return
                left = size
                while left:
                    d = self.rfile.read(min(left, CHUNK))
                    if not d:
                        raise Abort("client closed during chunked body")
                    left -= len(d)
                    yield d
                self.rfile.readline(3)  # CRLF after the chunk
        else:
            left = int(self.headers.get("Content-Length") or 0)
            while left > 0:
                d = self.rfile.read(min(left, CHUNK))
                if not d:
                    raise Abort("client closed during body")
                left -= len(d)
                yield d

    def drain_request_body(self):
        for _ in self.request_body_chunks():
            pass

    # ----- main relay -----
    def relay(self):
        t0 = time.monotonic()
        method = self.command
        path = self.path
        upath = path.split("?", 1)[0]
        m = BLOB_RE.match(upath)
        digest = m.group("digest") if m else None
        rng = self.headers.get("Range")
        with LOCK:
            COUNTERS["requests"] += 1
            COUNTERS["active"] += 1
            if rng:
                COUNTERS["range_requests"] += 1
            if digest:
                b = blob_counter(digest)
                b["requests"] += 1
                if method == "GET":
                    b["gets"] += 1
                    COUNTERS["blob_requests"] += 1
                if rng:
                    b["range_requests"] += 1
                    b["ranges"].append(rng)
                    del b["ranges"][:-50]
            mm = MANIFEST_RE.match(upath)
            if mm:
                key = "%s:%s" % (mm.group("name"), mm.group("ref"))
                mc = COUNTERS["manifests"].setdefault(key, {"requests": 0})
                mc["requests"] += 1
        rule = pick_rule(method, upath, digest)
        self.cur_rule = rule
        outcome = "?"
        self.cur_status = self.cur_sent = 0
        try:
            _, _, outcome = self.relay_inner(method, path, digest, rng, rule)
        except (Abort, OSError) as e:
            outcome = "abort(%s)" % e
            self.close_connection = True
            if digest:
                with LOCK:
                    blob_counter(digest)["aborted"] += 1
        finally:
            with LOCK:
                COUNTERS["active"] -= 1
            log("%s %s range=%s rule=%s -> %s body=%d %s %.2fs" % (
                method, path, rng or "-", rule["id"] if rule else "-", self.cur_status or "-", self.cur_sent, outcome,
                time.monotonic() - t0))

    def relay_inner(self, method, path, digest, rng, rule):
        if rule and rule.get("delay"):
            time.sleep(rule["delay"])
        if rule and "status" in rule:
            self.drain_request_body()
            code = "TOOMANYREQUESTS" if rule["status"] == 429 else "UNAVAILABLE"
            message = rule.get("message", "faultproxy injected %d" % rule["status"])
            body = json.dumps({"errors": [{"code": code, "message": message, "detail": rule["id"]}]}).encode()
            self.cur_status = rule["status"]
            self.send_response_only(rule["status"])
            if rule.get("retry_after") is not None:
                self.send_header("Retry-After", str(int(rule["retry_after"])))
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if method != "HEAD":
                self.send_raw(body)
            with LOCK:
                COUNTERS["statuses_injected"] += 1
                if digest:
                    b = blob_counter(digest)
                    b["injected"] += 1
                    b["statuses"][str(rule["status"])] = b["statuses"].get(str(rule["status"]), 0) + 1
            return rule["status"], 0, "injected"

        # forward the request upstream
        headers = []
        for k, v in self.headers.items():
            lk = k.lower()
            if lk in HOP:
                continue
            if lk == "range" and rule and rule.get("ignore_range"):
                continue
            if lk == "content-length":
                continue
            headers.append((k, v))
        has_body = ("Content-Length" in self.headers and int(self.headers["Content-Length"] or 0) > 0) \
            or "chunked" in self.headers.get("Transfer-Encoding", "").lower()
        up = http.client.HTTPConnection(UPSTREAM, timeout=300)
        try:
            up.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in headers:
                up.putheader(k, v)
            chunked_up = False
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                up.putheader("Transfer-Encoding", "chunked")
                chunked_up = True
            elif "Content-Length" in self.headers:
                up.putheader("Content-Length", self.headers["Content-Length"])
            up.endheaders()
            if has_body:
                for d in self.request_body_chunks():
                    if chunked_up:
                        up.send(b"%x\r\n" % len(d) + d + b"\r\n")
                    else:
                        up.send(d)
                if chunked_up:
                    up.send(b"0\r\n\r\n")
            resp = up.getresponse()
        except (OSError, http.client.HTTPException) as e:
            up.close()
            body = ("faultproxy: upstream error: %s\n" % e).encode()
            self.cur_status = 502
            self.send_response_only(502)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.send_raw(body)
            return 502, 0, "upstream-error"

        try:
            return self.relay_response(method, digest, rng, rule, resp)
        finally:
            up.close()

    def relay_response(self, method, digest, rng, rule, resp):
        status = resp.status
        self.cur_status = status
        clen = resp.getheader("Content-Length")
        ignored_range = bool(rule and rule.get("ignore_range") and rng)
        body_expected = method != "HEAD" and status not in (204, 304) and not (100 <= status < 200)
        chunked_down = body_expected and clen is None
        self.send_response_only(status, resp.reason)
        for k, v in resp.getheaders():
            if k.lower() in HOP:
                continue
            self.send_header(k, v)
        if chunked_down:
            self.send_header("Transfer-Encoding", "chunked")
        if resp.getheader("Connection", "").lower() == "close":
            self.close_connection = True
        self.end_headers()
        with LOCK:
            if digest:
                b = blob_counter(digest)
                b["statuses"][str(status)] = b["statuses"].get(str(status), 0) + 1
            if ignored_range:
                COUNTERS["ranges_ignored"] += 1
        if not body_expected:
            return status, 0, "ok"

        faults = rule if (rule and digest and method == "GET" and 200 <= status < 300) else None
        stall_at = faults.get("stall_at") if faults else None
        reset_at = faults.get("reset_at") if faults else None
        reset_after = faults.get("reset_after") if faults else None
        throttle = faults.get("throttle") if faults else None
        t_body = time.monotonic()
        reset_deadline = t_body + reset_after if reset_after is not None else None
        stalled = False
        sent = 0
        while True:
            want = CHUNK
            if throttle:
                want = max(1, min(CHUNK, int(throttle / 10) or 1))  # ~10 writes per second
            if stall_at is not None and not stalled and stall_at > sent:
                want = min(want, stall_at - sent)
            if reset_at is not None and reset_at > sent:
                want = min(want, reset_at - sent)
            if stall_at is not None and not stalled and sent >= stall_at:
                stalled = True
                self.stall(faults, digest, reset_deadline)
            if reset_at is not None and sent >= reset_at:
                return self.do_reset(digest, status, sent, "reset_at")
            data = resp.read1(want) if hasattr(resp, "read1") else resp.read(want)
            if not data:
                break
            try:
                if throttle:
                    # pace: sent bytes must not run ahead of throttle * elapsed
                    ahead = (sent + len(data)) / float(throttle) - (time.monotonic() - t_body)
                    if ahead > 0:
                        if reset_deadline is not None and time.monotonic() + ahead >= reset_deadline:
                            time.sleep(max(0, reset_deadline - time.monotonic()))
                            return self.do_reset(digest, status, sent, "reset_after")
                        time.sleep(ahead)
                if chunked_down:
                    self.send_raw(b"%x\r\n" % len(data), reset_deadline)
                self.send_raw(data, reset_deadline)
                if chunked_down:
                    self.send_raw(b"\r\n", reset_deadline)
            except TimeoutError:
                return self.do_reset(digest, status, sent, "reset_after")
            sent += len(data)
            self.cur_sent = sent
            self.count_bytes(digest, len(data))
            if reset_deadline is not None and time.monotonic() >= reset_deadline:
                return self.do_reset(digest, status, sent, "reset_after")
        if chunked_down:
            self.send_raw(b"0\r\n\r\n")
        if digest and method == "GET":
            with LOCK:
                blob_counter(digest)["completed"] += 1
        return status, sent, "ok" + (" (range ignored)" if ignored_range else "")

    def count_bytes(self, digest, n):
        with LOCK:
            COUNTERS["total_bytes"] += n
            if digest:
                COUNTERS["blob_bytes"] += n
                blob_counter(digest)["bytes"] += n

    def do_reset(self, digest, status, sent, why):
        with LOCK:
            if getattr(self, "cur_rule", None):
                self.cur_rule["_cuts"] += 1
            COUNTERS["resets"] += 1
            if digest:
                blob_counter(digest)["resets"] += 1
        self.reset_client()
        raise Abort("%s after %d bytes" % (why, sent))

    def stall(self, rule, digest, reset_deadline):
        """Hold the connection open, sending nothing, for stall_for seconds or forever (until /release)."""
        dur = rule.get("_stall_for")
        ev = threading.Event()
        released = False
        cid = next(CONN_SEQ)
        with LOCK:
            COUNTERS["stalls"] += 1
            COUNTERS["held"] += 1
            HELD[cid] = (ev, self)
            if digest:
                blob_counter(digest)["stalls"] += 1
        try:
            end = None if dur is None else time.monotonic() + dur
            while True:
                now = time.monotonic()
                if reset_deadline is not None and now >= reset_deadline:
                    break
                if end is not None and now >= end:
                    break
                step = 0.5
                if end is not None:
                    step = min(step, end - now)
                if reset_deadline is not None:
                    step = min(step, reset_deadline - now)
                if ev.wait(max(step, 0.001)):
                    released = True
                    break
                if self.client_gone():
                    raise Abort("client closed while stalled")
        finally:
            with LOCK:
                COUNTERS["held"] -= 1
                HELD.pop(cid, None)
        with LOCK:
            resumed = cid in RESUMED
            RESUMED.discard(cid)
        if released and resumed:
            log("resumed after stall")
            return
        if released:
            self.do_reset(digest, 0, self.cur_sent, "released while stalled")
        if reset_deadline is not None and time.monotonic() >= reset_deadline:
            self.do_reset(digest, 0, self.cur_sent, "reset_after (while stalled)")

    def client_gone(self):
        try:
            r, _, _ = select.select([self.connection], [], [], 0)
            if r:
                d = self.connection.recv(1, socket.MSG_PEEK)
                return d == b""
        except OSError:
            return True
        return False


class ControlHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "faultproxy-control/1"

    def log_message(self, fmt, *args):
        pass

    def reply(self, code, obj):
        body = (json.dumps(obj, indent=1, sort_keys=True) + "\n").encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def body_json(self):
        n = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(n) if n else b""
        if not raw.strip():
            return None
        return json.loads(raw)

    def rules_from_body(self):
        obj = self.body_json()
        if obj is None:
            return []
        if isinstance(obj, dict) and "rules" in obj:
            obj = obj["rules"]
        if isinstance(obj, dict):
            obj = [obj]
        return [validate_rule(r) for r in obj]

    def handle_one(self):
        p = self.path.split("?", 1)[0].rstrip("/") or "/"
        m = self.command
        if p == "/health":
            return self.reply(200, {"ok": True, "upstream": UPSTREAM})
        if p == "/rules":
            if m == "GET":
                with LOCK:
                    return self.reply(200, [public_rule(r) for r in RULES])
            if m in ("PUT", "POST"):
                rules = self.rules_from_body()
                with LOCK:
                    if m == "PUT":
                        RULES[:] = rules
                    else:
                        RULES.extend(rules)
                log("control: %s rules -> %s" % (m, json.dumps([public_rule(r) for r in RULES])))
                return self.reply(200, {"ids": [r["id"] for r in rules],
                                        "rules": [public_rule(r) for r in RULES]})
            if m == "DELETE":
                with LOCK:
                    RULES[:] = []
                log("control: rules cleared")
                return self.reply(200, {"rules": []})
        if p.startswith("/rules/") and m == "DELETE":
            rid = p[len("/rules/"):]
            with LOCK:
                before = len(RULES)
                RULES[:] = [r for r in RULES if r["id"] != rid]
                gone = before - len(RULES)
            return self.reply(200 if gone else 404, {"deleted": gone})
        if p == "/counters":
            if m == "GET":
                with LOCK:
                    c = json.loads(json.dumps(COUNTERS))
                c["rules"] = [public_rule(r) for r in RULES]
                c["uptime"] = time.time() - c.pop("started")
                return self.reply(200, c)
            if m in ("DELETE", "POST"):
                with LOCK:
                    active, held = COUNTERS.get("active", 0), COUNTERS.get("held", 0)
                    reset_counters()
                    COUNTERS["active"], COUNTERS["held"] = active, held
                return self.reply(200, {"reset": True})
        if p == "/resume" and m == "POST":  # end every stall, the bodies go on
            with LOCK:
                held = list(HELD.items())
                RESUMED.update(cid for cid, _ in held)
            for _cid, (ev, _h) in held:
                ev.set()
            log("control: resumed %d held connections" % len(held))
            return self.reply(200, {"resumed": len(held)})
        if p == "/release" and m == "POST":
            with LOCK:
                held = list(HELD.values())
            for ev, _h in held:
                ev.set()
            log("control: released %d held connections" % len(held))
            return self.reply(200, {"released": len(held)})
        if p == "/reset" and m == "POST":  # rules and counters
            with LOCK:
                RULES[:] = []
                active, held = COUNTERS.get("active", 0), COUNTERS.get("held", 0)
                reset_counters()
                COUNTERS["active"], COUNTERS["held"] = active, held
            return self.reply(200, {"reset": True})
        return self.reply(404, {"error": "no such endpoint: %s %s" % (m, p)})

    def do_GET(self):
        try:
            self.handle_one()
        except (ValueError, re.error) as e:
            self.reply(400, {"error": str(e)})

    do_PUT = do_POST = do_DELETE = do_HEAD = do_GET


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128


def parse_addr(s):
    host, _, port = s.rpartition(":")
    return host or "127.0.0.1", int(port)


def main():
    global UPSTREAM, LOG
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--upstream", required=True, help="HOST:PORT of the registry")
    ap.add_argument("--listen", default="127.0.0.1:0")
    ap.add_argument("--control", default="127.0.0.1:0")
    ap.add_argument("--port-file", help="write {\"proxy\":P,\"control\":C} here once listening")
    ap.add_argument("--log", help="log file (default stderr)")
    ap.add_argument("--tls-cert", help="serve the proxy port over TLS with this certificate (PEM, chain)")
    ap.add_argument("--tls-key", help="the certificate's key (PEM)")
    a = ap.parse_args()
    UPSTREAM = a.upstream
    if a.log:
        LOG = open(a.log, "a", buffering=1)
    reset_counters()
    proxy = Server(parse_addr(a.listen), Handler)
    if a.tls_cert:
        # a registry behind TLS with a private CA, as the runtimes see most registries; the
        # handshake runs in the connection's own thread, so one slow client holds up no other
        import ssl
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        proxy.socket = ctx.wrap_socket(proxy.socket, server_side=True, do_handshake_on_connect=False)
    control = Server(parse_addr(a.control), ControlHandler)
    pp, cp = proxy.server_address[1], control.server_address[1]
    threading.Thread(target=control.serve_forever, daemon=True).start()
    log("faultproxy: proxy 127.0.0.1:%d -> %s, control 127.0.0.1:%d, pid %d" % (pp, UPSTREAM, cp, os.getpid()))
    if a.port_file:
        tmp = a.port_file + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"proxy": pp, "control": cp, "pid": os.getpid()}, f)
        os.rename(tmp, a.port_file)
    try:
        proxy.serve_forever()
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
