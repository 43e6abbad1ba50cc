# pw_helpers.bash: pullwatch-specific helpers on top of the bed's helpers.bash: a test config with
# budgets scaled down (the same scale the unit timelines use), background pulls whose --json output
# lands in a file, and waiting on a jq condition over that file instead of sleeping.

# Writes $BED_DIR/pw.yaml. Extra YAML (top-level keys) may be passed as $1.
pw_config() {
	cat >"$BED_DIR/pw.yaml" <<YAML
docker:
  socket: $DOCKER_SOCK
containerd:
  socket: ${CONTAINERD_SOCK:-/nonexistent}
  namespace: k8s.io
credentials: ["$BED_DIR/no-credentials.json"]
watchdog:
  sample_interval: 1s
  network_stall: 6s
  silent_min: 3s
  silent_min_rate: 100MiB
  hang_quiet: 6s
  livelock_window: 8s
  trickle_rate: 64KiB
  trickle_window: 8s
  waiting_max: 60s
retry:
  attempts: 4
  backoff: 1s
  backoff_max: 2s
${1:-}
YAML
	export PW_CONFIG="$BED_DIR/pw.yaml"
}

# pw_pull OUT ARGS...: foreground pull with --json into OUT; status in $PW_RC.
pw_pull() {
	local out=$1; shift
	PW_RC=0
	timeout 240 "$PULLWATCH" pull --config "$PW_CONFIG" --json "$@" >"$out" 2>"$out.err" || PW_RC=$?
}

# pw_pull_bg OUT ARGS...: background pull; pid in $PW_PID.
pw_pull_bg() {
	local out=$1; shift
	timeout 240 "$PULLWATCH" pull --config "$PW_CONFIG" --json "$@" >"$out" 2>"$out.err" &
	PW_PID=$!
}

pw_wait_bg() { # wait for the background pull; status in $PW_RC
	PW_RC=0
	wait "$PW_PID" || PW_RC=$?
}

# wait_json FILE JQ-FILTER SECONDS: until some line of FILE matches (select(FILTER)), or fail.
wait_json() {
	local f=$1 filter=$2 secs=$3 i
	for ((i = 0; i < secs * 10; i++)); do
		if [ -s "$f" ] && jq -e -c "select($filter)" "$f" 2>/dev/null | grep -q .; then
			return 0
		fi
		sleep 0.1
	done
	echo "timed out after ${secs}s waiting for $filter in $f:" >&2
	tail -n 20 "$f" >&2
	return 1
}

# jq over the event file, one compact line per match
events() { jq -c "select($2)" "$1"; }

# Every layer the pull saw ends in phase done in the last attempt.
all_layers_done() {
	local f=$1 last
	last=$(jq -s '[.[] | select(.event=="attempt")] | last | .attempt' "$f")
	jq -s -e --argjson a "$last" '
		[.[] | select(.attempt==$a and .event=="phase")] as $p
		| ($p | map(.layer) | unique) as $layers
		| ($layers | length) > 0 and
		  all($layers[]; . as $l | ($p | map(select(.layer==$l)) | last | .phase) == "done")' "$f" >/dev/null
}

layer_count() { jq -s '[.[] | select(.event=="phase") | .layer] | unique | length' "$1"; }

# digest of the biggest layer of a push_image JSON
biggest_layer() { jq -r '.layers | max_by(.size) | .digest' <<<"$1"; }
