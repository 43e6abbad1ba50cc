#!/usr/bin/env bash
# load.sh: `pullwatch daemon` on a busy node, in the bed: a 2,000-image preheat list with half of it
# missing from the registry, while 50 other clients' pulls it guards are in flight. Prints one markdown
# section in bench/results.md's style; reports, asserts no threshold. Issue 24's load test.
#
#   [BED_ROW=ROW] [BENCH_LOAD_IMAGES=2000] [BENCH_LOAD_GUARDED=50] [BENCH_LOAD_TIMEOUT=900] \
#       tests/bench/load.sh [--bed DIR]
#
# --bed DIR: use the running bed in DIR (tests/bench/run.sh passes its row's bed); without it a bed of
# BED_ROW (default bookworm) is started and stopped at the end.
# - The list (runtime docker, concurrency 8, splay 1s): IMAGES/2 tiny images pushed by
#   tests/bed/pushmany.py (one shared 512-byte layer, a config and a manifest each) and as many tags
#   that do not exist, interleaved.
# - Once the list's first pull runs: GUARDED other clients' pulls at once, 4 in 5 kubelet-shaped
#   (tests/bed/kubelet.py --parallel, CRI PullImage to the bed's containerd, no deadline) and 1 in 5
#   `docker pull` (the CLI, to the bed's dockerd), each of an image with a 1 MiB layer of its own that
#   the proxy throttles to 64 KiB/s, so they overlap.
# - The daemon runs as under systemd: in a real journald's namespace (tests/bed/journald.sh), with a
#   notify socket that records each datagram's arrival (WATCHDOG_USEC=2000000: sd_event pings at a
#   quarter to a half of it) and its guard on.
# - Every second: the daemon's VmRSS; every 2 s: `pullwatch status --json`'s wall time, and how many
#   pulls it lists; and the daemon's own answer alone (one status request on the control socket, timed
#   from connect to the answer's last byte): the CLI also asks each runtime for its version and
#   settings itself (the driver's describe: dockerd's /version and /info), which a busy dockerd answers
#   slowly. Until every list item is ready or failed (or BENCH_LOAD_TIMEOUT).
# - At the end: journald entries per minute (pullwatch's), the gaps between WATCHDOG=1 datagrams, and
#   whether anything was lost: state.json holds each of the list's images with its state (a digest for
#   the pushed ones, an error for the missing ones), and status's counts add up to the list.
set -euo pipefail
cd "$(dirname "$0")/../.."
REPO=$PWD
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
IMAGES=${BENCH_LOAD_IMAGES:-2000}
GUARDED=${BENCH_LOAD_GUARDED:-50}
TIMEOUT=${BENCH_LOAD_TIMEOUT:-900}
# shellcheck source=tests/bench/bench_bed.sh
source tests/bench/bench_bed.sh
bench_bed_args load.sh "$@"
# shellcheck source=tests/bed/journald.sh
source tests/bed/journald.sh

maxof() { sort -n | tail -n 1; }

W='' dpid='' npid='' kpid='' spid='' JPID=
cleanup() {
	local p
	for p in $spid $kpid; do kill "$p" 2>/dev/null || true; done
	[ -z "$dpid" ] || { kill -TERM "$dpid" 2>/dev/null || true; timeout 20 tail --pid="$dpid" -f /dev/null || true; }
	[ -z "$npid" ] || kill "$npid" 2>/dev/null || true
	[ -z "$JPID" ] || journald_stop >/dev/null 2>&1 || true
	bench_bed_stop
}
trap cleanup EXIT
bench_bed_start "Load: a ${IMAGES}-image list and $GUARDED guarded pulls (row ${BED_ROW:-bookworm})"
W=$BED_DIR/load
rm -rf "$W"
mkdir -p "$W/state" "$W/metrics"
echo '{"auths":{}}' >"$W/none.json"
echo 0123456789abcdef0123456789abcdef >"$W/machine-id"

half=$((IMAGES / 2))
python3 tests/bed/pushmany.py --registry "$REGISTRY_ADDR" --repo load/img --count "$half" >/dev/null
n_kubelet=$((GUARDED * 4 / 5))
n_docker=$((GUARDED - n_kubelet))
python3 tests/bed/pushmany.py --registry "$REGISTRY_ADDR" --repo load/guard --count "$GUARDED" --own-layers \
	--size 1MiB >/dev/null
for ((i = 0; i < half; i++)); do
	printf -- '- %s/load/img:t%04d\n- %s/load/img:m%04d\n' "$PROXY_ADDR" "$i" "$PROXY_ADDR" "$i"
done >"$W/list.yaml"
cat >"$W/pw.yaml" <<YAML
runtime: docker
docker:
  socket: $DOCKER_SOCK
  pidfile: $DOCKER_PIDFILE
containerd:
  socket: $CONTAINERD_SOCK
  namespace: k8s.io
credentials: ["$W/none.json"]
preheat:
  list: $W/list.yaml
  concurrency: 8
  splay: 1s
state_dir: $W/state
control_socket: $W/control.sock
metrics:
  textfile: $W/metrics/pullwatch.prom
cri:
  listen: null
guard:
  enabled: true
YAML
"$PW" check-config --config "$W/pw.yaml" >/dev/null

# the notify socket: each datagram's lines with its arrival on CLOCK_MONOTONIC
cat >"$W/notify.py" <<'EOF'
import socket, sys, time
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
with open(sys.argv[2], "a", buffering=1) as f:
    while True:
        d = s.recv(65536).decode(errors="replace")
        t = time.monotonic()
        for line in d.split("\n"):
            if line:
                f.write("%.6f %s\n" % (t, line))
EOF
timeout $((TIMEOUT + 300)) python3 "$W/notify.py" "$W/notify.sock" "$W/notify.log" 3>&- &
npid=$!
journald_start "$W/journal" "$REPO"
for ((i = 0; i < 50; i++)); do [ -S "$W/notify.sock" ] && break; sleep 0.1; done

status() { "$PW" status --json --config "$W/pw.yaml"; }
# the daemon's own answer to one status request, ms, from connect to the answer's last byte
cat >"$W/ask.py" <<'EOF'
import socket, sys, time
t = time.monotonic()
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
s.sendall(b'{"cmd":"status"}\n')
buf = b""
while not buf.endswith(b"\n"):
    d = s.recv(1 << 20)
    if not d:
        break
    buf += d
print("%.1f" % ((time.monotonic() - t) * 1000) if buf.endswith(b"\n") else "-")
EOF
rss_kib() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status" 2>/dev/null; }
t0=$(now)
nsenter -t "$JPID" -m -- env NOTIFY_SOCKET="$W/notify.sock" WATCHDOG_USEC=2000000 \
	PULLWATCH_MACHINE_ID_FILE="$W/machine-id" "$PW" daemon --config "$W/pw.yaml" >"$W/daemon.log" 2>&1 3>&- &
dpid=$!
for ((i = 0; i < 200; i++)); do status >/dev/null 2>&1 && break; sleep 0.1; done
status >/dev/null 2>&1 || { echo "load.sh: the daemon did not start:" >&2; tail -n 20 "$W/daemon.log" >&2; exit 1; }
t_ready=$(now)

# RSS every second, in the background: "seconds-since-start KiB"
(while kill -0 "$dpid" 2>/dev/null; do echo "$(echo "$(now) - $t0" | bc) $(rss_kib "$dpid")"; sleep 1; done) \
	>"$W/rss.log" 2>/dev/null &
spid=$!

# the guarded pulls start with the list's first pull
for ((i = 0; i < 300; i++)); do
	status 2>/dev/null | jq -e 'any(.preheat[]; .state == "pulling")' >/dev/null && break
	sleep 0.2
done
curl -fsS -X POST -d '{"path":"^/v2/load/guard/blobs/","throttle":65536}' "$PROXY_CONTROL/rules" >/dev/null
K=() D=()
for ((i = 0; i < n_kubelet; i++)); do K+=("$PROXY_ADDR/load/guard:$(printf 't%04d' "$i")"); done
for ((i = n_kubelet; i < GUARDED; i++)); do D+=("$PROXY_ADDR/load/guard:$(printf 't%04d' "$i")"); done
t_guard=$(now)
python3 tests/bed/kubelet.py --sock "$CONTAINERD_SOCK" --parallel "$n_kubelet" --give-up-after "$TIMEOUT" "${K[@]}" \
	>"$W/kubelet.jsonl" 2>"$W/kubelet.err" 3>&- &
kpid=$!
dpids=()
for r in "${D[@]}"; do
	docker -H "unix://$DOCKER_SOCK" pull -q "$r" >>"$W/docker-pull.log" 2>&1 3>&- &
	dpids+=($!)
done

# until every list item is ready or failed and the guarded pulls are done: status's wall time every
# 2 s, and what it lists
settled=0 guard_done=0 max_pulls=0 lat=() dlat=() omitted=- t_end='' t_guard_end=''
deadline=$(($(date +%s) + TIMEOUT))
while [ "$(date +%s)" -lt "$deadline" ]; do
	a=$(now)
	out=$(status 2>/dev/null) || out=
	lat+=("$(echo "($(now) - $a) * 1000" | bc)")
	d=$(python3 "$W/ask.py" "$W/control.sock" 2>/dev/null) || d=-
	[ "$d" = - ] || dlat+=("$d")
	if [ -n "$out" ]; then
		read -r ready failed pulls omitted < <(jq -r '[(.summary | capture("(?<r>[0-9]+)/[0-9]+ ready").r // "0"),
			(.summary | capture("(?<f>[0-9]+) failed").f // "0"), (.pulls | length),
			(.preheat_omitted // 0)] | @tsv' <<<"$out")
		[ "$pulls" -le "$max_pulls" ] || max_pulls=$pulls
		if [ "$settled" = 0 ] && [ $((ready + failed)) -ge "$IMAGES" ]; then settled=1 t_end=$(now); fi
	fi
	if [ "$guard_done" = 0 ] && ! kill -0 "$kpid" "${dpids[@]}" 2>/dev/null; then
		running=0
		for p in "$kpid" "${dpids[@]}"; do kill -0 "$p" 2>/dev/null && running=1; done
		[ "$running" = 1 ] || { guard_done=1 t_guard_end=$(now); }
	fi
	[ "$settled" = 0 ] || [ "$guard_done" = 0 ] || break
	sleep 2
done
t_end=${t_end:-$(now)} t_guard_end=${t_guard_end:-$(now)}
kill "$kpid" "${dpids[@]}" 2>/dev/null || true
wait "$kpid" 2>/dev/null || true
kpid=
for p in "${dpids[@]}"; do wait "$p" 2>/dev/null || true; done
curl -fsS -X DELETE "$PROXY_CONTROL/rules" >/dev/null 2>&1 || true
final=$(status)
kill "$spid" 2>/dev/null || true
spid=
hwm=$(awk '/^VmHWM:/ {print $2}' "/proc/$dpid/status")
# the daemon's run time over the whole run, ns, from its threads' schedstat (exact, not clock ticks)
cpu_ns=$(cat /proc/"$dpid"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}')
t_stop=$(now)
kill -TERM "$dpid"
timeout 30 tail --pid="$dpid" -f /dev/null || true
dpid=

# nothing lost: state.json names every image of the list, with a digest (pushed) or an error (missing)
state_check=$(jq -r --arg p "$PROXY_ADDR/load/img:" '
	(.images // []) as $e
	| ($e | map(select(.image | startswith($p)))) as $l
	| [($l | length),
	   ($l | map(select((.image | test(":t[0-9]+$")) and .digest != null and .last_error == null)) | length),
	   ($l | map(select((.image | test(":m[0-9]+$")) and .last_error != null)) | length)] | @tsv' \
	"$W/state/state.json" 2>/dev/null || echo "- - -")
read -r st_all st_ready st_failed <<<"$state_check"
k_ok=$(jq -s '[.[] | select(.event == "summary")][0].images // {} | map(select(.ok)) | length' "$W/kubelet.jsonl" 2>/dev/null || echo -)
d_ok=$(grep -c "load/guard" "$W/docker-pull.log" || true)
journal_json() { journalctl -D "$JDIR/log/journal" -o json --no-pager SYSLOG_IDENTIFIER=pullwatch 2>/dev/null; }
per_min=$(journal_json | jq -r '(.__REALTIME_TIMESTAMP | tonumber / 60000000 | floor)' | sort | uniq -c | awk '{print $1}')
j_total=$(journal_json | wc -l)
j_alerts=$(journal_json | jq -r 'select(.PULLWATCH_ALERT != null) | .PULLWATCH_ALERT' | sort | uniq -c |
	awk '{printf "%s%s %s", (NR > 1 ? ", " : ""), $2, $1}')
wd=$(grep ' WATCHDOG=1$' "$W/notify.log" | awk 'NR > 1 {printf "%.3f\n", $1 - p} {p = $1}')
rss_max=$(awk '{print $2}' "$W/rss.log" | maxof)

echo "### Load: a ${IMAGES}-image preheat list (half missing) and $GUARDED guarded pulls in flight (containerd $BED_CONTAINERD_VERSION, dockerd $BED_DOCKERD_VERSION)"
echo
echo "\`pullwatch daemon\` (guard on, journald and a notify socket as under systemd, WATCHDOG_USEC 2 s) with a"
echo "list of $half pushed tiny images and $half tags that do not exist, interleaved, on dockerd (concurrency 8);"
echo "from its first pull on, $n_kubelet kubelet-shaped CRI pulls (kubelet.py --parallel $n_kubelet) and $n_docker \`docker pull\`s"
echo "at once, 1 MiB each, throttled to 64 KiB/s by the proxy. The machine is shared: other beds may be running."
echo
echo "| figure | value |"
echo "|---|---|"
printf '| list settled (every item ready or failed) | %s after %.0f s (start to status ready: %.1f s) |\n' \
	"$([ "$settled" = 1 ] && echo yes || echo "NO (timeout ${TIMEOUT}s)")" "$(echo "$t_end - $t_ready" | bc)" \
	"$(echo "$t_ready - $t0" | bc)"
printf '| guarded pulls | %s/%s kubelet-shaped and %s/%s docker pulls done after %.0f s; at most %s listed in status .pulls at once |\n' \
	"$k_ok" "$n_kubelet" "$d_ok" "$n_docker" "$(echo "$t_guard_end - $t_guard" | bc)" "$max_pulls"
printf '| daemon CPU | %.1f s over %.0f s, %.1f %% of one core (the load average at the end: %s) |\n' \
	"$(echo "$cpu_ns / 1000000000" | bc -l)" "$(echo "$t_stop - $t_ready" | bc)" \
	"$(echo "$cpu_ns / 10000000 / ($t_stop - $t_ready)" | bc -l)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '| daemon RSS | max %.1f MiB sampled each second (VmHWM %.1f MiB); %.1f MiB at the end |\n' \
	"$(echo "$rss_max / 1024" | bc -l)" "$(echo "$hwm / 1024" | bc -l)" "$(echo "$(tail -n 1 "$W/rss.log" | awk '{print $2}') / 1024" | bc -l)"
# shellcheck disable=SC2016 # the backquotes are markdown
printf '| `pullwatch status --json` wall time | median %.0f ms, max %.0f ms over %d calls (.preheat lists %s, preheat_omitted %s) |\n' \
	"$(printf '%s\n' "${lat[@]}" | median)" "$(printf '%s\n' "${lat[@]}" | maxof)" "${#lat[@]}" \
	"$(jq '.preheat | length' <<<"$final")" "$omitted"
# shellcheck disable=SC2016 # the backquotes are markdown
printf '| the daemon'"'"'s own answer to status (control socket, connect to last byte) | median %s ms, max %s ms over %d requests; the rest of the wall time above is the CLI: its start, and its own questions to each runtime (dockerd /version, /info) |\n' \
	"$(printf '%s\n' "${dlat[@]}" | median)" "$(printf '%s\n' "${dlat[@]}" | maxof)" "${#dlat[@]}"
printf '| journald entries (pullwatch) | %s in all; per minute: max %s, median %s over %s minutes |\n' \
	"$j_total" "$(maxof <<<"$per_min")" "$(median <<<"$per_min")" "$(grep -c . <<<"$per_min" || true)"
echo "| alerts in journald by kind | ${j_alerts:-none} |"
printf '| WATCHDOG=1 gaps | median %s s, max %s s over %s gaps (watchdog 2 s) |\n' \
	"$(median <<<"$wd")" "$(maxof <<<"$wd")" "$(grep -c . <<<"$wd" || true)"
echo "| nothing lost: state.json | $st_all of $IMAGES list images; $st_ready of $half pushed with a digest and no error, $st_failed of $half missing with their error |"
echo "| nothing lost: status | $(jq -r .summary <<<"$final") |"
echo
echo "RSS over the run (s since the daemon's start: MiB), every 30th sample: $(awk 'NR % 30 == 1 {printf "%s%.0f: %.1f", (n++ ? ", " : ""), $1, $2 / 1024}' "$W/rss.log")."
echo
