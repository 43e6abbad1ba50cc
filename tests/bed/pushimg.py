#!/usr/bin/env python3
"""pushimg: generate a test image and push it to a registry over the HTTP v2 API (stdlib only).

  pushimg.py --registry 127.0.0.1:5000 --repo test/name --tag v1 --layers 1MiB,200KiB[,...]
             [--seed S] [--config-mediatype application/octet-stream] [--platform linux/amd64]
             [--index [--extra-platforms linux/arm64,...]] [--chunked [--chunk-size 1MiB]]
             [--gzip-level 1] [--cache DIR] [--layer-dir DIR] [--zstd]

Each layer is a gzip-compressed tar holding one file of about SIZE bytes of pseudo-random
(incompressible) data. The content is a pure function of (seed, layer index, size): the same
arguments push the same digests, a different seed pushes different layers. Default seed: REPO:TAG.
The manifest is Docker v2 schema2; --index also pushes a manifest list (the image manifest is
pushed by digest, the list under the tag); --extra-platforms adds one manifest per platform to that
list (same layers, a config naming that platform). --layer-dir DIR appends a layer holding the real
tree under DIR (thousands of small files, links, modes as they are). --zstd compresses every layer
with zstd(1) instead and pushes an OCI manifest (and OCI index). Prints one JSON object on stdout:
  {"reference", "registry", "repo", "tag", "manifest_digest", "manifest_size", "media_type",
   "index_digest" (with --index), "digest" (what the tag points to), "config": {digest,size},
   "layers": [{digest, size, diff_id, uncompressed_size}], "total_bytes" (sum of layer sizes),
   "total_blob_bytes" (layers + config)}
Sizes: 123, 200KiB, 1MiB, 2GiB (K/KB/KiB all mean 1024; M and G likewise).
"""
import argparse
import gzip
import hashlib
import http.client
import io
import json
import os
import random
import shutil
import sys
import tarfile
import tempfile
import urllib.parse

MT_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
MT_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
MT_CONFIG = "application/vnd.docker.container.image.v1+json"
MT_LAYER = "application/vnd.docker.image.rootfs.diff.tar.gzip"
MT_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
MT_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
MT_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
MT_OCI_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
EPOCH = 1700000000


def parse_size(s):
    s = s.strip()
    units = {"": 1, "b": 1, "k": 1 << 10, "kb": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mb": 1 << 20,
             "mib": 1 << 20, "g": 1 << 30, "gb": 1 << 30, "gib": 1 << 30}
    num = s.rstrip("bBiIkKmMgG")
    unit = s[len(num):].lower()
    if unit not in units or not num:
        raise argparse.ArgumentTypeError("bad size %r" % s)
    return int(float(num) * units[unit])


class RandomReader(io.RawIOBase):
    """size bytes of deterministic pseudo-random data, produced in chunks."""

    def __init__(self, seed, size):
        self.rng = random.Random(seed)
        self.left = size

    def readable(self):
        return True

    def read(self, n=-1):
        if n is None or n < 0 or n > self.left:
            n = self.left
        n = min(n, 1 << 20)
        self.left -= n
        return self.rng.randbytes(n) if n else b""

    def readinto(self, b):
        d = self.read(len(b))
        b[:len(d)] = d
        return len(d)


class HashingWriter(io.RawIOBase):
    def __init__(self, f):
        self.f = f
        self.h = hashlib.sha256()
        self.n = 0

    def writable(self):
        return True

    def write(self, b):
        self.h.update(b)
        self.n += len(b)
        return self.f.write(b)


def make_layer(path, seed, index, size, level, zstd=False):
    """Write layer `index` to path; return (diff_id, uncompressed_size)."""
    with open(path, "wb") as raw:
        gz = zstd_writer(raw) if zstd else gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                          compresslevel=level, mtime=0)
        hw = HashingWriter(gz)
        with tarfile.open(fileobj=hw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            d = tarfile.TarInfo("data")
            d.type, d.mode, d.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(d)
            ti = tarfile.TarInfo("data/layer%d-%s.bin" % (index, hashlib.sha256(seed.encode()).hexdigest()[:12]))
            ti.size, ti.mode, ti.mtime = size, 0o644, EPOCH
            tar.addfile(ti, RandomReader("%s/%d/%d" % (seed, index, size), size))
        gz.close()
    return "sha256:" + hw.h.hexdigest(), hw.n


def make_dir_layer(path, tree, level, zstd):
    """Write a layer holding the tree under `tree` (as ./...) to path; return (diff_id, uncompressed_size)."""
    with open(path, "wb") as raw:
        comp = zstd_writer(raw) if zstd else gzip.GzipFile(filename="", mode="wb", fileobj=raw,
                                                            compresslevel=level, mtime=0)
        hw = HashingWriter(comp)
        with tarfile.open(fileobj=hw, mode="w|", format=tarfile.PAX_FORMAT) as tar:
            for root, dirs, files in os.walk(tree):
                dirs.sort()
                for name in sorted(dirs) + sorted(files):
                    full = os.path.join(root, name)
                    ti = tar.gettarinfo(full, arcname=os.path.relpath(full, os.path.dirname(tree)))
                    if ti is None:
                        continue  # sockets and the like
                    if ti.isreg():
                        with open(full, "rb") as f:
                            tar.addfile(ti, f)
                    else:
                        tar.addfile(ti)
        comp.close()
    return "sha256:" + hw.h.hexdigest(), hw.n


class zstd_writer(io.RawIOBase):
    """A pipe through zstd(1) into raw."""

    def __init__(self, raw):
        import subprocess
        self.p = subprocess.Popen(["zstd", "-q", "-3", "-c"], stdin=subprocess.PIPE, stdout=raw)

    def writable(self):
        return True

    def write(self, b):
        self.p.stdin.write(b)
        return len(b)

    def close(self):
        if self.p.stdin and not self.p.stdin.closed:
            self.p.stdin.close()
            if self.p.wait() != 0:
                raise SystemExit("pushimg: zstd failed")
        super().close()


def file_digest(path):
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as f:
        while True:
            b = f.read(1 << 20)
            if not b:
                break
            h.update(b)
            n += len(b)
    return "sha256:" + h.hexdigest(), n


class Registry:
    def __init__(self, addr, timeout=300):
        self.addr = addr
        self.timeout = timeout
        self.conn = None

    def request(self, method, url, body=None, headers=None, length=None):
        """body: bytes, a file object (streamed, length required) or None. Returns (resp, data)."""
        u = urllib.parse.urlsplit(url)
        path = u.path + ("?" + u.query if u.query else "")
        for attempt in range(2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.addr, timeout=self.timeout)
            try:
                h = dict(headers or {})
                if body is None:
                    if method in ("PUT", "POST", "PATCH"):
                        h.setdefault("Content-Length", "0")
                    self.conn.request(method, path, headers=h)
                elif isinstance(body, bytes):
                    self.conn.request(method, path, body=body, headers=h)
                else:
                    if attempt:
                        body.seek(start)
                    start = body.tell()
                    h["Content-Length"] = str(length)
                    self.conn.putrequest(method, path)
                    for k, v in h.items():
                        self.conn.putheader(k, v)
                    self.conn.endheaders()
                    left = length
                    while left > 0:
                        b = body.read(min(left, 1 << 20))
                        if not b:
                            raise IOError("short read from layer file")
                        self.conn.send(b)
                        left -= len(b)
                resp = self.conn.getresponse()
                data = resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp, data
            except (ConnectionError, http.client.RemoteDisconnected, http.client.BadStatusLine):
                self.conn.close()
                self.conn = None
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def check(self, resp, data, ok, what):
        if resp.status not in ok:
            raise SystemExit("pushimg: %s: HTTP %d %s: %s" % (what, resp.status, resp.reason,
                                                             data[:500].decode("utf-8", "replace")))

    def push_blob(self, repo, digest, size, path=None, data=None, chunked=False, chunk_size=1 << 20):
        r, d = self.request("HEAD", "/v2/%s/blobs/%s" % (repo, digest))
        if r.status == 200:
            return "exists"
        r, d = self.request("POST", "/v2/%s/blobs/uploads/" % repo)
        self.check(r, d, (202,), "start upload of %s" % digest)
        loc = r.getheader("Location")
        f = open(path, "rb") if path else io.BytesIO(data)
        try:
            if chunked:
                off = 0
                while off < size:
                    n = min(chunk_size, size - off)
                    r, d = self.request("PATCH", loc, body=f, length=n,
                                        headers={"Content-Type": "application/octet-stream",
                                                 "Content-Range": "%d-%d" % (off, off + n - 1)})
                    self.check(r, d, (202, 204), "upload chunk of %s" % digest)
                    loc = r.getheader("Location") or loc
                    off += n
                r, d = self.request("PUT", self.add_query(loc, digest))
            else:
                r, d = self.request("PUT", self.add_query(loc, digest), body=f, length=size,
                                    headers={"Content-Type": "application/octet-stream"})
            self.check(r, d, (201,), "finish upload of %s" % digest)
        finally:
            f.close()
        return "pushed"

    @staticmethod
    def add_query(loc, digest):
        return loc + ("&" if "?" in loc else "?") + "digest=" + urllib.parse.quote(digest)

    def put_manifest(self, repo, ref, body, mediatype):
        r, d = self.request("PUT", "/v2/%s/manifests/%s" % (repo, ref), body=body,
                            headers={"Content-Type": mediatype})
        self.check(r, d, (201,), "put manifest %s:%s" % (repo, ref))
        return r.getheader("Docker-Content-Digest")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", required=True, help="HOST:PORT (plain http)")
    ap.add_argument("--repo", required=True)
    ap.add_argument("--tag", default="latest")
    ap.add_argument("--layers", required=True, help="comma-separated sizes, e.g. 1MiB,200KiB")
    ap.add_argument("--seed", help="default: REPO:TAG")
    ap.add_argument("--config-mediatype", default=MT_CONFIG)
    ap.add_argument("--platform", default="linux/amd64", help="OS/ARCH[/VARIANT]")
    ap.add_argument("--index", action="store_true", help="also push a manifest list under the tag")
    ap.add_argument("--chunked", action="store_true", help="PATCH uploads in chunks instead of one PUT")
    ap.add_argument("--chunk-size", type=parse_size, default=1 << 20)
    ap.add_argument("--gzip-level", type=int, default=1)
    ap.add_argument("--cache", default=os.environ.get("PUSHIMG_CACHE"),
                    help="keep generated layers here and reuse them (env PUSHIMG_CACHE)")
    ap.add_argument("--tmpdir", default=None)
    ap.add_argument("--extra-platforms", default="", help="with --index: more OS/ARCH[/VARIANT], comma-separated")
    ap.add_argument("--layer-dir", help="append a layer holding this directory tree")
    ap.add_argument("--zstd", action="store_true", help="zstd layers, OCI manifest")
    a = ap.parse_args()
    sizes = [parse_size(s) for s in a.layers.split(",") if s.strip()]
    seed = a.seed if a.seed is not None else "%s:%s" % (a.repo, a.tag)
    plat = a.platform.split("/")
    if len(plat) < 2:
        ap.error("--platform must be OS/ARCH[/VARIANT]")
    reg = Registry(a.registry)
    work = tempfile.mkdtemp(prefix="pushimg.", dir=a.tmpdir)
    try:
        layers = []
        for i, size in enumerate(sizes):
            name = "%s-%d-%d-%d.%s" % (hashlib.sha256(seed.encode()).hexdigest()[:16], i, size, a.gzip_level,
                                        "tzst" if a.zstd else "tgz")
            path = os.path.join(a.cache or work, name)
            meta_path = path + ".json"
            if a.cache and os.path.exists(meta_path) and os.path.exists(path):
                with open(meta_path) as f:
                    meta = json.load(f)
            else:
                if a.cache:
                    os.makedirs(a.cache, exist_ok=True)
                tmp = path + ".tmp%d" % os.getpid()
                diff_id, usize = make_layer(tmp, seed, i, size, a.gzip_level, a.zstd)
                digest, csize = file_digest(tmp)
                os.rename(tmp, path)
                meta = {"digest": digest, "size": csize, "diff_id": diff_id, "uncompressed_size": usize}
                if a.cache:
                    with open(meta_path + ".tmp", "w") as f:
                        json.dump(meta, f)
                    os.rename(meta_path + ".tmp", meta_path)
            reg.push_blob(a.repo, meta["digest"], meta["size"], path=path, chunked=a.chunked,
                          chunk_size=a.chunk_size)
            layers.append(meta)
        if a.layer_dir:
            path = os.path.join(work, "dir-layer")
            diff_id, usize = make_dir_layer(path, os.path.abspath(a.layer_dir), a.gzip_level, a.zstd)
            digest, csize = file_digest(path)
            reg.push_blob(a.repo, digest, csize, path=path, chunked=a.chunked, chunk_size=a.chunk_size)
            layers.append({"digest": digest, "size": csize, "diff_id": diff_id, "uncompressed_size": usize,
                           "dir": a.layer_dir})
        mt_manifest = MT_OCI_MANIFEST if a.zstd else MT_MANIFEST
        mt_list = MT_OCI_INDEX if a.zstd else MT_LIST
        mt_layer = MT_OCI_ZSTD if a.zstd else MT_LAYER
        mt_config = MT_OCI_CONFIG if a.zstd and a.config_mediatype == MT_CONFIG else a.config_mediatype

        def image_manifest(plat):
            """Push plat's config; return (manifest body, digest, config digest, config size)."""
            config = {
                "architecture": plat[1], "os": plat[0],
                "created": "2023-11-14T22:13:20Z",
                "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
                           "Cmd": ["/bin/sh"], "Labels": {"pullwatch.test.seed": seed}},
                "rootfs": {"type": "layers", "diff_ids": [l["diff_id"] for l in layers]},
                "history": [{"created": "2023-11-14T22:13:20Z", "created_by": "pushimg layer %d" % i}
                            for i in range(len(layers))],
            }
            if len(plat) > 2:
                config["variant"] = plat[2]
            cfg = json.dumps(config, sort_keys=True, separators=(",", ":")).encode()
            cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
            reg.push_blob(a.repo, cfg_digest, len(cfg), data=cfg)
            manifest = {
                "schemaVersion": 2, "mediaType": mt_manifest,
                "config": {"mediaType": mt_config, "size": len(cfg), "digest": cfg_digest},
                "layers": [{"mediaType": mt_layer, "size": l["size"], "digest": l["digest"]} for l in layers],
            }
            mbody = json.dumps(manifest, indent=3).encode()
            return mbody, "sha256:" + hashlib.sha256(mbody).hexdigest(), cfg_digest, len(cfg)

        def plat_obj(plat):
            o = {"architecture": plat[1], "os": plat[0]}
            if len(plat) > 2:
                o["variant"] = plat[2]
            return o

        mbody, mdigest, cfg_digest, cfg_size = image_manifest(plat)
        out = {"registry": a.registry, "repo": a.repo, "tag": a.tag,
               "reference": "%s/%s:%s" % (a.registry, a.repo, a.tag), "seed": seed,
               "manifest_digest": mdigest, "manifest_size": len(mbody), "media_type": mt_manifest,
               "config": {"digest": cfg_digest, "size": cfg_size, "media_type": mt_config},
               "layers": layers, "total_bytes": sum(l["size"] for l in layers),
               "total_blob_bytes": sum(l["size"] for l in layers) + cfg_size}
        if a.index:
            got = reg.put_manifest(a.repo, mdigest, mbody, mt_manifest)
            entries = [{"mediaType": mt_manifest, "size": len(mbody), "digest": mdigest, "platform": plat_obj(plat)}]
            others = {}
            for p in [p for p in a.extra_platforms.split(",") if p.strip()]:
                op = p.strip().split("/")
                obody, odigest, _, _ = image_manifest(op)
                reg.put_manifest(a.repo, odigest, obody, mt_manifest)
                entries.append({"mediaType": mt_manifest, "size": len(obody), "digest": odigest,
                                "platform": plat_obj(op)})
                others[p.strip()] = odigest
            idx = {"schemaVersion": 2, "mediaType": mt_list, "manifests": entries}
            ibody = json.dumps(idx, indent=3).encode()
            idigest = "sha256:" + hashlib.sha256(ibody).hexdigest()
            got = reg.put_manifest(a.repo, a.tag, ibody, mt_list)
            out.update(index_digest=idigest, digest=idigest, other_manifests=others)
        else:
            got = reg.put_manifest(a.repo, a.tag, mbody, mt_manifest)
            out["digest"] = mdigest
        if got and got != out["digest"]:
            raise SystemExit("pushimg: registry says digest %s, expected %s" % (got, out["digest"]))
        json.dump(out, sys.stdout, indent=1)
        sys.stdout.write("\n")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
