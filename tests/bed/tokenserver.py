#!/usr/bin/env python3
"""tokenserver: a registry token server (docker/distribution token auth) for tests.

Python 3 standard library plus the openssl binary (it signs the RS256 JWTs).

  tokenserver.py --key key.pem --cert cert.pem --issuer ISS --user U --password P
                 [--refresh-token R] [--listen 127.0.0.1:0] [--port-file F]

GET  /token?service=S&scope=repository:NAME:pull,push   (Basic auth optional)
     valid credentials: every action asked for; no credentials: an anonymous token granting nothing
     (the registry then answers 401, like Docker Hub for a private repository); wrong ones: 401.
     Answers {"token": ...}.
POST /token  grant_type=refresh_token&refresh_token=R&service=S&scope=...   (docker's identity token)
     Answers {"access_token": ...}.
The JWT carries the certificate in x5c; configure the registry's rootcertbundle with the same cert.
"""
import argparse
import base64
import json
import os
import subprocess
import sys
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def b64url(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def cert_der_b64(path):
    lines = open(path).read().splitlines()
    body = []
    inside = False
    for line in lines:
        if line.startswith("-----BEGIN CERTIFICATE"):
            inside = True
        elif line.startswith("-----END CERTIFICATE"):
            break
        elif inside:
            body.append(line.strip())
    return "".join(body)


def parse_scopes(scopes):
    access = []
    for s in scopes:
        for one in s.split(" "):
            parts = one.split(":")
            if len(parts) < 3:
                continue
            access.append({"type": parts[0], "name": ":".join(parts[1:-1]),
                           "actions": [a for a in parts[-1].split(",") if a]})
    return access


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        if self.server.args.verbose:
            sys.stderr.write("tokenserver: " + fmt % args + "\n")

    def reply(self, status, obj):
        body = json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        if status == 401:
            self.send_header("WWW-Authenticate", 'Basic realm="pullwatch-tokenserver"')
        self.end_headers()
        self.wfile.write(body)

    def token(self, subject, access, field):
        a = self.server.args
        now = int(time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [self.server.x5c]}
        claims = {"iss": a.issuer, "sub": subject, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": b64url(os.urandom(12)), "access": access}
        signing_input = (b64url(json.dumps(header, separators=(",", ":")).encode()) + "." +
                         b64url(json.dumps(claims, separators=(",", ":")).encode()))
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", a.key], input=signing_input.encode(),
                             stdout=subprocess.PIPE, check=True).stdout
        tok = signing_input + "." + b64url(sig)
        self.reply(200, {field: tok, "expires_in": 300, "issued_at": time.strftime("%Y-%m-%dT%H:%M:%SZ")})

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        if u.path != "/token":
            return self.reply(404, {"errors": [{"code": "NOT_FOUND", "message": "no such endpoint"}]})
        q = urllib.parse.parse_qs(u.query)
        self.service = q.get("service", [""])[0]
        auth = self.headers.get("Authorization", "")
        if not auth:
            return self.token("", [], "token")
        if not auth.startswith("Basic "):
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "basic auth expected"}]})
        try:
            user, _, pw = base64.b64decode(auth[6:]).decode().partition(":")
        except Exception:
            return self.reply(400, {"errors": [{"code": "UNAUTHORIZED", "message": "bad basic auth"}]})
        a = self.server.args
        if user != a.user or pw != a.password:
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid credentials"}]})
        self.token(user, parse_scopes(q.get("scope", [])), "token")

    def do_POST(self):
        n = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(n).decode())
        self.service = form.get("service", [""])[0]
        a = self.server.args
        if (form.get("grant_type", [""])[0] != "refresh_token" or not a.refresh_token or
                form.get("refresh_token", [""])[0] != a.refresh_token):
            return self.reply(401, {"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token"}]})
        self.token(a.user, parse_scopes(form.get("scope", [])), "access_token")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--key", required=True)
    p.add_argument("--cert", required=True)
    p.add_argument("--issuer", required=True)
    p.add_argument("--user", required=True)
    p.add_argument("--password", required=True)
    p.add_argument("--refresh-token")
    p.add_argument("--listen", default="127.0.0.1:0")
    p.add_argument("--port-file")
    p.add_argument("--verbose", action="store_true")
    args = p.parse_args()
    host, _, port = args.listen.rpartition(":")
    srv = ThreadingHTTPServer((host, int(port)), Handler)
    srv.daemon_threads = True
    srv.args = args
    srv.x5c = cert_der_b64(args.cert)
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.server_address[1])
        os.rename(tmp, args.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
