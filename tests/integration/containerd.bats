#!/usr/bin/env bats
# `pullwatch pull --runtime containerd` and `pullwatch watch` against the bed's real containerd (CRI
# in namespace k8s.io) through the fault proxy: phases, resume across a cut, the decompressor rows
# of the stall matrix, and watching a pull another CRI client started.

load helpers
load pw_helpers

setup_file() {
	bed_start --no-docker
	DOCKER_SOCK=/nonexistent pw_config
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

pw_leases() { ctr -a "$CONTAINERD_SOCK" -n k8s.io leases ls -q | grep '^pullwatch-' || true; }

latency() { # file layer verdict: seconds from the layer's last bytes seen (a phase/progress event's observed_t) to the verdict
	jq -s -r --arg l "$2" --arg v "$3" '
		(map(select(.event=="verdict" and .layer==$l and .verdict==$v)) | first | .t) as $tv
		| (map(select((.event=="phase" or .event=="progress") and .layer==$l and .t <= $tv)) | last | (.observed_t // .t)) as $tl
		| ($tv - $tl)' "$1"
}

@test "containerd: a multi-layer pull succeeds, every layer done, the image is in k8s.io" {
	img=$(push_image test/cd-multi v1 1MiB,2MiB,512KiB)
	ref="$PROXY_ADDR/test/cd-multi:v1"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime containerd "$ref"
	[ "$PW_RC" -eq 0 ]
	f="$BATS_TEST_TMPDIR/out"
	[ "$(layer_count "$f")" -eq 3 ]
	all_layers_done "$f"
	want=$(jq -r .manifest_digest <<<"$img")
	jq -e --arg d "$want" 'select(.event=="result") | .ok and .digest == $d and .runtime == "containerd"' "$f"
	# kubelet's view: CRI ImageStatus in k8s.io knows the image
	cri_status "$ref" | grep -q "$want"
	[ -z "$(pw_leases)" ]
}

@test "containerd: a blob stalled forever is cut and retried, and the retry resumes (under 1.25x the image)" {
	img=$(push_image test/cd-stall v1 6MiB,1MiB)
	big=$(biggest_layer "$img")
	size=$(jq -r .total_bytes <<<"$img")
	proxy_reset
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":3145728,\"stall_for\":\"forever\",\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime containerd "$PROXY_ADDR/test/cd-stall:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$big\" and .verdict==\"stalled\"" | grep -q 'no bytes for'
	lat=$(latency "$f" "$big" stalled)
	awk -v l="$lat" 'BEGIN { exit !(l >= 6 && l <= 8.5) }'
	# the stream shows where the layer stopped, stamped when it was seen, before the verdict on it
	jq -s -e --arg l "$big" '(map(select(.event=="verdict" and .layer==$l and .verdict=="stalled")) | first) as $v
		| map(select((.event=="progress" or .event=="phase") and .layer==$l and .attempt==1 and .t <= $v.t)) | last
		| .current == 3145728 and .observed_t != null and .observed_t <= $v.t - 5' "$f"
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	# resumed with a Range request, not fetched again from zero
	proxy_counters | jq -e --arg d "$big" '.blobs[$d].range_requests >= 1'
	served=$(proxy_counters | jq '.blob_bytes')
	awk -v s="$served" -v t="$size" 'BEGIN { exit !(s < 1.25 * t) }'
	[ -z "$(pw_leases)" ]
}

@test "containerd: a missing image fails at once; a bad socket says so in one line" {
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime containerd "$PROXY_ADDR/test/cd-missing:v1"
	[ "$PW_RC" -eq 1 ]
	jq -e 'select(.event=="result") | .ok == false and .error == "permanent" and .attempts == 1' "$BATS_TEST_TMPDIR/out"
	run "$PULLWATCH" pull --config "$PW_CONFIG" --runtime containerd --containerd-socket "$BATS_TEST_TMPDIR/no.sock" x
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 1 ]
	[[ "$output" == *"$BATS_TEST_TMPDIR/no.sock"* ]]
}

@test "containerd: slow but working decompressor is never cancelled" {
	push_image test/cd-slow v1 1MiB >/dev/null
	unpigz_mode slow:14
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime containerd "$PROXY_ADDR/test/cd-slow:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	events "$f" '.event=="verdict" and .verdict=="silent-alive"' | grep -q .
}

@test "containerd: decompressor asleep is hung, ended, diagnosed with CONTAINERD_DISABLE_PIGZ" {
	push_image test/cd-sleep v1 1MiB >/dev/null
	unpigz_mode sleep
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$PROXY_ADDR/test/cd-sleep:v1"
	wait_json "$f" '.event=="action" and .action=="kill-helper"' 60
	unpigz_mode real
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q asleep
	events "$f" '.event=="diagnosis" and .diagnosis=="decompressor-hang"' | grep -q 'CONTAINERD_DISABLE_PIGZ=1'
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
}

@test "containerd: decompressor spinning without output is hung" {
	push_image test/cd-spin v1 1MiB >/dev/null
	unpigz_mode spin
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$PROXY_ADDR/test/cd-spin:v1"
	wait_json "$f" '.event=="action" and .action=="kill-helper"' 60
	unpigz_mode real
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q 'CPU, 0 bytes written for'
}

@test "watch: flags a stall in a pull another CRI client started, and cancels nothing" {
	img=$(push_image test/cd-watched v1 4MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rule "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":20}"
	f="$BATS_TEST_TMPDIR/watch"
	timeout 60 "$PULLWATCH" watch --config "$PW_CONFIG" --json >"$f" 2>"$f.err" &
	wpid=$!
	wait_for 20 grep -q 'watching containerd' "$f.err" # bytes from before it watches read as waiting
	# kubelet's part, played by the bed's CRI client
	cri_pull "$PROXY_ADDR/test/cd-watched:v1" >"$BATS_TEST_TMPDIR/cri.out" 2>&1 &
	cpid=$!
	wait_json "$f" ".event==\"verdict\" and .layer==\"$layer\" and .verdict==\"stalled\"" 30
	# the stall lifts after 20 s and the other client's pull completes: nobody cut it
	wait "$cpid"
	kill "$wpid"; wait "$wpid" || true
	[ -z "$(events "$f" '.event=="action"')" ]
	proxy_counters | jq -e --arg d "$layer" '.blobs[$d].requests == 1'
}
