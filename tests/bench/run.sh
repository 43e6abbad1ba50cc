#!/usr/bin/env bash
# make bench: every claim pullwatch makes about cost and behaviour, measured side by side in one run
# on the bed's real components, printed as ratios and written to bench/results.md.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
# a part of the bench: BENCH_SECTIONS="pull preheat" (of policies pull cri guard resume peers preheat load
# scale once fleet; default all), BENCH_ROWS="unstable" for one row; BENCH_OUT elsewhere than bench/results.md
SECTIONS=" ${BENCH_SECTIONS:-all} "
want() { [[ "$SECTIONS" == *" all "* || "$SECTIONS" == *" $1 "* ]]; }
OUT=${BENCH_OUT:-bench/results.md}
RUNS=${BENCH_RUNS:-5}
# pulls of the bigger image (4 x 256 MiB) for the marginal CPU per GB, each runtime
BIG_RUNS=${BENCH_BIG_RUNS:-3}
# each fault verdict's lateness is measured this many times (the table shows the maximum)
VERDICT_RUNS=${BENCH_VERDICT_RUNS:-3}
# the rows measured, each as ROW[/STORE] (STORE: dockerd's image store, classic or containerd)
ROWS=${BENCH_ROWS:-bookworm trixie unstable unstable/containerd}
# the rows where tests/bench/load.sh runs (a 2,000-image list and 50 guarded pulls: minutes each)
LOAD_ROWS=${BENCH_LOAD_ROWS:-bookworm unstable}
# the faulted pulls' --json events, kept for a second look (not in the repository)
EVENTS_DIR=${BENCH_EVENTS:-/tmp/pwbench-events}
mkdir -p bench
exec > >(tee "$OUT.tmp")

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2}'; }
now() { date +%s.%N; }

echo "# pullwatch benchmark"
echo
echo "Run $(date -u +%FT%TZ) on $(nproc) cores, $(uname -r), pullwatch $("$PW" --version | cut -d' ' -f2)."
echo "Every number below was measured in this run; ratios compare runs made side by side. Machine load at"
echo "the start (uptime): $(uptime | sed 's/^ *//'). The machine is shared: other test beds may be running."
echo "Each runtime row has its own section; every pull-time ratio is the median of $RUNS pulls each way,"
echo "alternating (BENCH_RUNS, 5 by default); each verdict's lateness the maximum of $VERDICT_RUNS faulted pulls"
echo "(BENCH_VERDICT_RUNS). CPU figures are exact: a child's rusage from wait4 (tests/bench/rusage.py), which"
echo "the kernel scales to the scheduler's ns run time, or containerd's /proc/PID/schedstat."
echo
echo "## Stall matrix: pullwatch vs the peers' cancel rules (scripted timelines)"
echo
echo "The same scripted timelines replayed through pullwatch's detector and each peer's documented rule"
echo "(tests/unit/test_replay.c checks the same table). The same rules over timelines recorded on each"
echo "runtime row follow in each row's section."
echo
! want policies || "$BUILD/bench_policies"
echo

t_start=$SECONDS
cleanup() { [ -z "${BED_DIR:-}" ] || tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true; }
trap cleanup EXIT
push() { python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo "$1" --tag "$2" --layers "$3" --cache "$BED_DIR/cache" >/dev/null; }
pushed() { python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo "$1" --tag "$2" --layers "$3" --cache "$BED_DIR/cache"; }
rmi() { curl -fsS -X DELETE --unix-socket "$DOCKER_SOCK" "http://x/images/$1?force=1" >/dev/null 2>&1 || true; }
direct_docker() { # the same pull through the Engine API with nothing watching it
	local from=${1%:*} tag=${1##*:}
	curl -fsS -X POST --unix-socket "$DOCKER_SOCK" "http://x/images/create?fromImage=$from&tag=$tag" >/dev/null
}
cri() { python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" "$@"; }
# a process's run time in us, exact: its threads' /proc/PID/task/TID/schedstat summed (/proc/PID/schedstat
# is the main thread alone; a thread that exited meanwhile is missed, and Go's runtime keeps its threads)
cpu_of() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {print int(s / 1000)}'; }
pw_timed() { python3 tests/bench/rusage.py "$BED_DIR/rusage" -- "$PW" "$@"; } # pullwatch, its CPU into $BED_DIR/rusage
ru_cpu() { awk '{printf "%.6f\n", $1 + $2}' "$BED_DIR/rusage"; }
ru_wall() { awk '{printf "%.6f\n", $4}' "$BED_DIR/rusage"; } # pullwatch's own wall time, not python's start-up
rules_clear() { curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null 2>&1 || true; }
set_unpigz() { printf '%s\n' "$1" >"$UNPIGZ_MODE_FILE.tmp" && mv -f "$UNPIGZ_MODE_FILE.tmp" "$UNPIGZ_MODE_FILE"; }
latency() { # events-file verdict: seconds from the layer's last sign of life to the verdict
	jq -s -r --arg v "$2" '(map(select(.event=="verdict" and .verdict==$v)) | first) as $e
		| if $e == null then "-" else
		  ((map(select((.event=="phase" or .event=="progress") and .layer==$e.layer and .t <= $e.t)
		    | (.observed_t // .t)) | max) as $tl
		  | ($e.t - $tl) * 100 | round / 100) end' "$1"
}

# One pull-time ratio: RUNS pulls issued directly and RUNS through pullwatch, alternating, on the same
# image (removed before each pull); prints the table row. kind: docker | containerd (CRI PullImage).
# pullwatch's CPU per pulled GB: its exact rusage over the image's bytes, median of the watched pulls.
# Beside it, in parts: the fixed CPU of one process's start-up and exit (STARTUP_CPU: `pullwatch --version`,
# which loads the same shared objects), and the marginal CPU per GB, from BIG_RUNS pulls of the bigger
# image BIG_REF (BIG_BYTES): (median CPU big - median CPU small) / (GB big - GB small).
pull_ratio() { # kind ref label bytes
	local kind=$1 ref=$2 label=$3 bytes=$4 i t0 c0 d p dc pc cpid pwc=() gb cs cb bigc=() marg
	local pw_times=() direct_times=() pw_cpu=() direct_cpu=()
	[ "$kind" = docker ] || cpid=$(cat "$CONTAINERD_PIDFILE")
	for ((i = 0; i < RUNS; i++)); do
		if [ "$kind" = docker ]; then
			rmi "$ref"; t0=$(now); direct_docker "$ref"; direct_times+=("$(echo "$(now) - $t0" | bc)")
			rmi "$ref"; t0=$(now)
			pw_timed pull --config "$BED_DIR/pw.yaml" --runtime docker --json "$ref" >/dev/null
			pw_times+=("$(ru_wall)"); pwc+=("$(ru_cpu)")
			continue
		fi
		cri rm "$ref" >/dev/null 2>&1 || true
		# the call's own time (cri.py times its curl), as pullwatch's is its own (rusage.py)
		c0=$(cpu_of "$cpid"); cri pull "$ref" >"$BED_DIR/cri.out"
		direct_times+=("$(jq -r .seconds "$BED_DIR/cri.out")"); direct_cpu+=("$(($(cpu_of "$cpid") - c0))")
		cri rm "$ref" >/dev/null 2>&1 || true
		c0=$(cpu_of "$cpid"); t0=$(now)
		pw_timed pull --config "$BED_DIR/pw.yaml" --runtime containerd --json "$ref" >/dev/null
		pw_times+=("$(ru_wall)"); pw_cpu+=("$(($(cpu_of "$cpid") - c0))"); pwc+=("$(ru_cpu)")
	done
	for ((i = 0; i < BIG_RUNS; i++)); do
		if [ "$kind" = docker ]; then rmi "$BIG_REF"; else cri rm "$BIG_REF" >/dev/null 2>&1 || true; fi
		pw_timed pull --config "$BED_DIR/pw.yaml" --runtime "$kind" --json "$BIG_REF" >/dev/null
		bigc+=("$(ru_cpu)")
	done
	if [ "$kind" = docker ]; then rmi "$BIG_REF"; else cri rm "$BIG_REF" >/dev/null 2>&1 || true; fi
	d=$(printf '%s\n' "${direct_times[@]}" | median); p=$(printf '%s\n' "${pw_times[@]}" | median)
	cs=$(printf '%s\n' "${pwc[@]}" | median); cb=$(printf '%s\n' "${bigc[@]}" | median)
	gb=$(echo "$cs / ($bytes / 1000000000)" | bc -l)
	marg=$(echo "($cb - $cs) / (($BIG_BYTES - $bytes) / 1000000000)" | bc -l)
	local parts
	parts=$(printf '%.1f ms / %.1f ms | %.1f ms (%.3f s per GB) | **%.3f s**' "$(echo "$cs * 1000" | bc -l)" \
		"$(echo "$STARTUP_CPU * 1000" | bc -l)" "$(echo "$cb * 1000" | bc -l)" "$(echo "$cb / ($BIG_BYTES / 1000000000)" | bc -l)" "$marg")
	if [ "$kind" = docker ]; then
		printf '| dockerd: %s | %.2fs | %.2fs | **%.3f** | **%.3f s** | %s | |\n' "$label" "$d" "$p" "$(echo "$p / $d" | bc -l)" "$gb" "$parts"
		return
	fi
	dc=$(printf '%s\n' "${direct_cpu[@]}" | median); pc=$(printf '%s\n' "${pw_cpu[@]}" | median)
	printf '| containerd CRI PullImage: %s | %.2fs | %.2fs | **%.3f** | **%.3f s** | %s | %d ms / %d ms (%+.1f %%) |\n' "$label" \
		"$d" "$p" "$(echo "$p / $d" | bc -l)" "$gb" "$parts" $((dc / 1000)) $((pc / 1000)) "$(echo "($pc - $dc) * 100 / $dc" | bc -l)"
}

# The faults the peer rules are replayed over, on this row's real runtime, with the scaled budgets of
# the scripted table (pullwatch network_stall 6s, hang_quiet 12s; peers' deadlines / 10). Each run's
# --json events go to bench_peers (one peer-table row) and to the detection-latency column.
fault_run() { # kind fault [run] -> $BED_DIR/fault.$kind.$fault[.run].json (each run its own image)
	local kind=$1 fault=$2 n=${3:+.$3} img layer ref out=$BED_DIR/fault.$1.$2${3:+.$3}.json fixer=
	img=$(pushed "bench/$fault-$kind$n" v1 8MiB); layer=$(jq -r '.layers[0].digest' <<<"$img")
	ref=$PROXY_ADDR/bench/$fault-$kind$n:v1
	rules_clear
	case "$fault" in
	stall) curl -fsS -X PUT -d "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}" \
		"$PROXY_CONTROL/rules" >/dev/null ;;
	asleep)
		set_unpigz sleep
		( while ! grep -q '"kill-helper' "$out" 2>/dev/null; do sleep 0.2; done; set_unpigz real ) &
		fixer=$! ;;
	slow) set_unpigz slow:15 ;;
	esac
	timeout 240 "$PW" pull --config "$BED_DIR/peers.yaml" --runtime "$kind" --json "$ref" >"$out" 2>/dev/null || true
	[ -z "$fixer" ] || { kill "$fixer" 2>/dev/null || true; wait "$fixer" 2>/dev/null || true; }
	set_unpigz real
	rules_clear
	mkdir -p "$EVENTS_DIR" && cp "$out" "$EVENTS_DIR/$ROW_TAG.$kind.$fault$n.json"
}

# The verdict's lateness over VERDICT_RUNS faulted pulls (the peer table's and VERDICT_RUNS - 1 more):
# "V max (each)", the maximum first.
verdict_lateness() { # kind fault verdict
	local kind=$1 fault=$2 v=$3 i all=() lat
	all+=("$(latency "$BED_DIR/fault.$kind.$fault.json" "$v")")
	for ((i = 2; i <= VERDICT_RUNS; i++)); do
		fault_run "$kind" "$fault" "$i"
		all+=("$(latency "$BED_DIR/fault.$kind.$fault.$i.json" "$v")")
	done
	lat=$(printf '%s\n' "${all[@]}" | grep -v '^-$' | sort -n | tail -1)
	echo "$v max ${lat:--} ($(IFS=/; echo "${all[*]}"))"
}

peer_table() { # kinds...
	local kind fault line
	echo "| runtime: fault | pullwatch | kubelet-dockershim | cri-dockerd | containerd-cri | cri-o | pullwatch's verdict, seconds after the last sign of life: max over $VERDICT_RUNS runs (each; goal: within one 1 s sample of the budget, 6 s stalled / 12 s hung) |"
	echo "|---|---|---|---|---|---|---|"
	for kind in "$@"; do
		for fault in stall asleep slow; do
			fault_run "$kind" "$fault"
			local f=$BED_DIR/fault.$kind.$fault.json name mode=--fault lat
			case "$fault" in
			stall) name="blob stalled forever mid-layer"; lat=$(verdict_lateness "$kind" stall stalled) ;;
			asleep) name="decompressor asleep"; lat=$(verdict_lateness "$kind" asleep hung) ;;
			slow) name="slow but working decompressor (silent 15 s)"; mode=--healthy
				lat=$(jq -s -r 'map(select(.event=="result")) | first | if .ok then "ok, \(.attempts) attempt(s)" else "FAILED" end' "$f") ;;
			esac
			if line=$("$BUILD/bench_peers" "$mode" "$kind: $name" "$f"); then
				echo "${line% |} | $lat |"
			else
				echo "| $kind: $name | (no timeline: see the row's log) | | | | | |"
			fi
		done
	done
}

bench_row() { # ROW STORE
	local row=$1 store=$2 kinds=(docker) label=$1
	[ "$store" = classic ] && kinds+=(containerd) || label="$row, dockerd on the containerd image store"
	local t_row=$SECONDS
	ROW_TAG=$row-$store
	BED_DIR=$(mktemp -d /tmp/pwbench.XXXXXX)
	export BED_DIR
	if ! BED_ROW=$row BED_DOCKER_STORE=$store tests/bed/bed.sh start >/dev/null 2>"$BED_DIR.log"; then
		echo "## Row $label"
		echo
		echo "(not measured: the bed did not start; see $BED_DIR.log)"
		echo
		BED_DIR=
		return
	fi
	# shellcheck disable=SC1091
	source "$BED_DIR/env"
	echo "## Row $label: dockerd $BED_DOCKERD_VERSION, containerd $BED_CONTAINERD_VERSION"
	echo
	if [ "$store" = containerd ]; then
		echo "dockerd with features.containerd-snapshotter (Docker 29's default store), pulling through the"
		echo "bed's containerd: $(curl -fsS --unix-socket "$DOCKER_SOCK" http://x/info | jq -r '[.Driver, (.DriverStatus // [] | map(join("=")) | join(" "))] | join(", ")')."
		echo
	fi
	{
		echo "docker:"
		echo "  socket: $DOCKER_SOCK"
		# where dockerd writes it on a node (/var/run/docker.pid by default): found, not searched for
		echo "  pidfile: $DOCKER_PIDFILE"
		if [ "$store" = classic ]; then echo "containerd:"; echo "  socket: $CONTAINERD_SOCK"; fi
		echo "credentials: [\"$BED_DIR/none.json\"]"
	} >"$BED_DIR/pw.yaml"
	cp "$BED_DIR/pw.yaml" "$BED_DIR/peers.yaml"
	cat >>"$BED_DIR/peers.yaml" <<YAML
watchdog: {sample_interval: 1s, network_stall: 6s, hang_quiet: 12s, livelock_window: 30s, trickle_rate: 32KiB,
           trickle_window: 30s}
retry: {attempts: 3, backoff: 1s, backoff_max: 1s}
YAML

	local big_bytes
	if want pull; then
	echo "### Pull wall time through pullwatch vs the same pull issued directly (median of $RUNS each, alternating)"
	echo
	big_bytes=$(pushed bench/big v1 64MiB,64MiB,64MiB,64MiB | jq -r '.total_bytes')
	BIG_REF=$PROXY_ADDR/bench/huge:v1 BIG_BYTES=$(pushed bench/huge v1 256MiB,256MiB,256MiB,256MiB | jq -r '.total_bytes')
	STARTUP_CPU=$(for ((i = 0; i < RUNS; i++)); do pw_timed --version >/dev/null; ru_cpu; done | median)
	echo "pullwatch's CPU is exact (its rusage). \"per pulled GB\" is one whole \`pullwatch pull\` of the 4 x 64 MiB"
	echo "image over its GB, median of $RUNS: process start-up and exit included. Then that pull's CPU beside the"
	echo "fixed cost of one process (\`pullwatch --version\`: loading its shared objects, median of $RUNS), the"
	echo "CPU of one pull of 4 x 256 MiB (median of $BIG_RUNS, BENCH_BIG_RUNS), and the marginal CPU per GB"
	echo "between the two sizes: (CPU 4 x 256 - CPU 4 x 64) / (GB 4 x 256 - GB 4 x 64), which the fixed costs"
	echo "cancel out of."
	echo
	echo "| pull | direct | through pullwatch | ratio (goal <= 1.02) | pullwatch CPU per pulled GB, start-up included (goal <= 0.05 s) | CPU per 4 x 64 MiB pull / of which start-up (\`--version\`) | CPU per 4 x 256 MiB pull | marginal CPU per GB | containerd CPU direct / watched (goal <= +5 %) |"
	echo "|---|---|---|---|---|---|---|---|---|"
	pull_ratio docker "$PROXY_ADDR/bench/big:v1" "4 x 64 MiB" "$big_bytes"
	[ "$store" = containerd ] || pull_ratio containerd "$PROXY_ADDR/bench/big:v1" "4 x 64 MiB" "$big_bytes"
	echo
	fi
	[ "$store" = containerd ] || ! want pull || { echo "containerd's CPU difference is what pullwatch's ListStatuses/Content/Snapshots polling costs it"; echo "(its threads' /proc/PID/task/*/schedstat run time, exact)."; echo; }
	[ "$store" = containerd ] || ! want cri || BUILD=$BUILD BENCH_RUNS=$RUNS tests/bench/cri_endpoint.sh --bed "$BED_DIR" || echo "(CRI endpoint: not measured, see tests/bench/cri_endpoint.sh)"
	[ "$store" = containerd ] || ! want guard || BUILD=$BUILD BENCH_RUNS=$RUNS tests/bench/guard_overhead.sh --bed "$BED_DIR" || echo "(guard cost: not measured, see tests/bench/guard_overhead.sh)"

	if want resume; then
	echo "### Resume: registry bytes for a pull with one mid-layer reset, over the layer's size"
	echo
	local img layer size served how
	img=$(pushed bench/resume v1 30MiB); layer=$(jq -r '.layers[0].digest' <<<"$img"); size=$(jq -r '.total_bytes' <<<"$img")
	curl -fsS -X POST "$PROXY_CONTROL/reset" >/dev/null
	curl -fsS -X POST -d "{\"digest\":\"$layer\",\"reset_at\":15728640,\"first\":1}" "$PROXY_CONTROL/rules" >/dev/null
	rmi "$PROXY_ADDR/bench/resume:v1"
	"$PW" pull --config "$BED_DIR/peers.yaml" --runtime docker --json "$PROXY_ADDR/bench/resume:v1" >"$BED_DIR/resume.json" 2>/dev/null || true
	served=$(curl -fsS "$PROXY_CONTROL/counters" | jq --arg d "$layer" '.blobs[$d].bytes')
	rules_clear
	how="dockerd resumes with Range inside one pull"
	# on the containerd store a reset fails the whole pull (dockerd retries no layer) and dockerd drops
	# its lease; pullwatch's lease keeps the partial ingest for its retry
	[ "$store" = classic ] || how="pullwatch's retry, its lease holding the ingest"
	echo "| pull | layer size | bytes served | ratio | attempts |"
	echo "|---|---|---|---|---|"
	printf '| docker (%s) | %d | %d | **%.2f** | %s |\n' "$how" "$size" "$served" "$(echo "$served / $size" | bc -l)" \
		"$(jq -s -r 'map(select(.event=="result")) | first | .attempts' "$BED_DIR/resume.json")"
	echo

	fi
	if want peers; then
	echo "### Peer rules over this row's real timelines"
	echo
	echo "Each fault injected into a real pull on this row (proxy stall rule; the unpigz wrapper asleep, or"
	echo "slow:15 while working); pullwatch on the scaled budgets of the scripted table; each peer's rule"
	echo "replayed over the runtime messages of that same pull (\`tests/bench/bench_peers.c\`: up to"
	echo "pullwatch's cut, then the state held, as the fault is permanent). The runtime's messages are"
	echo "read from pullwatch's events (at most one progress event per layer and second: a gap of up to"
	echo "1.5 s whose count moved counts as messages throughout); repeated identical counts are not in"
	echo "them, so a rule that any message resets can be more patient on the real stream. The CRI rows"
	echo "replay the same rules over containerd's content-store progress as pullwatch polls it. Events:"
	echo '`'"$EVENTS_DIR/$ROW_TAG"'.*.json`.'
	echo
	peer_table "${kinds[@]}"
	echo
	fi
	! want preheat || preheat_bench
	[ "$row/$store" != bookworm/classic ] || ! want once || bench_once
	# near the end: a 2,000-image list leaves a thousand images in the registry and in dockerd
	if [ "$store" = classic ] && [[ " $LOAD_ROWS " == *" $row "* ]] && want load; then
		BUILD=$BUILD tests/bench/load.sh --bed "$BED_DIR" || echo "(load: not measured, see tests/bench/load.sh)"
	fi
	# last: it leaves thousands of images in the bed's containerd (BENCH_SCALE=0 leaves it out)
	[ "$store" = containerd ] || [ "${BENCH_SCALE:-1}" = 0 ] || ! want scale ||
		BUILD=$BUILD tests/bench/guard_scale.sh --bed "$BED_DIR" ||
		echo "(the polling's cost at scale: not measured, see tests/bench/guard_scale.sh)"
	echo "(row measured in $((SECONDS - t_row)) s)"
	echo
	tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true
	BED_DIR=
}

# One preheat case: N images of SIZE through the daemon (concurrency 2, splay 0) vs a sequential
# docker pull loop, the proxy throttling every blob connection to RATE bytes/s (0: unthrottled).
# Prints the table row.
preheat_case() { # label tag n size rate
	local label=$1 tag=$2 n=$3 size=$4 rate=$5 i t0 seq_t par_t pre_t dpid wpid dir=$BED_DIR/pre.$2
	for ((i = 0; i < n; i++)); do push "bench/pre$tag$i" v1 "$size"; rmi "$PROXY_ADDR/bench/pre$tag$i:v1"; done
	rules_clear
	[ "$rate" = 0 ] || curl -fsS -X PUT -d "{\"throttle\":$rate}" "$PROXY_CONTROL/rules" >/dev/null
	t0=$(now); for ((i = 0; i < n; i++)); do direct_docker "$PROXY_ADDR/bench/pre$tag$i:v1"; done; seq_t=$(echo "$(now) - $t0" | bc)
	for ((i = 0; i < n; i++)); do rmi "$PROXY_ADDR/bench/pre$tag$i:v1"; done
	# what a concurrency of 2 can give on this dockerd: the same pulls, two at a time, nothing watching
	t0=$(now)
	for ((i = 0; i < n; i++)); do echo "fromImage=$PROXY_ADDR/bench/pre$tag$i&tag=v1"; done |
		xargs -P 2 -I{} curl -fsS -X POST --unix-socket "$DOCKER_SOCK" "http://x/images/create?{}" -o /dev/null
	par_t=$(echo "$(now) - $t0" | bc)
	for ((i = 0; i < n; i++)); do rmi "$PROXY_ADDR/bench/pre$tag$i:v1"; done
	mkdir -p "$dir"
	for ((i = 0; i < n; i++)); do echo "- $PROXY_ADDR/bench/pre$tag$i:v1"; done >"$dir/list.yaml"
	# as a node runs it, but no CRI endpoint (its default socket in /run is the machine's)
	cat >"$dir/daemon.yaml" <<-YAML
	runtime: docker
	docker:
	  socket: $DOCKER_SOCK
	  pidfile: $DOCKER_PIDFILE
	credentials: ["$BED_DIR/none.json"]
	control_socket: $dir/control.sock
	state_dir: $dir
	cri:
	  listen: null
	preheat:
	  list: $dir/list.yaml
	  concurrency: 2
	  splay: 0s
	YAML
	# one process polls the control socket (a `pullwatch status` per poll took CPU from dockerd); it
	# starts first, so its own start-up is over when the daemon's begins
	python3 tests/bench/wait_ready.py "$dir/control.sock" "$n/$n ready" 600 &
	wpid=$!
	sleep 1
	t0=$(now)
	python3 tests/bench/rusage.py "$dir/rusage" -- "$PW" daemon --config "$dir/daemon.yaml" >"$dir/daemon.log" 2>&1 &
	dpid=$!
	wait "$wpid" || true
	# from the daemon's own start (the wrapper's python start-up is not the daemon's)
	pre_t=$(echo "$(now) - $(cat "$dir/rusage.start" 2>/dev/null || echo "$t0")" | bc)
	# the daemon is the wrapper's child; its exact CPU over the bytes it pulled
	kill -TERM "$(pgrep -P "$dpid")" 2>/dev/null; wait "$dpid" || true
	rules_clear
	printf '| %s | %.2fs | %.2fs (%.2f) | %.2fs | **%.2f** | %.2f | %.3f s |\n' "$label" "$seq_t" "$par_t" \
		"$(echo "$par_t / $seq_t" | bc -l)" "$pre_t" "$(echo "$pre_t / $seq_t" | bc -l)" "$(echo "$pre_t / $par_t" | bc -l)" \
		"$(awk -v n="$n" -v sz="$((${size%MiB} * 1048576))" \
			'{printf "%.6f", ($1 + $2) / (n * sz / 1e9)}' "$dir/rusage")"
}

preheat_bench() {
	echo "### Preheat: a list through the daemon vs a sequential docker pull loop"
	echo
	echo "The daemon from its start to \`status\` saying all ready (concurrency 2, splay 0), against the same"
	echo "images pulled one after another through the Engine API."
	echo
	echo "The column \"two at a time\" pulls the same images directly, two in flight, nothing watching: what"
	echo "concurrency 2 can give on this dockerd and these cores (in brackets: over the loop). The goal is the"
	echo "ratio over the loop; the last ratio, the daemon over two at a time, is what pullwatch adds."
	echo
	echo "| case | sequential docker pull loop | two at a time, direct | pullwatch daemon | ratio over the loop | over the pairs | daemon CPU per pulled GB (exact, start-up included) |"
	echo "|---|---|---|---|---|---|---|"
	preheat_case "10 x 8 MiB, unthrottled loopback (goal <= 1.0)" l 10 8MiB 0
	preheat_case "10 x 24 MiB, 12 MB/s per connection (goal <= 0.55)" t 10 24MiB 12000000
	echo
}

# Measured once, on the bookworm row (they compare pullwatch with itself or with a loop on one dockerd).
bench_once() {
	echo "### pullwatch's own cost while watching pulls (bookworm)"
	echo
	echo "| pulls at once | image bytes | pullwatch CPU s | CPU s per pulled GB | peak RSS (max of the processes) |"
	echo "|---|---|---|---|---|"
	local n i p cpu rss bytes pids
	for n in 1 8; do
		for ((i = 0; i < n; i++)); do push "bench/c$i" v1 "32MiB,32MiB"; rmi "$PROXY_ADDR/bench/c$i:v1"; done
		pids=()
		for ((i = 0; i < n; i++)); do
			python3 tests/bench/rusage.py "$BED_DIR/time.$i" -- "$PW" pull --config "$BED_DIR/pw.yaml" --runtime docker --json \
				"$PROXY_ADDR/bench/c$i:v1" >/dev/null &
			pids+=($!)
		done
		for p in "${pids[@]}"; do wait "$p"; done
		cpu=$(cat "$BED_DIR"/time.* | awk '{s += $1 + $2} END {print s}')
		rss=$(cat "$BED_DIR"/time.* | awk '{if ($3 > m) m = $3} END {print m}')
		bytes=$((n * 64 * 1024 * 1024))
		# exact: wait4's rusage (tests/bench/rusage.py), not /usr/bin/time's 10 ms ticks
		printf '| %d | %d MiB | %.3f | %.3f | %d KiB |\n' "$n" $((bytes / 1048576)) "$cpu" \
			"$(echo "$cpu / ($bytes / 1000000000)" | bc -l)" "$rss"
		rm -f "$BED_DIR"/time.*
	done
	echo

	echo "### Cost of one liveness sample"
	echo
	dpid=$(cat "$DOCKER_PIDFILE")
	echo '```'
	"$BUILD/bench_probes" -n 200 "$dpid" "$DOCKER_ROOT/overlay2" diff
	echo '```'
	echo "processes on this machine: $(ls -d /proc/[0-9]* | wc -l)"
	echo

	echo "### Timeline of one faulted pull"
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
	cat >"$BED_DIR/timeline.yaml" <<-YAML
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
}

for spec in $ROWS; do
	row=${spec%%/*} store=classic
	[ "$spec" = "$row" ] || store=${spec#*/}
	bench_row "$row" "$store"
done

! want fleet || BUILD=$BUILD tests/bench/fleet.sh
echo "---"
echo "Whole run: $((SECONDS - t_start)) s; load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
mv "$OUT.tmp" "$OUT"
