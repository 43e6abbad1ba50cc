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
	# v2's tag resolves 2 s late (for containerd and pullwatch alike): until then v1 is the only
	# manifest of the repository in the store, the one a tracker choosing by repository follows
	proxy_rule '{"path":"/manifests/v2$","methods":["HEAD","GET"],"delay":2}' 
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
	# bytes written before the watch began read as an earlier attempt's (waiting): start the pull once
	# it watches (a sanitizer build takes a second to get there, ctr's 1 MiB takes less)
	wait_for 20 grep -q 'watching containerd' "$f.err"
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
	! grep -E 'Sanitizer|runtime error' "$f.err" # a sanitizer build reports at exit
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

@test "containerd: two tags of one repository pulled at once are tracked apart" {
	v2=$(push_upgrade test/two-tags)
	new=$(jq -r '.layers[2].digest' <<<"$v2")
	proxy_rule "{\"digest\":\"$new\",\"throttle\":1048576,\"stall_at\":2097152,\"stall_for\":\"forever\",\"first\":1}"
	f1="$BATS_TEST_TMPDIR/v1" f2="$BATS_TEST_TMPDIR/v2"
	pw_pull_bg "$f2" --runtime containerd "$PROXY_ADDR/test/two-tags:v2"
	p2=$PW_PID
	pw_pull "$f1" --runtime containerd "$PROXY_ADDR/test/two-tags:v1"
	PW_PID=$p2 pw_wait_bg
	# v1's pull: only v1's layers, nothing of v2's stall, one attempt
	[ "$(jq -r 'select(.event=="result") | .ok' "$f1")" = true ]
	jq -e --arg d "$(jq -r .manifest_digest "$BATS_TEST_TMPDIR/v1.json")" 'select(.event=="result") | .attempts == 1 and .digest == $d' "$f1"
	[ -z "$(events "$f1" ".layer==\"$new\" or .event==\"action\"")" ]
	# v2's pull: the stall on its own layer, cut and retried
	[ "$PW_RC" -eq 0 ]
	events "$f2" ".event==\"verdict\" and .layer==\"$new\" and .verdict==\"stalled\"" | grep -q .
	jq -e --arg d "$(jq -r .manifest_digest <<<"$v2")" 'select(.event=="result") | .ok and .attempts == 2 and .digest == $d' "$f2"
}

@test "the same image pulled at once by pullwatch and by the docker CLI, by ctr, by a CRI client" {
	img=$(push_image test/same-dk v1 6MiB,1MiB)
	big=$(biggest_layer "$img")
	proxy_rule "{\"digest\":\"$big\",\"throttle\":2097152}"
	f="$BATS_TEST_TMPDIR/dk"
	timeout 120 docker -H "unix://$DOCKER_SOCK" pull "$PROXY_ADDR/test/same-dk:v1" >"$BATS_TEST_TMPDIR/cli.out" 2>&1 &
	cli=$!
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/same-dk:v1"
	wait "$cli"
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	all_layers_done "$f"

	img=$(push_image test/same-cd v1 6MiB,1MiB)
	big=$(biggest_layer "$img")
	proxy_rule "{\"digest\":\"$big\",\"throttle\":2097152}"
	f="$BATS_TEST_TMPDIR/cd"
	ctr_pull "$PROXY_ADDR/test/same-cd:v1" >"$BATS_TEST_TMPDIR/ctr.out" 2>&1 &
	other=$!
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/same-cd:v1"
	wait "$other"
	[ "$PW_RC" -eq 0 ]
	jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" 'select(.event=="result") | .ok and .attempts == 1 and .digest == $d' "$f"
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	all_layers_done "$f"

	# kubelet's part, played by the bed's CRI client
	img=$(push_image test/same-cri v1 6MiB,1MiB)
	big=$(biggest_layer "$img")
	proxy_rule "{\"digest\":\"$big\",\"throttle\":2097152}"
	f="$BATS_TEST_TMPDIR/cri"
	cri_pull "$PROXY_ADDR/test/same-cri:v1" >"$BATS_TEST_TMPDIR/cri.out" 2>&1 &
	other=$!
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/same-cri:v1"
	wait "$other"
	[ "$PW_RC" -eq 0 ]
	jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" 'select(.event=="result") | .ok and .attempts == 1 and .digest == $d' "$f"
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	all_layers_done "$f"
}

@test "a multi-arch index, on containerd and dockerd" {
	img=$(push_image test/multi v1 1MiB,512KiB --index --extra-platforms linux/arm64/v8,linux/ppc64le)
	manifest=$(jq -r .manifest_digest <<<"$img")
	index=$(jq -r .index_digest <<<"$img")
	for rt in containerd docker; do
		f="$BATS_TEST_TMPDIR/$rt-tag"
		pw_pull "$f" --runtime "$rt" "$PROXY_ADDR/test/multi:v1"
		[ "$PW_RC" -eq 0 ]
		[ "$(layer_count "$f")" -eq 2 ]
		all_layers_done "$f"
	done
	# containerd's digest is the platform's manifest, not the index nor another platform's
	jq -e --arg d "$manifest" 'select(.event=="result") | .digest == $d' "$BATS_TEST_TMPDIR/containerd-tag"
}

@test "a digest reference (an index's, a manifest's) is followed to its layers; a stall in it is cut" {
	img=$(push_image test/dig-cd v1 3MiB,512KiB --index --extra-platforms linux/arm64/v8)
	big=$(biggest_layer "$img")
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/cd"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/dig-cd@$(jq -r .index_digest <<<"$img")"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$big\" and .verdict==\"stalled\"" | grep -q .
	jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" 'select(.event=="result") | .ok and .attempts == 2 and .digest == $d' "$f"
	all_layers_done "$f"

	img=$(push_image test/dig-dk v1 3MiB,512KiB --index)
	f="$BATS_TEST_TMPDIR/dk"
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/dig-dk@$(jq -r .manifest_digest <<<"$img")"
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
	[ "$(layer_count "$f")" -eq 2 ]
	all_layers_done "$f"
}

@test "a layer of thousands of real files with a slow but working decompressor is never cancelled" {
	img=$(push_image test/tree v1 64KiB --layer-dir /usr/share/doc)
	files=$(find /usr/share/doc | wc -l)
	[ "$files" -gt 1000 ]
	unpigz_mode slow:10
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/tree:v1"
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	events "$f" '.event=="verdict" and .verdict=="silent-alive"' | grep -q .
	all_layers_done "$f"
	# the tree arrived whole: dockerd counts its unpacked size
	size=$(docker -H "unix://$DOCKER_SOCK" image inspect "$PROXY_ADDR/test/tree:v1" --format '{{.Size}}')
	want=$(du -sb /usr/share/doc | cut -f1)
	awk -v s="$size" -v w="$want" 'BEGIN { exit !(s >= 0.9 * w) }' 
}

@test "containerd: a zstd layer is pulled and watched to done" {
	command -v zstd
	img=$(push_image test/zstd v1 2MiB,512KiB --zstd)
	jq -e '.media_type == "application/vnd.oci.image.manifest.v1+json"' <<<"$img"
	big=$(biggest_layer "$img")
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$PROXY_ADDR/test/zstd:v1"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$big\" and .verdict==\"stalled\"" | grep -q .
	jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" 'select(.event=="result") | .ok and .attempts == 2 and .digest == $d' "$f"
	all_layers_done "$f"
}

@test "containerd: a pull through a hosts.toml mirror is watched (a stall on the mirror is cut)" {
	img=$(push_image test/mirrored v1 2MiB)
	big=$(biggest_layer "$img")
	# pwmirror.invalid resolves nowhere: only its mirror, the bed's proxy, serves it
	mkdir -p "$CONTAINERD_HOSTS_DIR/pwmirror.invalid"
	cat >"$CONTAINERD_HOSTS_DIR/pwmirror.invalid/hosts.toml" <<-TOML
		server = "https://pwmirror.invalid"
		[host."http://$PROXY_ADDR"]
		  capabilities = ["pull", "resolve"]
	TOML
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "pwmirror.invalid/test/mirrored:v1"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$big\" and .verdict==\"stalled\"" | grep -q .
	jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" 'select(.event=="result") | .ok and .attempts == 2 and .digest == $d' "$f"
}

@test "dockerd: a pull through registry-mirrors is watched (a stall on the mirror is cut)" {
	img=$(push_image library/pwmirrored v1 2MiB)
	big=$(biggest_layer "$img")
	short=${big#sha256:}; short=${short:0:12}
	# registry-mirrors is reloaded on SIGHUP; Docker Hub itself is never reached (mirror first)
	echo "{\"registry-mirrors\": [\"http://$PROXY_ADDR\"]}" >"$BED_DIR/daemon.json"
	kill -HUP "$(docker_pid)"
	wait_for 20 sh -c "docker -H unix://$DOCKER_SOCK info 2>/dev/null | grep -q 'http://$PROXY_ADDR'"
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "docker.io/library/pwmirrored:v1"
	echo '{}' >"$BED_DIR/daemon.json"
	kill -HUP "$(docker_pid)"
	[ "$PW_RC" -eq 0 ]
	events "$f" ".event==\"verdict\" and .layer==\"$short\" and .verdict==\"stalled\"" | grep -q .
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	proxy_counters | jq -e '.manifests | keys | any(test("library/pwmirrored"))'
}

@test "daemon: two tags of one repository preheated at once on containerd are tracked apart" {
	v2=$(push_upgrade test/daemon-two)
	new=$(jq -r '.layers[2].digest' <<<"$v2")
	proxy_rule "{\"digest\":\"$new\",\"throttle\":1048576,\"stall_at\":2097152,\"stall_for\":\"forever\",\"first\":1}"
	d="$BED_DIR/daemon-two"
	mkdir -p "$d"
	printf -- '- %s\n' "$PROXY_ADDR/test/daemon-two:v1" "$PROXY_ADDR/test/daemon-two:v2" >"$d/preheat.yaml"
	pw_config "runtime: containerd
preheat:
  list: $d/preheat.yaml
  concurrency: 2
  splay: 1s
  recheck: 10m
state_dir: $d/state
control_socket: $d/control.sock"
	mv "$PW_CONFIG" "$d/pw.yaml"
	pw_config # the other tests' config again
	timeout 300 "$PULLWATCH" daemon --config "$d/pw.yaml" >"$d/log" 2>&1 3>&- &
	dpid=$!
	st() { timeout 20 "$PULLWATCH" status --json --config "$d/pw.yaml"; }
	ok=0
	for ((i = 0; i < 1200; i++)); do
		out=$(st 2>/dev/null) || out=
		# (jq 1.6 -e exits 0 on empty input: ask only once the daemon answered)
		if [ -n "$out" ] && jq -e '(.preheat | length) == 2 and all(.preheat[]; .state == "ready")' <<<"$out" >/dev/null; then
			ok=1
			break
		fi
		sleep 0.1
	done
	st >"$d/status.json" || true
	kill -TERM "$dpid"
	wait "$dpid" || true
	! grep -E 'Sanitizer|runtime error' "$d/log"
	jq -c '.preheat[]' "$d/status.json" >&2 || true # shown on failure
	[ "$ok" -eq 1 ] || { tail -n 30 "$d/log" >&2; false; }
	jq -e --arg i "$PROXY_ADDR/test/daemon-two:v1" --arg d "$(jq -r .manifest_digest "$BATS_TEST_TMPDIR/v1.json")" \
		'.preheat[] | select(.image == $i) | .attempts == 1 and .digest == $d' "$d/status.json"
	jq -e --arg i "$PROXY_ADDR/test/daemon-two:v2" --arg d "$(jq -r .manifest_digest <<<"$v2")" \
		'.preheat[] | select(.image == $i) | .attempts == 2 and .digest == $d' "$d/status.json"
}
