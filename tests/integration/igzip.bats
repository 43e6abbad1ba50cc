#!/usr/bin/env bats
# igzip, which containerd 2.0+ runs before unpigz for gzip layers (CONTAINERD_DISABLE_IGZIP turns it
# off): with an igzip in containerd's PATH (the bed's wrapper, BED_IGZIP=1), containerd 1.x still
# runs unpigz, 2.x runs igzip; a hung igzip is found, ended and diagnosed with both switches. Runs
# on every row (tests/run-all.sh): what it checks depends on the row's containerd.

load helpers
load pw_helpers

setup_file() {
	BED_IGZIP=1 bed_start --no-docker
	DOCKER_SOCK=/nonexistent pw_config
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

# the helper containerd runs for gzip layers on this row
expected_helper() { if [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ]; then echo igzip; else echo unpigz; fi; }

@test "igzip in PATH: containerd 2.x pipes gzip layers through igzip, 1.x through unpigz" {
	[ -x "$BED_BIN/igzip" ]
	push_image test/gz-which v1 1MiB,512KiB >/dev/null
	mark=$(wc -l <"$UNPIGZ_LOG")
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime containerd "$PROXY_ADDR/test/gz-which:v1"
	[ "$PW_RC" -eq 0 ]
	all_layers_done "$BATS_TEST_TMPDIR/out"
	want=$(expected_helper)
	tail -n +"$((mark + 1))" "$UNPIGZ_LOG" >"$BATS_TEST_TMPDIR/helpers"
	cat "$BATS_TEST_TMPDIR/helpers" >&2
	[ "$(grep -c "parent=containerd mode=real args=-d -c name=$want\$" "$BATS_TEST_TMPDIR/helpers")" -eq 2 ]
	[ "$(wc -l <"$BATS_TEST_TMPDIR/helpers")" -eq 2 ]
}

@test "the gzip helper asleep is hung, ended, retried, diagnosed with CONTAINERD_DISABLE_IGZIP and _PIGZ" {
	push_image test/gz-sleep v1 1MiB >/dev/null
	want=$(expected_helper)
	unpigz_mode sleep
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$PROXY_ADDR/test/gz-sleep:v1"
	wait_json "$f" '.event=="action" and .action=="kill-helper"' 60
	unpigz_mode real
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	grep -q "parent=containerd mode=sleep args=-d -c name=$want\$" "$UNPIGZ_LOG"
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q asleep
	events "$f" '.event=="diagnosis" and .diagnosis=="decompressor-hang"' >"$BATS_TEST_TMPDIR/diag"
	cat "$BATS_TEST_TMPDIR/diag" >&2
	grep -q "the decompressor $want (pid" "$BATS_TEST_TMPDIR/diag"
	grep -q 'CONTAINERD_DISABLE_IGZIP=1' "$BATS_TEST_TMPDIR/diag"
	grep -q 'CONTAINERD_DISABLE_PIGZ=1' "$BATS_TEST_TMPDIR/diag"
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
}
