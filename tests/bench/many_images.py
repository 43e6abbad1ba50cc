#!/usr/bin/env python3
"""many_images.py: an OCI image archive of N distinct images over one small layer and one config, for
`ctr images import` (the fast way to have thousands of images present in a containerd namespace).

  many_images.py --count 2000 --out FILE.tar [--prefix P]

Each image is its own manifest (an annotation makes each digest distinct), so containerd's content
store holds N manifests, the config and the layer: N + 2 content items and N image records, as a
node with that many images of one base would (the layers are shared; the manifests are not). The
index names image k "<prefix><k>" (org.opencontainers.image.ref.name), so
`ctr images import --base-name REPO` makes REPO:<prefix><k>. Stdlib only.
"""
import argparse
import gzip
import hashlib
import io
import json
import sys
import tarfile


def blob(tar, data):
    d = hashlib.sha256(data).hexdigest()
    info = tarfile.TarInfo("blobs/sha256/" + d)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))
    return "sha256:" + d, len(data)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--count", type=int, required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--prefix", default="p")
    a = p.parse_args()
    if a.count < 1:
        print("many_images.py: --count must be at least 1", file=sys.stderr)
        return 2
    # the layer: a tar of one small file, gzipped
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as t:
        data = b"many_images\n"
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data)
        t.addfile(info, io.BytesIO(data))
    diff_id = "sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()
    layer = gzip.compress(raw.getvalue(), mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [diff_id]}}).encode()
    with open(a.out, "wb") as f, tarfile.open(fileobj=f, mode="w") as tar:
        layer_d, layer_n = blob(tar, layer)
        config_d, config_n = blob(tar, config)
        manifests = []
        for k in range(a.count):
            m = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                            "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                       "digest": config_d, "size": config_n},
                            "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                                        "digest": layer_d, "size": layer_n}],
                            "annotations": {"bench.image": str(k)}}).encode()
            d, n = blob(tar, m)
            manifests.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": d, "size": n,
                              "platform": {"architecture": "amd64", "os": "linux"},
                              "annotations": {"org.opencontainers.image.ref.name": "%s%d" % (a.prefix, k)}})
        for name, data in (("oci-layout", json.dumps({"imageLayoutVersion": "1.0.0"}).encode()),
                           ("index.json", json.dumps({"schemaVersion": 2, "manifests": manifests}).encode())):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return 0


if __name__ == "__main__":
    sys.exit(main())
