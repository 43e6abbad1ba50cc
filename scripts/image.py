#!/usr/bin/env python3
"""image.py BINARY OUT.tar NAME:TAG: an OCI image of pullwatch, FROM scratch, for `make image`.

One layer: the binary at /usr/bin/pullwatch, exactly the shared objects `ldd` names for it (each at the
path the dynamic loader looks for it), the CA bundle libcurl reads (/etc/ssl/certs/ca-certificates.crt)
for registries on TLS, a one-line /etc/passwd and /etc/group (root), and empty /tmp and /run/pullwatch.
glibc 2.36's name service for files and dns lives in libc itself, so no libnss_* is needed.

The tarball is both an OCI image layout (oci-layout, index.json, blobs/sha256/...) for `ctr images
import` and a docker-archive (manifest.json naming the same blobs) for `docker load`. Deterministic:
mtimes 0, uid/gid 0, sorted entries, so the same inputs give the same digest.
"""
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile

CA = "/etc/ssl/certs/ca-certificates.crt"


def libs(binary):
    out = subprocess.run(["ldd", binary], check=True, capture_output=True, text=True).stdout
    paths = []
    for line in out.splitlines():
        line = line.strip()
        if "=>" in line:
            p = line.split("=>", 1)[1].split("(", 1)[0].strip()
        else:
            p = line.split("(", 1)[0].strip()
        if p.startswith("/"):
            paths.append(p)
        elif "not found" in line:
            sys.exit("image.py: ldd: " + line)
    return sorted(set(paths))


def add_file(tar, arcname, data, mode):
    ti = tarfile.TarInfo(arcname)
    ti.size, ti.mode, ti.mtime, ti.uid, ti.gid = len(data), mode, 0, 0, 0
    tar.addfile(ti, io.BytesIO(data))


def add_dir(tar, arcname, mode=0o755):
    ti = tarfile.TarInfo(arcname)
    ti.type, ti.mode, ti.mtime = tarfile.DIRTYPE, mode, 0
    tar.addfile(ti)


def layer(binary):
    files = {"usr/bin/pullwatch": (open(binary, "rb").read(), 0o755)}
    for p in libs(binary):
        # the loader opens the path ldd printed: store the file itself there, not a symlink chain
        files[p.lstrip("/")] = (open(os.path.realpath(p), "rb").read(), 0o755)
    if os.path.exists(CA):
        files[CA.lstrip("/")] = (open(CA, "rb").read(), 0o644)
    files["etc/passwd"] = (b"root:x:0:0:root:/:/sbin/nologin\n", 0o644)
    files["etc/group"] = (b"root:x:0:\n", 0o644)
    dirs = {"tmp", "run", "run/pullwatch", "var", "var/lib", "var/lib/pullwatch", "etc/pullwatch"}
    for f in files:
        parts = f.split("/")[:-1]
        for i in range(1, len(parts) + 1):
            dirs.add("/".join(parts[:i]))
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in sorted(dirs):
            add_dir(tar, d, 0o1777 if d == "tmp" else 0o755)
        for f in sorted(files):
            add_file(tar, f, *files[f])
    return buf.getvalue(), sorted(files)


def blob(data):
    return "sha256:" + hashlib.sha256(data).hexdigest()


def main():
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    binary, out, ref = sys.argv[1:]
    name, tag = ref.rsplit(":", 1)
    data, files = layer(binary)
    diff_id = blob(data)
    config = json.dumps({
        "architecture": "amd64" if os.uname().machine == "x86_64" else os.uname().machine,
        "os": "linux",
        "config": {"Entrypoint": ["/usr/bin/pullwatch"], "Cmd": ["daemon"], "WorkingDir": "/",
                   "Env": ["PATH=/usr/bin"], "Labels": {"org.opencontainers.image.version": tag}},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created_by": "scripts/image.py: pullwatch and the shared objects ldd names"}],
    }, sort_keys=True, separators=(",", ":")).encode()
    manifest = json.dumps({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": blob(config),
                   "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": diff_id,
                    "size": len(data)}],
    }, sort_keys=True, separators=(",", ":")).encode()
    full = name if "/" in name.split("/")[0] or "." in name.split("/")[0] else "docker.io/library/" + name
    index = json.dumps({
        "schemaVersion": 2,
        "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": blob(manifest),
                       "size": len(manifest),
                       "annotations": {"io.containerd.image.name": full + ":" + tag,
                                       "org.opencontainers.image.ref.name": tag}}],
    }, sort_keys=True, separators=(",", ":")).encode()
    path = lambda d: "blobs/sha256/" + d.split(":", 1)[1]
    docker = json.dumps([{"Config": path(blob(config)), "RepoTags": [ref], "Layers": [path(diff_id)]}]).encode()
    with tarfile.open(out + ".tmp", "w", format=tarfile.PAX_FORMAT) as tar:
        add_file(tar, "oci-layout", b'{"imageLayoutVersion":"1.0.0"}', 0o644)
        add_file(tar, "index.json", index, 0o644)
        add_file(tar, "manifest.json", docker, 0o644)
        add_dir(tar, "blobs")
        add_dir(tar, "blobs/sha256")
        for b in sorted({config, manifest, data}, key=blob):
            add_file(tar, path(blob(b)), b, 0o644)
    os.replace(out + ".tmp", out)
    print(json.dumps({"ref": ref, "tarball": out, "manifest": blob(manifest), "config": blob(config),
                      "layer_bytes": len(data), "files": files}))


if __name__ == "__main__":
    main()
