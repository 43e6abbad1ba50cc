#!/usr/bin/env bats
# The pulls real nodes make: an upgrade (a new tag of a repository already on the node, sharing
# layers), two tags of one repository at once, the same image pulled by pullwatch and another client
# at once, an index, a digest reference; on the bed's containerd (CRI, k8s.io) and dockerd.

load helpers
load pw_helpers
source "$BATS_TEST_DIRNAME/../bed/journald.sh"

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

# push_upgrade REPO: v1 with two layers, v2 with the same two (same seed, index and size) and a
# third, new one. Prints v2's push JSON; v1's is in $BATS_TEST_TMPDIR/v1.json.
push_upgrade() {
	push_image "$1" v1 1MiB,512KiB --seed "$1" >"$BATS_TEST_TMPDIR/v1.json"
	push_image "$1" v2 1MiB,512KiB,4MiB --seed "$1"
}

# The layers of v2 that v1 already brought: their first and only phase is done.
shared_layers_done() { # file v1-json
	local l
	for l in $(jq -r '.layers[].digest' "$2"); do
		jq -s -e --arg l "$l" '[.[] | select(.event=="phase" and .layer != null) | select(.layer as $x | $l | contains($x))]
			| length >= 1 and all(.[]; .phase=="done")' "$1" >/dev/null || {
			echo "layer $l of v1 not reported done only:" >&2
			jq -c --arg l "$l" 'select(.layer != null) | select(.layer as $x | $l | contains($x))' "$1" >&2
			return 1
		}
	done
}

@test "containerd upgrade: v2's new layer stalls; pullwatch follows v2's manifest, cuts, retries, succeeds" {
	v2=$(push_upgrade test/up-cd)
	new=$(jq -r '.layers[2].digest' <<<"$v2")
	cri_pull "$PROXY_ADDR/test/up-cd:v1" >/dev/null
	proxy_rule "{\"digest\":\"$new\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/up-cd:v2"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$new\" and .verdict==\"stalled\"" | grep -q 'no bytes for'
	jq -e --arg d "$(jq -r .manifest_digest <<<"$v2")" 'select(.event=="result") | .ok and .attempts == 2 and .digest == $d' "$f"
	shared_layers_done "$f" "$BATS_TEST_TMPDIR/v1.json"
	# nothing of v1 alone was followed: every layer reported is one of v2's
	jq -r 'select(.event=="phase") | .layer' "$f" | sort -u | while read -r l; do
		jq -e --arg l "$l" '[.layers[].digest] | index($l) != null' <<<"$v2" >/dev/null
	done
}

@test "docker upgrade: shared layers are 'Already exists' and done; v2's new layer stalls and is cut" {
	v2=$(push_upgrade test/up-dk)
	new=$(jq -r '.layers[2].digest' <<<"$v2")
	docker_pull "$PROXY_ADDR/test/up-dk:v1" >/dev/null
	proxy_rule "{\"digest\":\"$new\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/up-dk:v2"
	[ "$PW_RC" -eq 0 ]
	short=${new#sha256:}; short=${short:0:12}
	events "$f" ".event==\"verdict\" and .layer==\"$short\" and .verdict==\"stalled\"" | grep -q 'no bytes for'
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	shared_layers_done "$f" "$BATS_TEST_TMPDIR/v1.json"
}

@test "watch: a stall in a pull started by ctr names the image, in --json and in journald" {
	img=$(push_image test/watch-ctr v1 4MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	manifest=$(jq -r .manifest_digest <<<"$img")
	proxy_rule "{\"digest\":\"$layer\",\"stall_at\":1048576,\"stall_for\":20}"
	journald_start "$BED_DIR/journal" "$BATS_TEST_DIRNAME/../.."
	f="$BATS_TEST_TMPDIR/watch"
	timeout 60 nsenter -t "$JPID" -m "$PULLWATCH" watch --config "$PW_CONFIG" --json >"$f" 2>"$f.err" &
	wpid=$!
	ctr_pull "$PROXY_ADDR/test/watch-ctr:v1" >"$BATS_TEST_TMPDIR/ctr.out" 2>&1 &
	cpid=$!
	wait_json "$f" ".event==\"verdict\" and .layer==\"$layer\" and .verdict==\"stalled\"" 30
	events "$f" ".event==\"verdict\" and .layer==\"$layer\"" | jq -e --arg m "$manifest" \
		'.image | test("/test/watch-ctr@") and endswith($m)'
	# every event of that layer names the image, the first included
	jq -e --arg l "$layer" 'select(.layer==$l) | .image != null' "$f" >/dev/null
	[ -z "$(jq -c --arg l "$layer" 'select(.layer==$l and .image == null)' "$f")" ]
	wait "$cpid"
	kill "$wpid"; wait "$wpid" || true
	# the journal entry carries it as PULLWATCH_IMAGE
	for ((i = 0; i < 50; i++)); do
		timeout 20 journalctl -D "$JDIR/log/journal" -o json --no-pager SYSLOG_IDENTIFIER=pullwatch \
			PULLWATCH_VERDICT=stalled >"$BATS_TEST_TMPDIR/j" 2>/dev/null || true
		grep -q . "$BATS_TEST_TMPDIR/j" && break
		sleep 0.2
	done
	journald_stop
	jq -e --arg m "$manifest" 'select(.PULLWATCH_IMAGE | test("/test/watch-ctr@") and endswith($m))
		| .MESSAGE | test("cancels nothing")' "$BATS_TEST_TMPDIR/j"
	[ -z "$(events "$f" '.event=="action"')" ]
}
