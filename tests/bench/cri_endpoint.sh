#!/usr/bin/env bash
# cri_endpoint.sh: pullwatch's CRI image endpoint (what kubelet calls with imageServiceEndpoint) against
# containerd's own CRI socket, side by side in one run on the bed, alternating; prints one markdown
# section in bench/results.md's style (ratios, medians; no thresholds asserted).
#
#   [BED_ROW=ROW] [BENCH_RUNS=N] [BENCH_CRI_CALLS=N] tests/bench/cri_endpoint.sh [--bed DIR]
#
# --bed DIR: use the running bed in DIR (tests/bench/run.sh passes each containerd row's bed); without
# it a bed of BED_ROW (default bookworm) is started without dockerd and stopped at the end.
# - PullImage of 4 x 16 MiB layers through the proxy, the image removed (CRI RemoveImage) before every
#   pull: median of BENCH_RUNS (default 3) pulls each way, the order swapped every pair;
# - ImageStatus and ListImages: BENCH_CRI_CALLS (default 50) calls each way, alternating call by call,
#   from one python process speaking gRPC over h2c itself (no process start-up in the times), once with
#   a fresh connection per call and once over one kept connection (kubelet's gRPC client keeps one).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
RUNS=${BENCH_RUNS:-3}
CALLS=${BENCH_CRI_CALLS:-50}
# shellcheck source=tests/bench/bench_bed.sh
source tests/bench/bench_bed.sh
bench_bed_args cri_endpoint.sh "$@"

cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
cri() { python3 tests/bed/cri.py --sock "$1" --timeout 600 "${@:2}"; }

dpid=
cleanup() {
	if [ -n "$dpid" ]; then kill -TERM "$dpid" 2>/dev/null || true; wait "$dpid" 2>/dev/null || true; fi
	bench_bed_stop
}
trap cleanup EXIT
bench_bed_start "CRI image endpoint (row ${BED_ROW:-bookworm})" --no-docker
[ "${BED_HAS_CONTAINERD:-0}" = 1 ] || { echo "cri_endpoint.sh: the bed in $BED_DIR has no containerd" >&2; exit 2; }
W=$BED_DIR/cribench
rm -rf "$W" && mkdir -p "$W/state"
EP=$W/cri.sock
CD=$CONTAINERD_SOCK

# the daemon as a node would run it for kubelet: containerd runtime, default watchdog, the endpoint on
# a socket it binds itself (cri.listen)
cat >"$W/pw.yaml" <<YAML
runtime: containerd
containerd:
  socket: $CD
  namespace: k8s.io
  hosts_dir: $CONTAINERD_HOSTS_DIR
credentials: ["$W/none.json"]
state_dir: $W/state
control_socket: $W/control.sock
cri:
  listen: $EP
YAML
"$PW" daemon --config "$W/pw.yaml" >"$W/daemon.log" 2>&1 &
dpid=$!
for ((i = 0; i < 200; i++)); do [ -S "$EP" ] && break; sleep 0.1; done
[ -S "$EP" ] || { echo "cri_endpoint.sh: the daemon did not listen on $EP:" >&2; tail -n 20 "$W/daemon.log" >&2; exit 1; }

python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/cri --tag v1 --layers 16MiB,16MiB,16MiB,16MiB \
	--cache "$BED_DIR/cache" >/dev/null
ref=$PROXY_ADDR/bench/cri:v1

echo "### kubelet's CRI image endpoint: pullwatch's socket vs containerd's CRI socket (containerd $BED_CONTAINERD_VERSION)"
echo
echo "The same CRI calls sent to \`pullwatch daemon\`'s \`cri.listen\` and straight to containerd's socket,"
echo "side by side. PullImage (4 layers of 16 MiB through the proxy, removed with RemoveImage before every"
echo "pull; median of $RUNS each way, the order swapped every pair) is one curl call either way; through"
echo "the endpoint it is a watched pull (attempt 1 beside the disk gate and registry probe), answered with"
echo "containerd's own answer to the watched pull's PullImage."
echo

# PullImage: wall time, containerd's and pullwatch's CPU. One curl per pull (the request encoded once,
# beforehand), so no interpreter start-up dilutes the ratio; containerd's log gives each pull's
# PullImage calls as containerd saw them, for the breakdown below.
cpid=$(cat "$CONTAINERD_PIDFILE")
tick=$(getconf CLK_TCK)
python3 -c 'import struct, sys
img = sys.argv[1].encode(); inner = b"\x0a" + bytes([len(img)]) + img; spec = b"\x0a" + bytes([len(inner)]) + inner
sys.stdout.buffer.write(b"\0" + struct.pack(">I", len(spec)) + spec)' "$ref" >"$W/pull.req"
: >"$W/pulls"
pull_once() { # SOCK KIND -> a line of $W/pulls: KIND seconds containerd_ticks pullwatch_ticks t0 t1 logfile
	local t0 t1 c0 p0 n log=$W/pull.$2.$i.log
	cri "$CD" rm "$ref" >/dev/null 2>&1 || true
	n=$(wc -l <"$CONTAINERD_LOG")
	c0=$(cpu_of "$cpid"); p0=$(cpu_of "$dpid"); t0=$(now)
	curl -sS --http2-prior-knowledge --unix-socket "$1" -H 'content-type: application/grpc' -H 'te: trailers' \
		--data-binary @"$W/pull.req" -D "$W/pull.hdr" -o /dev/null http://localhost/runtime.v1.ImageService/PullImage
	t1=$(now)
	grep -qi '^grpc-status: *0' "$W/pull.hdr" || { echo "cri_endpoint.sh: PullImage via $1 failed:" >&2; cat "$W/pull.hdr" >&2; exit 1; }
	tail -n +$((n + 1)) "$CONTAINERD_LOG" | grep 'msg="PullImage ' >"$log" || true
	echo "$2 $(echo "$t1 - $t0" | bc) $(($(cpu_of "$cpid") - c0)) $(($(cpu_of "$dpid") - p0)) $t0 $t1 $log" >>"$W/pulls"
}
for ((i = 0; i < RUNS; i++)); do
	if ((i % 2 == 0)); then pull_once "$CD" direct; pull_once "$EP" through
	else pull_once "$EP" through; pull_once "$CD" direct; fi
done
col() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$W/pulls" | median; }
d=$(col direct 2); p=$(col through 2); dc=$(col direct 3); pc=$(col through 3); pwc=$(col through 4)
echo "| PullImage | containerd's socket | through pullwatch | ratio | containerd CPU direct / through | pullwatch CPU |"
echo "|---|---|---|---|---|---|"
printf '| 4 layers, 64 MiB | %.2fs | %.2fs | **%.3f** | %d ms / %d ms | %d ms |\n' "$d" "$p" "$(echo "$p / $d" | bc -l)" \
	$((${dc%.*} * 1000 / tick)) $((${pc%.*} * 1000 / tick)) $((${pwc%.*} * 1000 / tick))
echo
echo "Each pull: $(awk '$1 == "direct" {printf "%.2f ", $2}' "$W/pulls")s direct, $(awk '$1 == "through" {printf "%.2f ", $2}' "$W/pulls")s"
echo "through pullwatch."
echo
echo "Where the time goes (medians; containerd's own log lines \`PullImage \"...\"\` and \`... returns\` against"
echo "the call's start and end; through pullwatch containerd sees the watched pull's PullImage, and a"
echo "second one only when the endpoint had no answer of containerd's to give):"
echo
python3 - "$W/pulls" "$d" <<'PY'
import datetime, re, statistics, sys

direct_wall = float(sys.argv[2])
fixed = None

rows = {"direct": [], "through": []}
for line in open(sys.argv[1]):
    kind, wall, _, _, t0, t1, log = line.split()
    t0, t1 = float(t0), float(t1)
    ev = []
    for l in open(log):
        m = re.search(r'time="([0-9T:.-]+)(Z|[+-][0-9:]+)"', l)
        if not m:
            continue
        ts = m.group(1)[:26]
        ts = datetime.datetime.fromisoformat(ts + ("+00:00" if m.group(2) == "Z" else m.group(2))).timestamp()
        ev.append(("ret" if " returns " in l else "start", ts))
    starts = [t for k, t in ev if k == "start"]
    rets = [t for k, t in ev if k == "ret"]
    r = {"before": None, "pull": None, "between": None, "second": None, "after": None}
    if starts and rets:
        r["before"] = starts[0] - t0
        r["pull"] = rets[0] - starts[0]
        r["after"] = t1 - rets[-1]
        if len(starts) > 1 and len(rets) > 1:
            r["between"] = starts[1] - rets[0]
            r["second"] = rets[1] - starts[1]
    r["n"] = len(starts)
    rows[kind].append(r)


def med(kind, key):
    v = [r[key] for r in rows[kind] if r[key] is not None]
    return statistics.median(v) * 1000 if v else None


def ms(v):
    return "-" if v is None else "%.0f ms" % v


print("| part of the call | containerd's socket | through pullwatch | added |")
print("|---|---|---|---|")
for key, name in (("before", "call start to containerd's (first) PullImage: the watched pull's start (credentials, the lease; the liveness baseline, registry probe and disk gate start once PullImage is sent)"),
                  ("pull", "containerd's (first) PullImage"),
                  ("between", "its answer to the forwarded PullImage: ImageStatus confirm, the forward's connection"),
                  ("second", "the forwarded PullImage, the image there (containerd resolves the tag at the registry again)"),
                  ("after", "containerd's last answer to the caller's end")):
    d, t = med("direct", key), med("through", key)
    if key in ("between", "second"):
        if t is None:
            continue  # no second PullImage
        d = 0.0
    print("| %s | %s | %s | %s |" % (name, ms(d), ms(t), "-" if d is None or t is None else "%+.0f ms" % (t - d)))
    if key != "pull" and d is not None and t is not None:
        fixed = (fixed or 0) + t - d
print()
print("PullImage calls containerd saw per call through pullwatch: %s." % " ".join(str(r["n"]) for r in rows["through"]))
if fixed is not None:
    print()
    print("Outside containerd's own pull the endpoint adds **%+.0f ms** per call: %.1f %% of the direct pull's median"
          " (%.2f s); a ratio of 1.02 leaves %.0f ms on it." % (fixed, fixed / direct_wall / 10, direct_wall, direct_wall * 20))
PY
echo

# ImageStatus and ListImages: the image is there (the last pull went through the endpoint)
cri "$CD" pull "$ref" >/dev/null
a=$(cri "$EP" status "$ref"); b=$(cri "$CD" status "$ref")
[ "$a" = "$b" ] || { echo "cri_endpoint.sh: ImageStatus differs: $a / $b" >&2; exit 1; }
echo "ImageStatus of that image and ListImages ($(cri "$CD" list | jq '.images | length') image(s) in the store): $CALLS calls each way per"
echo "line, alternating call by call (the first of each pair swapped every call), from one python process"
echo "that speaks gRPC over h2c itself, after 5 warm-up calls each way; times from connect to the trailers."
echo
echo "| call | connection | containerd's socket | through pullwatch | added per call | ratio |"
echo "|---|---|---|---|---|---|"
python3 - "$CD" "$EP" "$ref" "$CALLS" <<'PY'
import socket, statistics, struct, sys, time

direct_sock, endpoint_sock, image, calls = sys.argv[1], sys.argv[2], sys.argv[3].encode(), int(sys.argv[4])
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"


def frame(kind, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload


def hstr(b):
    assert len(b) < 127
    return bytes([len(b)]) + b


def header_block(method):
    # HPACK, static table only, no Huffman: :method POST, :scheme http, :path, :authority,
    # content-type: application/grpc, te: trailers
    path = b"/runtime.v1.ImageService/" + method
    return (b"\x83\x86" + b"\x04" + hstr(path) + b"\x01" + hstr(b"localhost")
            + b"\x0f\x10" + hstr(b"application/grpc") + b"\x00" + hstr(b"te") + hstr(b"trailers"))


class Conn:
    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.s.sendall(PREFACE + frame(4, 0, 0))
        self.buf = b""
        self.next_id = 1

    def read_frame(self):
        while True:
            if len(self.buf) >= 9:
                n = int.from_bytes(self.buf[:3], "big")
                if len(self.buf) >= 9 + n:
                    kind, flags = self.buf[3], self.buf[4]
                    stream = int.from_bytes(self.buf[5:9], "big") & 0x7FFFFFFF
                    payload, self.buf = self.buf[9:9 + n], self.buf[9 + n:]
                    return kind, flags, stream, payload
            chunk = self.s.recv(65536)
            if not chunk:
                raise EOFError("connection closed")
            self.buf += chunk

    def call(self, method, message):
        sid = self.next_id
        self.next_id += 2
        body = b"\0" + struct.pack(">I", len(message)) + message
        self.s.sendall(frame(1, 0x4, sid, header_block(method)) + frame(0, 0x1, sid, body))
        data, ended = b"", False
        while True:
            kind, flags, stream, p = self.read_frame()
            if kind == 4 and not flags & 1:
                self.s.sendall(frame(4, 1, 0))
            elif kind == 6 and not flags & 1:
                self.s.sendall(frame(6, 1, 0, p))
            elif kind == 7:
                raise EOFError("GOAWAY")
            elif stream != sid:
                continue
            elif kind == 0:
                if flags & 0x8:
                    p = p[1:len(p) - p[0]]
                data += p
                if p:  # keep the connection's window open for the next calls
                    self.s.sendall(frame(8, 0, 0, struct.pack(">I", len(p))))
                if flags & 1:
                    ended = True
            elif kind == 3:
                raise EOFError("RST_STREAM")
            elif kind in (1, 9):
                ended = ended or bool(flags & 1)
                if ended and flags & 0x4:
                    break
        # an error is trailers only; an OK answer carries one message
        if len(data) < 5 or int.from_bytes(data[1:5], "big") != len(data) - 5:
            raise RuntimeError("%s: no answer message (an error?)" % method.decode())
        return data[5:]

    def close(self):
        self.s.close()


def spec():
    inner = b"\x0a" + bytes([len(image)]) + image
    return b"\x0a" + bytes([len(inner)]) + inner


def run(method, message, kept):
    conns = {s: Conn(s) for s in (direct_sock, endpoint_sock)} if kept else None
    times = {direct_sock: [], endpoint_sock: []}
    answers = {}

    def one(sock):
        t0 = time.perf_counter()
        c = conns[sock] if kept else Conn(sock)
        answers[sock] = c.call(method, message)
        if not kept:
            c.close()
        return time.perf_counter() - t0

    for i in range(5 + calls):
        order = (direct_sock, endpoint_sock) if i % 2 == 0 else (endpoint_sock, direct_sock)
        for sock in order:
            t = one(sock)
            if i >= 5:
                times[sock].append(t)
    if answers[direct_sock] != answers[endpoint_sock]:
        raise RuntimeError("%s: the answers differ" % method.decode())
    if kept:
        for c in conns.values():
            c.close()
    d, e = (statistics.median(times[s]) * 1000 for s in (direct_sock, endpoint_sock))
    diffs = [(b - a) * 1000 for a, b in zip(times[direct_sock], times[endpoint_sock])]
    print("| %s | %s | %.2f ms | %.2f ms | %+.2f ms (pairs: %+.2f ms) | **%.2f** |" % (
        method.decode(), "kept" if kept else "fresh per call", d, e, e - d, statistics.median(diffs), e / d))


for method, message in ((b"ImageStatus", spec()), (b"ListImages", b"")):
    for kept in (False, True):
        run(method, message, kept)
PY
echo
echo "Added per call: the difference of the medians (in brackets the median of the per-pair differences)."
echo "The pullwatch daemon runs with the default watchdog settings and binds \`cri.listen\` itself."
echo
kill -TERM "$dpid" 2>/dev/null || true
wait "$dpid" 2>/dev/null || true
dpid=
cri "$CD" rm "$ref" >/dev/null 2>&1 || true
