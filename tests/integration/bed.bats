#!/usr/bin/env bats
# Self-test of the integration bed (tests/bed): the registry behind the fault proxy, dockerd and the
# standalone containerd pulling through it, the unpigz wrapper's modes as seen from the daemons, and
# a stop that leaves nothing behind. No pullwatch here: this proves the ground the other files stand on.

load helpers

setup_file() {
	bed_start
}

teardown_file() {
	bed_stop
}

setup() {
	proxy_reset
	unpigz_mode real
}

teardown() {
	unpigz_mode real || true
	[ -n "${BATS_TEST_COMPLETED:-}" ] || bed_logs 15
}

# lines appended to the unpigz log since mark_unpigz_log
mark_unpigz_log() { UNPIGZ_MARK=$(wc -l <"$UNPIGZ_LOG"); }
new_unpigz_lines() { tail -n +"$((UNPIGZ_MARK + 1))" "$UNPIGZ_LOG"; }

environ_has() { # PID VAR=VALUE-regex
	tr '\0' '\n' <"/proc/$1/environ" | grep -qx "$2"
}

@test "bed: every component answers, daemons are distinct and run the bed's unpigz first in PATH" {
	local v
	for v in BED_DIR REGISTRY_ADDR PROXY_ADDR PROXY_CONTROL DOCKER_SOCK DOCKER_PIDFILE DOCKER_ROOT \
		CONTAINERD_SOCK CONTAINERD_PIDFILE CONTAINERD_ROOT UNPIGZ_MODE_FILE; do
		[ -n "${!v:-}" ] || { echo "env lacks $v" >&2; false; }
	done
	run_timeout 5 curl -fsS "http://$REGISTRY_ADDR/v2/" >/dev/null
	run_timeout 5 curl -fsS "http://$PROXY_ADDR/v2/" >/dev/null
	run_timeout 5 curl -fsS "$PROXY_CONTROL/health" >/dev/null
	[ "$(docker_api GET /_ping)" = OK ]
	[ "$(docker_api GET /info | jq -r .DockerRootDir)" = "$DOCKER_ROOT" ]
	run_timeout 10 ctr_ version >/dev/null
	# dockerd's managed containerd is not the standalone one
	[ "$(cat "$DOCKER_CONTAINERD_PIDFILE")" != "$(containerd_pid)" ]
	[ "$DOCKER_CONTAINERD_SOCK" != "$CONTAINERD_SOCK" ]
	environ_has "$(docker_pid)" "PATH=$BED_DIR/bin:.*"
	environ_has "$(containerd_pid)" "PATH=$BED_DIR/bin:.*"
	[ -x "$BED_DIR/bin/unpigz" ]
}

@test "push a 3-layer image, pull it through the proxy with the Engine API: bytes counted per blob" {
	img=$(push_image test/x v1 1MiB,200KiB,2MiB)
	mark_unpigz_log
	out=$(run_timeout 60 docker_pull "$PROXY_ADDR/test/x:v1")
	grep -q 'Downloaded newer image' <<<"$out"
	docker_api GET "/images/$PROXY_ADDR/test/x:v1/json" |
		jq -e --arg d "$(jq -r .manifest_digest <<<"$img")" '.RepoDigests | any(endswith($d))'
	c=$(proxy_counters)
	for i in 0 1 2; do
		d=$(jq -r ".layers[$i].digest" <<<"$img")
		s=$(jq -r ".layers[$i].size" <<<"$img")
		jq -e --arg d "$d" --argjson s "$s" \
			'.blobs[$d].bytes == $s and .blobs[$d].requests == 1 and .blobs[$d].completed == 1' <<<"$c"
	done
	# every blob (3 layers + config) went through the proxy, nothing more
	jq -e --argjson t "$(jq .total_blob_bytes <<<"$img")" '.blob_bytes == $t and .resets == 0' <<<"$c"
	# dockerd decompressed each layer with the bed's unpigz wrapper (-d -c, stdin to stdout)
	[ "$(new_unpigz_lines | grep -c 'parent=dockerd mode=real args=-d -c')" -eq 3 ]
}

@test "pushes go through the proxy too (chunked PATCH uploads)" {
	run_timeout 60 python3 "$BED_PUSHIMG" --registry "$PROXY_ADDR" --repo test/viaproxy --tag v1 \
		--layers 300KiB --chunked --chunk-size 100KiB >"$BATS_TEST_TMPDIR/push.json"
	d=$(jq -r .manifest_digest "$BATS_TEST_TMPDIR/push.json")
	run_timeout 5 curl -fsS -o /dev/null -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
		"http://$REGISTRY_ADDR/v2/test/viaproxy/manifests/$d"
	proxy_counters | jq -e '.requests >= 6'
}

@test "proxy rules on a plain client: stall, ignore_range, injected status, nth, counters" {
	img=$(push_image test/rules v1 512KiB)
	d=$(jq -r '.layers[0].digest' <<<"$img")
	size=$(jq -r '.layers[0].size' <<<"$img")
	u="http://$PROXY_ADDR/v2/test/rules/blobs/$d"
	# a 1 s stall at 100000 bytes: the body still completes
	proxy_rules "{\"digest\":\"$d\",\"stall_at\":100000,\"stall_for\":1}" >/dev/null
	t0=$(date +%s%N)
	[ "$(run_timeout 10 curl -fsS -o /dev/null -w '%{size_download}' "$u")" -eq "$size" ]
	[ $(( ($(date +%s%N) - t0) / 1000000 )) -ge 900 ]
	# ignore_range: a Range request answered 200 with the whole body
	proxy_rules '{"ignore_range":true}' >/dev/null
	[ "$(run_timeout 10 curl -sS -o /dev/null -r 1000- -w '%{http_code} %{size_download}' "$u")" = "200 $size" ]
	# an injected 503 for the first request only, then the real body
	proxy_rules '{"status":503,"first":1}' >/dev/null
	[ "$(run_timeout 10 curl -sS -o /dev/null -w '%{http_code}' "$u")" = 503 ]
	[ "$(run_timeout 10 curl -sS -o /dev/null -w '%{http_code}' "$u")" = 200 ]
	# reset_at on the 2nd request only: curl sees a reset (exit 56) after exactly 1000 bytes
	proxy_rules '{"nth":2,"reset_at":1000}' >/dev/null
	run_timeout 10 curl -fsS -o /dev/null "$u"
	rc=0; got=$(run_timeout 10 curl -sS -o /dev/null -w '%{size_download}' "$u") || rc=$?
	[ "$rc" -eq 56 ] && [ "$got" -eq 1000 ]
	proxy_counters | jq -e --arg d "$d" '.blobs[$d] as $b | $b.stalls == 1 and $b.resets == 1
		and $b.injected == 1 and $b.range_requests == 1 and $b.ranges == ["bytes=1000-"]
		and $b.requests == 6 and .ranges_ignored == 1'
	proxy_counters | jq -e '.rules[0].hits == 2 and .rules[0].applied == 1'
}

@test "a reset mid-layer makes dockerd print Retrying, and the retry resumes with Range" {
	img=$(push_image test/reset v1 4MiB,100KiB)
	big=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rule "{\"digest\":\"$big\",\"reset_at\":1048576,\"first\":1}"
	out=$(run_timeout 60 docker_pull "$PROXY_ADDR/test/reset:v1")
	grep -q '"Retrying in 5 seconds"' <<<"$out"
	grep -q 'Downloaded newer image' <<<"$out"
	grep -q 'Download failed, retrying (1/5): .*connection reset by peer' "$DOCKER_LOG"
	proxy_counters | jq -e --arg d "$big" '.blobs[$d] | .resets == 1 and .requests == 2 and .range_requests == 1'
}

@test "unpigz sleep: the pull hangs with an unpigz asleep under dockerd; killing it fails the layer" {
	push_image test/sleep v1 1MiB,512KiB >/dev/null
	unpigz_mode sleep
	mark_unpigz_log
	run_timeout 60 docker_pull "$PROXY_ADDR/test/sleep:v1" >"$BATS_TEST_TMPDIR/pull" &
	bg=$!
	wait_for 20 eval 'test -n "$(unpigz_pids "$(docker_pid)")"'
	pid=$(unpigz_pids "$(docker_pid)" | head -1)
	# the process is the bed's wrapper, a direct child of dockerd, asleep (not running), no output
	[ "$(cat "/proc/$pid/comm")" = unpigz ]
	[ "$(awk '{print $4}' "/proc/$pid/stat")" = "$(docker_pid)" ]
	new_unpigz_lines | grep -q "pid=$pid ppid=$(docker_pid) parent=dockerd mode=sleep"
	sleep 2
	[ "$(awk '{print $3}' "/proc/$pid/stat")" = S ]
	kill -0 "$bg" # the pull is still hanging
	kill -TERM "$pid"
	rc=0; wait "$bg" || rc=$?
	[ "$rc" -eq 1 ] # docker_pull: the stream carried an error (not 124: it ended by itself)
	grep -q 'failed to register layer: Error processing tar file(signal: terminated' "$BATS_TEST_TMPDIR/pull"
	# with the real decompressor back, the same image pulls
	unpigz_mode real
	run_timeout 60 docker_pull "$PROXY_ADDR/test/sleep:v1" | grep -q 'Downloaded newer image'
}

@test "containerd: ctr pull and CRI PullImage through the proxy, decompressed by the bed's unpigz" {
	img=$(push_image test/ctr v1 1MiB,300KiB)
	mark_unpigz_log
	run_timeout 60 ctr_pull "$PROXY_ADDR/test/ctr:v1" >/dev/null
	ctr_ images ls -q | grep -qx "$PROXY_ADDR/test/ctr:v1"
	[ "$(new_unpigz_lines | grep -c "ppid=$(containerd_pid) parent=containerd mode=real")" -eq 2 ]
	d=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_counters | jq -e --arg d "$d" --argjson s "$(jq '.layers[0].size' <<<"$img")" '.blobs[$d].bytes == $s'
	# CRI (what kubelet calls), on an image pushed with a manifest list
	img2=$(push_image test/cri v1 512KiB --index)
	ref=$(run_timeout 60 cri_pull "$PROXY_ADDR/test/cri:v1" | jq -r .image_ref)
	[ "$ref" = "$(jq -r .config.digest <<<"$img2")" ]
	cri_status "$PROXY_ADDR/test/cri:v1" | jq -e --arg d "$(jq -r .index_digest <<<"$img2")" \
		'.image.repo_digests | any(endswith($d))'
}

# tests/bed/kubelet.py, the kubelet-shaped CRI client: JSON lines of one client run
calls_of() { jq -c --arg i "$2" 'select(.event=="call" and .image==$i)' "$1"; }
# gaps between the end of one failed call of IMAGE and the start of the next, one per line
backoff_gaps() { jq -s -r --arg i "$2" '[.[] | select(.event=="call" and .image==$i)] as $c
	| range(1; $c | length) | ($c[.].start - $c[. - 1].end)' "$1"; }

@test "kubelet.py: one CRI PullImage call without a deadline pulls an image; --parallel overlaps calls" {
	img=$(push_image test/kubelet v1 1MiB,300KiB)
	f=$BATS_TEST_TMPDIR/k.json
	run_timeout 60 kubelet_pull --give-up-after 50 "$PROXY_ADDR/test/kubelet:v1" >"$f"
	[ "$(calls_of "$f" "$PROXY_ADDR/test/kubelet:v1" | wc -l)" -eq 1 ]
	calls_of "$f" "$PROXY_ADDR/test/kubelet:v1" | jq -e --arg d "$(jq -r .config.digest <<<"$img")" \
		'.outcome == "ok" and .grpc_status == 0 and .image_ref == $d and .end >= .start'
	jq -e 'select(.event=="summary") | .ok and .reason == "done" and .calls == 1 and .open == 0' "$f"
	cri_status "$PROXY_ADDR/test/kubelet:v1" | jq -e --arg d "$(jq -r .config.digest <<<"$img")" '.image.id == $d'
	# --parallel 2: both calls in flight at once (each layer served at 1 MiB/s, ~1 s a pull)
	a=$(push_image test/kpar a 1MiB | jq -r '.layers[0].digest')
	b=$(push_image test/kpar b 1MiB | jq -r '.layers[0].digest')
	proxy_rule "[{\"digest\":\"$a\",\"throttle\":1048576},{\"digest\":\"$b\",\"throttle\":1048576}]" >/dev/null
	run_timeout 60 kubelet_pull --parallel 2 --give-up-after 50 "$PROXY_ADDR/test/kpar:a" "$PROXY_ADDR/test/kpar:b" >"$f"
	jq -s -e '[.[] | select(.event=="call")] | length == 2 and all(.outcome == "ok")
		and (map(.start) | max) < (map(.end) | min)' "$f"
}

@test "kubelet.py: a missing image fails, with kubelet's back-off (10 s, doubled, capped) between calls" {
	miss=$PROXY_ADDR/test/kubelet-missing:v1
	f=$BATS_TEST_TMPDIR/default.json g=$BATS_TEST_TMPDIR/short.json
	# kubelet's own back-off: 10 s after the first failure. A second client with a short one
	# (1 s, at most 3 s) shows the doubling and the cap in the same 12 s.
	run_timeout 60 kubelet_pull --give-up-after 12 "$miss" >"$f" 3>&- &
	p1=$!
	run_timeout 60 kubelet_pull --give-up-after 11 --backoff-initial 1 --backoff-max 3 "$miss" >"$g" 3>&- &
	p2=$!
	rc1=0 rc2=0
	wait "$p1" || rc1=$?
	wait "$p2" || rc2=$?
	[ "$rc1" -eq 1 ] && [ "$rc2" -eq 1 ]
	calls_of "$f" "$miss" | jq -e '.outcome == "error" and .grpc_status != 0 and (.grpc_message | test("not found"))'
	jq -e --arg i "$miss" 'select(.event=="summary") | (.ok | not) and .reason == "give-up"
		and .images[$i].calls == 2 and .images[$i].failures == 2 and .open == 0' "$f"
	backoff_gaps "$f" "$miss" | awk '{ n++; if ($1 < 10 || $1 > 10.8) bad = 1 } END { exit !(n == 1 && !bad) }'
	# 1, 2, 3, 3 ...: doubled, then capped
	backoff_gaps "$g" "$miss" | awk '{ want = 2 ^ (NR - 1); if (want > 3) want = 3
		if ($1 < want || $1 > want + 0.8) bad = 1 } END { exit !(NR >= 4 && !bad) }'
}

@test "stop kills everything a second bed started (even a hung unpigz) and leaves no mount or dir" {
	local b2
	b2=$(mktemp -d /tmp/pwbed.XXXXXX)
	run_timeout 120 env BED_DIR="$b2" "$BED_SH" start >/dev/null 2>"$BATS_TEST_TMPDIR/start2.log"
	(
		source "$b2/env"
		push_image test/h v1 300KiB >/dev/null
		unpigz_mode sleep
		run_timeout 60 docker_pull "$PROXY_ADDR/test/h:v1" >/dev/null 2>&1 3>&- &
		wait_for 20 eval 'test -n "$(unpigz_pids "$(docker_pid)")"'
	)
	grep -q "PWBED_OWNER=$b2" /proc/*/environ 2>/dev/null
	run_timeout 120 "$BED_SH" stop "$b2" 2>"$BATS_TEST_TMPDIR/stop2.log"
	[ ! -e "$b2" ]
	# (no `! cmd` here: bash's set -e ignores negated commands)
	[ -z "$(grep -s "$b2" /proc/self/mountinfo)" ]
	[ -z "$(grep -ls "PWBED_OWNER=$b2" /proc/[0-9]*/environ)" ]
	[ -z "$(pgrep -f "$b2")" ]
	# a second stop is a no-op
	run_timeout 10 "$BED_SH" stop "$b2" 2>/dev/null
	wait
}
