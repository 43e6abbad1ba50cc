#!/usr/bin/env bats
# The stall matrix on the bed's real dockerd: each fault injected with the proxy or the unpigz
# wrapper, and what pullwatch must do about it. Budgets come from pw_config (network_stall 6s,
# hang_quiet 6s, livelock_window 8s, trickle 64KiB/s over 8s, sample 1s).

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

teardown() {
	# what a failed test may have left running
	for p in ${pull:-} ${fwd:-}; do kill "$p" 2>/dev/null || true; done
}

# seconds between the last sign of life of LAYER (phase/progress) and its VERDICT event
verdict_latency() { # file layer verdict
	jq -s -r --arg l "$2" --arg v "$3" '
		(map(select(.event=="verdict" and .layer==$l and .verdict==$v)) | first | .t) as $tv
		| (map(select((.event=="phase" or .event=="progress") and .layer==$l and .t <= $tv)) | last | (.observed_t // .t)) as $tl
		| ($tv - $tl)' "$1"
}

@test "blob stalled forever mid-layer: stalled within network_stall + a sample, cut, retried, done" {
	img=$(push_image test/stall v1 3MiB,512KiB)
	big=$(biggest_layer "$img")
	proxy_reset
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":1048576,\"stall_for\":\"forever\",\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/stall:v1"
	[ "$PW_RC" -eq 0 ]
	f="$BATS_TEST_TMPDIR/out"
	short=${big#sha256:}; short=${short:0:12}
	events "$f" ".event==\"verdict\" and .layer==\"$short\" and .verdict==\"stalled\"" | grep -q 'no bytes for'
	lat=$(verdict_latency "$f" "$short" stalled)
	# 6 s budget, 1 s sampling: flagged between 6 and 8 s after its last byte
	awk -v l="$lat" 'BEGIN { exit !(l >= 6 && l <= 8) }'
	events "$f" '.event=="action" and .action=="cancel"' | grep -q "$short" ||
		{ echo "no cancel naming $short; actions and verdicts:" >&2; events "$f" '.event=="action" or .event=="verdict"' >&2; false; }
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	all_layers_done "$f"
	if [ "$DOCKER_STORE" = containerd ]; then
		# the retry resumes the partial ingest with Range; classic dockerd restarts a cancelled
		# layer from zero
		size=$(jq -r .total_bytes <<<"$img")
		proxy_counters | jq -e --arg d "$big" '.blobs[$d].range_requests >= 1'
		served=$(proxy_counters | jq '.blob_bytes')
		awk -v s="$served" -v t="$size" 'BEGIN { exit !(s < 1.25 * t) }'
	fi
}

@test "a connection reset mid-layer: the retry resumes the partial download (under 1.25x the image)" {
	img=$(push_image test/resetresume v1 4MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	size=$(jq -r .total_bytes <<<"$img")
	proxy_reset
	# one cut after ~1.5 MB: classic dockerd retries the layer itself with Range; on the containerd
	# store the attempt fails, dockerd drops its lease, and only pullwatch's keeps the partial ingest
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":500000,\"reset_after\":3,\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/resetresume:v1"
	[ "$PW_RC" -eq 0 ]
	proxy_counters | jq -e --arg d "$layer" '.blobs[$d].resets == 1 and .blobs[$d].range_requests >= 1'
	served=$(proxy_counters | jq '.blob_bytes')
	awk -v s="$served" -v t="$size" 'BEGIN { exit !(s < 1.25 * t) }'
	if [ "$DOCKER_STORE" = containerd ]; then
		# released once the pull succeeded
		[ -z "$(ctr -a "$CONTAINERD_SOCK" -n moby leases ls -q | grep '^pullwatch-')" ]
	fi
}

@test "a reset in the layer's first bytes: the retry still resumes (under 1.25x the image)" {
	img=$(push_image test/earlyreset v1 4MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	size=$(jq -r .total_bytes <<<"$img")
	proxy_reset
	# classic dockerd retries the layer itself with Range. On the containerd store:
	# cut after 1.5 MiB at 6 MB/s: the attempt fails ~0.25 s into the layer, before a poll of
	# containerd's ingests could have put it into pullwatch's lease; only refs held from the
	# registry's manifest before the ingest exists keep it for the retry (a full re-download is
	# 1.37x). Throttled so that containerd has read what was sent: a reset drops unread socket data.
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":6000000,\"reset_at\":1572864,\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/earlyreset:v1"
	[ "$PW_RC" -eq 0 ]
	proxy_counters | jq -e --arg d "$layer" '.blobs[$d].resets == 1 and .blobs[$d].range_requests >= 1'
	served=$(proxy_counters | jq '.blob_bytes')
	echo "served $served of $size" >&2
	awk -v s="$served" -v t="$size" 'BEGIN { exit !(s <= 1.25 * t) }'
	if [ "$DOCKER_STORE" = containerd ]; then
		[ -z "$(ctr -a "$CONTAINERD_SOCK" -n moby leases ls -q | grep '^pullwatch-')" ]
	fi
}

@test "one layer stalled while the others download: that layer is flagged, not the others" {
	# the first layer holds a download slot and stalls; the others keep moving at 150 KB/s
	if [ "$DOCKER_STORE" = containerd ]; then
		# containerd writes an ingest (and so reports its bytes) in 1 MiB steps: the others
		# must step within network_stall, at rates that interleave their steps
		img=$(push_image test/onestuck v1 1MiB,8MiB,8MiB,8MiB)
		rates=(300000 400000 500000)
	else
		img=$(push_image test/onestuck v1 1MiB,2MiB,2MiB,2MiB)
		rates=(150000 150000 150000)
	fi
	stuck=$(jq -r '.layers[0].digest' <<<"$img")
	i=0
	for d in $(jq -r '.layers[1:][].digest' <<<"$img"); do
		proxy_rule "{\"digest\":\"$d\",\"throttle\":${rates[i++]}}"
	done
	proxy_rule "{\"digest\":\"$stuck\",\"stall_at\":65536,\"stall_for\":\"forever\",\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/onestuck:v1"
	f="$BATS_TEST_TMPDIR/out"
	short=${stuck#sha256:}; short=${short:0:12}
	[ "$PW_RC" -eq 0 ]
	tv=$(jq -s -r --arg l "$short" 'map(select(.event=="verdict" and .layer==$l and .verdict=="stalled")) | first | .t' "$f")
	[ "$tv" != null ]
	# other layers were still moving in the two seconds before the stuck one was flagged: summed
	# bytes (containerd's rule) would have hidden it
	jq -s -e --argjson tv "$tv" --arg l "$short" '
		[.[] | select(.attempt==1 and .event=="progress" and .layer!=$l and .t > $tv - 2 and .t <= $tv)] | length >= 1' "$f"
	[ -z "$(jq -c --arg l "$short" 'select(.event=="verdict" and .attempt==1 and .layer!=$l and (.verdict=="stalled" or .verdict=="hung"))' "$f")" ]
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
}

@test "slow but working decompressor, silent longer than a kubelet-style deadline: never cancelled" {
	push_image test/slowunpigz v1 1MiB >/dev/null
	unpigz_mode slow:14
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/slowunpigz:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
	events "$f" '.event=="verdict" and .verdict=="silent-alive"' | grep -q extracting
	[ -z "$(events "$f" '.event=="action" or .event=="retry"')" ]
	decoys_untouched
	# it really was silent longer than the 10 s a kubelet-style "any message" deadline allows here
	jq -s -e '[.[] | select(.event=="phase" or .event=="progress") | (.observed_t // .t)] | . as $t
	          | [range(1; length) | $t[.] - $t[. - 1]] | max > 10' "$f"
}

@test "decompressor asleep: hung within hang_quiet + a sample, helper ended, diagnosis names it" {
	push_image test/sleepunpigz v1 1MiB >/dev/null
	unpigz_mode sleep
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker "$PROXY_ADDR/test/sleepunpigz:v1"
	wait_json "$f" '.event=="action" and .action=="kill-helper"' 40
	unpigz_mode real
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	layer=$(jq -r 'select(.event=="verdict" and .verdict=="hung") | .layer' "$f" | head -1)
	lat=$(verdict_latency "$f" "$layer" hung)
	awk -v l="$lat" 'BEGIN { exit !(l >= 6 && l <= 8.5) }'
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q 'asleep'
	events "$f" '.event=="diagnosis" and .diagnosis=="decompressor-hang"' | grep -q 'MOBY_DISABLE_PIGZ=true'
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	# the ended helper was the wrapper the bed started, and it is gone
	pid=$(jq -r 'select(.event=="action" and .action=="kill-helper") | .pid' "$f")
	run kill -0 "$pid"
	[ "$status" -ne 0 ]
	killed_the_real_helper "$f"
	decoys_untouched
}

@test "decompressor spinning without output: hung within livelock_window + a sample" {
	push_image test/spinunpigz v1 1MiB >/dev/null
	unpigz_mode spin
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker "$PROXY_ADDR/test/spinunpigz:v1"
	wait_json "$f" '.event=="action" and .action=="kill-helper"' 40
	unpigz_mode real
	pw_wait_bg
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q 'CPU, 0 bytes written for'
	layer=$(jq -r 'select(.event=="verdict" and .verdict=="hung") | .layer' "$f" | head -1)
	lat=$(verdict_latency "$f" "$layer" hung)
	awk -v l="$lat" 'BEGIN { exit !(l >= 8 && l <= 10.5) }'
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	killed_the_real_helper "$f"
	decoys_untouched
}

@test "the bed's dockerd is socket-activated: the listener and its decoys are not the runtime" {
	[ "$DOCKER_ACTIVATION" = socket ]
	listener=$(cat "$BED_DIR/docker.launch.pid")
	dockerd=$(cat "$DOCKER_PIDFILE")
	[ "$listener" != "$dockerd" ]
	# the socket's peer is the listener, as PID 1 is for docker.socket
	peer=$(python3 -c 'import socket,struct,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]); print(struct.unpack("3i", s.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0])' "$DOCKER_SOCK")
	[ "$peer" = "$listener" ]
	[ "$(awk '{print $4}' /proc/$dockerd/stat)" = "$listener" ]
	for p in $(cat "$DOCKER_DECOY_PIDS"); do [ "$(awk '{print $4}' /proc/$p/stat)" = "$listener" ]; done
	decoys_untouched
}

# On the classic store that leaves pullwatch blind. On the containerd store the decompressor is a
# child of the containerd named in dockerd's /info, which is proven on its own: that helper, and
# nothing else, is cut.
@test "no process proven to be dockerd (a forwarder serves the socket): blind, diagnosed, nothing signalled" {
	push_image test/blindunpigz v1 1MiB >/dev/null
	python3 tests/bed/unixfwd.py "$BED_DIR/fwd.sock" "$DOCKER_SOCK" >/dev/null 2>&1 3>&- &
	fwd=$!
	for _ in $(seq 50); do [ -S "$BED_DIR/fwd.sock" ] && break; sleep 0.1; done
	sed "s|socket: $DOCKER_SOCK|socket: $BED_DIR/fwd.sock|" "$PW_CONFIG" >"$BED_DIR/pw-blind.yaml"
	: >"$UNPIGZ_LOG"
	unpigz_mode sleep
	f="$BATS_TEST_TMPDIR/out"
	timeout 120 "$PULLWATCH" pull --config "$BED_DIR/pw-blind.yaml" --json --runtime docker \
		"$PROXY_ADDR/test/blindunpigz:v1" >"$f" 2>"$f.err" 3>&- &
	pull=$!
	if [ "$DOCKER_STORE" = containerd ]; then
		wait_json "$f" '.event=="action" and .action=="kill-helper"' 40
		unpigz_mode real
		kill "$pull" 2>/dev/null || true
		wait "$pull" 2>/dev/null || true
		kill "$fwd" 2>/dev/null || true
		killed_the_real_helper "$f"
		pid=$(jq -r 'select(.event=="action" and .action=="kill-helper") | .pid' "$f" | head -1)
		grep -q "pid=$pid ppid=[0-9]* parent=containerd" "$UNPIGZ_LOG"
		[ -z "$(events "$f" '.event=="diagnosis" and .diagnosis=="runtime-unverified"')" ]
		decoys_untouched
		return 0
	fi
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="runtime-unverified"' 30
	wait_json "$f" '.event=="action" and .action=="cancel"' 60
	kill "$pull" 2>/dev/null || true
	wait "$pull" 2>/dev/null || true
	kill "$fwd" 2>/dev/null || true
	events "$f" '.event=="diagnosis" and .diagnosis=="runtime-unverified"' | grep -q 'docker.pidfile'
	events "$f" '.event=="verdict" and .verdict=="hung"' | grep -q 'runtime not observable'
	[ -z "$(events "$f" '.event=="action" and (.action=="kill-helper" or .action=="kill-helper-refused")')" ]
	# the hung wrapper was left alone: still there, still asleep; so were the decoys
	wrapper=$(sed -n 's/.* pid=\([0-9]*\) .*/\1/p' "$UNPIGZ_LOG" | head -1)
	[ -n "$wrapper" ]
	kill -0 "$wrapper"
	decoys_untouched
	unpigz_mode real
	kill -KILL "$wrapper"
}

@test "trickle below trickle_rate: degraded, retried on a fresh connection" {
	img=$(push_image test/trickle v1 2MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":20000,\"first\":1}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/trickle:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	if [ "$DOCKER_STORE" = containerd ]; then
		# containerd writes an ingest, and dockerd reports its bytes, in 1 MiB steps: at 20 KB/s
		# no byte shows for 52 s, which is a stall to any observer of this store
		events "$f" ".event==\"verdict\" and .verdict==\"stalled\"" | grep -q 'no bytes for'
	else
		events "$f" '.event=="verdict" and .verdict=="degraded"' | grep -q 'KiB/s over the last'
		[ -z "$(events "$f" '.event=="verdict" and .verdict=="stalled"')" ]
	fi
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	proxy_counters | jq -e --arg d "$layer" '.blobs[$d].requests >= 2'
}

@test "reset at the same elapsed time every attempt: retried, diagnosed as a middlebox timeout" {
	img=$(push_image test/lbcut v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	# an idle-timeout box that cuts every connection 3 s into the body; 200 KB/s means no attempt
	# can finish before it (dockerd resumes with Range, so let the first several cuts land)
	# On the containerd store dockerd does not retry a layer itself: every cut fails the attempt,
	# so two cuts, then a clean connection. "cuts" counts the connections cut, not requests:
	# pullwatch's own 1-byte Range probe after a cut passes the box uncut, as it would a real one.
	cuts=4
	[ "$DOCKER_STORE" != containerd ] || cuts=2
	proxy_rule "{\"digest\":\"$layer\",\"throttle\":200000,\"reset_after\":3,\"cuts\":$cuts}"
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/lbcut:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="diagnosis" and .diagnosis=="middlebox-timeout"' | grep -qE 'cut after ~[34]s'
	# named after the second cut, not the first
	proxy_counters | jq -e --arg d "$layer" '.blobs[$d].resets >= 2'
}

@test "layers waiting behind max-concurrent-downloads: no false stall" {
	# 6 layers, 3 download slots, each layer ~5 s at 200 KB/s: the last three wait ~5 s and more
	# for a slot, and downloaded layers wait for their parent's extraction
	img=$(push_image test/queue v1 1MiB,1MiB,1MiB,1MiB,1MiB,1MiB)
	for d in $(jq -r '.layers[].digest' <<<"$img"); do
		proxy_rule "{\"digest\":\"$d\",\"throttle\":200000}"
	done
	pw_pull "$BATS_TEST_TMPDIR/out" --runtime docker "$PROXY_ADDR/test/queue:v1"
	f="$BATS_TEST_TMPDIR/out"
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="phase" and .phase=="waiting"' | grep -q waiting
	[ -z "$(events "$f" '.event=="verdict" and (.verdict=="stalled" or .verdict=="hung" or .verdict=="degraded")')" ]
	jq -e 'select(.event=="result") | .ok and .attempts == 1' "$f"
}

@test "a plain-http registry the runtime speaks HTTPS to: permanent at once, diagnosed as registry-scheme" {
	push_image test/plainscheme v1 256KiB >/dev/null
	# the node's own non-loopback address: runtimes fall back to http only on loopback
	ip=$(hostname -I | awk '{print $1}')
	[ -n "$ip" ]
	python3 tests/bed/tcpfwd.py "$ip" "$REGISTRY_ADDR" >"$BATS_TEST_TMPDIR/port" 2>/dev/null 3>&- &
	fwd=$!
	wait_for 10 test -s "$BATS_TEST_TMPDIR/port"
	port=$(head -1 "$BATS_TEST_TMPDIR/port")
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$ip:$port/test/plainscheme:v1"
	[ "$PW_RC" -eq 1 ]
	jq -e 'select(.event=="result") | .ok == false and .error == "permanent" and .attempts == 1
		and .diagnosis == "registry-scheme"' "$f"
	events "$f" '.event=="diagnosis" and .diagnosis=="registry-scheme"' | grep -q "certs.d/$ip:$port/ca.crt"
	kill "$fwd"
}
