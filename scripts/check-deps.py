#!/usr/bin/env python3
"""check-deps.py: the source tree's dependency rules, checked (make check runs it via
tests/integration/build.bats; it also runs alone: scripts/check-deps.py [BUILD]).

1. Direction: the rooms below, left to right; a file may include headers of its own room and of the
   rooms left of it, never of one to its right (tests/ may include anything). The floors are basic/,
   config/, probes/, daemon/; inside probes/ and daemon/ each sub-folder is a room of its own, in the
   order of ROOMS. A source file outside every room (a new sub-folder not listed) is an error too.
2. No circles between files. A file depends on another when it includes it ("#include"), or, for a
   .c file, when its object calls a function or uses data defined in the other's object (from nm
   on BUILD/obj, when the objects are there). Every circle is printed with the edges that close it.

Exit 0 when both hold, 1 otherwise, 2 on usage errors. CHECK_DEPS_ROOT=DIR checks another tree."""
import collections
import os
import re
import subprocess
import sys

# CHECK_DEPS_ROOT: another tree to check (the tests give it a broken one)
ROOT = os.environ.get("CHECK_DEPS_ROOT") or os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
# Left may not include right. probes/: transport (curl on sd-event, gRPC framing) < host (/proc, disk)
# < registry (the registry protocol, its hosts and trust) < runtime (the driver interface every runtime
# implements) < cri (the CRI client) < containerd < docker (dockerd on the containerd store holds
# leases in containerd) < drivers (the one table of runtime drivers, and what asks it). daemon/: pull
# (the pull engine) < guard (other clients' pulls) < preheat < imageservice (kubelet's CRI image service) < agent (the service) < cli.
ROOMS = ["basic", "config",
         "probes/transport", "probes/host", "probes/registry", "probes/runtime", "probes/cri",
         "probes/containerd", "probes/docker", "probes/drivers",
         "daemon/pull", "daemon/guard", "daemon/preheat", "daemon/imageservice", "daemon/agent", "daemon/cli"]
LAYERS = ROOMS
INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')


def sources():
    for top in ("basic", "config", "probes", "daemon"):
        for dirpath, _, names in sorted(os.walk(os.path.join(ROOT, top))):
            for f in sorted(names):
                if f.endswith((".c", ".h")):
                    yield os.path.relpath(os.path.join(dirpath, f), ROOT)


def resolve(src, name):
    # as the compiler does with -I.: next to the including file first, then from the top
    for cand in (os.path.join(os.path.dirname(src), name), name):
        cand = os.path.normpath(cand)
        if os.path.isfile(os.path.join(ROOT, cand)):
            return cand
    return None


def layer(path):
    d = os.path.dirname(path)
    return LAYERS.index(d) if d in LAYERS else None


def nm_symbols(obj):
    out = subprocess.run(["nm", obj], capture_output=True, text=True, check=True).stdout
    defined, undefined = set(), set()
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[1] in "TDBRG":
            defined.add(p[2])
        elif len(p) == 2 and p[0] == "U":
            undefined.add(p[1])
    return defined, undefined


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else "build"
    if len(sys.argv) > 2:
        print("usage: check-deps.py [BUILD]", file=sys.stderr)
        return 2
    edges = collections.defaultdict(dict)  # from -> to -> why
    bad = 0
    files = list(sources())
    for src in files:
        if layer(src) is None:
            print(f"{src}: in no room: put it in one of {', '.join(r + '/' for r in ROOMS)} "
                  "(or add its folder to ROOMS in scripts/check-deps.py, in its place)")
            bad += 1
    for src in files:
        with open(os.path.join(ROOT, src), errors="replace") as f:
            for n, line in enumerate(f, 1):
                m = INCLUDE.match(line)
                if not m:
                    continue
                dst = resolve(src, m.group(1))
                if not dst:
                    continue  # generated (build/gen) or a system header
                edges[src].setdefault(dst, "includes")
                ls, ld = layer(src), layer(dst)
                if ls is not None and (ld is None or ld > ls):
                    print(f"{src}:{n}: includes {dst}: {LAYERS[ls]}/ may include only "
                          f"{', '.join(l + '/' for l in LAYERS[:ls + 1])}")
                    bad += 1

    # calls between objects, when they are built
    objdir = os.path.join(ROOT, build, "obj") if not os.path.isabs(build) else os.path.join(build, "obj")
    defs, undefs = {}, {}
    for src in files:
        if not src.endswith(".c"):
            continue
        obj = os.path.join(objdir, src[:-2] + ".o")
        if not os.path.isfile(obj):
            continue
        d, u = nm_symbols(obj)
        undefs[src] = u
        for s in d:
            defs[s] = src
    if not undefs:
        print(f"note: no objects under {objdir}: circles by calls not checked (build first)")
    for src, u in undefs.items():
        for s in sorted(u):
            dst = defs.get(s)
            if dst and dst != src:
                why = edges[src].get(dst)
                edges[src][dst] = (why + ", " if why and not why.startswith("calls") else "") + \
                    ("calls " + s if not why or not why.startswith("calls") else why + " " + s)

    # strongly connected components (Tarjan, iterative)
    index, low, on, stack, comps, counter = {}, {}, set(), [], [], [0]
    nodes = sorted(set(edges) | {d for e in edges.values() for d in e})
    for root in nodes:
        if root in index:
            continue
        work = [(root, iter(sorted(edges.get(root, {}))))]
        index[root] = low[root] = counter[0]; counter[0] += 1
        stack.append(root); on.add(root)
        while work:
            v, it = work[-1]
            w = next(it, None)
            if w is not None:
                if w not in index:
                    index[w] = low[w] = counter[0]; counter[0] += 1
                    stack.append(w); on.add(w)
                    work.append((w, iter(sorted(edges.get(w, {})))))
                elif w in on:
                    low[v] = min(low[v], index[w])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    x = stack.pop(); on.discard(x); comp.append(x)
                    if x == v:
                        break
                if len(comp) > 1:
                    comps.append(sorted(comp))
    for comp in comps:
        print("circle: " + " ".join(comp))
        for a in comp:
            for b, why in sorted(edges.get(a, {}).items()):
                if b in comp:
                    print(f"  {a} -> {b}: {why[:160]}")
        bad += 1
    if bad:
        print(f"check-deps: {bad} problem(s)")
        return 1
    print(f"check-deps: {len(files)} files in {len(ROOMS)} rooms, direction {' <- '.join(LAYERS)} holds, no circles")
    return 0


if __name__ == "__main__":
    sys.exit(main())
