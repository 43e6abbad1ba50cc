#!/usr/bin/env bash
# Capture real seeds for fuzz_docker_stream and fuzz_grpc_frames from the bed's dockerd and containerd
# (root; starts and stops its own bed). gRPC bodies are stored as the harness reads them: one byte for
# the reply type (index into types[] of fuzz_grpc_frames.c), one split seed, then the HTTP/2 DATA bytes
# exactly as containerd sent them. Re-run after a containerd upgrade; review before committing.
#
# On another runtime row (BED_ROW=trixie|unstable, BED_DOCKER_STORE=containerd) only dockerd's streams
# are captured, named after that dockerd: dockerd<VERSION>[-cstore]-*.jsonl (tests/unit/
# test_docker_stream_seeds.c maps every message of those files to a phase).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=tests/fuzz/corpus
export BED_DIR=${BED_DIR:-$(mktemp -d /tmp/pwfz.XXXXXX)}
tests/bed/bed.sh start >/dev/null
trap 'tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true' EXIT
# shellcheck disable=SC1091
source "$BED_DIR/env"
prefix=dockerd
if [ "${BED_ROW:-bookworm}" != bookworm ] || [ "${BED_DOCKER_STORE:-classic}" != classic ]; then
	prefix=dockerd$BED_DOCKERD_VERSION
	[ "${BED_DOCKER_STORE:-classic}" = classic ] || prefix=$prefix-cstore
fi

proxy() { curl -sS --fail-with-body -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} "$PROXY_CONTROL$2" >/dev/null; }
img=$(python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo fz/seed --tag v1 --layers 2MiB,1MiB,256KiB)
big=$(jq -r '.layers[0].digest' <<<"$img")

# --- dockerd: a throttled pull (progress lines), a reset one (dockerd retries), a missing tag
dpull() { curl -sS --max-time 120 --unix-socket "$DOCKER_SOCK" -X POST "http://localhost/images/create?fromImage=$1&tag=$2"; }
proxy POST /rules "{\"digest\":\"$big\",\"throttle\":400000}"
dpull "$PROXY_ADDR/fz/seed" v1 >"$out/fuzz_docker_stream/$prefix-throttled-pull.jsonl"
proxy DELETE /rules
curl -sS --unix-socket "$DOCKER_SOCK" -X DELETE "http://localhost/images/$PROXY_ADDR/fz/seed:v1?force=1" >/dev/null
proxy POST /rules "{\"digest\":\"$big\",\"reset_at\":524288,\"first\":1}"
dpull "$PROXY_ADDR/fz/seed" v1 >"$out/fuzz_docker_stream/$prefix-reset-retry.jsonl" || true
proxy DELETE /rules
# the same pull again: up to date, except on the containerd store, where the reset failed the pull
again=up-to-date
[ "${BED_DOCKER_STORE:-classic}" = classic ] || again=after-failed-pull
dpull "$PROXY_ADDR/fz/seed" nope >"$out/fuzz_docker_stream/$prefix-not-found.jsonl" || true
curl -sS --unix-socket "$DOCKER_SOCK" -X POST "http://localhost/images/create?fromImage=$PROXY_ADDR/fz/seed&tag=v1" \
	-H 'X-Registry-Auth: e30=' >"$out/fuzz_docker_stream/$prefix-$again.jsonl"
if [ "$prefix" != dockerd ]; then
	# a layer whose decompression takes 4 s (the unpigz wrapper's slow mode): the Extracting messages
	curl -sS --unix-socket "$DOCKER_SOCK" -X DELETE "http://localhost/images/$PROXY_ADDR/fz/seed:v1?force=1" >/dev/null
	echo slow:4 >"$UNPIGZ_MODE_FILE"
	dpull "$PROXY_ADDR/fz/seed" v1 >"$out/fuzz_docker_stream/$prefix-slow-extract.jsonl"
	echo real >"$UNPIGZ_MODE_FILE"
	ls -l "$out/fuzz_docker_stream/$prefix"-*
	exit 0
fi

# --- containerd: raw gRPC replies, some taken while a CRI pull is under way
b() { python3 -c 'import sys
def v(n):
    o=bytearray()
    while True:
        x=n&0x7f; n>>=7
        o.append(x|0x80 if n else x)
        if not n: return bytes(o)
def f(num,d): return v(num<<3|2)+v(len(d))+d
args=sys.argv[1:]
msg=b""
while args:
    num,val=int(args[0]),args[1].encode(); args=args[2:]
    msg+=f(num,val)
sys.stdout.buffer.write(b"\0"+len(msg).to_bytes(4,"big")+msg)' "$@"; }
grpc() { # TYPE SEED PATH NAME [field value]...
	local t=$1 s=$2 p=$3 n=$4 tmp
	shift 4
	tmp=$(mktemp)
	b "$@" >"$tmp.req"
	curl -sS --http2-prior-knowledge --unix-socket "$CONTAINERD_SOCK" --max-time 30 \
		-H 'content-type: application/grpc' -H 'te: trailers' -H 'containerd-namespace: k8s.io' \
		--data-binary "@$tmp.req" -o "$tmp" "http://localhost$p"
	{ printf "\\x$(printf %02x "$t")\\x$(printf %02x "$s")"; cat "$tmp"; } >"$out/fuzz_grpc_frames/$n"
	rm -f "$tmp" "$tmp.req"
}
spec() { b 1 "$1" | tail -c +6; } # ImageSpec{image}, unframed
ref="$PROXY_ADDR/fz/seed:v1"
grpc 9 1 /containerd.services.version.v1.Version/Version version
proxy POST /rules "{\"digest\":\"$big\",\"throttle\":200000}"
python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" pull "$ref" >/dev/null &
pull=$!
sleep 4
grpc 2 7 /containerd.services.content.v1.Content/ListStatuses list-statuses-during-pull
grpc 3 3 /containerd.services.content.v1.Content/List list-content-during-pull
grpc 7 5 /containerd.services.leases.v1.Leases/List leases-during-pull
lease=$(python3 -c 'import sys; sys.path.insert(0, "tests/bed"); from cri import decode
d = open(sys.argv[1], "rb").read()[7:]
ls = decode(d).get(1, [])
print(decode(ls[0])[1][0].decode() if ls else "")' "$out/fuzz_grpc_frames/leases-during-pull")
[ -n "$lease" ] && grpc 8 2 /containerd.services.leases.v1.Leases/ListResources lease-resources-during-pull 1 "$lease"
wait $pull
proxy DELETE /rules
grpc 5 4 /containerd.services.snapshots.v1.Snapshots/List snapshots-overlayfs 1 overlayfs
grpc 3 11 /containerd.services.content.v1.Content/List list-content-after-pull
grpc 4 6 /containerd.services.content.v1.Content/Info info-layer 1 "$big"
grpc 6 8 /containerd.services.leases.v1.Leases/Create lease-create 1 pullwatch-fuzz-seed
grpc 0 9 /containerd.services.leases.v1.Leases/Delete lease-delete 1 pullwatch-fuzz-seed
grpc 1 10 /runtime.v1.ImageService/ImageStatus image-status 1 "$(spec "$ref")"
grpc 0 12 /runtime.v1.ImageService/PullImage pull-image 1 "$(spec "$ref")"
ls -l "$out/fuzz_docker_stream" "$out/fuzz_grpc_frames"
