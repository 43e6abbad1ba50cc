#!/usr/bin/env bats
# containerd's download limit with several pulls at once. containerd 2.1+ pulls CRI images through
# its transfer service, where max_concurrent_downloads is one limit for the whole node; 1.6 and 1.7
# apply it per pull. With a limit of 1 and one pull's layer stalled while holding the slot, the
# other layers wait (on 2.1.9 their ingests exist, at offset 0, before they get the slot): they are
# waiting, never stalled; only the stuck one is flagged, cut and retried, and every pull completes.
# Runs on every row (tests/run-all.sh).

load helpers
load pw_helpers

setup_file() {
	BED_CRI_MAX_DOWNLOADS=1 bed_start --no-docker
	DOCKER_SOCK=/nonexistent pw_config
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
}

held() { [ "$(proxy_counters .held)" -ge 1 ]; }

@test "download limit 1, three pulls at once, one layer stalled: only that layer is flagged" {
	grep -q 'max_concurrent_downloads = 1' "$CONTAINERD_CONFIG"
	a=$(push_image test/lim-a v1 4MiB,4MiB)
	b=$(push_image test/lim-b v1 1MiB,1MiB)
	c=$(push_image test/lim-c v1 1MiB,1MiB)
	# both of A's layers stall once, past containerd's first write (2.1 shows an ingest at offset 0
	# until then, like a queued one): whichever gets the slot first sticks in it, the other waits
	for d in $(jq -r '.layers[].digest' <<<"$a"); do
		proxy_rule "{\"digest\":\"$d\",\"stall_at\":2097152,\"stall_for\":\"forever\",\"first\":1}"
	done
	a0=$EPOCHREALTIME
	pw_pull_bg "$BATS_TEST_TMPDIR/a" --runtime containerd "$PROXY_ADDR/test/lim-a:v1"
	apid=$PW_PID
	# B and C start once A holds the slot with its stalled layer
	wait_for 30 held
	b0=$EPOCHREALTIME
	pw_pull_bg "$BATS_TEST_TMPDIR/b" --runtime containerd "$PROXY_ADDR/test/lim-b:v1"
	bpid=$PW_PID
	pw_pull_bg "$BATS_TEST_TMPDIR/c" --runtime containerd "$PROXY_ADDR/test/lim-c:v1"
	cpid=$PW_PID
	for p in a b c; do
		eval "PW_PID=\$${p}pid"
		pw_wait_bg
		eval "rc_$p=$PW_RC"
	done
	for p in a b c; do
		jq -c --arg p "$p" 'select(.event!="progress") | [$p, .t, .attempt, .event, .layer[7:19], .phase // .verdict // .action, .evidence]' \
			"$BATS_TEST_TMPDIR/$p" >&2
	done
	# every pull completes; A needed one attempt per stuck layer, the others none
	[ "$rc_a" -eq 0 ] && [ "$rc_b" -eq 0 ] && [ "$rc_c" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 3' "$BATS_TEST_TMPDIR/a"
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$BATS_TEST_TMPDIR/b"
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$BATS_TEST_TMPDIR/c"
	# in each of A's first two attempts exactly one layer was flagged, the one in the slot; the
	# other waited in the first, and was the one flagged in the second
	bad='select(.event=="verdict" and (.verdict=="stalled" or .verdict=="hung" or .verdict=="degraded"))'
	[ "$(jq -c "$bad | select(.attempt==1)" "$BATS_TEST_TMPDIR/a" | wc -l)" -eq 1 ]
	[ "$(jq -c "$bad | select(.attempt==2)" "$BATS_TEST_TMPDIR/a" | wc -l)" -eq 1 ]
	[ -z "$(jq -c "$bad | select(.attempt==3)" "$BATS_TEST_TMPDIR/a")" ]
	first=$(jq -r "$bad | select(.attempt==1) | .layer" "$BATS_TEST_TMPDIR/a")
	second=$(jq -r "$bad | select(.attempt==2) | .layer" "$BATS_TEST_TMPDIR/a")
	[ "$first" != "$second" ]
	jq -s -e --arg l "$second" 'any(.[]; .attempt==1 and .event=="phase" and .layer==$l and .phase=="waiting")' \
		"$BATS_TEST_TMPDIR/a"
	# B and C only waited
	for p in b c; do
		[ -z "$(jq -c "$bad" "$BATS_TEST_TMPDIR/$p")" ]
		[ -z "$(jq -c 'select(.event=="action" or .event=="retry")' "$BATS_TEST_TMPDIR/$p")" ]
	done
	# where the limit is node-wide (2.x), B could only finish once A's stuck attempt was cut and
	# freed the slot; where it is per pull (1.x), B finished while A was still stuck
	cut=$(jq -s -r --arg a0 "$a0" 'map(select(.event=="action")) | first | .t + ($a0 | tonumber)' "$BATS_TEST_TMPDIR/a")
	done_b=$(jq -s -r --arg b0 "$b0" 'map(select(.event=="result")) | first | .t + ($b0 | tonumber)' "$BATS_TEST_TMPDIR/b")
	echo "A cut at $cut, B done at $done_b (containerd $BED_CONTAINERD_VERSION)" >&2
	if [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ]; then
		awk -v c="$cut" -v b="$done_b" 'BEGIN { exit !(b > c) }'
	else
		awk -v c="$cut" -v b="$done_b" 'BEGIN { exit !(b < c) }'
	fi
}
