#!/usr/bin/env bash
# make bench: every claim pullwatch makes about cost and behaviour, measured side by side in one run
# on the bed's real components, printed as ratios and written to bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
OUT=bench/results.md
RUNS=${BENCH_RUNS:-5}
mkdir -p bench
exec > >(tee "$OUT.tmp")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

echo "# pullwatch benchmark"
echo
echo "Run $(date -u +%FT%TZ) on $(nproc) cores, $(uname -r), pullwatch $("$PW" --version | cut -d' ' -f2)."
echo "Every number below was measured in this run; ratios compare runs made side by side."
echo
echo "## Stall matrix: pullwatch vs the peers' cancel rules"
echo
echo "The same scripted timelines replayed through pullwatch's detector and each peer's documented rule"
echo "(tests/unit/test_replay.c checks the same table)."
echo
"$BUILD/bench_policies"
echo

BED_DIR=$(mktemp -d /tmp/pwbench.XXXXXX)
export BED_DIR
cleanup() { tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT
tests/bed/bed.sh start >/dev/null 2>"$BED_DIR.log" || { cat "$BED_DIR.log" >&2; exit 1; }
# shellcheck disable=SC1091
source "$BED_DIR/env"
cat >"$BED_DIR/pw.yaml" <<YAML
docker:
  socket: $DOCKER_SOCK
containerd:
  socket: $CONTAINERD_SOCK
credentials: ["$BED_DIR/none.json"]
YAML
push() { python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo "$1" --tag "$2" --layers "$3" --cache "$BED_DIR/cache" >/dev/null; }
rmi() { curl -fsS -X DELETE --unix-socket "$DOCKER_SOCK" "http://x/images/$1?force=1" >/dev/null 2>&1 || true; }
direct_docker() { # the same pull through the Engine API with nothing watching it
	local from=${1%:*} tag=${1##*:}
	curl -fsS -X POST --unix-socket "$DOCKER_SOCK" "http://x/images/create?fromImage=$from&tag=$tag" >/dev/null
}

echo "## Docker: pull wall time through pullwatch vs the same pull issued directly"
echo
push bench/big v1 40MiB,40MiB,20MiB,20MiB
ref=$PROXY_ADDR/bench/big:v1
pw_times=() direct_times=()
for ((i = 0; i < RUNS; i++)); do
	rmi "$ref"; t0=$(now); direct_docker "$ref"; direct_times+=("$(echo "$(now) - $t0" | bc)")
	rmi "$ref"; t0=$(now); "$PW" pull --config "$BED_DIR/pw.yaml" --runtime docker --json "$ref" >/dev/null
	pw_times+=("$(echo "$(now) - $t0" | bc)")
done
d=$(printf '%s\n' "${direct_times[@]}" | median); p=$(printf '%s\n' "${pw_times[@]}" | median)
echo "| image | direct (median of $RUNS) | through pullwatch | ratio |"
echo "|---|---|---|---|"
printf '| 4 layers, 120 MiB | %.2fs | %.2fs | **%.2f** |\n' "$d" "$p" "$(echo "$p / $d" | bc -l)"
echo

echo "## pullwatch's own cost while watching pulls"
echo
echo "| pulls at once | image bytes | pullwatch CPU s | CPU s per pulled GB | peak RSS (max of the processes) |"
echo "|---|---|---|---|---|"
for n in 1 8; do
	for ((i = 0; i < n; i++)); do push "bench/c$i" v1 "32MiB,32MiB" ; rmi "$PROXY_ADDR/bench/c$i:v1"; done
	pids=()
	for ((i = 0; i < n; i++)); do
		/usr/bin/time -f '%U %S %M' -o "$BED_DIR/time.$i" "$PW" pull --config "$BED_DIR/pw.yaml" --runtime docker --json \
			"$PROXY_ADDR/bench/c$i:v1" >/dev/null &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done
	cpu=$(cat "$BED_DIR"/time.* | awk '{s += $1 + $2} END {print s}')
	rss=$(cat "$BED_DIR"/time.* | awk '{if ($3 > m) m = $3} END {print m}')
	bytes=$((n * 64 * 1024 * 1024))
	if [ "$(echo "$cpu < 0.01" | bc -l)" = 1 ]; then
		# /usr/bin/time counts in 10 ms ticks: below one tick is all it can say
		printf '| %d | %d MiB | < 0.01 | < %.3f | %d KiB |\n' "$n" $((bytes / 1048576)) \
			"$(echo "0.01 / ($bytes / 1000000000)" | bc -l)" "$rss"
	else
		printf '| %d | %d MiB | %.3f | %.3f | %d KiB |\n' "$n" $((bytes / 1048576)) "$cpu" \
			"$(echo "$cpu / ($bytes / 1000000000)" | bc -l)" "$rss"
	fi
	rm -f "$BED_DIR"/time.*
done
echo

echo "## Resume: registry bytes for a pull with one mid-layer reset, over the image size"
echo
push bench/resume v1 30MiB
layer=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/resume --tag v1 --layers 30MiB --cache "$BED_DIR/cache" | jq -r '.layers[0].digest')
size=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/resume --tag v1 --layers 30MiB --cache "$BED_DIR/cache" | jq -r '.total_bytes')
curl -fsS -X POST "$PROXY_CONTROL/counters/reset" >/dev/null 2>&1 || curl -fsS -X DELETE "$PROXY_CONTROL/counters" >/dev/null 2>&1 || true
curl -fsS -X POST -d "{\"digest\":\"$layer\",\"reset_at\":15728640,\"first\":1}" "$PROXY_CONTROL/rules" >/dev/null
rmi "$PROXY_ADDR/bench/resume:v1"
"$PW" pull --config "$BED_DIR/pw.yaml" --runtime docker --json "$PROXY_ADDR/bench/resume:v1" >"$BED_DIR/resume.json"
served=$(curl -fsS "$PROXY_CONTROL/counters" | jq --arg d "$layer" '.blobs[$d].bytes')
echo "| runtime | layer size | bytes served | ratio |"
echo "|---|---|---|---|"
printf '| docker (resumes with Range inside one pull) | %d | %d | **%.2f** |\n' "$size" "$served" "$(echo "$served / $size" | bc -l)"
curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null 2>&1 || true
echo

echo "## containerd: pull wall time through pullwatch vs the same CRI PullImage issued directly"
echo
cri() { python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" "$@"; }
cpu_of() { awk '{print $14 + $15}' "/proc/$1/stat"; } # clock ticks
cpid=$(cat "$CONTAINERD_PIDFILE")
tick=$(getconf CLK_TCK)
pw_times=() direct_times=() pw_cpu=() direct_cpu=()
for ((i = 0; i < RUNS; i++)); do
	cri rm "$ref" >/dev/null 2>&1 || true
	c0=$(cpu_of "$cpid"); t0=$(now); cri pull "$ref" >/dev/null
	direct_times+=("$(echo "$(now) - $t0" | bc)"); direct_cpu+=("$(( $(cpu_of "$cpid") - c0 ))")
	cri rm "$ref" >/dev/null 2>&1 || true
	c0=$(cpu_of "$cpid"); t0=$(now)
	"$PW" pull --config "$BED_DIR/pw.yaml" --runtime containerd --json "$ref" >/dev/null
	pw_times+=("$(echo "$(now) - $t0" | bc)"); pw_cpu+=("$(( $(cpu_of "$cpid") - c0 ))")
done
d=$(printf '%s\n' "${direct_times[@]}" | median); p=$(printf '%s\n' "${pw_times[@]}" | median)
dc=$(printf '%s\n' "${direct_cpu[@]}" | median); pc=$(printf '%s\n' "${pw_cpu[@]}" | median)
echo "| image | direct (median of $RUNS) | through pullwatch | ratio | containerd CPU direct | containerd CPU watched |"
echo "|---|---|---|---|---|---|"
printf '| 4 layers, 120 MiB | %.2fs | %.2fs | **%.2f** | %d ms | %d ms |\n' "$d" "$p" "$(echo "$p / $d" | bc -l)" \
	$((dc * 1000 / tick)) $((pc * 1000 / tick))
echo
echo "The difference in containerd CPU is what pullwatch's ListStatuses/Content/Snapshots polling costs"
echo "containerd for one pull (CLK_TCK granularity: $((1000 / tick)) ms)."
echo

echo "## Detection latency on the real dockerd (network_stall 6s, hang_quiet 6s, sample 1s)"
echo
cat >"$BED_DIR/fast.yaml" <<YAML
docker:
  socket: $DOCKER_SOCK
credentials: ["$BED_DIR/none.json"]
watchdog:
  sample_interval: 1s
  network_stall: 6s
  hang_quiet: 6s
  silent_min: 3s
retry:
  attempts: 3
  backoff: 1s
  backoff_max: 1s
YAML
latency() { # events-file verdict: seconds from the layer's last sign of life to the verdict
	jq -s -r --arg v "$2" '(map(select(.event=="verdict" and .verdict==$v)) | first) as $e
		| (map(select((.event=="phase" or .event=="progress") and .layer==$e.layer and .t <= $e.t)) | last | .t) as $tl
		| ($e.t - $tl)' "$1"
}
echo "| fault | verdict | seconds after the last sign of life | budget |"
echo "|---|---|---|---|"
layer=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/stall --tag v1 --layers 4MiB --cache "$BED_DIR/cache" | jq -r '.layers[0].digest')
curl -fsS -X PUT -d "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}" "$PROXY_CONTROL/rules" >/dev/null
"$PW" pull --config "$BED_DIR/fast.yaml" --runtime docker --json "$PROXY_ADDR/bench/stall:v1" >"$BED_DIR/stall.json" || true
curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null
printf '| blob stalled forever mid-layer | stalled | %.2f | 6 s + one sample |\n' "$(latency "$BED_DIR/stall.json" stalled)"
push bench/asleep v1 2MiB
echo sleep >"$UNPIGZ_MODE_FILE"
( while ! grep -q '"kill-helper"' "$BED_DIR/asleep.json" 2>/dev/null; do sleep 0.2; done; echo real >"$UNPIGZ_MODE_FILE" ) &
fixer=$!
"$PW" pull --config "$BED_DIR/fast.yaml" --runtime docker --json "$PROXY_ADDR/bench/asleep:v1" >"$BED_DIR/asleep.json" || true
wait "$fixer" # not a bare wait: that would also wait for the tee collecting this output
printf '| decompressor asleep | hung | %.2f | 6 s + one sample |\n' "$(latency "$BED_DIR/asleep.json" hung)"
echo

echo "## Preheat: a 10-image list through the daemon vs a sequential docker pull loop"
echo
for ((i = 0; i < 10; i++)); do push "bench/pre$i" v1 8MiB; done
for ((i = 0; i < 10; i++)); do rmi "$PROXY_ADDR/bench/pre$i:v1"; done
t0=$(now); for ((i = 0; i < 10; i++)); do direct_docker "$PROXY_ADDR/bench/pre$i:v1"; done; seq_t=$(echo "$(now) - $t0" | bc)
for ((i = 0; i < 10; i++)); do rmi "$PROXY_ADDR/bench/pre$i:v1"; done
mkdir -p "$BED_DIR/pre"
for ((i = 0; i < 10; i++)); do echo "- $PROXY_ADDR/bench/pre$i:v1"; done >"$BED_DIR/pre/list.yaml"
cat >"$BED_DIR/daemon.yaml" <<YAML
runtime: docker
docker:
  socket: $DOCKER_SOCK
credentials: ["$BED_DIR/none.json"]
control_socket: $BED_DIR/control.sock
state_dir: $BED_DIR/pre
preheat:
  list: $BED_DIR/pre/list.yaml
  concurrency: 2
  splay: 0s
YAML
t0=$(now)
"$PW" daemon --config "$BED_DIR/daemon.yaml" >"$BED_DIR/daemon.log" 2>&1 &
dpid=$!
until "$PW" status --config "$BED_DIR/daemon.yaml" --json 2>/dev/null | jq -e '.summary | test("10/10 ready")' >/dev/null; do sleep 0.1; done
pre_t=$(echo "$(now) - $t0" | bc)
kill -TERM "$dpid"; wait "$dpid" || true
echo "| sequential docker pull loop | pullwatch daemon (concurrency 2, splay 0) | ratio |"
echo "|---|---|---|"
printf '| %.2fs | %.2fs | **%.2f** |\n' "$seq_t" "$pre_t" "$(echo "$pre_t / $seq_t" | bc -l)"
echo

echo "## Cost of one liveness sample"
echo
dpid=$(cat "$DOCKER_PIDFILE")
echo '```'
"$BUILD/bench_probes" -n 200 "$dpid" "$DOCKER_ROOT/overlay2" diff
echo '```'
echo "processes on this machine: $(ls -d /proc/[0-9]* | wc -l)"
echo

echo "## Timeline of one faulted pull"
echo
# A layer stalled forever at 2 MiB on the first attempt (proxy rule, as in stall_matrix_docker.bats)
# and a slow but working decompressor (unpigz slow:6), on test budgets: the stall must be cut and
# retried, the silent extractions left alone. tests/bench/timeline.sh draws it from the --json events.
tl_img=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/timeline --tag v1 \
	--layers 6MiB,3MiB,2MiB,1MiB --cache "$BED_DIR/cache")
tl_big=$(jq -r '.layers[0].digest' <<<"$tl_img")
tl_rule() { curl -fsS -X POST -H 'Content-Type: application/json' --data-binary "$1" "$PROXY_CONTROL/rules" >/dev/null; }
curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null
tl_rule "{\"digest\":\"$tl_big\",\"throttle\":500000,\"stall_at\":2097152,\"stall_for\":\"forever\",\"first\":1}"
for d in $(jq -r '.layers[].digest' <<<"$tl_img"); do tl_rule "{\"digest\":\"$d\",\"throttle\":500000}"; done
cat >"$BED_DIR/timeline.yaml" <<YAML
docker: {socket: $DOCKER_SOCK}
credentials: ["$BED_DIR/none.json"]
watchdog: {sample_interval: 1s, network_stall: 6s, silent_min: 3s, silent_min_rate: 100MiB, hang_quiet: 6s,
           livelock_window: 8s, trickle_rate: 64KiB, trickle_window: 8s}
retry: {attempts: 4, backoff: 1s, backoff_max: 2s}
YAML
printf 'slow:6\n' >"$UNPIGZ_MODE_FILE.tmp" && mv -f "$UNPIGZ_MODE_FILE.tmp" "$UNPIGZ_MODE_FILE"
rmi "$PROXY_ADDR/bench/timeline:v1"
tl_rc=0
timeout 300 "$PW" pull --config "$BED_DIR/timeline.yaml" --runtime docker --json "$PROXY_ADDR/bench/timeline:v1" \
	>bench/timeline.json 2>"$BED_DIR/timeline.err" || tl_rc=$?
printf 'real\n' >"$UNPIGZ_MODE_FILE.tmp" && mv -f "$UNPIGZ_MODE_FILE.tmp" "$UNPIGZ_MODE_FILE"
curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null
if tests/bench/timeline.sh bench/timeline.json bench/timeline.png \
	"faulted pull: layer ${tl_big:7:12} stalled forever at 2 MiB on attempt 1, unpigz slow but working" >/dev/null; then
	echo "![timeline](timeline.png)"
	echo
	echo "\`bench/timeline.png\` (events in \`bench/timeline.json\`, exit $tl_rc): one row per layer, phases as"
	echo "coloured spans, the downloaded fraction as a line (flat = no bytes), verdicts and cuts marked."
	jq -s -r '
		(map(select(.event == "verdict" and .verdict == "stalled")) | first) as $s
		| (map(select(.event == "result")) | first) as $r
		| "Stalled: layer \($s.layer // "none") at \($s.t // "-")s (\($s.evidence // "-")); cut and retried: "
		  + "\(map(select(.event == "retry")) | length) time(s); silent-alive verdicts (not cancelled): "
		  + "\(map(select(.event == "verdict" and .verdict == "silent-alive")) | length); result: "
		  + "\(if $r.ok then "ok" else "FAILED" end) after \($r.attempts // "?") attempts, \($r.elapsed_s // "?")s."' \
		bench/timeline.json
else
	echo "(timeline not drawn: see tests/bench/timeline.sh; events in bench/timeline.json, exit $tl_rc)"
fi
echo

BUILD=$BUILD tests/bench/fleet.sh
echo "## Docker on the containerd image store (Docker 29's default)"
echo
# The same measurements on dockerd 28.5.2 with features.containerd-snapshotter, pulling through
# containerd 2.1.9 (the bed's unstable row, BED_DOCKER_STORE=containerd): the store a fresh Docker 29
# install uses. The peer table above replays timelines through each peer's rule and does not depend
# on the store; what the store changes is measured here on the real daemons.
tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true
if ! tests/bed/rows.sh fetch unstable >"$BED_DIR.rows.log" 2>&1; then
	echo "(not measured: the unstable row's runtimes could not be fetched; see $BED_DIR.rows.log)"
else
	BED_DIR=$(mktemp -d /tmp/pwbench.XXXXXX)
	export BED_DIR
	BED_ROW=unstable BED_DOCKER_STORE=containerd tests/bed/bed.sh start >/dev/null 2>"$BED_DIR.log" ||
		{ cat "$BED_DIR.log" >&2; exit 1; }
	# shellcheck disable=SC1091
	source "$BED_DIR/env"
	printf 'docker:\n  socket: %s\ncredentials: ["%s/none.json"]\n' "$DOCKER_SOCK" "$BED_DIR" >"$BED_DIR/pw.yaml"
	echo "dockerd $BED_DOCKERD_VERSION, containerd $BED_CONTAINERD_VERSION, $(curl -fsS --unix-socket "$DOCKER_SOCK" \
		http://x/info | jq -r '[.Driver, (.DriverStatus // [] | map(join("=")) | join(" "))] | join(", ")')."
	echo
	push bench/big v1 40MiB,40MiB,20MiB,20MiB
	ref=$PROXY_ADDR/bench/big:v1
	pw_times=() direct_times=()
	for ((i = 0; i < RUNS; i++)); do
		rmi "$ref"; t0=$(now); direct_docker "$ref"; direct_times+=("$(echo "$(now) - $t0" | bc)")
		rmi "$ref"; t0=$(now); "$PW" pull --config "$BED_DIR/pw.yaml" --runtime docker --json "$ref" >/dev/null
		pw_times+=("$(echo "$(now) - $t0" | bc)")
	done
	d=$(printf '%s\n' "${direct_times[@]}" | median); p=$(printf '%s\n' "${pw_times[@]}" | median)
	echo "| pull wall time | direct (median of $RUNS) | through pullwatch | ratio |"
	echo "|---|---|---|---|"
	printf '| 4 layers, 120 MiB | %.2fs | %.2fs | **%.2f** |\n' "$d" "$p" "$(echo "$p / $d" | bc -l)"
	echo
	cat >"$BED_DIR/fast.yaml" <<YAML
docker:
  socket: $DOCKER_SOCK
credentials: ["$BED_DIR/none.json"]
watchdog:
  sample_interval: 1s
  network_stall: 6s
  hang_quiet: 6s
  silent_min: 3s
retry:
  attempts: 3
  backoff: 1s
  backoff_max: 1s
YAML
	# A reset mid-layer fails the whole pull on this store (dockerd retries no layer itself) and dockerd
	# drops its lease; pullwatch's lease keeps the partial ingest for its retry.
	img=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/resume --tag v1 --layers 30MiB \
		--cache "$BED_DIR/cache")
	layer=$(jq -r '.layers[0].digest' <<<"$img"); size=$(jq -r '.total_bytes' <<<"$img")
	curl -fsS -X POST "$PROXY_CONTROL/reset" >/dev/null
	curl -fsS -X POST -d "{\"digest\":\"$layer\",\"reset_at\":15728640,\"first\":1}" "$PROXY_CONTROL/rules" >/dev/null
	"$PW" pull --config "$BED_DIR/fast.yaml" --runtime docker --json "$PROXY_ADDR/bench/resume:v1" \
		>"$BED_DIR/resume.json" 2>/dev/null || true
	served=$(curl -fsS "$PROXY_CONTROL/counters" | jq --arg d "$layer" '.blobs[$d].bytes')
	curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null
	echo "| resume after a mid-layer reset | layer size | bytes served | ratio | attempts |"
	echo "|---|---|---|---|---|"
	printf '| pullwatch retry, its lease holding the ingest | %d | %d | **%.2f** | %s |\n' "$size" "$served" \
		"$(echo "$served / $size" | bc -l)" "$(jq -s -r 'map(select(.event=="result")) | first | .attempts' "$BED_DIR/resume.json")"
	echo
	echo "| fault (network_stall 6s, hang_quiet 6s, sample 1s) | verdict | seconds after the last sign of life |"
	echo "|---|---|---|"
	layer=$(python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/stall --tag v1 --layers 4MiB \
		--cache "$BED_DIR/cache" | jq -r '.layers[0].digest')
	curl -fsS -X PUT -d "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}" \
		"$PROXY_CONTROL/rules" >/dev/null
	"$PW" pull --config "$BED_DIR/fast.yaml" --runtime docker --json "$PROXY_ADDR/bench/stall:v1" >"$BED_DIR/stall.json" || true
	curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null
	printf '| blob stalled forever mid-layer | stalled | %.2f |\n' "$(latency "$BED_DIR/stall.json" stalled)"
	push bench/asleep v1 2MiB
	echo sleep >"$UNPIGZ_MODE_FILE"
	( while ! grep -q '"kill-helper"' "$BED_DIR/asleep.json" 2>/dev/null; do sleep 0.2; done; echo real >"$UNPIGZ_MODE_FILE" ) &
	fixer=$!
	"$PW" pull --config "$BED_DIR/fast.yaml" --runtime docker --json "$PROXY_ADDR/bench/asleep:v1" >"$BED_DIR/asleep.json" || true
	wait "$fixer"
	printf '| decompressor (containerd'"'"'s child) asleep | hung | %.2f |\n' "$(latency "$BED_DIR/asleep.json" hung)"
	echo
fi

mv "$OUT.tmp" "$OUT"
