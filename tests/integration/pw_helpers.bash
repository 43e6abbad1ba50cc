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

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_token_registry USER PASSWORD: a second docker-registry on the bed registry's storage (the
# images pushed there are visible), behind token auth served by tests/bed/tokenserver.py. Sets
# TOKEN_REGISTRY (127.0.0.1:port) and TOKEN_REALM; both processes die with bed_stop (pids noted).
start_token_registry() {
	local dir=$BED_DIR/token tport rport
	mkdir -p "$dir"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$dir/key.pem" -out "$dir/cert.pem" -days 1 \
		-subj /CN=pullwatch-token >/dev/null 2>&1
	python3 tests/bed/tokenserver.py --key "$dir/key.pem" --cert "$dir/cert.pem" --issuer pw-issuer \
		--user "$1" --password "$2" --port-file "$dir/ts.port" >"$dir/ts.log" 2>&1 &
	echo "$!" >>"$BED_DIR/token.pids"
	for _ in $(seq 100); do [ -s "$dir/ts.port" ] && break; sleep 0.1; done
	tport=$(cat "$dir/ts.port")
	rport=$(free_port)
	cat >"$dir/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_ROOT
http:
  addr: 127.0.0.1:$rport
auth:
  token:
    realm: http://127.0.0.1:$tport/token
    service: pw-service
    issuer: pw-issuer
    rootcertbundle: $dir/cert.pem
YAML
	# docker-registry reads REGISTRY_* variables as config overrides: keep the bed's out of it
	env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') \
		docker-registry serve "$dir/config.yml" >"$dir/registry.log" 2>&1 &
	echo "$!" >>"$BED_DIR/token.pids"
	for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$rport/v2/" && break; sleep 0.1; done
	curl -s -o /dev/null "http://127.0.0.1:$rport/v2/" || { cat "$dir/registry.log" "$dir/ts.log" >&2; return 1; }
	TOKEN_REGISTRY=127.0.0.1:$rport
	TOKEN_REALM=http://127.0.0.1:$tport/token
	# containerd learns plain-http hosts from its hosts dir
	if [ -n "${CONTAINERD_HOSTS_DIR:-}" ]; then
		mkdir -p "$CONTAINERD_HOSTS_DIR/$TOKEN_REGISTRY"
		printf 'server = "http://%s"\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
			"$TOKEN_REGISTRY" "$TOKEN_REGISTRY" >"$CONTAINERD_HOSTS_DIR/$TOKEN_REGISTRY/hosts.toml"
	fi
}

stop_token_registry() {
	[ -s "$BED_DIR/token.pids" ] && kill $(cat "$BED_DIR/token.pids") 2>/dev/null
	rm -f "$BED_DIR/token.pids"
}

# Every decoy the bed placed beside the socket-activated dockerd (processes named tar, gzip and
# unpigz under the socket's listener, outside dockerd's tree) is still alive and asleep (state S).
decoys_untouched() {
	local p st n=0
	[ -s "${DOCKER_DECOY_PIDS:-}" ] || { echo "the bed recorded no decoys" >&2; return 1; }
	while read -r p; do
		st=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | cut -d' ' -f1)
		[ "$st" = S ] || { echo "decoy $p is in state '${st:-gone}'" >&2; return 1; }
		n=$((n + 1))
	done <"$DOCKER_DECOY_PIDS"
	[ "$n" -ge 3 ]
}

# The helper pullwatch ended (its kill-helper event in FILE) was the bed's unpigz wrapper, run by the
# runtime, and it was signalled through a pidfd.
killed_the_real_helper() { # file
	local pid
	pid=$(jq -r 'select(.event=="action" and .action=="kill-helper") | .pid' "$1" | head -1)
	[ -n "$pid" ] && [ "$pid" != null ] || { echo "no kill-helper event" >&2; return 1; }
	grep -q "pid=$pid ppid=" "$UNPIGZ_LOG" || { echo "pid $pid is not a wrapper the runtime ran" >&2; return 1; }
	events "$1" '.event=="action" and .action=="kill-helper"' | grep -q 'killed by pidfd'
}
