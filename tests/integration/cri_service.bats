#!/usr/bin/env bats
# pullwatch as kubelet's CRI image service: the daemon serves runtime.v1.ImageService on a socket
# that a socket-activation stand-in (tests/bed/sockact.py --respawn, as systemd's pullwatch-cri.socket)
# holds, and pulls through the bed's containerd CRI. The client is kubelet-shaped: one PullImage call
# with no deadline per image (tests/bed/kubelet.py when present in the bed, else tests/bed/cri.py with
# no timeout, which is the same single call). Each answer is compared with what containerd gives
# directly. Runs on every containerd row (1.6, 1.7, 2.1).

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

@test "forwarded calls (ImageStatus, ListImages, ImageFsInfo, RemoveImage) answer exactly as containerd does" {
	cri_call "$CRI_SOCK" pull "$PROXY_ADDR/test/ok:v1"
	echo "$CALL_OUT"
	[ "$CALL_RC" -eq 0 ]
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
}

@test "hung decompressor once: one call, and it succeeds; pullwatch ended the helper" {
	cri_rmi "$PROXY_ADDR/test/hang:v1"
	unpigz_mode sleep
	timeout 300 python3 "$BED_CRI" --sock "$CRI_SOCK" --timeout 100000 pull "$PROXY_ADDR/test/hang:v1" &
	local call=$!
	# only the first decompressor sleeps: the next one, after pullwatch ends it, is real
	wait_for 60 bash -c "[ -n \"\$(source $BATS_TEST_DIRNAME/helpers.bash; unpigz_pids $(containerd_pid))\" ]"
	unpigz_mode real
	wait "$call"
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
	cri_call "$CRI_SOCK" pull "$PROXY_ADDR/test/stall:v1"
	echo "$CALL_OUT"
	[ "$CALL_RC" -eq 0 ]
	served=$(proxy_counters | jq '.blob_bytes')
	echo "served $served of $size"
	awk -v s="$served" -v t="$size" 'BEGIN { exit !(s <= 1.1 * t) }'
}

@test "slow but working decompressor: one call, it succeeds, and pullwatch takes no action" {
	local before
	cri_rmi "$PROXY_ADDR/test/slow:v1"
	before=$(journal | jq -s 'length')
	unpigz_mode drip:16
	cri_call "$CRI_SOCK" pull "$PROXY_ADDR/test/slow:v1"
	echo "$CALL_OUT"
	[ "$CALL_RC" -eq 0 ]
	# no action, no fault verdict, one attempt
	! journal | jq -s --argjson b "$before" '.[$b:][] | select(.PULLWATCH_IMAGE == "'"$PROXY_ADDR/test/slow:v1"'")
		| select(.PULLWATCH_VERDICT == "hung" or .PULLWATCH_VERDICT == "stalled" or .PULLWATCH_ALERT == "decompressor-hang")' | grep -q .
	! grep "test/slow:v1.*attempt 1 failed" "$DLOG"
}

@test "missing image, refused auth, no matching platform: containerd's own status code, and no retry" {
	local img code_pw code_cd attempts
	for img in test/missing:v1 test/arm:v1; do
		cri_call "$CONTAINERD_SOCK" pull "$PROXY_ADDR/$img"
		code_cd=$(grpc_code "$CALL_OUT")
		cri_call "$CRI_SOCK" pull "$PROXY_ADDR/$img"
		code_pw=$(grpc_code "$CALL_OUT")
		echo "$img: containerd $code_cd, pullwatch $code_pw: $CALL_OUT"
		[ "$CALL_RC" -ne 0 ] && [ -n "$code_cd" ] && [ "$code_pw" = "$code_cd" ]
		[[ "$CALL_OUT" == *"(pullwatch: "* ]]
		attempts=$(grep -c "$PROXY_ADDR/$img (containerd): pull failed" "$DLOG" || true)
		[ "$attempts" -eq 1 ]
		! grep -q "$PROXY_ADDR/$img.*retrying" "$DLOG"
	done
	# refused auth: a registry (on the bed's storage) that wants a token the caller does not have
	(cd "$REPO" && start_token_registry pwuser pwpass && echo "$TOKEN_REGISTRY" >"$BED_DIR/token.addr")
	local reg
	reg=$(cat "$BED_DIR/token.addr")
	cri_call "$CONTAINERD_SOCK" pull "$reg/test/ok:v1"
	code_cd=$(grpc_code "$CALL_OUT")
	cri_call "$CRI_SOCK" pull "$reg/test/ok:v1"
	code_pw=$(grpc_code "$CALL_OUT")
	stop_token_registry
	echo "auth: containerd $code_cd, pullwatch $code_pw: $CALL_OUT"
	[ "$CALL_RC" -ne 0 ] && [ -n "$code_cd" ] && [ "$code_pw" = "$code_cd" ]
	attempts=$(grep -c "$reg/test/ok:v1 (containerd): pull failed" "$DLOG" || true)
	[ "$attempts" -eq 1 ]
}

@test "four pulls at once, two of them the same image: three watched pulls, four successes" {
	local before after pids=()
	for t in v1 v2 v3; do cri_rmi "$PROXY_ADDR/test/par:$t"; done
	before=$(stats | jq .pulls_started)
	# slow the blobs a little so the four overlap
	proxy_rule '{"path":"/blobs/","throttle":1000000}' >/dev/null
	for t in v1 v1 v2 v3; do
		timeout 300 python3 "$BED_CRI" --sock "$CRI_SOCK" --timeout 100000 pull "$PROXY_ADDR/test/par:$t" &
		pids+=($!)
	done
	for p in "${pids[@]}"; do wait "$p"; done # each call succeeded (set -e on a failed wait)
	after=$(stats | jq .pulls_started)
	echo "watched pulls: $before -> $after"
	[ $((after - before)) -eq 3 ]
	for t in v1 v2 v3; do cri_status "$PROXY_ADDR/test/par:$t" | jq -e '.image != null'; done
	stats | jq -e '.joined >= 1'
}

@test "kill -9 of pullwatch during a call: the next call succeeds through the socket" {
	local pid
	cri_rmi "$PROXY_ADDR/test/ok:v1"
	pid=$(cat "$BED_DIR/cri-daemon.pid")
	unpigz_mode slow:5
	timeout 300 python3 "$BED_CRI" --sock "$CRI_SOCK" --timeout 100000 pull "$PROXY_ADDR/test/ok:v1" &
	local call=$!
	wait_status 30 '.cri.pulls | length == 1'
	kill -9 "$pid"
	wait "$call" || true # this caller's connection went with pullwatch: kubelet would retry
	unpigz_mode real
	cri_call "$CRI_SOCK" pull "$PROXY_ADDR/test/ok:v1"
	echo "$CALL_OUT"
	[ "$CALL_RC" -eq 0 ]
	[ "$(cat "$BED_DIR/cri-daemon.pid")" != "$pid" ]
	cri_status "$PROXY_ADDR/test/ok:v1" | jq -e '.image != null'
}
