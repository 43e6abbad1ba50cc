#!/usr/bin/env bats
# Report 000 as it happened: a hop between dockerd and the registry cuts every connection after a
# fixed time and answers dockerd's Range resume with 200, inside dockerd's own retries. pullwatch
# times each "Retrying in" from the layer's first byte, names the fixed-time cut and the hop that
# ignores Range, says the pull cannot finish through that hop, and stops instead of retrying.

load helpers
load pw_helpers

setup_file() {
	bed_start --no-containerd
	CONTAINERD_SOCK=/nonexistent pw_config
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

@test "report 000: cut at a fixed time and Range ignored, inside dockerd's retries: hop and time named, stopped early" {
	img=$(push_image test/r000 v1 8MiB,256KiB)
	big=$(biggest_layer "$img")
	short=${big#sha256:}; short=${short:0:12}
	# the LB: 1 MiB/s, every connection reset 3 s into its body, Range dropped (200, whole blob)
	proxy_rule "{\"digest\":\"$big\",\"throttle\":1048576,\"reset_after\":3,\"ignore_range\":true}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/r000:v1"
	[ "$PW_RC" -eq 1 ]
	# the cuts happened inside dockerd's own retries, not pullwatch's
	events "$f" ".event==\"runtime-retry\" and .layer==\"$short\"" | grep -q 'Retrying in'
	events "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' | grep -q "$PROXY_ADDR answered a Range request with HTTP 200"
	events "$f" '.event=="diagnosis" and .diagnosis=="middlebox-timeout"' | grep -q 'connections cut after ~3s'
	# both together: the hop, the time, the remedy, and the stop
	events "$f" '.event=="diagnosis" and .diagnosis=="middlebox-timeout"' |
		grep 'cannot finish through' | grep "$PROXY_ADDR" | grep -q 'after ~3s.*read or idle timeout'
	jq -e 'select(.event=="result") | .ok == false and .error == "permanent" and .attempts == 1
		and (.reason | test("cannot finish through"))' "$f"
	# stopped after the attempt that proved it: no pullwatch retry, dockerd's own retries cut short
	[ -z "$(events "$f" '.event=="retry"')" ]
	[ "$(jq -r 'select(.event=="attempt") | .attempt' "$f" | wc -l)" -eq 1 ]
	[ "$(proxy_counters | jq --arg d "$big" '.blobs[$d].gets')" -lt 5 ]
	proxy_counters | jq -e '.ranges_ignored >= 1'
}
