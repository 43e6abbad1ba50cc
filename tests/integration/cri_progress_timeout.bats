#!/usr/bin/env bats
# containerd's own CRI image_pull_progress_timeout (1.7+; the bed sets it to 5s with
# BED_CRI_PROGRESS_TIMEOUT): when containerd cancels a pull that pullwatch saw alive and did not cancel,
# the diagnosis cri-progress-timeout names the setting and its remedy.
#
# containerd #13909 (a pull cancelled during a long unpack) does not happen on 2.1.9 or 1.7: their
# transfer service / local pull count no open request while a layer unpacks (2.1.9's ProgressTracker
# sends "complete" for every layer; the "extracting" state that can skip it came with
# core/transfer/local "Add extraction progress", first in v2.2.0). So the cancel is provoked here
# where these versions do cancel: a layer's body paused 15 s mid-download, longer than 5s but well
# inside pullwatch's network_stall and trickle_window (30s for this file). The unpack form of the error text is checked in
# tests/unit/test_diagnose.c; the second test pins that these versions let a long unpack finish. On
# containerd 1.6 (no such setting) the same pause passes in one attempt with no diagnosis.

load helpers
load pw_helpers

setup_file() {
	BED_CRI_PROGRESS_TIMEOUT=5s bed_start --no-docker
	DOCKER_SOCK=/nonexistent pw_config
	# pullwatch's own budgets well above the pause (containerd checks every 2.5 s and cancels once 5 s
	# passed without a byte: 5 to 10 s in): only containerd may cut this pull
	sed -i 's/^  network_stall: 6s$/  network_stall: 30s/; s/^  trickle_window: 8s$/  trickle_window: 30s/' "$BED_DIR/pw.yaml"
	grep -q '^  network_stall: 30s$' "$BED_DIR/pw.yaml"
	grep -q '^  trickle_window: 30s$' "$BED_DIR/pw.yaml"
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

# containerd 1.6 has no image_pull_progress_timeout (the key is ignored there): nothing cancels
has_progress_timeout() { [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ] || [[ "$BED_CONTAINERD_VERSION" == 1.7.* ]]; }

@test "a body paused 15 s: containerd 1.7+ cancels the pull pullwatch saw progressing, cri-progress-timeout names image_pull_progress_timeout (1.6: no cancel)" {
	img=$(push_image test/cri-pause v1 8MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rule "{\"digest\":\"$layer\",\"stall_at\":2097152,\"stall_for\":15,\"first\":1}" >/dev/null
	mark=$(wc -l <"$CONTAINERD_LOG")
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/cri-pause:v1"
	cat "$f" >&2
	[ "$PW_RC" -eq 0 ]
	# pullwatch judged nothing faulted and cut nothing
	[ -z "$(events "$f" '.event=="action"')" ]
	if ! has_progress_timeout; then
		# 1.6: the pause is only a pause, and no diagnosis claims otherwise
		! tail -n +"$((mark + 1))" "$CONTAINERD_LOG" | grep -q 'because of no progress'
		[ -z "$(events "$f" '.event=="diagnosis"')" ]
		jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
		return 0
	fi
	# containerd's own cancel, by its log
	tail -n +"$((mark + 1))" "$CONTAINERD_LOG" | grep -q 'because of no progress in 5s'
	[ -z "$(events "$f" '.event=="verdict" and (.verdict=="stalled" or .verdict=="hung" or .verdict=="degraded")')" ]
	events "$f" '.event=="diagnosis" and .diagnosis=="cri-progress-timeout"' >"$BATS_TEST_TMPDIR/diag"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/diag")" -eq 1 ]
	grep -q "containerd cancelled the pull itself" "$BATS_TEST_TMPDIR/diag"
	grep -q "image_pull_progress_timeout" "$BATS_TEST_TMPDIR/diag"
	grep -q "progressing" "$BATS_TEST_TMPDIR/diag" # what pullwatch saw
	grep -q "#14158" "$BATS_TEST_TMPDIR/diag"
	jq -e 'select(.event=="result") | .ok and .attempts == 2 and .diagnosis == "cri-progress-timeout"' "$f"
}

@test "a 12 s unpack is not cancelled by a 5s image_pull_progress_timeout on this containerd (#13909 is 2.2's)" {
	push_image test/cri-slow v1 2MiB >/dev/null
	unpigz_mode slow:12
	mark=$(wc -l <"$CONTAINERD_LOG")
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/cri-slow:v1"
	unpigz_mode real
	cat "$f" >&2
	[ "$PW_RC" -eq 0 ]
	grep -q 'mode=slow:12' "$UNPIGZ_LOG"
	! tail -n +"$((mark + 1))" "$CONTAINERD_LOG" | grep -q 'because of no progress'
	[ -z "$(events "$f" '.event=="diagnosis"')" ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
}
