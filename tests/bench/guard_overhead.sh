#!/usr/bin/env bash
# guard_overhead.sh: what `pullwatch daemon`'s guard of other clients' pulls (daemon/guard/) costs the
# pulls it watches, side by side in one run on the bed, alternating; prints one markdown section in
# bench/results.md's style (medians, ratios; no thresholds asserted). Issue 21's "three healthy
# kubelet-shaped pulls and one docker pull at once", with guard.enabled true vs false.
#
#   [BED_ROW=ROW] [BENCH_RUNS=N] [BENCH_GUARD_IDLE=SECONDS] tests/bench/guard_overhead.sh [--bed DIR]
#
# --bed DIR: use the running bed in DIR (tests/bench/run.sh passes each row's bed that has both
# runtimes); without it a bed of BED_ROW (default bookworm) is started and stopped at the end.
# - BENCH_RUNS (default 3) rounds each way, the order swapped every pair. A round: the daemon started
#   with the guard on (or off; the config otherwise the same, watchdog.sample_interval 1s, the test
#   budget: twice the samples of the 2s default, so the guard's share is the larger), then at once
#   tests/bed/kubelet.py --parallel 3 (CRI PullImage, no deadline) of three images on the bed's
#   containerd and one `docker pull` (CLI) of a fourth on the bed's dockerd, 2 x 16 MiB layers each,
#   unthrottled through the proxy; the wall time from the first call to the last image present (the
#   last client's return); the CPU of the daemon, of containerd and of dockerd over the round, summed
#   over their threads' /proc/PID/task/TID/schedstat (ns run time, exact). The images are removed
#   (CRI RemoveImage, docker rmi) and the daemon stopped after every round.
# - Idle: the daemon alone with nothing pulling, BENCH_GUARD_IDLE seconds (default 60) each way in
#   two alternating halves; its CPU per sample interval, guard on vs off.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
RUNS=${BENCH_RUNS:-3}
IDLE=${BENCH_GUARD_IDLE:-60}
INTERVAL=1
# shellcheck source=tests/bench/bench_bed.sh
source tests/bench/bench_bed.sh
bench_bed_args guard_overhead.sh "$@"

cleanup() {
	bench_daemon_stop
	bench_bed_stop
}
trap cleanup EXIT
bench_bed_start "The guard's cost (row ${BED_ROW:-bookworm})"
if [ "${BED_HAS_CONTAINERD:-0}" != 1 ] || [ "${BED_HAS_DOCKER:-0}" != 1 ]; then
	echo "guard_overhead.sh: the bed in $BED_DIR lacks containerd or dockerd" >&2
	exit 2
fi
[ "${DOCKER_STORE:-classic}" = classic ] ||
	{ echo "guard_overhead.sh: dockerd on the containerd store pulls through that containerd; not this bench's row" >&2; exit 2; }
W=$BED_DIR/guardbench
rm -rf "$W" && mkdir -p "$W"
dk() { docker -H "unix://$DOCKER_SOCK" "$@"; }
dk version >/dev/null # a socket-activated dockerd starts here, before anything is measured
cpid=$(cat "$CONTAINERD_PIDFILE") kpid=$(cat "$DOCKER_PIDFILE")

# the daemon as a node runs it beside kubelet and dockerd (as tests/integration/guard.bats does, with
# no journald of its own: a healthy pull sends it nothing), the guard on or off; no CRI endpoint (its
# default socket is in /run, shared with whatever else runs on the machine)
config() { # on|off -> $W/$1.yaml
	mkdir -p "$W/state.$1" "$W/metrics.$1"
	cat >"$W/$1.yaml" <<YAML
docker:
  socket: $DOCKER_SOCK
  pidfile: $DOCKER_PIDFILE
containerd:
  socket: $CONTAINERD_SOCK
  namespace: k8s.io
credentials: ["$W/none.json"]
preheat:
  list: $W/preheat.yaml
state_dir: $W/state.$1
control_socket: $W/control.$1.sock
metrics:
  textfile: $W/metrics.$1/pullwatch.prom
cri:
  listen: null
watchdog:
  sample_interval: ${INTERVAL}s
guard:
  enabled: $([ "$1" = on ] && echo true || echo false)
YAML
}
: >"$W/preheat.yaml"
config on
config off
"$PW" check-config --config "$W/on.yaml" >/dev/null
daemon_start() { bench_daemon_start guard_overhead.sh "$W/$1.yaml" "$W/daemon.$1.log"; } # on|off

for t in a b c d; do
	python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/guard --tag "$t" --layers 16MiB,16MiB \
		--cache "$BED_DIR/cache" >/dev/null
done
K=("$PROXY_ADDR/bench/guard:a" "$PROXY_ADDR/bench/guard:b" "$PROXY_ADDR/bench/guard:c")
D=$PROXY_ADDR/bench/guard:d
remove() {
	local r
	for r in "${K[@]}"; do python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" rm "$r" >/dev/null 2>&1 || true; done
	dk rmi -f "$D" >/dev/null 2>&1 || true
}

echo "### The guard's cost: three kubelet-shaped pulls and one docker pull at once, guard on vs off (containerd $BED_CONTAINERD_VERSION, dockerd $BED_DOCKERD_VERSION)"
echo
echo "\`pullwatch daemon\` with \`guard.enabled: true\` vs \`false\`, the config otherwise the same, at"
echo "\`watchdog.sample_interval: ${INTERVAL}s\` (the test budget; the default 2s samples half as often). Each round:"
echo "the daemon started, then at once \`tests/bed/kubelet.py --parallel 3\` (CRI PullImage, no deadline) of"
echo "three images on the bed's containerd and \`docker pull\` of a fourth on its dockerd, 2 x 16 MiB layers"
echo "each through the proxy, unthrottled; the images removed and the daemon stopped after it. $RUNS rounds"
echo "each way, the order swapped every pair. Wall time: from the first call to the last image present (the"
echo "last client's return). CPU over the round: the daemon's threads' run time (schedstat, ns); containerd's"
echo "and dockerd's from /proc/PID/stat (the kernel's exact sum, exited threads included, in $((1000 / $(getconf CLK_TCK))) ms ticks). The"
echo "daemon serves no CRI endpoint here (\`cri.listen: null\`)."
echo

# a round -> a line of $W/rounds: MODE wall daemon_ns containerd_ns dockerd_ns kubelet_ok docker_rc
round() { # on|off
	local t0 t1 p0 c0 k0 kp rc=0 ok
	remove
	daemon_start "$1"
	p0=$(cpu_ns "$dpid") c0=$(tick_ns "$cpid") k0=$(tick_ns "$kpid")
	t0=$(now)
	python3 tests/bed/kubelet.py --sock "$CONTAINERD_SOCK" --parallel 3 --give-up-after 300 "${K[@]}" \
		>"$W/kubelet.json" 2>"$W/kubelet.err" &
	kp=$!
	dk pull -q "$D" >"$W/docker.out" 2>&1 || rc=$?
	wait "$kp" || true
	t1=$(now)
	ok=$(jq -s -r 'map(select(.event == "summary")) | first | "\(.ok)/\(.calls)"' "$W/kubelet.json")
	echo "$1 $(echo "$t1 - $t0" | bc) $(($(cpu_ns "$dpid") - p0)) $(($(tick_ns "$cpid") - c0)) $(($(tick_ns "$kpid") - k0)) $ok $rc" >>"$W/rounds"
	bench_daemon_stop
}
: >"$W/rounds"
for ((i = 0; i < RUNS; i++)); do
	if ((i % 2 == 0)); then round on; round off; else round off; round on; fi
done
remove
col() { awk -v k="$1" -v c="$2" '$1 == k {print $c}' "$W/rounds" | median; }
ms() { awk -v n="$1" 'BEGIN {printf "%.0f ms", n / 1e6}'; }
won=$(col on 2) woff=$(col off 2)
echo "| | guard off | guard on | on / off |"
echo "|---|---|---|---|"
printf '| wall time, median | %.2fs | %.2fs | **%.3f** |\n' "$woff" "$won" "$(echo "$won / $woff" | bc -l)"
for spec in "3:pullwatch daemon" "4:containerd" "5:dockerd"; do
	c=${spec%%:*} name=${spec#*:}
	a=$(col off "$c") b=$(col on "$c")
	printf '| %s CPU, median | %s | %s | %s |\n' "$name" "$(ms "$a")" "$(ms "$b")" \
		"$(awk -v a="$a" -v b="$b" 'BEGIN {if (a > 0) printf "%.2f", b / a; else print "-"}')"
done
echo
echo "Each round's wall time, in order: $(awk '{printf "%s %.2fs, ", $1, $2}' "$W/rounds" | sed 's/, $//')."
pairs=$(awk '$1 == "on" {on[++n] = $2} $1 == "off" {off[++m] = $2} END {for (i = 1; i <= n && i <= m; i++) print on[i] / off[i]}' "$W/rounds" | median)
printf 'Median of the per-pair ratios on / off: %.3f. ' "$pairs"
bad=$(awk '$6 != "true/3" || $7 != 0' "$W/rounds")
if [ -z "$bad" ]; then
	echo "Every round: three CRI calls, all ok; the docker pull exited 0."
else
	echo "Rounds with a failed call (mode wall daemon containerd dockerd kubelet-ok/calls docker-exit):"
	echo "\`$(tr '\n' ';' <<<"$bad")\`."
fi
acts=$(grep -hcE 'kill-helper|cut-connection|another client' "$W/daemon.on.log" || true)
echo "The guard's log lines on another client's pull (verdicts, actions; none expected): ${acts:-0}."
echo

# idle: the daemon alone, nothing pulling
idle_half() { # on|off seconds -> a line of $W/idle: MODE seconds daemon_ns containerd_ns dockerd_ns
	local t0 p0 c0 k0
	daemon_start "$1"
	t0=$(now) p0=$(cpu_ns "$dpid") c0=$(tick_ns "$cpid") k0=$(tick_ns "$kpid")
	sleep "$2"
	echo "$1 $(echo "$(now) - $t0" | bc) $(($(cpu_ns "$dpid") - p0)) $(($(tick_ns "$cpid") - c0)) $(($(tick_ns "$kpid") - k0))" >>"$W/idle"
	bench_daemon_stop
}
: >"$W/idle"
half=$(((IDLE + 1) / 2))
idle_half on "$half"; idle_half off "$half"; idle_half off "$half"; idle_half on "$half"
idle() { # mode -> "seconds daemon_ns containerd_ns dockerd_ns"
	awk -v k="$1" '$1 == k {s += $2; n += $3; c += $4; d += $5} END {printf "%.1f %.0f %.0f %.0f\n", s, n, c, d}' "$W/idle"
}
read -r s_on n_on c_on d_on < <(idle on)
read -r s_off n_off c_off d_off < <(idle off)
per() { awk -v n="$1" -v s="$2" -v i="$INTERVAL" 'BEGIN {printf "%.3f", n / 1e6 / (s / i)}'; }
echo "Idle, nothing pulling: the daemon alone, ${half} s at a time, on off off on (${s_on} s on, ${s_off} s off),"
echo "sample_interval ${INTERVAL}s; containerd has $(python3 tests/bed/cri.py --sock "$CONTAINERD_SOCK" list | jq '.images | length') image(s), dockerd $(dk images -q | wc -l)."
echo
echo "| idle daemon | guard off | guard on | the guard's own, per sample |"
echo "|---|---|---|---|"
printf '| CPU per sample interval | %s ms | %s ms | **%s ms** |\n' "$(per "$n_off" "$s_off")" "$(per "$n_on" "$s_on")" \
	"$(awk -v a="$(per "$n_off" "$s_off")" -v b="$(per "$n_on" "$s_on")" 'BEGIN {printf "%+.3f", b - a}')"
for spec in "containerd:$c_off:$c_on" "dockerd:$d_off:$d_on"; do
	IFS=: read -r name a b <<<"$spec"
	printf '| %s CPU per sample interval, meanwhile | %s ms | %s ms | %s ms |\n' "$name" "$(per "$a" "$s_off")" \
		"$(per "$b" "$s_on")" "$(awk -v a="$(per "$a" "$s_off")" -v b="$(per "$b" "$s_on")" 'BEGIN {printf "%+.3f", b - a}')"
done
echo
