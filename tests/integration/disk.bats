#!/usr/bin/env bats
# Disk-aware pulls against a real containerd whose image filesystem is a small tmpfs: an image that
# cannot fit is not started (disk-pressure, no registry bytes), and a pull that runs out of space
# midway waits until the space is there, then resumes: the registry serves at most 1.5x the image.

load helpers
load pw_helpers

# A second containerd (the bed's config, its root and state on a tmpfs of $1) next to the bed's own,
# so the bed's helpers and its start_containerd stay as they are. It carries the bed's marker, so
# bed_stop ends it and unmounts the tmpfs even when a test fails before teardown.
start_small_containerd() {
	SMALL=$BED_DIR/small
	mkdir -p "$SMALL/root" "$SMALL/state"
	mount -t tmpfs -o "size=$1" pwsmall "$SMALL/root"
	sed -e "s#$BED_DIR/containerd/root#$SMALL/root#" -e "s#$BED_DIR/containerd/state#$SMALL/state#" \
		-e "s#$BED_DIR/containerd.sock#$SMALL/cd.sock#g" "$CONTAINERD_CONFIG" >"$SMALL/config.toml"
	grep -q "$SMALL/cd.sock" "$SMALL/config.toml"
	(
		exec setsid env PWBED_OWNER="$BED_DIR" TMPDIR="$BED_DIR/tmp" PATH="$BED_DIR/bin:$PATH" \
			containerd --config "$SMALL/config.toml" </dev/null >"$SMALL/containerd.log" 2>&1
	) &
	echo $! >"$SMALL/containerd.pid"
	wait_for 60 small_cri_ok
	export SMALL
}

small_cri_ok() {
	ctr -a "$SMALL/cd.sock" plugins ls 2>/dev/null | grep -Eq '^io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]].*[[:space:]]ok[[:space:]]*$'
}

stop_small_containerd() {
	[ -n "${SMALL:-}" ] || return 0
	local pid
	pid=$(cat "$SMALL/containerd.pid" 2>/dev/null) || true
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait_for 20 bash -c "! kill -0 $pid"
	fi
	umount "$SMALL/root" 2>/dev/null || umount -l "$SMALL/root" 2>/dev/null || true
}

setup_file() {
	bed_require fallocate
	require_pullwatch
	bed_start --no-docker
	start_small_containerd 160m
	small_disk_config /nonexistent/docker.sock "$SMALL/cd.sock"
}

teardown_file() {
	stop_small_containerd
	bed_stop
}

blob_bytes() { proxy_counters -r '.blob_bytes'; }
held_is() { [ "$(proxy_counters -r .held)" -eq "$1" ]; }
small_has_blob() { ctr -a "$SMALL/cd.sock" -n k8s.io content ls -q | grep -qx "$1"; }

avail_bytes() { df --output=avail -B1 "$SMALL/root" | tail -n 1 | tr -d ' '; }

@test "disk: a 120 MB image against 80 MB free is not started: disk-pressure with the numbers, no registry bytes" {
	# another filesystem of 80 MB for this case: the 160 MB one is for the next
	stop_small_containerd
	start_small_containerd 80m
	push_image test/disk-big v1 40MiB,40MiB,40MiB >/dev/null
	proxy_reset
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/disk-big:v1"
	[ "$PW_RC" -eq 1 ]
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-pressure"' | grep -q "needs 120"
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-pressure"' | grep -q "$SMALL/root"
	jq -e 'select(.event=="result") | (.ok | not) and (.reason | startswith("not started"))' "$f"
	# never started: no attempt event, and the registry served no blob byte
	[ -z "$(events "$f" '.event=="attempt"')" ]
	[ "$(blob_bytes)" -eq 0 ]
	stop_small_containerd
	start_small_containerd 160m
}

@test "disk (CRI endpoint): kubelet's pull of a 120 MB image against 80 MB free starts beside the gate, which cuts it: one call, its error names disk-pressure with the numbers, nothing stored" {
	local d=$BATS_TEST_TMPDIR out=$BATS_TEST_TMPDIR/kubelet.out dpid rc=0
	stop_small_containerd
	start_small_containerd 80m
	push_image test/disk-big v1 40MiB,40MiB,40MiB >/dev/null
	proxy_reset
	mkdir -p "$d/state"
	{ cat "$PW_CONFIG"; printf 'runtime: containerd\nstate_dir: %s\ncontrol_socket: %s\ncri:\n  listen: %s\n' \
		"$d/state" "$d/control.sock" "$d/cri.sock"; } >"$d/cri.yaml"
	"$PULLWATCH" daemon --config "$d/cri.yaml" >"$d/daemon.log" 2>&1 3>&- &
	dpid=$!
	wait_for 20 test -S "$d/cri.sock"
	timeout -k 5 120 python3 "$BED_KUBELET" --sock "$d/cri.sock" --calls 1 "$PROXY_ADDR/test/disk-big:v1" >"$out" 2>&1 || rc=$?
	kill -TERM "$dpid"
	wait "$dpid" || true
	cat "$out"
	grep "disk-big" "$d/daemon.log" || true
	[ "$rc" -eq 1 ]
	jq -s -e '[.[] | select(.event == "call")] | length == 1 and (.[0] | .outcome == "error" and
		(.grpc_message | test("cut at once: .*needs 120")) and (.grpc_message | test("disk-pressure")))' "$out"
	! ctr -a "$SMALL/cd.sock" -n k8s.io images ls -q | grep -q disk-big
	stop_small_containerd
	start_small_containerd 160m
}

@test "disk: out of space mid-pull, the retry waits for the space (statvfs) and resumes: <= 1.5x the image served" {
	img=$(push_image test/disk-mid v1 24MiB,8MiB)
	big=$(biggest_layer "$img")
	size=$(jq -r .total_bytes <<<"$img")
	proxy_reset
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":12582912,\"stall_for\":\"forever\",\"first\":1}" >/dev/null
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$PROXY_ADDR/test/disk-mid:v1"
	wait_for 60 held_is 1
	# the small layer committed first: what runs out of space is the download itself
	small=$(jq -r '.layers | min_by(.size) | .digest' <<<"$img")
	wait_for 60 small_has_blob "$small"
	# the disk fills up while the big layer's body is held, then the body goes on: ENOSPC
	fallocate -l "$(avail_bytes)" "$SMALL/root/filler"
	curl -fsS -X POST "$PROXY_CONTROL/resume" >/dev/null
	wait_json "$f" '.event=="retry" and (.reason | startswith("waiting for disk space"))' 120
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-full"' | grep -q 'no space left'
	# nothing pulls while the space is not there
	[ "$(jq -s '[.[] | select(.event=="attempt")] | length' "$f")" -eq 1 ]
	rm -f "$SMALL/root/filler"
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	served=$(blob_bytes)
	echo "served $served for an image of $size" >&2
	proxy_counters -c '.blobs | map_values({bytes, requests, range_requests})' >&2
	[ "$served" -le $((size * 3 / 2)) ]
}
