#!/usr/bin/env bats
# Mirrors as the runtime has them (issue 25): a hop in containerd's hosts.toml or dockerd's
# registry-mirrors that accepts connections and stays silent, one that refuses them, one that answers
# Range with 200, each named with its hop; the same for pulls that other clients start (kubelet-shaped
# CRI pulls; Engine API pulls: silent and refusing mirrors), read from the bed's journald; and preheat in front of
# a node-local mirror that is down (its status, its journal entry, kubelet's pulls not held back).
# One bed for the file: a pull-through cache of the bed's fault proxy (the origin, whose counters
# tell what reached it) and a second fault proxy as the mirror, on the registry's own storage (a P2P
# mirror holds its own copy: nothing it serves reaches the origin).

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")

setup_file() {
	bed_start
	pw_config
	start_cache
	start_mirror
	REFUSED_ADDR=127.0.0.1:$(free_port) # nothing listens there
	export REFUSED_ADDR
	# the bed's journald: preheat's wait and the guarded pulls' diagnoses are read from it
	daemon_bed_start
	export JDIR JPID JTIMEOUT_PID
}

teardown_file() {
	[ -s "$BED_DIR/mirror.pids" ] && kill $(cat "$BED_DIR/mirror.pids") 2>/dev/null
	daemon_bed_stop
	bed_stop
}

teardown() {
	# a preheat daemon left by a failed test must not outlive the bed
	[ -s "$BED_DIR/pwm.pid" ] && kill "$(cat "$BED_DIR/pwm.pid")" 2>/dev/null
	rm -f "$BED_DIR/pwm.pid"
	proxy_reset
	mirror_ctl POST /release >/dev/null || true
	mirror_ctl POST /reset >/dev/null || true
	[ -s "$BED_DIR/guarded.pids" ] && kill $(cat "$BED_DIR/guarded.pids") 2>/dev/null
	rm -f "$BED_DIR/guarded.pids"
}

# start_cache: docker-registry as a pull-through cache of the fault proxy; sets CACHE_ADDR.
start_cache() {
	local d=$BED_DIR/cache port
	mkdir -p "$d/data"
	port=$(free_port)
	cat >"$d/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $d/data
http:
  addr: 127.0.0.1:$port
proxy:
  remoteurl: http://$PROXY_ADDR
YAML
	env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') PWBED_OWNER="$BED_DIR" \
		docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1 &
	echo "$!" >>"$BED_DIR/mirror.pids"
	export CACHE_ADDR=127.0.0.1:$port
	timeout 20 sh -c "until curl -sf -o /dev/null http://$CACHE_ADDR/v2/; do sleep 0.1; done" ||
		{ cat "$d/registry.log" >&2; return 1; }
}

# start_mirror: a second fault proxy in front of the registry; sets MIRROR_ADDR and MIRROR_CONTROL.
start_mirror() {
	local f=$BED_DIR/mirror.ports
	PWBED_OWNER="$BED_DIR" python3 -u "$(dirname "$BED_SH")/faultproxy.py" \
		--upstream "$REGISTRY_ADDR" --port-file "$f" --log "$BED_DIR/mirror.log" >/dev/null 2>&1 &
	echo "$!" >>"$BED_DIR/mirror.pids"
	timeout 20 sh -c "until [ -s '$f' ]; do sleep 0.1; done" || return 1
	MIRROR_ADDR=127.0.0.1:$(jq -r .proxy "$f")
	MIRROR_CONTROL=http://127.0.0.1:$(jq -r .control "$f")
	export MIRROR_ADDR MIRROR_CONTROL
}

mirror_ctl() { # METHOD PATH [BODY]
	curl -sS --max-time 10 --fail-with-body -X "$1" -H 'Content-Type: application/json' ${3:+--data-binary "$3"} \
		"$MIRROR_CONTROL$2"
}

# the mirror accepts every request and answers none (until the rules go)
mirror_silent() { mirror_ctl PUT /rules '{"path": ".*", "methods": ["GET", "HEAD"], "delay": 3600}' >/dev/null; }

# hosts_toml NAME HOST...: containerd's hosts.toml for registry NAME: the hosts in order, then the
# origin (the bed's fault proxy) as server
hosts_toml() {
	local name=$1 h; shift
	mkdir -p "$CONTAINERD_HOSTS_DIR/$name"
	{
		printf 'server = "http://%s"\n' "$PROXY_ADDR"
		for h in "$@"; do printf '\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' "$h"; done
	} >"$CONTAINERD_HOSTS_DIR/$name/hosts.toml"
}

# docker_mirrors HOST...: dockerd's registry-mirrors, reloaded by SIGHUP
docker_mirrors() {
	local list
	list=$(printf '"http://%s",' "$@")
	printf '{"registry-mirrors": [%s]}\n' "${list%,}" >"$BED_DIR/daemon.json"
	kill -HUP "$(docker_pid)"
	timeout 20 sh -c "until curl -s --unix-socket '$DOCKER_SOCK' http://d/info | jq -e '.RegistryConfig.Mirrors | index(\"http://$1/\")' >/dev/null; do sleep 0.2; done"
}

# the origin under another name: the bed's fault proxy, reached through a hosts.toml of its own
origin() { echo "localhost:${PROXY_ADDR##*:}"; }

@test "containerd: a silent mirror in hosts.toml in front of a pull-through cache that works: mirror-unresponsive names it, its silence, the cache answering, #10624" {
	o=$(origin)
	push_image test/msilent v1 1MiB >/dev/null
	mirror_silent
	hosts_toml "$o" "$MIRROR_ADDR" "$CACHE_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$o/test/msilent:v1"
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="mirror-unresponsive"' 90
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	t=$(jq -r 'select(.diagnosis=="mirror-unresponsive") | .remedy' "$f" | head -n1)
	echo "$t"
	grep -q "the mirror $MIRROR_ADDR (hosts.toml $CONTAINERD_HOSTS_DIR/$o/hosts.toml" <<<"$t"
	grep -Eq "stayed silent for 1[0-9]s" <<<"$t"
	grep -q "the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
	grep -q "containerd does not fall back from a mirror that accepts and stays silent (containerd #10624)" <<<"$t"
	grep -q "dial_timeout" <<<"$t"
	# the mirror was asked (and held the request), containerd never got past it
	[ "$(mirror_ctl GET /counters | jq '.requests')" -ge 1 ]
}

@test "containerd: a mirror that refuses connections: mirror-refused names it; containerd falls back and the pull succeeds" {
	o=$(origin)
	push_image test/mrefused v1 1MiB >/dev/null
	hosts_toml "$o" "$REFUSED_ADDR" "$CACHE_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$o/test/mrefused:v1"
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	[ "$PW_RC" -eq 0 ]
	t=$(jq -r 'select(.diagnosis=="mirror-refused") | .remedy' "$f" | head -n1)
	echo "$t"
	grep -q "the mirror $REFUSED_ADDR (hosts.toml $CONTAINERD_HOSTS_DIR/$o/hosts.toml" <<<"$t"
	grep -q "refused the connection; the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
	grep -q "containerd tries the next host at once" <<<"$t"
}

@test "containerd: a mirror that answers Range with 200: range-ignored names the mirror hop" {
	o=$(origin)
	img=$(push_image test/mrange v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	# the first transfer of the layer is cut at 1 MiB; every later request of it gets the whole blob
	mirror_ctl PUT /rules "[{\"digest\":\"$layer\",\"nth\":1,\"reset_at\":1048576},{\"digest\":\"$layer\",\"ignore_range\":true}]" >/dev/null
	hosts_toml "$o" "$MIRROR_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$o/test/mrange:v1"
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' 90
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	events "$f" '.diagnosis=="range-ignored"' | grep -q "the mirror $MIRROR_ADDR answered a Range request with HTTP 200"
	[ "$(mirror_ctl GET /counters | jq '.ranges_ignored')" -ge 1 ]
}

@test "dockerd: a silent mirror in registry-mirrors in front of a pull-through cache: mirror-unresponsive names it and what dockerd does (15 s, then the next)" {
	push_image library/dsilent v1 1MiB >/dev/null
	mirror_silent
	docker_mirrors "$MIRROR_ADDR" "$CACHE_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker dsilent:v1
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="mirror-unresponsive"' 90
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	t=$(jq -r 'select(.diagnosis=="mirror-unresponsive") | .remedy' "$f" | head -n1)
	echo "$t"
	grep -q "the mirror $MIRROR_ADDR (registry-mirrors in /etc/docker/daemon.json) accepted the connection and stayed silent" <<<"$t"
	grep -q "the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
	grep -q "dockerd gives a silent mirror 15 s" <<<"$t"
	# what the diagnosis says dockerd does, dockerd does on this row: a pull of its own, uncut, gives
	# the mirror 15 s, goes on to the next and succeeds
	start=$(date +%s)
	docker_pull dsilent:v1 >/dev/null
	[ $(($(date +%s) - start)) -ge 14 ]
	# (docker.log quotes the URL as \"...\"; the timeout reads either way, seen both on 20.10.24)
	grep -F "Attempting next endpoint for pull after error: Get \\\"http://$MIRROR_ADDR/v2/\\\": " "$DOCKER_LOG" |
		grep -E "context deadline exceeded|Client.Timeout exceeded while awaiting headers"
	docker_rmi dsilent:v1
}

@test "dockerd: a mirror that refuses connections: mirror-refused names it; the pull goes on through the next" {
	push_image library/drefused v1 1MiB >/dev/null
	docker_mirrors "$REFUSED_ADDR" "$CACHE_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker drefused:v1
	jq -c 'select(.event == "diagnosis" or .event == "result")' "$f"
	[ "$PW_RC" -eq 0 ]
	t=$(jq -r 'select(.diagnosis=="mirror-refused") | .remedy' "$f" | head -n1)
	echo "$t"
	grep -q "the mirror $REFUSED_ADDR (registry-mirrors in /etc/docker/daemon.json) refused the connection; the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
}

@test "dockerd: a mirror in registry-mirrors that answers Range with 200: range-ignored names the mirror hop" {
	img=$(push_image library/drange v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	mirror_ctl PUT /rules "[{\"digest\":\"$layer\",\"nth\":1,\"reset_at\":1048576},{\"digest\":\"$layer\",\"ignore_range\":true}]" >/dev/null
	docker_mirrors "$MIRROR_ADDR"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker drange:v1
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' 90
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	events "$f" '.diagnosis=="range-ignored"' | grep -q "the mirror $MIRROR_ADDR answered a Range request with HTTP 200"
}

@test "preheat: a silent node-local mirror: waits for it, says so in status, the log and a catalogued journal entry, asks nothing of the origin, holds no kubelet pull back; when it is back the list completes through it" {
	o=$(origin)
	img=$(push_image test/mpre v1 2MiB)
	total=$(jq '.total_bytes' <<<"$img")
	push_image test/mkube v1 1MiB >/dev/null
	# silent for the preheated image only: another image's pull through the same mirror works
	mirror_ctl PUT /rules '{"path": "^/v2/test/mpre/", "methods": ["GET", "HEAD"], "delay": 3600}' >/dev/null
	hosts_toml "$o" "$MIRROR_ADDR"
	T0=$(date +%s.%N)
	proxy_reset
	cfg=$BED_DIR/pwd-mirror.yaml
	printf -- '- image: %s\n  runtime: containerd\n' "$o/test/mpre:v1" >"$BED_DIR/preheat-mirror.yaml"
	sed -e '/^retry:/,$d' "$PW_CONFIG" >"$cfg"
	cat >>"$cfg" <<YAML
control_socket: $BED_DIR/pwm-control.sock
state_dir: $BED_DIR/pwm-state
cri:
  listen: $BED_DIR/pwm-cri.sock
preheat:
  list: $BED_DIR/preheat-mirror.yaml
  splay: 0s
  mirror_wait: 4s
YAML
	nsenter -t "$JPID" -m -- env PULLWATCH_MACHINE_ID_FILE="$BED_DIR/machine-id" \
		timeout 300 "$PULLWATCH" daemon --config "$cfg" >"$BED_DIR/pwm.log" 2>&1 &
	dpid=$!
	echo "$dpid" >"$BED_DIR/pwm.pid"
	# (jq -e on no input is true: the status must have answered)
	is_waiting() {
		local s
		s=$(timeout 10 "$PULLWATCH" status --json --config "$cfg") && jq -e --arg m "$MIRROR_ADDR" \
			'[.preheat[] | select(.state == "waiting" and (.error | startswith("waiting for mirror " + $m)))] | length == 1' <<<"$s"
	}
	is_ready() {
		local s
		s=$(timeout 10 "$PULLWATCH" status --json --config "$cfg") && jq -e '[.preheat[] | select(.state == "ready")] | length == 1' <<<"$s"
	}
	wait_for 60 is_waiting || { cat "$BED_DIR/pwm.log"; false; }
	# after preheat.mirror_wait it says so, and, preheat.mirror_fallback being off, keeps waiting
	wait_for 30 grep -q "preheat of $o/test/mpre:v1 (containerd): waiting for mirror $MIRROR_ADDR.*still waiting (preheat.mirror_fallback: false)" "$BED_DIR/pwm.log" || { cat "$BED_DIR/pwm.log"; false; }
	is_waiting
	# and in the journal: a catalogued entry with the hop, how long it waited and what comes next
	e=$(guarded_select '.PULLWATCH_ALERT == "preheat-mirror-wait"' ".PULLWATCH_IMAGE == \"$o/test/mpre:v1\"" | head -n1)
	[ -n "$e" ] || { journal -o cat >&2; false; }
	echo "$e"
	jq -e --arg hop "$MIRROR_ADDR" '.PULLWATCH_HOP == $hop and .PULLWATCH_RUNTIME == "containerd" and .PULLWATCH_NEXT == "wait"
		and (.PULLWATCH_WAITED_SEC | tonumber) >= 4 and (.MESSAGE | contains("waiting for mirror " + $hop))' <<<"$e"
	in_catalog "$(jq -r .MESSAGE_ID <<<"$e")"
	# a kubelet pull through pullwatch's CRI endpoint, of another image from the same registry, is not
	# held back by the wait: it completes through the mirror while the preheat still waits
	run_timeout 60 kubelet_pull --sock "$BED_DIR/pwm-cri.sock" --give-up-after 50 "$o/test/mkube:v1" >"$BATS_TEST_TMPDIR/kubelet.json"
	jq -s -e 'map(select(.event == "summary")) | .[0].ok and .[0].calls == 1' "$BATS_TEST_TMPDIR/kubelet.json"
	is_waiting
	# nothing reached the origin meanwhile, not even a manifest request
	[ "$(proxy_counters | jq '.requests')" -eq 0 ]
	# the mirror comes back: the list completes through it
	mirror_ctl PUT /rules '[]' >/dev/null
	mirror_ctl POST /counters >/dev/null
	wait_for 90 is_ready
	kill -TERM "$dpid"
	wait "$dpid" || true
	rm -f "$BED_DIR/pwm.pid"
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	[ "$(mirror_ctl GET /counters | jq '.blob_bytes')" -ge "$total" ]
	[ "$(proxy_counters | jq '.requests')" -eq 0 ]
	ctr_ images ls -q | grep -qx "$o/test/mpre:v1"
}

# ---------------------------------------------------------------- pulls that pullwatch guards
# The same mirrors in front of pulls that other clients start: kubelet-shaped CRI pulls
# (tests/bed/kubelet.py) on containerd, Engine API pulls on dockerd. One guarding daemon (and the
# bed's journald) for these tests, started by the first; the diagnosis is read from the journal.

# guard_up: the guarding daemon, with the bed's budgets, once for the file
guard_up() {
	GUARD_CONFIG=$BED_DIR/pwg.yaml
	if [ ! -s "$BED_DIR/daemon.pid" ]; then
		: >"$BED_DIR/pwg-preheat.yaml"
		# dockerd proven by its pidfile, as guard.bats has it: the guard watches a runtime it can prove
		sed -e '/^retry:/,$d' -e "s#^  socket: $DOCKER_SOCK\$#&\n  pidfile: $DOCKER_PIDFILE#" "$PW_CONFIG" >"$GUARD_CONFIG"
		grep -q "pidfile: $DOCKER_PIDFILE" "$GUARD_CONFIG"
		cat >>"$GUARD_CONFIG" <<YAML
control_socket: $BED_DIR/pwg-control.sock
state_dir: $BED_DIR/pwg-state
cri:
  listen: $BED_DIR/pwg-cri.sock
preheat:
  list: $BED_DIR/pwg-preheat.yaml
YAML
		PW_CONFIG=$GUARD_CONFIG daemon_start
	fi
	T0=$(date +%s.%N)
}

# guarded_select COND: the journal entries since T0 of another client's pull that match COND
guarded_select() { # COND [OWNER-COND]
	journal 2>/dev/null | jq -c --argjson t "$T0" \
		"select((.__REALTIME_TIMESTAMP | tonumber) >= (\$t * 1000000) and (${2:-.PULLWATCH_OWNER == \"other\"}) and ($1))"
}

# guarded_entry COND: the first of them, waited for
guarded_entry() {
	GCOND=$1
	wait_for 90 eval 'guarded_select "$GCOND" | grep -q .' || {
		echo "no journal entry since $T0 matching $GCOND; pullwatch's entries:" >&2
		journal -o cat >&2 || true
		return 1
	}
	guarded_select "$1" | head -n1
}

in_catalog() { # MESSAGE_ID
	[ -n "$1" ] && grep -qix -- "-- $1" "$REPO/systemd/pullwatch.catalog"
}

@test "guarded kubelet-shaped pull, containerd: a silent mirror in hosts.toml in front of a pull-through cache: mirror-unresponsive in the journal, with its hop, its silence and the cache answering" {
	guard_up
	o=$(origin)
	push_image test/gsilent v1 1MiB >/dev/null
	mirror_silent
	hosts_toml "$o" "$MIRROR_ADDR" "$CACHE_ADDR"
	kubelet_pull --give-up-after 60 "$o/test/gsilent:v1" >"$BATS_TEST_TMPDIR/kubelet.json" 2>&1 3>&- &
	echo $! >>"$BED_DIR/guarded.pids"
	e=$(guarded_entry '.PULLWATCH_DIAGNOSIS == "mirror-unresponsive"')
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	echo "$e"
	jq -e --arg hop "$MIRROR_ADDR" '.PULLWATCH_HOP == $hop and .PULLWATCH_RUNTIME == "containerd"' <<<"$e"
	t=$(jq -r .MESSAGE <<<"$e")
	grep -q "the mirror $MIRROR_ADDR (hosts.toml $CONTAINERD_HOSTS_DIR/$o/hosts.toml" <<<"$t"
	grep -Eq "stayed silent for 1[0-9]s" <<<"$t"
	grep -q "the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
	grep -q "containerd does not fall back from a mirror that accepts and stays silent (containerd #10624)" <<<"$t"
	in_catalog "$(jq -r .MESSAGE_ID <<<"$e")"
	# the kubelet's pull was held by the mirror: containerd never got past it
	! grep -q '"ok": *true' "$BATS_TEST_TMPDIR/kubelet.json"
}

@test "guarded kubelet-shaped pull, containerd: a mirror that refuses connections: mirror-refused in the journal with its hop; the pull goes on through the cache" {
	guard_up
	o=$(origin)
	push_image test/grefused v1 1MiB >/dev/null
	hosts_toml "$o" "$REFUSED_ADDR" "$CACHE_ADDR"
	run_timeout 60 kubelet_pull --give-up-after 50 "$o/test/grefused:v1" >"$BATS_TEST_TMPDIR/kubelet.json"
	e=$(guarded_entry '.PULLWATCH_DIAGNOSIS == "mirror-refused"')
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	echo "$e"
	jq -s -e 'map(select(.event == "summary")) | .[0].ok' "$BATS_TEST_TMPDIR/kubelet.json"
	jq -e --arg hop "$REFUSED_ADDR" '.PULLWATCH_HOP == $hop and .PULLWATCH_RUNTIME == "containerd"' <<<"$e"
	grep -q "the mirror $REFUSED_ADDR (hosts.toml $CONTAINERD_HOSTS_DIR/$o/hosts.toml.*refused the connection; the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$(jq -r .MESSAGE <<<"$e")"
}

@test "guarded kubelet-shaped pull, containerd: a mirror in hosts.toml that answers Range with 200: range-ignored in the journal with its hop and image; the pull resumes through it" {
	guard_up
	o=$(origin)
	img=$(push_image test/grange v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	# the mirror sends the layer at 256 KiB/s (a download that lasts seconds, as a real one does: the
	# guard samples each second), cuts its first transfer at 1 MiB, and answers every later request of
	# it, Range or not, with the whole blob: containerd's resume gets it all again
	mirror_ctl PUT /rules "[{\"digest\":\"$layer\",\"nth\":1,\"reset_at\":1048576,\"throttle\":262144},{\"digest\":\"$layer\",\"ignore_range\":true,\"throttle\":262144}]" >/dev/null
	hosts_toml "$o" "$MIRROR_ADDR"
	run_timeout 120 kubelet_pull --give-up-after 100 "$o/test/grange:v1" >"$BATS_TEST_TMPDIR/kubelet.json"
	e=$(guarded_entry '.PULLWATCH_DIAGNOSIS == "range-ignored"')
	rm -rf "$CONTAINERD_HOSTS_DIR/$o"
	echo "$e"
	jq -s -e 'map(select(.event == "summary")) | .[0].ok' "$BATS_TEST_TMPDIR/kubelet.json"
	jq -e --arg hop "$MIRROR_ADDR" --arg img "$o/test/grange@sha256:" '.PULLWATCH_HOP == $hop and
		.PULLWATCH_RUNTIME == "containerd" and .PULLWATCH_CLIENT == "cri" and (.PULLWATCH_IMAGE | startswith($img))' <<<"$e"
	grep -q "the mirror $MIRROR_ADDR answered a Range request with HTTP 200" <<<"$(jq -r .MESSAGE <<<"$e")"
	in_catalog "$(jq -r .MESSAGE_ID <<<"$e")"
	# the mirror was asked for a range of the layer and sent the whole of it
	[ "$(mirror_ctl GET /counters | jq '.ranges_ignored')" -ge 1 ]
}

@test "guarded docker pull (Engine API), dockerd: a silent mirror in registry-mirrors: mirror-unresponsive in the journal with its hop, and what dockerd does" {
	guard_up
	push_image library/gdsilent v1 1MiB >/dev/null
	mirror_silent
	docker_mirrors "$MIRROR_ADDR" "$CACHE_ADDR"
	# dockerd gives the mirror 15 s, then pulls through the cache
	docker_pull gdsilent:v1 >/dev/null
	e=$(guarded_entry '.PULLWATCH_DIAGNOSIS == "mirror-unresponsive"')
	docker_rmi gdsilent:v1
	echo "$e"
	jq -e --arg hop "$MIRROR_ADDR" '.PULLWATCH_HOP == $hop and .PULLWATCH_RUNTIME == "docker"' <<<"$e"
	t=$(jq -r .MESSAGE <<<"$e")
	grep -q "the mirror $MIRROR_ADDR (registry-mirrors in /etc/docker/daemon.json) accepted the connection and stayed silent" <<<"$t"
	grep -q "the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$t"
	grep -q "dockerd gives a silent mirror 15 s" <<<"$t"
}

@test "guarded docker pull (Engine API), dockerd: a mirror in registry-mirrors that refuses connections: mirror-refused in the journal with its hop" {
	guard_up
	img=$(push_image library/gdrefused v1 1MiB)
	# the layer comes from the origin at 256 KiB/s, as a pull of a real image lasts seconds: what the
	# guard sees of it is dockerd's connection to the hop after the mirror, sampled each second (a
	# refused connect leaves no socket; a pull over in less than a sample leaves none either)
	proxy_rules "{\"digest\": \"$(jq -r '.layers[0].digest' <<<"$img")\", \"throttle\": 262144}" >/dev/null
	docker_mirrors "$REFUSED_ADDR" "$CACHE_ADDR"
	docker_pull gdrefused:v1 >/dev/null
	e=$(guarded_entry '.PULLWATCH_DIAGNOSIS == "mirror-refused"')
	docker_rmi gdrefused:v1
	echo "$e"
	jq -e --arg hop "$REFUSED_ADDR" '.PULLWATCH_HOP == $hop and .PULLWATCH_RUNTIME == "docker"' <<<"$e"
	grep -q "the mirror $REFUSED_ADDR (registry-mirrors in /etc/docker/daemon.json) refused the connection; the next hop, mirror $CACHE_ADDR, answers (HTTP 200)" <<<"$(jq -r .MESSAGE <<<"$e")"
}
