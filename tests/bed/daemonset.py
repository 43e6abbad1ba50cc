#!/usr/bin/env python3
"""daemonset.py: run the DaemonSet of deploy/kubernetes/ through the bed's dockerd the way the kubelet
would, and check that a running container matches it.

  daemonset.py args MANIFEST IMAGE    `docker run` arguments, one per line, derived from the manifest:
                                      hostPID, hostNetwork, the container's securityContext (user,
                                      read-only root, no privilege escalation, capabilities dropped and
                                      added, seccomp), every volumeMount with its readOnly flag, args.
  daemonset.py check MANIFEST INSPECT the same facts read back from `docker inspect` (JSON on stdin
                                      or in INSPECT); prints each difference, exit 1 if any.

Volumes map to the bed through BED_DS_<VOLUME NAME> variables (dashes as underscores, upper case):
a hostPath, configMap, secret or emptyDir volume is bind-mounted from that directory or socket, so
the container sees the same paths a pod would. A volume with no variable is an error.
"""
import json
import os
import sys

import yaml


def daemonset(path):
    with open(path) as f:
        for d in yaml.safe_load_all(f):
            if d and d.get("kind") == "DaemonSet":
                return d
    sys.exit("daemonset.py: no DaemonSet in %s" % path)


def facts(ds):
    spec = ds["spec"]["template"]["spec"]
    c = spec["containers"][0]
    sc = c.get("securityContext", {})
    caps = sc.get("capabilities", {})
    notes = ds["spec"]["template"].get("metadata", {}).get("annotations", {}) or {}
    apparmor = notes.get("container.apparmor.security.beta.kubernetes.io/" + c["name"])
    return {
        "apparmor_unconfined": apparmor == "unconfined",
        "pid_host": bool(spec.get("hostPID")),
        "network_host": bool(spec.get("hostNetwork")),
        "privileged": bool(sc.get("privileged")),
        "read_only_root": bool(sc.get("readOnlyRootFilesystem")),
        "no_new_privileges": sc.get("allowPrivilegeEscalation") is False,
        "user": "%s:%s" % (sc.get("runAsUser", 0), sc.get("runAsGroup", 0)),
        "cap_drop": sorted(x.upper() for x in caps.get("drop", [])),
        "cap_add": sorted(x.upper() for x in caps.get("add", [])),
        "mounts": sorted((m["mountPath"], bool(m.get("readOnly"))) for m in c.get("volumeMounts", [])),
        "args": c.get("args", []),
        "volumes": {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])},
    }


def source(volume):
    var = "BED_DS_" + volume.replace("-", "_").upper()
    if var not in os.environ:
        sys.exit("daemonset.py: volume %s has no bed source: set %s" % (volume, var))
    return os.environ[var]


def cmd_args(manifest, image):
    f = facts(daemonset(manifest))
    a = []
    if f["apparmor_unconfined"]:
        a += ["--security-opt", "apparmor=unconfined"]
    if f["pid_host"]:
        a.append("--pid=host")
    if f["network_host"]:
        a.append("--network=host")
    if f["privileged"]:
        a.append("--privileged")
    if f["read_only_root"]:
        a.append("--read-only")
    if f["no_new_privileges"]:
        a += ["--security-opt", "no-new-privileges"]
    a += ["--user", f["user"]]
    for c in f["cap_drop"]:
        a += ["--cap-drop", c]
    for c in f["cap_add"]:
        a += ["--cap-add", c]
    for path, ro in f["mounts"]:
        a += ["--mount", "type=bind,source=%s,target=%s%s" % (source(f["volumes"][path]), path,
                                                             ",readonly" if ro else "")]
    a.append(image)
    a += f["args"]
    print("\n".join(a))


def cmd_check(manifest, inspect):
    f = facts(daemonset(manifest))
    data = json.load(open(inspect) if inspect != "-" else sys.stdin)
    i = data[0] if isinstance(data, list) else data
    hc = i["HostConfig"]
    got = {
        "apparmor_unconfined": "apparmor=unconfined" in (hc.get("SecurityOpt") or []),
        "pid_host": hc.get("PidMode") == "host",
        "network_host": hc.get("NetworkMode") == "host",
        "privileged": bool(hc.get("Privileged")),
        "read_only_root": bool(hc.get("ReadonlyRootfs")),
        "no_new_privileges": "no-new-privileges" in (hc.get("SecurityOpt") or []),
        "user": i["Config"].get("User") or "0:0",
        "cap_drop": sorted(x.upper().removeprefix("CAP_") for x in hc.get("CapDrop") or []),
        "cap_add": sorted(x.upper().removeprefix("CAP_") for x in hc.get("CapAdd") or []),
        "mounts": sorted((m["Destination"], not m.get("RW", True)) for m in i.get("Mounts", [])),
        "args": i.get("Args", []),
    }
    bad = 0
    for k, want in f.items():
        if k == "volumes":
            continue
        if got[k] != want:
            print("%s: manifest %s, container %s" % (k, json.dumps(want), json.dumps(got[k])))
            bad = 1
    sys.exit(bad)


def main():
    if len(sys.argv) < 3 or sys.argv[1] not in ("args", "check"):
        sys.exit(__doc__)
    if sys.argv[1] == "args":
        cmd_args(sys.argv[2], sys.argv[3])
    else:
        cmd_check(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "-")


if __name__ == "__main__":
    main()
