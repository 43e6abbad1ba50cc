#!/usr/bin/env bats
# `pullwatch daemon` against real components: the bed's registry, fault proxy and dockerd, a real
# systemd-journald, and a notify socket. The journald runs standalone in a private mount namespace
# (tmpfs on /run so its /run/systemd/journal/socket is the one sd_journal_send writes to, its journal
# files bind-mounted out to $JDIR/log, a catalog database of its own); the daemon runs in that
# namespace through nsenter, everything else reads the journal files with `journalctl -D`. The tests
# run in order against one daemon and share its list, state and journal.

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")

# ---------------------------------------------------------------- notify socket, daemon
# journald, journal, wait_journal, status_json, wait_status, daemon_start: pw_helpers.bash

notify_start() {
	cat >"$BED_DIR/notify.py" <<-'EOF'
		import socket, sys
		s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
		s.bind(sys.argv[1])
		with open(sys.argv[2], "a", buffering=1) as f:
		    while True:
		        for line in s.recv(65536).decode(errors="replace").split("\n"):
		            if line:
		                f.write(line + "\n")
	EOF
	NOTIFY_SOCK=$BED_DIR/notify.sock
	NOTIFY_LOG=$BED_DIR/notify.log
	: >"$NOTIFY_LOG"
	timeout 900 python3 "$BED_DIR/notify.py" "$NOTIFY_SOCK" "$NOTIFY_LOG" >/dev/null 2>&1 3>&- &
	NOTIFY_PID=$!
	export NOTIFY_SOCK NOTIFY_LOG NOTIFY_PID
	wait_for 10 test -S "$NOTIFY_SOCK"
}

notify_count() { grep -c -x -- "$1" "$NOTIFY_LOG" || true; }

wait_notify() { # SECS LINE-REGEX [MIN-COUNT]
	local secs=$1 re=$2 min=${3:-1} i
	for ((i = 0; i < secs * 10; i++)); do
		[ "$(grep -c -E -x -- "$re" "$NOTIFY_LOG" || true)" -ge "$min" ] && return 0
		sleep 0.1
	done
	echo "notify socket: no $min x '$re' within ${secs}s; got:" >&2
	tail -n 20 "$NOTIFY_LOG" >&2
	return 1
}

daemon_stop() { # SIGTERM, wait for the exit; status in DAEMON_RC
	DAEMON_RC=0
	[ -n "${DAEMON_PID:-}" ] || return 0
	kill -TERM "$DAEMON_PID" 2>/dev/null || true
	if ! wait_for 30 test -s "$DLOG.rc"; then
		# say where it is stuck rather than failing later on an empty status
		echo "daemon $DAEMON_PID did not exit within 30 s of SIGTERM:" >&2
		ps -o pid,stat,wchan:32,etime,args -p "$DAEMON_PID" >&2 || true
		cat "/proc/$DAEMON_PID/stack" >&2 2>/dev/null || true
		tail -n 30 "$DLOG" >&2
		DAEMON_RC=stuck DAEMON_PID=
		return 1
	fi
	DAEMON_RC=$(cat "$DLOG.rc")
	DAEMON_PID=
}

# Stop the daemon an earlier test left running, if any (a test run alone with -f starts from here).
daemon_stop_any() {
	local p
	p=$(live_pid "$BED_DIR/daemon.pid" "pullwatch daemon") || return 0
	kill -TERM "$p"
	timeout 30 tail --pid="$p" -f /dev/null
}


# image ready in the daemon's status
ready() { printf '(.preheat | map(select(.image == "%s" and .state == "ready")) | length) == 1' "$1"; }

docker_has() { docker_api GET "/images/$1/json" >/dev/null 2>&1; }
docker_digest_is() { docker_api GET "/images/$1/json" | jq -e --arg d "$2" '.RepoDigests | any(endswith("@" + $d))'; }

write_list() { # FILE IMAGE...: by rename, as editors do
	local f=$1
	shift
	printf -- '- %s\n' "$@" >"$f.tmp"
	mv -f "$f.tmp" "$f"
}

# Publish ITEM... into the ConfigMap-style dir the way the kubelet does: a new timestamped dir, a
# new ..data_tmp symlink renamed over ..data. An ITEM is an image, or a YAML flow mapping "{...}".
cm_publish() {
	local ts dir
	ts="..$(date +%Y_%m_%d_%H_%M_%S).$((++CM_SEQ))"
	dir=$CM_DIR/$ts
	mkdir -p "$dir"
	printf -- '- %s\n' "$@" >"$dir/preheat.yaml"
	ln -sfn "$ts" "$CM_DIR/..data_tmp"
	mv -T "$CM_DIR/..data_tmp" "$CM_DIR/..data"
	[ -L "$CM_DIR/preheat.yaml" ] || ln -s ..data/preheat.yaml "$CM_DIR/preheat.yaml"
	export CM_SEQ
}

write_config() { # LIST-PATH
	pw_config "runtime: docker
preheat:
  list: $1
  concurrency: 2
  splay: 1s
  recheck: 3s
state_dir: $BED_DIR/state
control_socket: $BED_DIR/run/control.sock
metrics:
  textfile: $BED_DIR/metrics/pullwatch.prom
alerts:
  rate_limit: 10m"
}

# A unix socket relay to dockerd's: "dockerd comes back" without restarting the bed's dockerd.
relay_start() { # LISTEN TARGET
	cat >"$BED_DIR/relay.py" <<-'EOF'
		import socket, sys, threading
		srv = socket.socket(socket.AF_UNIX)
		srv.bind(sys.argv[1])
		srv.listen(16)
		def pipe(a, b):
		    try:
		        while True:
		            d = a.recv(65536)
		            if not d:
		                break
		            b.sendall(d)
		    except OSError:
		        pass
		    finally:
		        try:
		            b.shutdown(socket.SHUT_WR)
		        except OSError:
		            pass
		while True:
		    c, _ = srv.accept()
		    u = socket.socket(socket.AF_UNIX)
		    u.connect(sys.argv[2])
		    threading.Thread(target=pipe, args=(c, u), daemon=True).start()
		    threading.Thread(target=pipe, args=(u, c), daemon=True).start()
	EOF
	timeout 300 python3 "$BED_DIR/relay.py" "$1" "$2" >"$BED_DIR/relay.log" 2>&1 3>&- &
	echo $! >"$BED_DIR/relay.pid"
	wait_for 10 test -S "$1"
}

blob_requests() { proxy_counters -r .blob_requests; }
manifest_requests() { proxy_counters -r --arg k "$1" '.manifests[$k].requests // 0'; }
test_ge() { [ "$("${@:1:$#-1}")" -ge "${!#}" ]; } # CMD... N: CMD's output >= N

setup_file() {
	bed_require nsenter unshare journalctl /lib/systemd/systemd-journald python3 jq
	require_pullwatch
	bed_start
	CM_SEQ=0
	export CM_SEQ
	mkdir -p "$BED_DIR/list" "$BED_DIR/metrics"
	LIST=$BED_DIR/list/preheat.yaml
	CM_DIR=$BED_DIR/cm
	export LIST CM_DIR
	for r in pa pb pc pd pe pf pg; do
		push_image "test/$r" v1 256KiB,64KiB >/dev/null
	done
	push_image test/via v1 1MiB >"$BED_DIR/via.json"
	push_image test/stall v1 2MiB,64KiB >"$BED_DIR/stall.json"
	push_image test/hold v1 1MiB >"$BED_DIR/hold.json"
	IMG_A=$PROXY_ADDR/test/pa:v1 IMG_B=$PROXY_ADDR/test/pb:v1 IMG_C=$PROXY_ADDR/test/pc:v1
	IMG_D=$PROXY_ADDR/test/pd:v1 IMG_E=$PROXY_ADDR/test/pe:v1 IMG_F=$PROXY_ADDR/test/pf:v1 IMG_G=$PROXY_ADDR/test/pg:v1
	IMG_VIA=$PROXY_ADDR/test/via:v1 IMG_STALL=$PROXY_ADDR/test/stall:v1 IMG_HOLD=$PROXY_ADDR/test/hold:v1
	IMG_SLOW=$PROXY_ADDR/test/slowunpigz:v1
	export IMG_SLOW IMG_A IMG_B IMG_C IMG_D IMG_E IMG_F IMG_G IMG_VIA IMG_STALL IMG_HOLD
	write_config "$LIST"
	daemon_bed_start
	notify_start
	write_list "$LIST" "$IMG_A" "$IMG_B"
	daemon_start
}

teardown_file() {
	local p
	[ -n "${NOTIFY_PID:-}" ] && kill "$NOTIFY_PID" 2>/dev/null
	if p=$(live_pid "$BED_DIR/relay.pid" relay.py); then kill "$p"; fi
	if p=$(live_pid "$BED_DIR/hang.pid" hang.py); then kill "$p"; fi
	daemon_bed_stop
	bed_stop
}

setup() {
	proxy_clear
}

@test "READY=1, STATUS= and WATCHDOG=1 on the notify socket; a two-image list is preheated" {
	wait_notify 20 'READY=1'
	wait_status 60 "$(ready "$IMG_A") and $(ready "$IMG_B")"
	docker_has "$IMG_A"
	docker_has "$IMG_B"
	wait_notify 10 'STATUS=preheat 2/2 ready, 0 pulling, 0 failed'
	# WATCHDOG_USEC=2s: sd-event pings at least every second while the loop runs
	wait_notify 10 'WATCHDOG=1' 3
	# the preheat-complete alert, and state, metrics and status agree
	wait_journal 10 '.PULLWATCH_ALERT == "preheat-complete" and .PRIORITY == "6"' MESSAGE_ID=b9497fbecb0a4529b4ad38d29170f11b
	jq -e --arg a "$IMG_A" '.version == 1 and (.images | map(select(.image == $a and .runtime == "docker"
		and (.digest | startswith("sha256:")) and .attempts == 1 and .last_error == null)) | length == 1)' \
		"$BED_DIR/state/state.json"
	wait_for 10 grep -qx 'pullwatch_preheat_images{state="ready"} 2' "$BED_DIR/metrics/pullwatch.prom"
	grep -qx 'pullwatch_pulls_total{runtime="docker",result="ok"} 2' "$BED_DIR/metrics/pullwatch.prom"
	run timeout 20 "$PULLWATCH" status --config "$PW_CONFIG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"preheat 2/2 ready"* ]]
	[[ "$(grep -F "$IMG_A" <<<"$output")" == *" ready "*"sha256:"* ]]
	# the runtime as proven: the socket-activated dockerd, not the listener holding its socket
	[[ "$output" == *"process: pid $(cat "$DOCKER_PIDFILE") "*"dockerd (from socket-inode)"* ]]
	status_json | jq -e --argjson p "$(cat "$DOCKER_PIDFILE")" --argjson l "$(cat "$BED_DIR/docker.launch.pid")" \
		'.runtimes.docker.process.pid == $p and .runtimes.docker.process.pid != $l
		 and .runtimes.docker.process.source == "socket-inode" and (.runtimes.docker.process.exe | endswith("/dockerd"))'
}

@test "an image added by an editor's rename is pulled without a restart" {
	write_list "$LIST" "$IMG_A" "$IMG_B" "$IMG_C"
	wait_status 30 "$(ready "$IMG_C")"
	docker_has "$IMG_C"
	wait_notify 10 'STATUS=preheat 3/3 ready, 0 pulling, 0 failed'
}

@test "an image added by an in-place write is pulled without a restart" {
	printf -- '- %s\n' "$IMG_D" >>"$LIST"
	wait_status 30 "$(ready "$IMG_D")"
	docker_has "$IMG_D"
}

@test "a broken edit keeps the last good list and raises list-invalid naming file:line:column" {
	printf -- '- %s\n- image: [unclosed\n' "$IMG_A" >"$LIST.tmp"
	mv -f "$LIST.tmp" "$LIST"
	wait_journal 10 ".MESSAGE | contains(\"$LIST:3:\")" MESSAGE_ID=b727f8c32cc74941970739e0c681d642
	journal MESSAGE_ID=b727f8c32cc74941970739e0c681d642 | jq -e -s 'last | .PRIORITY == "3" and .PULLWATCH_ALERT == "list-invalid"'
	status_json | jq -e --arg l "$LIST" '.list.valid == false and (.list.error | startswith($l + ":3:")) and .list.items == 4'
	# nothing was forgotten or touched
	status_json | jq -e '[.preheat[] | select(.state == "ready")] | length == 4'
	docker_has "$IMG_B"
	wait_notify 10 'STATUS=preheat 4/4 ready, 0 pulling, 0 failed; list invalid'
	# fixed again
	write_list "$LIST" "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_D"
	wait_status 10 '.list.valid == true'
}

@test "SIGHUP reloads: RELOADING=1 then READY=1, the new list path is read, dropped images are forgotten not deleted" {
	mkdir -p "$CM_DIR"
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E"
	write_config "$CM_DIR/preheat.yaml"
	local ready_before
	ready_before=$(notify_count READY=1)
	kill -HUP "$DAEMON_PID"
	wait_notify 10 'RELOADING=1'
	wait_notify 10 'READY=1' $((ready_before + 1))
	grep -q '^MONOTONIC_USEC=[0-9]*$' "$NOTIFY_LOG"
	wait_status 30 "$(ready "$IMG_E") and (.list.path == \"$CM_DIR/preheat.yaml\")"
	# pd left the list: forgotten by the daemon and its state file, still on the node
	status_json | jq -e --arg d "$IMG_D" '[.preheat[] | select(.image == $d)] | length == 0'
	wait_for 10 jq -e --arg d "$IMG_D" '[.images[] | select(.image == $d)] | length == 0' "$BED_DIR/state/state.json"
	docker_has "$IMG_D"
}

# jq ARGS... on the daemon's own answer to a status request (the control socket, without the CLI)
daemon_status_has() {
	timeout 10 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\"cmd\":\"status\"}\n"); print(s.makefile().readline())' \
		"$BED_DIR/run/control.sock" | jq -e "$@" >/dev/null
}

@test "a ConfigMap-style ..data symlink swap adds an image without a restart" {
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F"
	wait_status 30 "$(ready "$IMG_F")"
	docker_has "$IMG_F"
}

@test "an item with runtime: both is preheated into dockerd and into containerd's k8s.io namespace" {
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F" "{image: \"$IMG_G\", runtime: both}"
	wait_status 60 "(.preheat | map(select(.image == \"$IMG_G\" and .state == \"ready\")) | map(.runtime) | sort) == [\"containerd\", \"docker\"]"
	status_json | jq -e '.runtimes.docker.up == true and .runtimes.containerd.up == true'
	# status names each runtime's version, the row's (dockerd "28.5.2+dfsg4", containerd "2.1.9+unknown")
	status_json | jq -e --arg d "$BED_DOCKERD_VERSION" --arg c "$BED_CONTAINERD_VERSION" '
		(.runtimes.docker.version | ltrimstr("v") | startswith($d)) and (.runtimes.docker.api_version | test("^1[.][0-9]+$"))
		and (.runtimes.containerd.version | ltrimstr("v") | startswith($c))'
	# the daemon's own answer holds them, with their age: status does not wait on a busy runtime (the
	# CLI asks a runtime itself only while the daemon has nothing of it yet)
	wait_for 20 daemon_status_has --arg d "$BED_DOCKERD_VERSION" --arg c "$BED_CONTAINERD_VERSION" '
		(.runtimes.docker.version | ltrimstr("v") | startswith($d)) and .runtimes.docker.described_age_s >= 0
		and (.runtimes.containerd.version | ltrimstr("v") | startswith($c)) and .runtimes.containerd.described_age_s >= 0'
	run timeout 20 "$PULLWATCH" status --config "$PW_CONFIG"
	[ "$status" -eq 0 ]
	[[ "$output" == *"runtime docker: up, version $BED_DOCKERD_VERSION"*"(API 1."* ]]
	[[ "$output" =~ "runtime containerd: up, version "v?"$BED_CONTAINERD_VERSION" ]]
	# containerd's own CRI progress timeout: only 1.7 reports it (its default, 5m since 1.7.10)
	case "$BED_CONTAINERD_VERSION" in
	1.7.*)
		status_json | jq -e '.runtimes.containerd.image_pull_progress_timeout == "5m0s" and (.runtimes.containerd | has("warning") | not)'
		[[ "$output" == *"image_pull_progress_timeout 5m0s"* ]] ;;
	*) status_json | jq -e '.runtimes.containerd | has("image_pull_progress_timeout") | not' ;;
	esac
	# and the image store dockerd uses: on the containerd store, the containerd it pulls through
	if [ "$DOCKER_STORE" = containerd ]; then
		status_json | jq -e --arg a "$CONTAINERD_SOCK" '.runtimes.docker.store == "containerd"
			and .runtimes.docker.containerd_address == $a and .runtimes.docker.containerd_namespace == "moby"'
		[[ "$output" == *"image store: containerd ("*"), through containerd at $CONTAINERD_SOCK, namespace moby"* ]]
	else
		status_json | jq -e '.runtimes.docker.store == "classic" and (.runtimes.docker | has("containerd_address") | not)'
		[[ "$output" == *"image store: classic ("* ]]
	fi
	docker_has "$IMG_G"
	run_timeout 30 cri_status "$IMG_G" | jq -e '.image != null and (.image.repo_digests | length) > 0'
	# back to docker only: the containerd target is forgotten, the image stays in containerd
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F"
	wait_status 20 "(.preheat | map(select(.image == \"$IMG_G\")) | length) == 0 and (.runtimes | has(\"containerd\") | not)"
	run_timeout 30 cri_status "$IMG_G" | jq -e '.image != null'
}

@test "an image deleted from dockerd is pulled again at the next recheck" {
	local before
	before=$(blob_requests)
	docker_rmi "$IMG_C"
	# recheck is 3s: confirm finds it gone and pulls it again
	wait_for 30 docker_has "$IMG_C"
	wait_status 20 "$(ready "$IMG_C")"
	[ "$(blob_requests)" -gt "$before" ]
	[ "$(grep -c "$IMG_C (docker): pulled in" "$DLOG")" -eq 2 ]
}

@test "a tag moved to a new digest in the registry is pulled again at the next recheck" {
	local old new
	old=$(status_json | jq -r --arg b "$IMG_B" '.preheat[] | select(.image == $b) | .digest')
	[[ "$old" == sha256:* ]]
	new=$(push_image test/pb v1 128KiB,32KiB | jq -r .manifest_digest)
	[ "$new" != "$old" ]
	wait_for 30 docker_digest_is "$IMG_B" "$new"
	wait_status 20 "(.preheat | map(select(.image == \"$IMG_B\" and .state == \"ready\" and .digest == \"$new\")) | length) == 1"
	wait_for 10 jq -e --arg b "$IMG_B" --arg d "$new" '.images | map(select(.image == $b and .digest == $d)) | length == 1' \
		"$BED_DIR/state/state.json"
}

@test "an injected stall produces journald alerts with PULLWATCH_* fields, then recovered" {
	local big short
	big=$(biggest_layer "$(cat "$BED_DIR/stall.json")")
	short=${big#sha256:}
	short=${short:0:12}
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":524288,\"stall_for\":\"forever\",\"first\":1}" >/dev/null
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F" "$IMG_STALL"
	wait_journal 40 ".PULLWATCH_IMAGE == \"$IMG_STALL\"" MESSAGE_ID=f36e7887655d4e898f44005084b71ed4
	journal MESSAGE_ID=f36e7887655d4e898f44005084b71ed4 PULLWATCH_IMAGE="$IMG_STALL" | jq -e -s --arg l "$short" 'first |
		.SYSLOG_IDENTIFIER == "pullwatch" and .PRIORITY == "4" and .PULLWATCH_RUNTIME == "docker" and
		.PULLWATCH_LAYER == $l and .PULLWATCH_PHASE == "downloading" and .PULLWATCH_VERDICT == "stalled" and
		.PULLWATCH_ATTEMPT == "1" and (.PULLWATCH_EVIDENCE | test("no bytes")) and
		(.MESSAGE | contains("stalled"))'
	# the retry gets through: one recovered alert, attempt 2
	wait_journal 40 ".PULLWATCH_IMAGE == \"$IMG_STALL\" and .PULLWATCH_ATTEMPT == \"2\" and .PRIORITY == \"5\"" \
		MESSAGE_ID=3cefa26f1c314af6826d209c63721f23
	wait_status 10 "$(ready "$IMG_STALL")"
	# one stall alert, however long the stall (rate limited per image and kind)
	[ "$(journal MESSAGE_ID=f36e7887655d4e898f44005084b71ed4 PULLWATCH_IMAGE="$IMG_STALL" | wc -l)" -eq 1 ]
	grep -qx 'pullwatch_verdicts_total{verdict="stalled"} [1-9][0-9]*' "$BED_DIR/metrics/pullwatch.prom"
	grep -qx 'pullwatch_retries_total [1-9][0-9]*' "$BED_DIR/metrics/pullwatch.prom"
}

@test "journalctl -x shows the catalog entry for the stall after --update-catalog" {
	run timeout 30 nsenter -t "$JPID" -m journalctl --update-catalog
	[ "$status" -eq 0 ]
	run timeout 30 nsenter -t "$JPID" -m journalctl -x --no-pager -D "$JDIR/log/journal" \
		MESSAGE_ID=f36e7887655d4e898f44005084b71ed4
	[ "$status" -eq 0 ]
	# the catalog text, with the entry's fields filled in
	[[ "$output" == *"Subject: Image pull of $IMG_STALL stalled; cancelled and retrying"* ]]
	[[ "$output" == *"Defined-By: pullwatch"* ]]
	[[ "$output" == *"received no bytes for longer than"* ]]
}

@test "pullwatch pull goes through the running daemon and streams the same JSON; status shows its layers live" {
	local layer
	layer=$(jq -r '.layers[0].digest' "$BED_DIR/via.json")
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":200000}" >/dev/null
	timeout 120 "$PULLWATCH" pull --config "$PW_CONFIG" --json "$IMG_VIA" >"$BED_DIR/via.out" 2>"$BED_DIR/via.err" 3>&- &
	local pid=$!
	wait_status 20 '.pulls | map(select(.layers | map(select(.phase == "downloading" and .verdict != null)) | length > 0)) | length == 1'
	run timeout 20 "$PULLWATCH" status --config "$PW_CONFIG"
	[[ "$output" == *"PULLS ON REQUEST"* && "$output" == *downloading* ]]
	wait "$pid"
	jq -e -s 'map(.event) | index("attempt") == 0 and (map(select(. == "result")) | length == 1)' "$BED_DIR/via.out"
	jq -e 'select(.event == "result") | .ok and .attempts == 1 and (.digest | startswith("sha256:"))' "$BED_DIR/via.out"
	grep -q "$IMG_VIA (docker): pull requested by pid" "$DLOG"
	docker_has "$IMG_VIA"
	# a malformed request gets an error object, and the daemon lives on
	run timeout 10 python3 -c 'import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); s.sendall(b"{\"cmd\":\"dance\"}\n"); print(s.makefile().readline())' "$BED_DIR/run/control.sock"
	[[ "$output" == *'"code":"unknown-command"'* ]]
	status_json >/dev/null
}

@test "SIGTERM during a pull: STOPPING=1, exit 0 within a few seconds, state saved, socket gone" {
	local layer
	layer=$(jq -r '.layers[0].digest' "$BED_DIR/hold.json")
	proxy_rule "{\"digest\":\"$layer\",\"stall_at\":65536,\"stall_for\":\"forever\"}" >/dev/null
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F" "$IMG_STALL" "$IMG_HOLD"
	wait_status 20 "(.preheat | map(select(.image == \"$IMG_HOLD\" and .state == \"pulling\")) | length) == 1"
	local t0=$SECONDS
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ]
	[ $((SECONDS - t0)) -le 5 ]
	wait_notify 5 'STOPPING=1'
	[ ! -e "$BED_DIR/run/control.sock" ]
	jq -e --arg a "$IMG_A" '.images | map(select(.image == $a and .digest != null)) | length == 1' "$BED_DIR/state/state.json"
	grep -q "stopping (SIGTERM)" "$DLOG"
	proxy_release
}

@test "a restart with state present re-pulls nothing that is present" {
	cm_publish "$IMG_A" "$IMG_B" "$IMG_C" "$IMG_E" "$IMG_F" "$IMG_STALL"
	local before ready_before checks
	before=$(blob_requests)
	ready_before=$(notify_count READY=1)
	checks=$(manifest_requests test/pa:v1)
	daemon_start
	wait_notify 20 'READY=1' $((ready_before + 1))
	wait_status 20 '(.preheat | length) == 6 and all(.preheat[]; .state == "ready")'
	# two recheck rounds later (each asks the registry whether the tag moved) still nothing pulled
	wait_for 20 test_ge manifest_requests test/pa:v1 $((checks + 2))
	status_json | jq -e 'all(.preheat[]; .state == "ready")'
	[ "$(blob_requests)" -eq "$before" ]
	run grep -c "pulled in" "$DLOG"
	[ "$output" = 0 ]
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ]
}

@test "dockerd unreachable at start: READY anyway, one alert while it retries with backoff, recovered, then preheated" {
	local relay=$BED_DIR/relay.sock ready_before
	sed "s|socket: $DOCKER_SOCK\$|socket: $relay|" "$PW_CONFIG" >"$BED_DIR/pw-relay.yaml"
	grep -q "socket: $relay" "$BED_DIR/pw-relay.yaml"
	PW_CONFIG=$BED_DIR/pw-relay.yaml
	ready_before=$(notify_count READY=1)
	daemon_start
	wait_notify 20 'READY=1' $((ready_before + 1))
	# backoff 1s, 2s, 4s...: three failed pings within ~3s, items wait, STATUS= says why
	wait_status 20 '.runtimes.docker.up == false and .runtimes.docker.failed_pings >= 3 and (.preheat | length) == 6 and all(.preheat[]; .state == "waiting")'
	wait_notify 10 'STATUS=preheat 0/6 ready, 0 pulling, 0 failed, 6 waiting; docker unreachable'
	wait_journal 10 '.PULLWATCH_RUNTIME == "docker" and .PRIORITY == "3" and (.MESSAGE | contains("relay.sock"))' \
		MESSAGE_ID=848a36df92fa45d498949970891e25de
	relay_start "$relay" "$DOCKER_SOCK"
	wait_journal 30 '.PULLWATCH_RUNTIME == "docker" and .PRIORITY == "6"' MESSAGE_ID=ce532b56ba40440484e837effba1c719
	wait_status 20 '.runtimes.docker.up == true and .runtimes.docker.failed_pings == 0 and all(.preheat[]; .state == "ready")'
	# one alert for the whole outage, however many pings failed
	[ "$(journal MESSAGE_ID=848a36df92fa45d498949970891e25de | wc -l)" -eq 1 ]
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ]
	kill "$(cat "$BED_DIR/relay.pid")"
}


# Unix sockets that accept and never answer: docker.socket / containerd.socket while the service
# behind them hangs or starts. One line per accepted connection in $BED_DIR/hang.log.
hang_start() { # SOCKET...
	cat >"$BED_DIR/hang.py" <<-'EOF'
		import selectors, socket, sys
		sel, held = selectors.DefaultSelector(), []
		for path in sys.argv[1:]:
		    s = socket.socket(socket.AF_UNIX)
		    s.bind(path)
		    s.listen(64)
		    sel.register(s, selectors.EVENT_READ, path)
		with open(sys.argv[0] + ".log", "a", buffering=1) as log:
		    while True:
		        for key, _ in sel.select():
		            c, _ = key.fileobj.accept()
		            held.append(c)  # never read, never answered, never closed
		            log.write("accept " + key.data + "\n")
	EOF
	: >"$BED_DIR/hang.py.log"
	timeout 300 python3 "$BED_DIR/hang.py" "$@" >/dev/null 2>&1 3>&- &
	echo $! >"$BED_DIR/hang.pid"
	local s
	for s in "$@"; do wait_for 10 test -S "$s"; done
}

@test "runtime sockets that accept and never answer: WATCHDOG=1 keeps coming and status answers at once" {
	local hd=$BED_DIR/hang-docker.sock hc=$BED_DIR/hang-containerd.sock ready_before n i
	hang_start "$hd" "$hc"
	printf -- '- {image: %s, runtime: both}\n' "$IMG_A" >"$BED_DIR/hang-list.yaml"
	sed -e "s|socket: $DOCKER_SOCK\$|socket: $hd|" -e "s|socket: $CONTAINERD_SOCK\$|socket: $hc|" \
		-e 's|^runtime: docker$|runtime: auto|' -e "s|list: .*|list: $BED_DIR/hang-list.yaml|" \
		"$PW_CONFIG" >"$BED_DIR/pw-hang.yaml"
	grep -q "socket: $hd" "$BED_DIR/pw-hang.yaml"
	grep -q "socket: $hc" "$BED_DIR/pw-hang.yaml"
	grep -q '^runtime: auto' "$BED_DIR/pw-hang.yaml"
	PW_CONFIG=$BED_DIR/pw-hang.yaml
	daemon_stop_any
	ready_before=$(notify_count READY=1)
	daemon_start
	wait_notify 20 'READY=1' $((ready_before + 1))
	# both runtimes are being asked (auto's probe and the pings go to the hanging sockets)
	wait_for 20 grep -q "accept $hd" "$BED_DIR/hang.py.log"
	wait_for 20 grep -q "accept $hc" "$BED_DIR/hang.py.log"
	# while those questions hang (10s each, then again with backoff), the loop runs: the watchdog
	# is fed every second and the control socket answers
	for ((i = 0; i < 6; i++)); do
		n=$(notify_count WATCHDOG=1)
		run timeout 5 "$PULLWATCH" status --json --config "$PW_CONFIG"
		[ "$status" -eq 0 ]
		jq -e '.state == "running"' <<<"$output"
		wait_notify 8 'WATCHDOG=1' $((n + 3))
	done
	# the hung sockets end as "unreachable" after their timeout, each, and the item waits
	wait_status 40 '.runtimes.docker.up == false and .runtimes.containerd.up == false
		and (.runtimes.docker.error | contains("no answer")) and all(.preheat[]; .state == "waiting")'
	run timeout 5 "$PULLWATCH" status --config "$PW_CONFIG"
	[ "$status" -eq 0 ]
	# stopping with questions in flight is clean
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ] || { tail -n 40 "$DLOG" >&2; false; }
	kill "$(cat "$BED_DIR/hang.pid")"
}

@test "a registry error text with a newline and <0> forges no journal line; PULLWATCH_* fields keep it raw" {
	local forged=FORGED-PULLWATCH-LINE img=$PROXY_ADDR/test/esc:v1
	# an image no test pulls; the registry answers its manifest with an error whose text tries to
	# start a line of priority 0
	local methods='["GET","HEAD"]'
	if [ "$DOCKER_STORE" = containerd ]; then
		# containerd resolves a tag with HEAD, whose answer has no body to carry a text: the tag
		# resolves, and the GET of its manifest gets the error
		push_image test/esc v1 64KiB >/dev/null
		methods='["GET"]'
	fi
	proxy_rule "{\"path\":\"^/v2/test/esc/manifests/\",\"methods\":$methods,\"status\":400,
		\"message\":\"denied\\n<0>$forged \\u001b[31mred\"}" >/dev/null
	printf -- '- %s\n' "$img" >"$BED_DIR/esc-list.yaml"
	sed -e "s|list: .*|list: $BED_DIR/esc-list.yaml|" "$PW_CONFIG" >"$BED_DIR/pw-esc.yaml"
	grep -q '^runtime: docker' "$BED_DIR/pw-esc.yaml"
	PW_CONFIG=$BED_DIR/pw-esc.yaml
	daemon_stop_any
	DAEMON_STDERR=journal daemon_start
	wait_status 60 "(.preheat | map(select(.image == \"$img\" and .state == \"failed\"
		and (.error | contains(\"$forged\")))) | length) == 1"
	# the daemon's stderr lines and the alert both name the error, escaped, each on its own line
	wait_journal 20 ".MESSAGE | strings | contains(\"\\\\n<0>$forged \\\\x1b[31mred\")" _TRANSPORT=stdout
	wait_journal 20 ".PULLWATCH_IMAGE == \"$img\" and (.MESSAGE | contains(\"\\\\n<0>$forged\"))
		and (.PULLWATCH_EVIDENCE | if type == \"array\" then implode else . end
			| contains(\"\\n<0>$forged \\u001b[31mred\"))" _TRANSPORT=journal
	# nothing forged: no entry of priority 0, no line that starts with the injected text, no MESSAGE
	# with control characters (journalctl prints those as byte arrays)
	run journal
	[ "$status" -eq 0 ]
	[ -z "$(jq -c 'select(.PRIORITY == "0")' <<<"$output")" ]
	[ -z "$(jq -c --arg f "$forged" 'select(.MESSAGE | strings | startswith($f))' <<<"$output")" ]
	[ -z "$(jq -c 'select(.MESSAGE | type != "string")' <<<"$output")" ]
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ]
}

@test "a daemon pull runs the standalone pull's probes: a slow decompressor writing as it goes shows disk growth on dockerd's overlay2" {
	# one pipeline (watched_pull) for `pullwatch pull` and the daemon: helpers, the runtime and the
	# extraction target's disk-growth probe. The drip wrapper takes the whole layer at once (dockerd's
	# progress, counted on the compressed input, is done) and then emits it in pieces over 15 s, so
	# the untar fills the files of the layer in overlay2 gradually while the pull is silent.
	local root out=$BED_DIR/slow.out tree=$BED_DIR/growtree f
	mkdir -p "$tree/opt/app" "$tree/usr/lib/app"
	for f in a b c d; do
		head -c 2M /dev/urandom >"$tree/opt/app/$f.bin"
		head -c 2M /dev/urandom >"$tree/usr/lib/app/lib$f.so"
	done
	push_image test/slowunpigz v1 '' --layer-dir "$tree" >/dev/null
	# last in the file, on a daemon of its own with the file's config (the previous test stopped its)
	daemon_stop_any
	daemon_start
	root=$(docker_api GET /info | jq -r .DockerRootDir)
	unpigz_mode drip:15
	timeout 120 "$PULLWATCH" pull --config "$PW_CONFIG" --json "$IMG_SLOW" >"$out" 2>"$out.err" 3>&- &
	local pid=$!
	local silent='.layers | map(select(.verdict == "silent-alive")) | length > 0'
	if [ "$DOCKER_STORE" = containerd ]; then
		wait_status 60 ".pulls | map(select($silent)) | length == 1"
		# dockerd on the containerd image store extracts into containerd's snapshots: no overlay2 to
		# watch, and the pull says so rather than watching the wrong directory
		status_json | jq -e '.pulls[0].disk == null'
	else
		# while the layer is silent, the probe on overlay2 counts samples that saw it grow
		wait_status 60 ".pulls | map(select(($silent) and .disk.dir == \"$root/overlay2\" and .disk.grew_samples > 0)) | length == 1"
		status_json | jq -e '.pulls[0].disk.grew_s_ago | type == "number"'
	fi
	wait "$pid"
	unpigz_mode real
	jq -e 'select(.event == "result") | .ok and .attempts == 1' "$out"
	[ -z "$(jq -c 'select(.event == "action" or .event == "retry")' "$out")" ]
	daemon_stop
	[ "$DAEMON_RC" -eq 0 ]
}
