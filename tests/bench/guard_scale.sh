#!/usr/bin/env bash
# guard_scale.sh: what the daemon's polling costs containerd on a busy node (issue 24: "extra
# containerd CPU from pullwatch's polling <= 5 %"), side by side in one run on the bed; prints one
# markdown section in bench/results.md's style (ratios; no thresholds asserted).
#
#   [BED_ROW=ROW] [BENCH_SCALE_IMAGES=N] [BENCH_SCALE_PULLS=N] [BENCH_SCALE_WINDOW=S] \
#       tests/bench/guard_scale.sh [--bed DIR]
#
# The state: BENCH_SCALE_IMAGES (2000) images present in containerd's k8s.io namespace (imported with
# `ctr images import --no-unpack` from tests/bench/many_images.py's archive: one manifest each over a
# shared layer and config), and BENCH_SCALE_PULLS (50) pulls in flight across the three namespaces the
# guard watches: a third through CRI PullImage in k8s.io (tests/bed/kubelet.py), the rest `ctr images
# pull` in moby and in default; each image one 2 MiB layer of its own, throttled by the bed's proxy to
# 16 KiB/s per connection so every pull stays in flight for the whole measurement.
# Then windows of BENCH_SCALE_WINDOW (12) seconds, off on on off off on: "on" is `pullwatch daemon`
# (guard on, its default namespaces, watchdog.sample_interval 1s, no CRI endpoint, an empty preheat
# list) started before the window and stopped after it; "off" is no pullwatch at all. In each window:
# containerd's CPU, summed over its threads' /proc/PID/task/TID/schedstat (ns run time, exact; Go
# rarely ends a thread, and the /proc/PID/stat tick sum is given beside it as a check), and the
# daemon's own (schedstat), per sample interval.
#
# --bed DIR: use the running bed in DIR (tests/bench/run.sh's); without it a bed of BED_ROW (default
# bookworm) without dockerd is started and stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
NIMG=${BENCH_SCALE_IMAGES:-2000}
NPULL=${BENCH_SCALE_PULLS:-50}
WIN=${BENCH_SCALE_WINDOW:-12}
INTERVAL=1
# shellcheck source=tests/bench/bench_bed.sh
source tests/bench/bench_bed.sh
bench_bed_args guard_scale.sh "$@"


kpid= cpids=()
pulls_stop() {
	local p
	[ -z "$kpid" ] || kill -TERM "$kpid" 2>/dev/null || true
	for p in "${cpids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	[ -z "$kpid" ] || wait "$kpid" 2>/dev/null || true
	for p in "${cpids[@]}"; do wait "$p" 2>/dev/null || true; done
	kpid= cpids=()
}
cleanup() {
	bench_daemon_stop
	pulls_stop
	[ -z "${PROXY_CONTROL:-}" ] || curl -fsS -X POST "$PROXY_CONTROL/reset" >/dev/null 2>&1 || true
	bench_bed_stop
}
trap cleanup EXIT
bench_bed_start "The polling's cost to containerd at scale (row ${BED_ROW:-bookworm})" --no-docker
[ "${BED_HAS_CONTAINERD:-0}" = 1 ] || { echo "guard_scale.sh: the bed in $BED_DIR has no containerd" >&2; exit 2; }
[ -z "${BED_ROW_PATH:-}" ] || PATH="$BED_ROW_PATH:$PATH"
W=$BED_DIR/scalebench
rm -rf "$W" && mkdir -p "$W"
cpid=$(cat "$CONTAINERD_PIDFILE")
ctr_() { ctr -a "$CONTAINERD_SOCK" "$@"; }

# images present
t0=$(now)
python3 tests/bench/many_images.py --count "$NIMG" --out "$W/many.tar"
ctr_ -n k8s.io images import --no-unpack --base-name bench/present "$W/many.tar" >/dev/null
t_import=$(echo "$(now) - $t0" | bc)
n_present=$(ctr_ -n k8s.io images ls -q | wc -l)
n_content=$(ctr_ -n k8s.io content ls -q | wc -l)
rm -f "$W/many.tar"

# the pulls' images: one 2 MiB layer each, its own
refs=()
for ((i = 0; i < NPULL; i++)); do
	python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo bench/scale --tag "p$i" --layers 2MiB \
		--cache "$BED_DIR/cache" >/dev/null
	refs+=("$PROXY_ADDR/bench/scale:p$i")
done
curl -fsS -X PUT -H 'Content-Type: application/json' -d '{"digest": "*", "throttle": 16384}' \
	"$PROXY_CONTROL/rules" >/dev/null

mkdir -p "$W/state" "$W/metrics"
: >"$W/preheat.yaml"
cat >"$W/on.yaml" <<YAML
containerd:
  socket: $CONTAINERD_SOCK
  namespace: k8s.io
credentials: ["$W/none.json"]
preheat:
  list: $W/preheat.yaml
state_dir: $W/state
control_socket: $W/control.sock
metrics:
  textfile: $W/metrics/pullwatch.prom
cri:
  listen: null
runtime: containerd
watchdog:
  sample_interval: ${INTERVAL}s
guard:
  enabled: true
YAML
"$PW" check-config --config "$W/on.yaml" >/dev/null

# the pulls, a third each in k8s.io (CRI), moby and default (ctr)
k8s=() n_k8s=$(((NPULL + 2) / 3))
for ((i = 0; i < NPULL; i++)); do
	if ((i < n_k8s)); then
		k8s+=("${refs[$i]}")
		continue
	fi
	ns=moby
	((i % 2 == 0)) || ns=default
	ctr_ -n "$ns" images pull --hosts-dir "$CONTAINERD_HOSTS_DIR" "${refs[$i]}" >"$W/ctr.$i.log" 2>&1 &
	cpids+=("$!")
done
python3 tests/bed/kubelet.py --sock "$CONTAINERD_SOCK" --parallel "${#k8s[@]}" --give-up-after 900 "${k8s[@]}" \
	>"$W/kubelet.json" 2>"$W/kubelet.err" &
kpid=$!
sleep 5 # every pull past its manifest, its layer ingest open
in_flight() { local ns n=0; for ns in k8s.io moby default; do n=$((n + $(ctr_ -n "$ns" content active 2>/dev/null | tail -n +2 | wc -l))); done; echo "$n"; }

daemon_start() { bench_daemon_start guard_scale.sh "$W/on.yaml" "$W/daemon.log"; }
# a window -> a line of $W/windows: MODE seconds containerd_ns containerd_tick_ns daemon_ns ingests_at_end
window() {
	local t0 c0 k0 p0=0 p1=0
	[ "$1" = off ] || daemon_start
	[ "$1" = on ] || sleep $((INTERVAL + 1)) # the same pause as a start's
	t0=$(now) c0=$(cpu_ns "$cpid") k0=$(tick_ns "$cpid")
	[ -z "$dpid" ] || p0=$(cpu_ns "$dpid")
	sleep "$WIN"
	[ -z "$dpid" ] || p1=$(cpu_ns "$dpid")
	echo "$1 $(echo "$(now) - $t0" | bc) $(($(cpu_ns "$cpid") - c0)) $(($(tick_ns "$cpid") - k0)) $((p1 - p0)) $(in_flight)" >>"$W/windows"
	bench_daemon_stop
}
: >"$W/windows"
for m in off on on off off on; do window "$m"; done
ingests_end=$(in_flight)
pulls_stop
curl -fsS -X POST "$PROXY_CONTROL/reset" >/dev/null

sum() { awk -v k="$1" -v c="$2" '$1 == k {s += $c} END {printf "%.0f\n", s}' "$W/windows"; }
s_on=$(sum on 2) s_off=$(sum off 2)
rate() { awk -v n="$1" -v s="$2" 'BEGIN {printf "%.1f", n / 1e6 / s}'; } # ms per second
c_on=$(rate "$(sum on 3)" "$s_on") c_off=$(rate "$(sum off 3)" "$s_off")
t_on=$(rate "$(sum on 4)" "$s_on") t_off=$(rate "$(sum off 4)" "$s_off")
per_sample=$(awk -v n="$(sum on 5)" -v s="$s_on" -v i="$INTERVAL" 'BEGIN {printf "%.2f", n / 1e6 / (s / i)}')
pct() { awk -v a="$1" -v b="$2" 'BEGIN {if (a > 0) printf "%+.1f %%", (b - a) / a * 100; else print "-"}'; }
echo "### The polling's cost to containerd on a busy node: $NPULL pulls in flight, $n_present images present (containerd $BED_CONTAINERD_VERSION)"
echo
echo "containerd with $n_present images in k8s.io ($n_content content items; imported in ${t_import%.*} s with"
echo "\`ctr images import --no-unpack\` of \`tests/bench/many_images.py\`'s archive) and $NPULL pulls in flight: ${#k8s[@]}"
echo "through CRI PullImage in k8s.io, the rest \`ctr images pull\` in moby and default, each one 2 MiB layer"
echo "throttled to 16 KiB/s by the proxy. Windows of $WIN s, off on on off off on: on = \`pullwatch daemon\`"
echo "(guard on in k8s.io, moby and default; \`watchdog.sample_interval: ${INTERVAL}s\`), off = no pullwatch."
echo "containerd's CPU: its threads' schedstat run time (ns), and the /proc/PID/stat tick sum as a check."
echo
echo "| | pullwatch off | pullwatch on | extra |"
echo "|---|---|---|---|"
echo "| containerd CPU, ms per second (schedstat) | $c_off | $c_on | **$(pct "$c_off" "$c_on")** |"
echo "| containerd CPU, ms per second (stat ticks) | $t_off | $t_on | $(pct "$t_off" "$t_on") |"
echo "| pullwatch daemon CPU per sample (schedstat) | - | $per_sample ms | |"
echo
echo "Windows (mode, s, containerd ms, ingests in flight at the end): $(awk '{printf "%s %.1f %.0f %d; ", $1, $2, $3 / 1e6, $6}' "$W/windows" | sed 's/; $//')."
echo "Ingests in flight after the last window: $ingests_end of $NPULL pulls' layers."
echo
