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

# pw_pull OUT ARGS...: foreground pull with --json into OUT; status in $PW_RC. A pull that fails leaves
# its last words on stderr, which bats shows only when the test fails.
pw_pull() {
	local out=$1; shift
	PW_RC=0
	timeout 240 "$PULLWATCH" pull --config "$PW_CONFIG" --json "$@" >"$out" 2>"$out.err" || PW_RC=$?
	[ "$PW_RC" -eq 0 ] || { echo "pullwatch pull $* exited $PW_RC; its stderr and last events:"; tail -n 5 "$out.err"
		tail -n 8 "$out"; } >&2
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
# rate_limited_pull HOST REPO TEXT: the registry behind HOST answers the manifest 429 "come back in 4 s"
# three times (pullwatch's look-up and the runtime's); a docker pull through pullwatch succeeds, names
# rate-limited with TEXT, and waits as asked before attempt 2. On the containerd image store dockerd
# resolves through containerd's resolver, which asks again at once after a 429 without waiting for
# Retry-After (measured): the rule's other two 429s go to it and attempt 1 succeeds.
rate_limited_pull() {
	local f="$BATS_TEST_TMPDIR/out"
	push_image "$2" v1 256KiB >/dev/null
	proxy_rule '{"path":"/manifests/","methods":["GET","HEAD"],"status":429,"retry_after":4,"first":3}'
	pw_pull "$f" --runtime docker "$1/$2:v1"
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="diagnosis" and .diagnosis=="rate-limited"' | grep -qF -- "$3"
	if [ "${DOCKER_STORE:-classic}" = containerd ]; then
		jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
		proxy_counters | jq -e '.rules[0].applied == 3'
		return 0
	fi
	# retry.backoff is 1s here, and dockerd's error text has no Retry-After: only the probe's reading
	# of it explains a gap of about 4 s
	jq -s -e '(map(select(.event=="diagnosis" and .diagnosis=="rate-limited")) | first | .t) as $d
	          | (map(select(.event=="attempt" and .attempt==2)) | first | .t) - $d >= 3.5' "$f"
}

biggest_layer() { jq -r '.layers | max_by(.size) | .digest' <<<"$1"; }

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start_token_registry USER PASSWORD: a second docker-registry on the bed registry's storage (the
# images pushed there are visible), behind token auth served by tests/bed/tokenserver.py. Sets
# TOKEN_REGISTRY (127.0.0.1:port) and TOKEN_REALM; both processes die with bed_stop (pids noted).
start_token_registry() {
	local dir=$BED_DIR/token tport rport host=127.0.0.1 scheme=http tls="" curl_ca=()
	# USER PASSWORD [HOST CERT KEY CA]: the registry on HOST over TLS with that certificate, curl
	# checking it against CA (the token server stays plain http on loopback: the realm is a URL)
	if [ $# -ge 6 ]; then
		host=$3 scheme=https curl_ca=(--cacert "$6")
		tls=$(printf '\n  tls:\n    certificate: %s\n    key: %s' "$4" "$5")
	fi
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
  addr: $host:$rport$tls
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
	for _ in $(seq 100); do curl -s "${curl_ca[@]}" -o /dev/null "$scheme://$host:$rport/v2/" && break; sleep 0.1; done
	curl -s "${curl_ca[@]}" -o /dev/null "$scheme://$host:$rport/v2/" || { cat "$dir/registry.log" "$dir/ts.log" >&2; return 1; }
	TOKEN_REGISTRY=$host:$rport
	TOKEN_REALM=http://127.0.0.1:$tport/token
	# containerd learns plain-http hosts from its hosts dir (a TLS one's trust is the caller's)
	if [ -n "${CONTAINERD_HOSTS_DIR:-}" ] && [ "$scheme" = http ]; then
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

# ---------------------------------------------------------------- the daemon beside a journald
# `pullwatch daemon` on the bed next to a standalone systemd-journald (tests/bed/journald.sh: a
# private mount namespace whose /run/systemd/journal is the one sd_journal_send writes to), as
# daemon.bats and preheat_gc.bats run it; daemonset.bats uses the journal half for its container.
#   setup_file:    ... daemon_bed_start; daemon_start
#   teardown_file: daemon_bed_stop; bed_stop
source "$(dirname "${BASH_SOURCE[0]}")/../bed/journald.sh"

# journal entries of pullwatch as JSON lines; extra journalctl matches as arguments
journal() {
	timeout 20 journalctl -D "$JDIR/log/journal" -o json --no-pager SYSLOG_IDENTIFIER=pullwatch "$@"
}

wait_journal() { # SECS JQ-FILTER [journalctl matches...]
	local secs=$1 filter=$2 i
	shift 2
	for ((i = 0; i < secs * 5; i++)); do
		journal "$@" 2>/dev/null | jq -e -c "select($filter)" 2>/dev/null | grep -q . && return 0
		sleep 0.2
	done
	echo "no journal entry matching $filter ($*) within ${secs}s; pullwatch's entries:" >&2
	journal -o cat >&2 || true
	return 1
}

status_json() { timeout 20 "$PULLWATCH" status --json --config "$PW_CONFIG"; }

wait_status() { # SECS JQ-CONDITION; STATUS_FN (default status_json) asks for the status
	local secs=$1 cond=$2 i out fn=${STATUS_FN:-status_json}
	for ((i = 0; i < secs * 5; i++)); do
		out=$("$fn" 2>/dev/null) && jq -e "$cond" <<<"$out" >/dev/null 2>&1 && return 0
		sleep 0.2
	done
	echo "status never satisfied $cond within ${secs}s; last status:" >&2
	"$fn" | jq -c . >&2 || true
	[ "$fn" != status_json ] || { echo "daemon log:" >&2; tail -n 30 "$DLOG" >&2; }
	return 1
}

# pid from FILE if it is still the process named by PATTERN (in its command line), never a reused pid
live_pid() { # FILE PATTERN
	local p
	p=$(cat "$1" 2>/dev/null) || return 1
	[ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q -- "$2" && echo "$p"
}

# The journald for the whole file (setup_file), and its end with the daemon a test left (teardown_file).
daemon_bed_start() {
	DAEMON_RUNS=${DAEMON_RUNS:-0}
	echo 0123456789abcdef0123456789abcdef >"$BED_DIR/machine-id"
	export DAEMON_RUNS
	journald_start "$BED_DIR/journal" "$REPO"
}

daemon_bed_stop() {
	local p
	if p=$(live_pid "$BED_DIR/daemon.pid" "pullwatch daemon"); then
		kill -TERM "$p"
		timeout 20 tail --pid="$p" -f /dev/null || true
	fi
	journald_stop
}

# `pullwatch daemon --config $PW_CONFIG` in journald's namespace, under timeout as a safety net; its
# exit status lands in $DLOG.rc. Signals go to the daemon itself (its pid from status), not to timeout,
# which would forward them to its whole group. With NOTIFY_SOCK set it gets that notify socket and a
# watchdog; with DAEMON_STDERR=journal its stderr is a journal stream, as under systemd (JOURNAL_STREAM
# set, "<N>" prefixes parsed), instead of $DLOG.
daemon_start() {
	local wrap=() notify=()
	[ "${DAEMON_STDERR:-}" = journal ] && wrap=(systemd-cat -t pullwatch --level-prefix=true env JOURNAL_STREAM=0:0)
	[ -n "${NOTIFY_SOCK:-}" ] && notify=(NOTIFY_SOCKET="$NOTIFY_SOCK" WATCHDOG_USEC=2000000)
	# a log of its own per start: DAEMON_RUNS does not carry from one test to the next (each is a
	# subshell), and a reused name would hand daemon_stop the previous daemon's exit status
	DLOG=$(mktemp "$BED_DIR/daemon.$((++DAEMON_RUNS)).XXXXXX.log")
	(
		rc=0
		nsenter -t "$JPID" -m -- env "${notify[@]}" PULLWATCH_MACHINE_ID_FILE="$BED_DIR/machine-id" "${wrap[@]}" \
			timeout 600 "$PULLWATCH" daemon --config "$PW_CONFIG" >"$DLOG" 2>&1 || rc=$?
		echo "$rc" >"$DLOG.rc.tmp" && mv "$DLOG.rc.tmp" "$DLOG.rc" # whole or absent, never half-written
	) 3>&- &
	# on a failed start the daemon's log goes to the TAP stream: setup_file's stderr is not shown
	wait_for 20 status_json || {
		echo "# the daemon did not answer status within 20 s; its log ($DLOG, exit ${DLOG_RC:-$(cat "$DLOG.rc" 2>/dev/null || echo running)}):" >&3
		sed 's/^/#   /' "$DLOG" | tail -40 >&3
		return 1
	}
	DAEMON_PID=$(status_json | jq -r .pid)
	[ -n "$DAEMON_PID" ] && [ "$(cat "/proc/$DAEMON_PID/comm")" = pullwatch ]
	echo "$DAEMON_PID" >"$BED_DIR/daemon.pid" # for teardown_file, which does not see a test's variables
	export DLOG DAEMON_PID DAEMON_RUNS
}

# small_disk_config DOCKER_SOCK CONTAINERD_SOCK: PW_CONFIG for the runtime on a small filesystem
# (disk.bats, disk_docker.bats): budgets as in the bed's config, but a stall window long enough that
# the test's own fill of the disk is what ends the stalled attempt, not the stall watchdog.
small_disk_config() {
	cat >"$BED_DIR/disk.yaml" <<YAML
docker:
  socket: $1
containerd:
  socket: $2
credentials: ["$BED_DIR/no-credentials.json"]
watchdog:
  sample_interval: 1s
  network_stall: 120s
  silent_min: 30s
  hang_quiet: 60s
  livelock_window: 60s
retry:
  attempts: 2
  backoff: 1s
  backoff_max: 60s
YAML
	export PW_CONFIG="$BED_DIR/disk.yaml"
}

# credential_configs REGISTRY USER PASSWORD: $BATS_TEST_TMPDIR/with.yaml (PW_CONFIG reading a config.json
# with USER's credentials for REGISTRY) and without.yaml (one with no entry), for the auth tests
credential_configs() {
	printf '{"auths":{"%s":{"auth":"%s"}}}\n' "$1" "$(printf '%s:%s' "$2" "$3" | base64)" >"$BATS_TEST_TMPDIR/creds.json"
	printf '{"auths":{}}\n' >"$BATS_TEST_TMPDIR/none.json"
	sed "s|^credentials: .*|credentials: [\"$BATS_TEST_TMPDIR/creds.json\"]|" "$PW_CONFIG" >"$BATS_TEST_TMPDIR/with.yaml"
	sed "s|^credentials: .*|credentials: [\"$BATS_TEST_TMPDIR/none.json\"]|" "$PW_CONFIG" >"$BATS_TEST_TMPDIR/without.yaml"
}
