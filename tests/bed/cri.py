#!/usr/bin/env python3
"""cri.py: minimal CRI ImageService client (no crictl in Debian 12): gRPC over h2c by curl.

  cri.py [--sock SOCK] [--timeout SECS] pull IMAGE     -> {"image_ref": "sha256:..."}
  cri.py [--sock SOCK] status IMAGE                    -> {"image": {id, repo_tags, repo_digests, size}} or {"image": null}
  cri.py [--sock SOCK] list                            -> {"images": [...]}
  cri.py [--sock SOCK] rm IMAGE                        -> {}
  cri.py [--sock SOCK] fsinfo                          -> {"image_filesystems": [{"fs_id": {"mountpoint"}, "used_bytes"}]}

SOCK defaults to $CONTAINERD_SOCK. Calls runtime.v1.ImageService (containerd 1.6 serves v1 and
v1alpha2). The protobuf messages are encoded by hand; curl (--http2-prior-knowledge over the unix
socket) carries them. Exit 0 on grpc-status 0; otherwise prints the grpc-status/-message on stderr
and exits 1 (3 for NotFound-like errors is not distinguished: read the message).
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time
import urllib.parse


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field_bytes(num, data):
    return varint(num << 3 | 2) + varint(len(data)) + data


def decode(buf):
    """Generic protobuf decode: {field: [values]} (bytes for length-delimited, int for varints)."""
    out = {}
    i = 0
    while i < len(buf):
        key, i = read_varint(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = read_varint(buf, i)
        elif wt == 2:
            n, i = read_varint(buf, i)
            v = bytes(buf[i:i + n])
            i += n
        elif wt == 1:
            v = struct.unpack("<Q", buf[i:i + 8])[0]
            i += 8
        elif wt == 5:
            v = struct.unpack("<I", buf[i:i + 4])[0]
            i += 4
        else:
            raise ValueError("unsupported wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def read_varint(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def image_obj(raw):
    f = decode(raw)
    return {"id": f.get(1, [b""])[0].decode(),
            "repo_tags": [x.decode() for x in f.get(2, [])],
            "repo_digests": [x.decode() for x in f.get(3, [])],
            "size": f.get(4, [0])[0],
            "pinned": bool(f.get(8, [0])[0])}


LAST_CALL_SECONDS = [0.0]  # the last call's wall time: curl's run, not this interpreter's start-up


def call(sock, method, msg, timeout):
    frame = b"\0" + struct.pack(">I", len(msg)) + msg
    with tempfile.TemporaryDirectory(prefix="cri.") as d:
        req, hdr, body = (os.path.join(d, n) for n in ("req", "hdr", "body"))
        with open(req, "wb") as f:
            f.write(frame)
        cmd = ["curl", "-sS", "--http2-prior-knowledge", "--unix-socket", sock, "--max-time", str(timeout),
               "-H", "content-type: application/grpc", "-H", "te: trailers", "--data-binary", "@" + req,
               "-D", hdr, "-o", body, "http://localhost/runtime.v1.ImageService/" + method]
        t0 = time.monotonic()
        r = subprocess.run(cmd, stderr=subprocess.PIPE)
        LAST_CALL_SECONDS[0] = time.monotonic() - t0
        if r.returncode != 0:
            sys.stderr.write("cri.py: curl failed (%d): %s" % (r.returncode, r.stderr.decode()))
            sys.exit(1 if r.returncode != 28 else 124)
        status, message = None, ""
        with open(hdr, "rb") as f:
            for line in f.read().decode("utf-8", "replace").splitlines():
                k, _, v = line.partition(":")
                if k.strip().lower() == "grpc-status":
                    status = int(v.strip())
                elif k.strip().lower() == "grpc-message":
                    message = urllib.parse.unquote(v.strip())
        with open(body, "rb") as f:
            data = f.read()
    if status != 0:
        sys.stderr.write("cri.py: %s: grpc-status %s: %s\n" % (method, status, message))
        sys.exit(1)
    if len(data) < 5:
        return b""
    n = struct.unpack(">I", data[1:5])[0]
    return data[5:5 + n]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sock", default=os.environ.get("CONTAINERD_SOCK"))
    ap.add_argument("--timeout", type=float, default=600)
    ap.add_argument("verb", choices=["pull", "status", "list", "rm", "fsinfo"])
    ap.add_argument("image", nargs="?")
    a = ap.parse_args()
    if not a.sock:
        ap.error("no --sock and no $CONTAINERD_SOCK")
    if a.verb not in ("list", "fsinfo") and not a.image:
        ap.error("%s needs IMAGE" % a.verb)
    spec = field_bytes(1, field_bytes(1, (a.image or "").encode()))
    if a.verb == "pull":
        f = decode(call(a.sock, "PullImage", spec, a.timeout))
        out = {"image_ref": f.get(1, [b""])[0].decode(), "seconds": round(LAST_CALL_SECONDS[0], 6)}
    elif a.verb == "status":
        f = decode(call(a.sock, "ImageStatus", spec, a.timeout))
        out = {"image": image_obj(f[1][0]) if 1 in f else None}
    elif a.verb == "list":
        f = decode(call(a.sock, "ListImages", b"", a.timeout))
        out = {"images": [image_obj(x) for x in f.get(1, [])]}
    elif a.verb == "fsinfo":
        f = decode(call(a.sock, "ImageFsInfo", b"", a.timeout))
        fss = []
        for raw in f.get(1, []):
            u = decode(raw)
            ident = decode(u[2][0]) if 2 in u else {}
            used = decode(u[3][0]).get(1, [0])[0] if 3 in u else None
            fss.append({"fs_id": {"mountpoint": ident.get(1, [b""])[0].decode()}, "used_bytes": used})
        out = {"image_filesystems": fss}
    else:
        call(a.sock, "RemoveImage", spec, a.timeout)
        out = {}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
