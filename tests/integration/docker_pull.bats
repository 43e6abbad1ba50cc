#!/usr/bin/env bats
# `pullwatch pull --runtime docker` against the bed's real dockerd and registry, through the fault
# proxy. Issue 2's "done when": a 4-layer pull with a reset mid-layer exits 0 with every layer done;
# a missing image exits 1 at once with no retry.

load helpers
load pw_helpers

setup_file() {
	bed_start
	pw_config
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

@test "a 4-layer pull succeeds and every layer reaches done" {
	img=$(push_image test/four v1 1MiB,2MiB,512KiB,3MiB)
	ref="$PROXY_ADDR/test/four:v1"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$ref"
	[ "$PW_RC" -eq 0 ]
	[ "$(layer_count "$BATS_TEST_TMPDIR/out")" -eq 4 ]
	all_layers_done "$BATS_TEST_TMPDIR/out"
	# the result names the digest the registry has for the tag
	want=$(jq -r .manifest_digest <<<"$img")
	jq -e --arg d "$want" 'select(.event=="result") | .ok == true and .digest == $d and .attempts == 1' "$BATS_TEST_TMPDIR/out"
	# and dockerd really has it
	docker_api GET "/images/$ref/json" | jq -e --arg d "$want" '.RepoDigests | any(endswith($d))'
}

@test "a missing image fails at once with exit 1 and no retry" {
	# "at once": one attempt, no backoff (no wall-clock bound: the machine's load is not the subject)
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/does-not-exist:v1"
	[ "$PW_RC" -eq 1 ]
	jq -e 'select(.event=="result") | .ok == false and .error == "permanent" and .attempts == 1' "$BATS_TEST_TMPDIR/out"
	[ -z "$(events "$BATS_TEST_TMPDIR/out" '.event=="retry"')" ]
}

@test "done when: a reset mid-layer through the proxy is retried and the 4-layer pull completes" {
	img=$(push_image test/reset v1 1MiB,4MiB,512KiB,2MiB)
	big=$(biggest_layer "$img")
	# cut the connection 1 MiB into the biggest layer, on its first request only
	proxy_rule "{\"digest\":\"$big\",\"reset_at\":1048576,\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/reset:v1"
	[ "$PW_RC" -eq 0 ]
	all_layers_done "$BATS_TEST_TMPDIR/out"
	# the reset really happened, and the blob was asked for again
	proxy_counters | jq -e --arg d "$big" '.blobs[$d].resets >= 1 and .blobs[$d].requests >= 2'
}

@test "a throttled pull shows monotonic progress in --json" {
	# 5 MiB at 1 MB/s: dockerd on the containerd image store reports a download's progress as
	# containerd's ingest grows, in 1 MiB steps, so the layer must span several of them
	img=$(push_image test/slow v1 5MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":1000000}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/slow:v1"
	[ "$PW_RC" -eq 0 ]
	# at least three progress reports while downloading, each at or above the one before
	n=$(jq -s '[.[] | select(.event=="progress" and .phase=="downloading")] | length' "$BATS_TEST_TMPDIR/out")
	[ "$n" -ge 3 ]
	jq -s -e '[.[] | select((.event=="progress" or .event=="phase") and .phase=="downloading") | .current]
	          | . as $c | all(range(1; length); $c[.] >= $c[. - 1])' "$BATS_TEST_TMPDIR/out"
	# no verdict worse than progressing: a slow download is not a stall
	[ -z "$(events "$BATS_TEST_TMPDIR/out" '.event=="verdict" and (.verdict=="stalled" or .verdict=="hung")')" ]
}

@test "the terminal view is plain lines on a pipe" {
	push_image test/plain v1 256KiB >/dev/null
	run timeout 60 "$PULLWATCH" pull --config "$PW_CONFIG" --runtime docker "$PROXY_ADDR/test/plain:v1"
	[ "$status" -eq 0 ]
	[[ "$output" == *"pulled in"* ]]
	[[ "$output" != *$'\033['* ]]
}

@test "a malformed config is rejected with file:line:column and the key, exit 2" {
	printf 'watchdog:\n  sample_interval: 1s\n  hang_quiet: soon\n' >"$BATS_TEST_TMPDIR/bad.yaml"
	run "$PULLWATCH" pull --config "$BATS_TEST_TMPDIR/bad.yaml" --runtime docker x
	[ "$status" -eq 2 ]
	[[ "$output" == *"$BATS_TEST_TMPDIR/bad.yaml:3:"*"watchdog.hang_quiet"* ]]
	run "$PULLWATCH" check-config --config "$BATS_TEST_TMPDIR/bad.yaml"
	[ "$status" -eq 2 ]
	[[ "$output" == *"bad.yaml:3:"* ]]
}

@test "a socket that is missing or not dockerd gives one clear line and exit 1" {
	run "$PULLWATCH" pull --config "$PW_CONFIG" --runtime docker --docker-socket "$BATS_TEST_TMPDIR/none.sock" x
	[ "$status" -eq 1 ]
	[[ "$output" == *"cannot reach dockerd at $BATS_TEST_TMPDIR/none.sock: no such socket"* ]]
	[ "${#lines[@]}" -eq 1 ]
}

@test "usage errors exit 2" {
	run "$PULLWATCH" pull
	[ "$status" -eq 2 ]
	run "$PULLWATCH" pull --runtime podman x
	[ "$status" -eq 2 ]
	run "$PULLWATCH" frobnicate
	[ "$status" -eq 2 ]
	run "$PULLWATCH" --help
	[ "$status" -eq 0 ]
}
