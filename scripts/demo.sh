#!/usr/bin/env bash
# make demo: pullwatch on a throwaway bed (registry, fault proxy, dockerd, containerd) under a temp
# dir. Shows a healthy watched pull, an injected stall cut and retried, a silent-but-working
# extraction left alone, and a hung decompressor found, ended and diagnosed. Tears it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PW=$PWD/$BUILD/pullwatch
BED_DIR=$(mktemp -d /tmp/pwdemo.XXXXXX)
export BED_DIR

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
cleanup() {
	pkill -TERM -f "pullwatch daemon --config $BED_DIR/" 2>/dev/null || true
	declare -F journald_stop >/dev/null && journald_stop
	tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true
}
trap cleanup EXIT

say "starting a throwaway bed under $BED_DIR (docker-registry, fault proxy, dockerd, containerd)"
tests/bed/bed.sh start >/dev/null
# shellcheck disable=SC1091
source "$BED_DIR/env"
proxy() { curl -fsS -X "$1" ${3:+-d "$3"} "$PROXY_CONTROL$2" >/dev/null; }
push() { python3 tests/bed/pushimg.py --registry "$REGISTRY_ADDR" --repo "$1" --tag v1 --layers "$2" | jq -r "${3:-.reference}"; }

# Budgets scaled down so the demo takes a minute, not an hour; every key is in pullwatch.yaml(5).
cat >"$BED_DIR/pullwatch.yaml" <<YAML
runtime: docker
docker:
  socket: $DOCKER_SOCK
containerd:
  socket: $CONTAINERD_SOCK
credentials: ["$BED_DIR/none.json"]
watchdog:
  sample_interval: 1s
  network_stall: 6s
  silent_min: 3s
  hang_quiet: 6s
  livelock_window: 8s
  trickle_window: 8s
retry:
  attempts: 4
  backoff: 1s
  backoff_max: 2s
YAML
pull() { "$PW" pull --config "$BED_DIR/pullwatch.yaml" "$@" || true; }

say "1. a healthy 4-layer pull, watched layer by layer"
push demo/app 8MiB,4MiB,2MiB,1MiB >/dev/null
pull "$PROXY_ADDR/demo/app:v1"

say "2. the registry stops sending mid-layer (connection held open): stalled, cut, retried"
layer=$(push demo/stall 6MiB,1MiB '.layers[0].digest')
proxy POST /rules "{\"digest\":\"$layer\",\"stall_at\":2097152,\"stall_for\":\"forever\",\"first\":1}"
pull "$PROXY_ADDR/demo/stall:v1"
proxy DELETE /rules

say "3. a decompressor that is slow but working: silent for 12 s, never cancelled (kubelet's 1m deadline, scaled, would have)"
push demo/slow 2MiB >/dev/null
echo slow:12 >"$UNPIGZ_MODE_FILE"
pull "$PROXY_ADDR/demo/slow:v1"

say "4. a decompressor that hangs (report 002): hung, ended, diagnosed, retried"
push demo/hang 2MiB >/dev/null
echo sleep >"$UNPIGZ_MODE_FILE"
( while ! grep -q sleep "$UNPIGZ_LOG" 2>/dev/null; do sleep 0.2; done; sleep 9; echo real >"$UNPIGZ_MODE_FILE" ) &
fixer=$!
pull "$PROXY_ADDR/demo/hang:v1"
wait "$fixer"

say "5. the same run as JSON events, for scripts (a missing image: permanent, no retry)"
pull --json "$PROXY_ADDR/demo/missing:v1"

say "6. the agent: pullwatch daemon preheats a list, alerts to journald, answers pullwatch status"
# journald: the host's if it runs, else a standalone one in a private mount namespace
# shellcheck disable=SC1091
source tests/bed/journald.sh
journald_start "$BED_DIR/journal" "$PWD"
in_ns() { nsenter -t "$JPID" -m -- "$@"; }
mkdir -p "$BED_DIR/lists" "$BED_DIR/state" "$BED_DIR/metrics"
cat >>"$BED_DIR/pullwatch.yaml" <<YAML
control_socket: $BED_DIR/control.sock
state_dir: $BED_DIR/state
metrics:
  textfile: $BED_DIR/metrics/pullwatch.prom
preheat:
  list: $BED_DIR/lists/preheat.yaml
  concurrency: 2
  splay: 0s
  recheck: 30s
YAML
push demo/web 4MiB,2MiB >/dev/null
push demo/batch 6MiB >/dev/null
push demo/ml 8MiB,8MiB >/dev/null
layer=$(push demo/batch 6MiB '.layers[0].digest')
proxy POST /rules "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
cat >"$BED_DIR/lists/preheat.yaml" <<YAML
- $PROXY_ADDR/demo/web:v1
- image: $PROXY_ADDR/demo/batch:v1
  priority: 10
YAML
echo "preheat list:"; cat "$BED_DIR/lists/preheat.yaml"
in_ns "$PW" daemon --config "$BED_DIR/pullwatch.yaml" >"$BED_DIR/daemon.log" 2>&1 &
dpid=$!
status() { "$PW" status --config "$BED_DIR/pullwatch.yaml" || true; }
for _ in $(seq 60); do status >/dev/null 2>&1 && break; sleep 0.5; done
sleep 3; echo; echo "\$ pullwatch status   (the batch image is stalled on its first attempt)"; status
for _ in $(seq 60); do status 2>/dev/null | grep -q "2/2 ready" && break; sleep 1; done
echo; echo "\$ pullwatch status"; status
echo; echo "adding an image the way an editor does (write a temp file, rename it over the list):"
{ cat "$BED_DIR/lists/preheat.yaml"; echo "- $PROXY_ADDR/demo/ml:v1"; } >"$BED_DIR/lists/.preheat.yaml.tmp"
mv "$BED_DIR/lists/.preheat.yaml.tmp" "$BED_DIR/lists/preheat.yaml"
for _ in $(seq 60); do status 2>/dev/null | grep -q "3/3 ready" && break; sleep 1; done
echo "\$ pullwatch status"; status
echo; echo "\$ journalctl SYSLOG_IDENTIFIER=pullwatch   (the alerts, with their PULLWATCH_* fields)"
journalctl -D "$JDIR/log/journal" --no-pager -o short-monotonic SYSLOG_IDENTIFIER=pullwatch | tail -n 12
echo; echo "\$ journalctl -x (one alert explained by its catalog entry)"
in_ns journalctl --update-catalog
in_ns journalctl -x -D "$JDIR/log/journal" --no-pager PULLWATCH_ALERT=pull-stalled | head -n 30
echo; echo "metrics for node_exporter's textfile collector:"; grep -E '^pullwatch_(pulls|retries|verdicts)' "$BED_DIR/metrics/pullwatch.prom" | head
# SIGTERM to the daemon itself (nsenter, its parent, would not pass it on)
kill -TERM "$("$PW" status --config "$BED_DIR/pullwatch.yaml" --json | jq -r .pid)"
wait "$dpid" || true
journald_stop

say "done; tearing the bed down"
