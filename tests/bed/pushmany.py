#!/usr/bin/env python3
"""pushmany: push COUNT tiny images fast, for load tests (stdlib only).

  pushmany.py --registry 127.0.0.1:5000 --repo test/load --count 1000 [--prefix t] [--size 512] [--own-layers] [--jobs 4]

One layer (SIZE bytes of pseudo-random data, gzip) is pushed once and shared; each image i gets its own
config blob (a label naming i, so every image is distinct in the runtimes' stores) and its own manifest
under tag PREFIX%04d, all in REPO over JOBS keep-alive connections: 2 requests an image. --own-layers gives
each image a layer of its own instead (SIZE each, seeded by i: pulls of them download in parallel).
Prints one JSON object: {"repo", "count", "tags": [first, last], "layer": {digest, size}} (the first
image's layer with --own-layers).
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pushimg  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--registry", required=True)
    ap.add_argument("--repo", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--prefix", default="t")
    ap.add_argument("--size", default="512")
    ap.add_argument("--own-layers", action="store_true")
    ap.add_argument("--jobs", type=int, default=4, help="connections at once (shared layer only)")
    a = ap.parse_args()
    reg = pushimg.Registry(a.registry)
    first = None
    if a.jobs < 1:
        ap.error("--jobs: at least 1")

    def layer(seed):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "layer")
            diff_id, _ = pushimg.make_layer(path, seed, 0, pushimg.parse_size(a.size), 1)
            digest, size = pushimg.file_digest(path)
            reg.push_blob(a.repo, digest, size, path=path)
        return diff_id, digest, size

    if not a.own_layers:
        diff_id, digest, size = layer("pushmany:" + a.repo)
    def push_image(reg, i, diff_id, digest, size):
        cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "2023-11-14T22:13:20Z",
                          "config": {"Labels": {"pullwatch.test.n": str(i)}},
                          "rootfs": {"type": "layers", "diff_ids": [diff_id]}},
                         sort_keys=True, separators=(",", ":")).encode()
        cfg_digest = "sha256:" + hashlib.sha256(cfg).hexdigest()
        # no HEAD first: every config is new (a re-run pushes the same bytes again, which is allowed)
        r, d = reg.request("POST", "/v2/%s/blobs/uploads/" % a.repo)
        reg.check(r, d, (202,), "start upload of %s" % cfg_digest)
        r, d = reg.request("PUT", reg.add_query(r.getheader("Location"), cfg_digest), body=cfg,
                           headers={"Content-Type": "application/octet-stream"})
        reg.check(r, d, (201,), "finish upload of %s" % cfg_digest)
        manifest = json.dumps({"schemaVersion": 2, "mediaType": pushimg.MT_MANIFEST,
                               "config": {"mediaType": pushimg.MT_CONFIG, "size": len(cfg), "digest": cfg_digest},
                               "layers": [{"mediaType": pushimg.MT_LAYER, "size": size, "digest": digest}]}).encode()
        reg.put_manifest(a.repo, "%s%04d" % (a.prefix, i), manifest, pushimg.MT_MANIFEST)

    if a.own_layers:
        for i in range(a.count):
            diff_id, digest, size = layer("pushmany:%s:%d" % (a.repo, i))
            first = first or {"digest": digest, "size": size}
            push_image(reg, i, diff_id, digest, size)
    else:
        first = {"digest": digest, "size": size}

        def worker(k):  # one keep-alive connection per worker, images k, k+jobs, ...
            r = pushimg.Registry(a.registry)
            for i in range(k, a.count, a.jobs):
                push_image(r, i, diff_id, digest, size)

        with concurrent.futures.ThreadPoolExecutor(a.jobs) as ex:
            for f in [ex.submit(worker, k) for k in range(a.jobs)]:
                f.result()
    print(json.dumps({"repo": a.repo, "count": a.count,
                      "tags": ["%s%04d" % (a.prefix, 0), "%s%04d" % (a.prefix, a.count - 1)],
                      "layer": first}))


if __name__ == "__main__":
    main()
