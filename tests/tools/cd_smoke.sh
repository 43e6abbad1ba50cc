#!/usr/bin/env bash
# cd_smoke.sh: the containerd probes against real components: the bed's containerd 1.6 (CRI), registry and
# faultproxy, driven by tests/tools/cdpull. Prints measured facts and ends with "N passed, N failed".
#   tests/tools/cd_smoke.sh            (BUILD=build by default; needs root, like the bed)
# Scenarios: version and bad sockets; a multi-layer pull with per-layer phases and ImageStatus digest;
# a layer stalled forever mid-way, cancelled, retried: resumed with Range, bytes served vs image size,
# no pullwatch lease left; not-found fails at once; the watcher sees a pull another CRI client started.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PKGS="libcurl jansson libsystemd yaml-0.1 libprotobuf-c"

make -s "$BUILD/libpullwatch.a"
cc -std=gnu11 -O1 -g -D_GNU_SOURCE -DPULLWATCH_VERSION=\"smoke\" -I. -I"$BUILD/gen" $(pkg-config --cflags $PKGS) \
        -o "$BUILD/cdpull" tests/tools/cdpull.c "$BUILD/libpullwatch.a" $(pkg-config --libs $PKGS) -lm

BED_DIR=$(mktemp -d /tmp/pwbed.XXXXXX)
export BED_DIR
trap 'tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true' EXIT
tests/bed/bed.sh start --no-docker >/dev/null
# shellcheck disable=SC1091
source "$BED_DIR/env"
CDPULL=("$BUILD/cdpull" -s "$CONTAINERD_SOCK")
OUT=$(mktemp -d /tmp/cd_smoke.XXXXXX)
passed=0 failed=0

check() { # description command...
        local d=$1
        shift
        if "$@"; then
                echo "ok   $d"
                passed=$((passed + 1))
        else
                echo "FAIL $d"
                failed=$((failed + 1))
        fi
}
push() { python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo "$1" --tag v1 --layers "$2"; }
rules() { curl -fsS -X PUT --data-binary "$1" "$PROXY_CONTROL/rules" >/dev/null; }
counters() { curl -fsS "$PROXY_CONTROL/counters"; }
no_leases() { [ -z "$("${CDPULL[@]}" -l)" ]; }

# --- sockets
"${CDPULL[@]}" -v >"$OUT/version"
check "version answers: $(cat "$OUT/version")" grep -q '^1\.' "$OUT/version"
"$BUILD/cdpull" -s /nonexistent/containerd.sock -v >"$OUT/nosock" || true
check "missing socket named: $(cat "$OUT/nosock")" grep -q '/nonexistent/containerd.sock: no such socket' "$OUT/nosock"
"$BUILD/cdpull" -s "$CONTAINERD_SOCK.ttrpc" -v >"$OUT/ttrpc" || true
check "ttrpc socket is not containerd's: $(cat "$OUT/ttrpc")" grep -q 'not a containerd socket' "$OUT/ttrpc"

# --- a multi-layer pull through the proxy
push smoke/multi 24MiB,12MiB,6MiB,1MiB >"$OUT/multi.json"
rules '[{"throttle": 16000000}]'
curl -fsS -X POST "$PROXY_CONTROL/counters" >/dev/null
"${CDPULL[@]}" "$PROXY_ADDR/smoke/multi:v1" >"$OUT/multi.log"
want=$(jq -r .manifest_digest "$OUT/multi.json")
check "multi-layer pull succeeds with the manifest digest" grep -q "finished error=none digest=$want" "$OUT/multi.log"
for l in $(jq -r '.layers[].digest' "$OUT/multi.json"); do
        check "layer ${l:7:12} reaches done" grep -q "layer=${l:0:19} phase=done" "$OUT/multi.log"
done
check "bytes seen moving (downloading lines)" grep -q 'phase=downloading' "$OUT/multi.log"
"${CDPULL[@]}" -i "$PROXY_ADDR/smoke/multi:v1" >"$OUT/multi.status"
check "ImageStatus gives the digest: $(cat "$OUT/multi.status")" grep -q "digest=$want" "$OUT/multi.status"
check "no pullwatch lease left after success" no_leases
echo "     polling: $(tail -1 "$OUT/multi.log")"

# --- stalled forever mid-layer, cancelled, retried: resumed
push smoke/stall 48MiB,4MiB >"$OUT/stall.json"
big=$(jq -r '.layers[0].digest' "$OUT/stall.json")
size=$(jq -r '.total_blob_bytes' "$OUT/stall.json")
rules "[{\"digest\": \"$big\", \"first\": 1, \"stall_at\": 20000000, \"throttle\": 16000000},
        {\"throttle\": 16000000}]"
curl -fsS -X POST "$PROXY_CONTROL/counters" >/dev/null
"${CDPULL[@]}" -t 3 -d 2 "$PROXY_ADDR/smoke/stall:v1" >"$OUT/stall.log"
curl -fsS -X POST "$PROXY_CONTROL/release" >/dev/null
counters >"$OUT/stall.counters"
served=$(jq -r '[.blobs[].bytes] | add' "$OUT/stall.counters")
ranges=$(jq -r --arg d "$big" '.blobs[$d].range_requests' "$OUT/stall.counters")
check "stall seen and cancelled" grep -q 'attempt=1 stalled' "$OUT/stall.log"
check "retry succeeds" grep -q 'attempt=2 finished error=none' "$OUT/stall.log"
check "retry resumed with Range ($ranges range requests)" test "$ranges" -ge 1
check "bytes served $served < 1.25 x image $size" test "$served" -lt $((size * 5 / 4))
check "no pullwatch lease left" no_leases

# --- not found fails at once and leaves no lease
start=$(date +%s%N)
"${CDPULL[@]}" "$PROXY_ADDR/smoke/absent:v1" >"$OUT/absent.log" || true
ms=$((($(date +%s%N) - start) / 1000000))
check "not found is permanent, in ${ms} ms" grep -q 'finished error=permanent.*NotFound' "$OUT/absent.log"
check "no lease left after a permanent failure" no_leases

# --- the watcher sees a pull started by another CRI client
push smoke/watched 16MiB,8MiB >"$OUT/watched.json"
rules '[{"throttle": 8000000}]'
"${CDPULL[@]}" -w 12 >"$OUT/watch.log" &
watcher=$!
sleep 1
python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" pull "$PROXY_ADDR/smoke/watched:v1" >/dev/null
wait "$watcher"
w=$(jq -r '.layers[0].digest' "$OUT/watched.json")
check "watcher saw the layer download" grep -q "layer=${w:0:19} phase=downloading" "$OUT/watch.log"
check "watcher grouped it by image" grep -q "image=127.0.0.1/smoke/watched@" "$OUT/watch.log"
check "watcher saw it done" grep -q "layer=${w:0:19} gone done=1" "$OUT/watch.log"

echo "logs: $OUT"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
