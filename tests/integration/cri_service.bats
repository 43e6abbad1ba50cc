#!/usr/bin/env bats
# pullwatch as kubelet's CRI image service: the daemon serves runtime.v1.ImageService on a socket
# that a socket-activation stand-in (tests/bed/sockact.py --respawn, as systemd's pullwatch-cri.socket)
# holds, and pulls through the bed's containerd CRI. The puller is kubelet-shaped (tests/bed/kubelet.py:
# PullImage with no deadline, kubelet's back-off of 10 s before it calls again for a failed image,
# maxParallelImagePulls with --parallel), so "one call, and it succeeds" is counted from its calls; the
# other image calls (status, list, fsinfo, rm) go through tests/bed/cri.py. Each answer is compared
# with what containerd gives directly. Runs on every containerd row (1.6, 1.7, 2.1).

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")

# one CRI call against SOCK, no deadline (kubelet sets none on PullImage); rc in CALL_RC
cri_call() { # SOCK ARGS...
	local sock=$1
	shift
	CALL_RC=0
	CALL_OUT=$(timeout 300 python3 "$BED_CRI" --sock "$sock" --timeout 100000 "$@" 2>&1) || CALL_RC=$?
}

grpc_code() { sed -n 's/.*grpc-status \([0-9]*\):.*/\1/p' <<<"$1" | head -n1; }

# kubelet pulling IMAGE... through SOCK until they are pulled (or KUBELET_ARGS stop it earlier); its JSON
# lines in $KOUT, its exit status in KRC; the summary in KSUM
kubelet() { # SOCK IMAGE...
	local sock=$1
	shift
	KOUT=$BED_DIR/kubelet.$BATS_TEST_NUMBER.$RANDOM.out
	KRC=0
	# shellcheck disable=SC2086
	timeout -k 5 400 python3 "$BED_KUBELET" --sock "$sock" --give-up-after 300 ${KUBELET_ARGS:-} "$@" \
		>"$KOUT" 2>&1 3>&- || KRC=$?
	kubelet_read
}
kubelet_read() { cat "$KOUT"; KSUM=$(jq -c 'select(.event == "summary")' "$KOUT"); }

# the same in the background: its pid in KPID
kubelet_bg() { # SOCK IMAGE...
	local sock=$1
	shift
	KOUT=$BED_DIR/kubelet.$BATS_TEST_NUMBER.$RANDOM.out
	KRC=0
	timeout -k 5 400 python3 "$BED_KUBELET" --sock "$sock" --give-up-after 300 "$@" >"$KOUT" 2>&1 3>&- &
	KPID=$!
}

# one failed call's answer and no more (kubelet would call again after its back-off): its grpc-status
# in KCODE and grpc-message in KMSG
kubelet_once() { # SOCK IMAGE
	KUBELET_ARGS=--calls=1 kubelet "$@" || true
	KCODE=$(jq -r 'select(.event == "call") | .grpc_status' "$KOUT")
	KMSG=$(jq -r 'select(.event == "call") | .grpc_message' "$KOUT")
}

# PullImage calls containerd logged for IMAGE after line N of its log
cd_pullimage_since() { # N IMAGE
	tail -n +$(($1 + 1)) "$CONTAINERD_LOG" | grep -cF "msg=\"PullImage \\\"$2\\\"\"" || true
}
cd_log_lines() { wc -l <"$CONTAINERD_LOG"; }

# the summary says: every image pulled, each in exactly one call
one_call_each() {
	[ "$KRC" -eq 0 ] && jq -e '.ok and .calls == (.images | length) and ([.images[].calls] | all(. == 1))' <<<"$KSUM"
}

cri_daemon_start() {
	DLOG=$BED_DIR/cri-daemon.log
	nsenter -t "$JPID" -m -- env PULLWATCH_MACHINE_ID_FILE="$BED_DIR/machine-id" \
		timeout 900 python3 "$REPO/tests/bed/sockact.py" --socket "$CRI_SOCK" --name cri --respawn \
		--pid-file "$BED_DIR/cri-daemon.pid" --decoy-dir "$BED_DIR/decoys" --decoy-pids "$BED_DIR/decoys.pids" \
		-- "$PULLWATCH" daemon --config "$PW_CONFIG" >>"$DLOG" 2>&1 3>&- &
	echo $! >"$BED_DIR/sockact.pid"
	wait_for 20 status_json || { cat "$DLOG" >&2; return 1; }
	export DLOG
}

stats() { status_json | jq -c '.cri'; }

setup_file() {
	bed_require nsenter unshare journalctl /lib/systemd/systemd-journald python3 jq curl
	require_pullwatch
	bed_start --no-docker
	daemon_bed_start
	CRI_SOCK=$BED_DIR/cri.sock
	export CRI_SOCK
	DOCKER_SOCK=${DOCKER_SOCK:-/nonexistent/docker.sock}
	pw_config "runtime: containerd
state_dir: $BED_DIR/state
control_socket: $BED_DIR/run/control.sock
cri:
  listen: null
preheat:
  list: $BED_DIR/preheat.yaml"
	push_image test/ok v1 512KiB,256KiB >/dev/null
	push_image test/hang v1 3MiB >/dev/null
	push_image test/slow v1 2MiB >/dev/null
	push_image test/par v1 1MiB >/dev/null
	push_image test/par v2 1MiB,128KiB >/dev/null
	push_image test/par v3 1MiB,256KiB >/dev/null
	push_image test/arm v1 256KiB --index --platform linux/arm64 >/dev/null
	STALL_INFO=$(push_image test/stall v1 8MiB)
	export STALL_INFO
	cri_daemon_start
}

teardown_file() {
	local p
	if p=$(live_pid "$BED_DIR/sockact.pid" sockact.py); then
		kill -TERM "$p"
		timeout 30 tail --pid="$p" -f /dev/null || true
	fi
	daemon_bed_stop
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

@test "PullImage is answered with containerd's own image_ref from the one PullImage it saw; forwarded calls (ImageStatus, ListImages, ImageFsInfo, RemoveImage) answer exactly as containerd does" {
	local n0 answered0 ref
	cri_rmi "$PROXY_ADDR/test/ok:v1"
	n0=$(cd_log_lines)
	answered0=$(stats | jq .answered)
	kubelet "$CRI_SOCK" "$PROXY_ADDR/test/ok:v1"
	one_call_each
	# containerd saw one PullImage, the watched pull's: the caller's answer is containerd's answer to it
	[ "$(cd_pullimage_since "$n0" "$PROXY_ADDR/test/ok:v1")" -eq 1 ]
	[ "$(stats | jq .answered)" -eq $((answered0 + 1)) ]
	ref=$(jq -r '.images[].image_ref' <<<"$KSUM")
	[ "$ref" = "$(cri_status "$PROXY_ADDR/test/ok:v1" | jq -r .image.id)" ]
	for q in "status $PROXY_ADDR/test/ok:v1" "status $PROXY_ADDR/test/absent:v1" list; do
		# shellcheck disable=SC2086
		a=$(python3 "$BED_CRI" --sock "$CRI_SOCK" $q)
		# shellcheck disable=SC2086
		b=$(python3 "$BED_CRI" --sock "$CONTAINERD_SOCK" $q)
		[ "$a" = "$b" ] || { echo "$q: through pullwatch $a, containerd $b"; return 1; }
	done
	# ImageFsInfo: the same mountpoint (usage moves, so not the bytes)
	python3 "$BED_CRI" --sock "$CRI_SOCK" fsinfo >"$BED_DIR/fs.a" 2>&1 || { cat "$BED_DIR/fs.a"; return 1; }
	python3 "$BED_CRI" --sock "$CONTAINERD_SOCK" fsinfo >"$BED_DIR/fs.b"
	[ "$(jq -c '[.image_filesystems[].fs_id.mountpoint]' "$BED_DIR/fs.a")" = \
		"$(jq -c '[.image_filesystems[].fs_id.mountpoint]' "$BED_DIR/fs.b")" ]
	python3 "$BED_CRI" --sock "$CRI_SOCK" rm "$PROXY_ADDR/test/ok:v1"
	[ "$(cri_status "$PROXY_ADDR/test/ok:v1" | jq -c .image)" = null ]
	stats | jq -e '.forwarded >= 5'
}

@test "a method it does not serve is Unimplemented in grpc-go's words; garbage and oversized frames get errors and it keeps serving" {
	run python3 - "$CRI_SOCK" <<-'EOF'
		import socket, struct, subprocess, sys
		sock = sys.argv[1]
		def curl(path, body):
		    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-D", "-", "--http2-prior-knowledge",
		                        "--unix-socket", sock, "-H", "content-type: application/grpc", "-H", "te: trailers",
		                        "--data-binary", "@-", "--max-time", "20", "http://localhost" + path],
		                       input=body, capture_output=True)
		    return p.stdout.decode(errors="replace")
		out = curl("/runtime.v1.RuntimeService/Version", b"\0\0\0\0\0")
		assert "grpc-status: 12" in out and "unknown service runtime.v1.RuntimeService" in out, out
		out = curl("/runtime.v1.ImageService/Nope", b"\0\0\0\0\0")
		assert "grpc-status: 12" in out and "unknown method Nope for service runtime.v1.ImageService" in out, out
		big = 17 * 1024 * 1024
		out = curl("/runtime.v1.ImageService/ImageStatus", struct.pack(">BI", 0, big) + b"x" * big)
		assert "grpc-status: 8" in out, out
		out = curl("/runtime.v1.ImageService/ImageStatus", b"\0\0\0\0\x09abc")
		assert "grpc-status: 13" in out, out
		# not HTTP/2 at all: the connection ends, the server goes on
		s = socket.socket(socket.AF_UNIX); s.connect(sock); s.sendall(b"GET / HTTP/1.1\r\n\r\n" + b"\xff" * 64)
		s.settimeout(10)
		while s.recv(4096):
		    pass
		s.close()
		print("ok")
	EOF
	echo "$output"
	[ "$status" -eq 0 ]
	cri_call "$CRI_SOCK" status "$PROXY_ADDR/test/ok:v1"
	[ "$CALL_RC" -eq 0 ]
	status_json | jq -e '.state == "running"'
	# and kubelet's pulls still go through
	cri_rmi "$PROXY_ADDR/test/ok:v1"
	kubelet "$CRI_SOCK" "$PROXY_ADDR/test/ok:v1"
	one_call_each
}

@test "hung decompressor once: one call, and it succeeds; pullwatch ended the helper" {
	cri_rmi "$PROXY_ADDR/test/hang:v1"
	unpigz_mode sleep
	kubelet_bg "$CRI_SOCK" "$PROXY_ADDR/test/hang:v1"
	# only the first decompressor sleeps: the next one, after pullwatch ends it, is real
	wait_for 60 bash -c "[ -n \"\$(source $BATS_TEST_DIRNAME/helpers.bash; unpigz_pids $(containerd_pid))\" ]"
	unpigz_mode real
	wait "$KPID" || KRC=$?
	kubelet_read
	one_call_each
	cri_status "$PROXY_ADDR/test/hang:v1" | jq -e '.image != null'
	wait_journal 20 '.PULLWATCH_ALERT == "decompressor-hang" and .PULLWATCH_IMAGE == "'"$PROXY_ADDR/test/hang:v1"'"'
	grep -q "killed by pidfd" "$DLOG"
}

@test "blob stalled forever mid-layer once: one call, and it succeeds; the registry served at most 1.1x the layer" {
	local layer size served
	layer=$(jq -r '.layers[0].digest' <<<"$STALL_INFO")
	size=$(jq -r '.layers[0].size' <<<"$STALL_INFO")
	cri_rmi "$PROXY_ADDR/test/stall:v1"
	proxy_reset
	proxy_rule "{\"digest\":\"$layer\",\"stall_at\":3145728,\"stall_for\":\"forever\",\"first\":1}" >/dev/null
	kubelet "$CRI_SOCK" "$PROXY_ADDR/test/stall:v1"
	one_call_each
	served=$(proxy_counters | jq '.blob_bytes')
	echo "served $served of $size"
	awk -v s="$served" -v t="$size" 'BEGIN { exit !(s <= 1.1 * t) }'
}

@test "slow but working decompressor: one call, it succeeds, and pullwatch takes no action" {
	local before
	cri_rmi "$PROXY_ADDR/test/slow:v1"
	before=$(journal | jq -s 'length')
	unpigz_mode drip:16
	kubelet "$CRI_SOCK" "$PROXY_ADDR/test/slow:v1"
	one_call_each
	# no action, no fault verdict, one attempt
	! journal | jq -s --argjson b "$before" '.[$b:][] | select(.PULLWATCH_IMAGE == "'"$PROXY_ADDR/test/slow:v1"'")
		| select(.PULLWATCH_VERDICT == "hung" or .PULLWATCH_VERDICT == "stalled" or .PULLWATCH_ALERT == "decompressor-hang")' | grep -q .
	! grep "test/slow:v1.*attempt 1 failed" "$DLOG"
}

@test "missing image, refused auth, no matching platform: containerd's own status code and message, pullwatch's note, one call, no retry" {
	local img code_cd msg_cd n0 attempts reg answered0
	answered0=$(stats | jq .answered)
	for img in test/missing:v1 test/arm:v1; do
		kubelet_once "$CONTAINERD_SOCK" "$PROXY_ADDR/$img"
		code_cd=$KCODE msg_cd=$KMSG
		n0=$(cd_log_lines)
		kubelet_once "$CRI_SOCK" "$PROXY_ADDR/$img"
		echo "$img: containerd $code_cd '$msg_cd', pullwatch $KCODE '$KMSG'"
		[ "$code_cd" != 0 ] && [ "$code_cd" != null ] && [ "$KCODE" = "$code_cd" ]
		# containerd's words first, then pullwatch's
		[[ "$KMSG" == "$msg_cd (pullwatch: "* ]]
		attempts=$(grep -c "$PROXY_ADDR/$img (containerd): pull failed" "$DLOG" || true)
		[ "$attempts" -eq 1 ]
		! grep -q "$PROXY_ADDR/$img.*retrying" "$DLOG"
		# the answer is the one containerd gave the watched pull: no second PullImage
		[ "$(cd_pullimage_since "$n0" "$PROXY_ADDR/$img")" -eq 1 ]
	done
	# refused auth: a registry (on the bed's storage) that wants a token the caller does not have
	(cd "$REPO" && start_token_registry pwuser pwpass && echo "$TOKEN_REGISTRY" >"$BED_DIR/token.addr")
	reg=$(cat "$BED_DIR/token.addr")
	kubelet_once "$CONTAINERD_SOCK" "$reg/test/ok:v1"
	code_cd=$KCODE msg_cd=$KMSG
	kubelet_once "$CRI_SOCK" "$reg/test/ok:v1"
	stop_token_registry
	echo "auth: containerd $code_cd '$msg_cd', pullwatch $KCODE '$KMSG'"
	[ "$code_cd" != 0 ] && [ "$code_cd" != null ] && [ "$KCODE" = "$code_cd" ]
	[[ "$KMSG" == *" (pullwatch: "* ]]
	attempts=$(grep -c "$reg/test/ok:v1 (containerd): pull failed" "$DLOG" || true)
	[ "$attempts" -eq 1 ]
	[ "$(stats | jq .answered)" -eq $((answered0 + 3)) ]
}

@test "four pulls at once, two of them the same image: three watched pulls, four successes" {
	local before after k1 k2
	for t in v1 v2 v3; do cri_rmi "$PROXY_ADDR/test/par:$t"; done
	before=$(stats | jq .pulls_started)
	# slow the blobs a little so the four overlap
	proxy_rule '{"path":"/blobs/","throttle":1000000}' >/dev/null
	# kubelet with maxParallelImagePulls 3, and a second pod's pull of v1 (kubelet does not merge them)
	kubelet_bg "$CRI_SOCK" --parallel 3 "$PROXY_ADDR/test/par:v1" "$PROXY_ADDR/test/par:v2" "$PROXY_ADDR/test/par:v3"
	k1=$KPID K1=$KOUT
	kubelet_bg "$CRI_SOCK" "$PROXY_ADDR/test/par:v1"
	k2=$KPID K2=$KOUT
	wait "$k1" || KRC=$?
	KOUT=$K1 kubelet_read
	one_call_each
	wait "$k2" || KRC=$?
	KOUT=$K2 kubelet_read
	one_call_each
	after=$(stats | jq .pulls_started)
	echo "watched pulls: $before -> $after"
	[ $((after - before)) -eq 3 ]
	for t in v1 v2 v3; do cri_status "$PROXY_ADDR/test/par:$t" | jq -e '.image != null'; done
	stats | jq -e '.joined >= 1'
}

@test "kill -9 of pullwatch during a call: kubelet's next call, after its back-off, succeeds through the socket" {
	local pid
	cri_rmi "$PROXY_ADDR/test/ok:v1"
	pid=$(cat "$BED_DIR/cri-daemon.pid")
	unpigz_mode slow:5
	kubelet_bg "$CRI_SOCK" "$PROXY_ADDR/test/ok:v1"
	wait_status 30 '.cri.pulls | length == 1'
	kill -9 "$pid"
	unpigz_mode real
	# the first call's connection went with pullwatch; kubelet calls again 10 s later
	wait "$KPID" || KRC=$?
	kubelet_read
	[ "$KRC" -eq 0 ] && jq -e '.ok and .calls == 2' <<<"$KSUM"
	jq -s -e '[.[] | select(.event == "call") | .outcome] == ["transport", "ok"]' "$KOUT"
	[ "$(cat "$BED_DIR/cri-daemon.pid")" != "$pid" ]
	cri_status "$PROXY_ADDR/test/ok:v1" | jq -e '.image != null'
}
