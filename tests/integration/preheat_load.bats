#!/usr/bin/env bats
# A long preheat list on the bed's real dockerd, with `pullwatch daemon` and a standalone journald run
# the way daemon.bats runs it, dockerd's socket reached through a relay that counts the daemon's
# connections: the list's presence checks go a few at a time, not one per item at once (a 2,000-image
# list held 2,000 requests and their buffers: 47 MiB), and nothing is lost: every item ends ready or
# failed, in state.json and in status. tests/bench/load.sh measures the same at 2,000 images.

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")
N=60 # pushed images; as many missing ones

# A unix socket relay to dockerd's (tests/bed/unixfwd.py) that writes the most connections it held at
# once to FILE.
count_relay_start() { # LISTEN TARGET FILE
	timeout 600 python3 "$REPO/tests/bed/unixfwd.py" "$1" "$2" --most "$3" >"$BED_DIR/count_relay.log" 2>&1 3>&- &
	echo $! >"$BED_DIR/count_relay.pid"
	wait_for 10 test -S "$1"
}

setup_file() {
	bed_require nsenter unshare journalctl /lib/systemd/systemd-journald python3 jq
	require_pullwatch
	bed_start --no-containerd
	mkdir -p "$BED_DIR/list"
	python3 "$REPO/tests/bed/pushmany.py" --registry "$REGISTRY_ADDR" --repo load/img --count "$N" >/dev/null
	for ((i = 0; i < N; i++)); do
		printf -- '- %s/load/img:t%04d\n- %s/load/img:m%04d\n' "$PROXY_ADDR" "$i" "$PROXY_ADDR" "$i"
	done >"$BED_DIR/list/preheat.yaml"
	count_relay_start "$BED_DIR/docker-relay.sock" "$DOCKER_SOCK" "$BED_DIR/docker-most"
	DOCKER_SOCK=$BED_DIR/docker-relay.sock pw_config "runtime: docker
preheat:
  list: $BED_DIR/list/preheat.yaml
  concurrency: 4
  splay: 0s
state_dir: $BED_DIR/state
control_socket: $BED_DIR/run/control.sock
cri:
  listen: null
guard:
  enabled: false"
	daemon_bed_start
	daemon_start
}

teardown_file() {
	local p
	daemon_bed_stop
	if p=$(live_pid "$BED_DIR/count_relay.pid" unixfwd.py); then kill "$p"; fi
	bed_stop
}

@test "a $((2 * N))-image list, half missing: dockerd is asked a few things at a time, and every item ends ready or failed in state.json and status" {
	wait_status 600 "(.summary | test(\"^preheat $N/$((2 * N)) ready, 0 pulling, $N failed\"))"
	# what is in flight is set by the slots (4: a pull, its probes, a mirror question ahead) and the 8
	# presence checks, not by the list: 27 at most seen here; one check and one question per item at
	# once opened more connections than the list has items
	most=$(cat "$BED_DIR/docker-most")
	echo "most connections to dockerd at once: $most" >&2
	[ "$most" -le 40 ]
	# nothing lost: each pushed image with its digest, each missing one with its error
	jq -e --arg p "$PROXY_ADDR/load/img:" --argjson n "$N" '
		(.images | map(select(.image | startswith($p)))) as $l
		| ($l | length) == 2 * $n
		and ($l | map(select((.image | test(":t[0-9]+$")) and .digest != null and .last_error == null)) | length) == $n
		and ($l | map(select((.image | test(":m[0-9]+$")) and (.last_error // "" | contains("manifest unknown")))) | length) == $n' \
		"$BED_DIR/state/state.json"
	status_json | jq -e --argjson n "$N" '(.preheat | length) == 2 * $n
		and ([.preheat[] | select(.state == "ready")] | length) == $n
		and ([.preheat[] | select(.state == "failed")] | length) == $n'
}
