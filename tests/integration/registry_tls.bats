#!/usr/bin/env bats
# The registry the runtime sees (issue 15): a docker-registry on TLS with a private CA made here,
# trusted by dockerd through /etc/docker/certs.d/HOST:PORT/ca.crt (a fixed path in dockerd 20.10;
# the test's own HOST:PORT dir is removed afterwards) and by containerd through hosts.toml in the
# bed's config_path. The registry listens on this node's non-loopback address: dockerd treats
# 127.0.0.0/8 as insecure and would skip verification there. Then report 000's chain with a real
# pull-through cache (docker-registry proxy.remoteurl) in front of the fault proxy.

load helpers
load pw_helpers

setup_file() {
	bed_start
	pw_config
	NODE_IP=$(ip -4 -o route get 192.0.2.1 2>/dev/null | sed -n 's/.* src \([0-9.]*\).*/\1/p')
	[ -n "$NODE_IP" ] || NODE_IP=$(hostname -I | tr ' ' '\n' | grep -v '^127\.' | head -n1)
	[ -n "$NODE_IP" ] || { echo "no non-loopback IPv4 address on this node" >&2; return 1; }
	export NODE_IP
	# not $BED_DIR/tls: on the containerd-store row that is the bed's own CA, which the bed's
	# containerd reads for the proxy's TLS (hosts.toml) and must stay as it is
	local d=$BED_DIR/regtls
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 1 \
		-subj /CN=pullwatch-test-ca >/dev/null 2>&1
	openssl req -newkey rsa:2048 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" -subj "/CN=$NODE_IP" >/dev/null 2>&1
	printf 'subjectAltName=IP:%s,IP:127.0.0.1\n' "$NODE_IP" >"$d/ext"
	openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -out "$d/srv.crt" \
		-days 1 -extfile "$d/ext" >/dev/null 2>&1
	local port
	port=$(free_port)
	cat >"$d/config.yml" <<YAML
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $REGISTRY_ROOT
http:
  addr: $NODE_IP:$port
  tls:
    certificate: $d/srv.crt
    key: $d/srv.key
YAML
	env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') \
		docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1 &
	echo "$!" >>"$BED_DIR/tls.pids"
	export TLS_REG=$NODE_IP:$port TLS_CA=$d/ca.crt
	timeout 20 sh -c "until curl -sf --cacert '$TLS_CA' -o /dev/null https://$TLS_REG/v2/; do sleep 0.1; done" ||
		{ cat "$d/registry.log" >&2; return 1; }
}

teardown_file() {
	[ -n "${TLS_REG:-}" ] && rm -rf "/etc/docker/certs.d/$TLS_REG"
	# a test's variables do not reach here: the front's address is in its port file
	[ -s "$BED_DIR/regtls/front.port" ] && rm -rf "/etc/docker/certs.d/$(cat "$BED_DIR/regtls/front.port")"
	[ -s "$BED_DIR/regtls/token.addr" ] && rm -rf "/etc/docker/certs.d/$(cat "$BED_DIR/regtls/token.addr")"
	[ -s "$BED_DIR/regtls/alias.addr" ] && rm -rf "/etc/docker/certs.d/$(cat "$BED_DIR/regtls/alias.addr")"
	stop_token_registry
	rmdir /etc/docker/certs.d 2>/dev/null || true
	[ -s "$BED_DIR/tls.pids" ] && kill $(cat "$BED_DIR/tls.pids") 2>/dev/null
	bed_stop
}

setup() {
	proxy_clear
	unpigz_mode real
	trust "$TLS_REG"
}

# trust HOST:PORT: dockerd's certs.d and containerd's hosts.toml both name the test's CA
trust() {
	mkdir -p "/etc/docker/certs.d/$1" "$CONTAINERD_HOSTS_DIR/$1"
	cp "$TLS_CA" "/etc/docker/certs.d/$1/ca.crt"
	printf 'server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "%s"\n' \
		"$1" "$1" "$TLS_CA" >"$CONTAINERD_HOSTS_DIR/$1/hosts.toml"
}

# distrust HOST:PORT: the runtimes' own trust for it is gone (hosts.toml stays, without its ca)
distrust() {
	rm -rf "/etc/docker/certs.d/$1"
	printf 'server = "https://%s"\n' "$1" >"$CONTAINERD_HOSTS_DIR/$1/hosts.toml"
}

@test "TLS + private CA in hosts.toml: containerd's octet-stream refusal is named from the manifest, with its version" {
	push_image test/tls-old v1 256KiB --config-mediatype application/octet-stream >/dev/null
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime containerd "$TLS_REG/test/tls-old:v1"
	if [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ]; then
		# containerd 2.1+ unpacks such an image (the version gate): pulled over TLS, nothing claimed
		[ "$PW_RC" -eq 0 ]
		jq -e 'select(.event=="result") | .ok == true and .attempts == 1' "$f"
		[ -z "$(events "$f" '.event=="diagnosis"')" ]
		return 0
	fi
	[ "$PW_RC" -eq 1 ]
	# the manifest was read (only the probe says "config ... has mediaType"), and the version checked
	events "$f" '.event=="diagnosis" and .diagnosis=="octet-stream-config"' | grep -q 'has mediaType application/octet-stream'
	events "$f" '.event=="diagnosis" and .diagnosis=="octet-stream-config"' | grep -q "(this is $(containerd --version | awk '{print $3}')"
	jq -s -e '(map(select(.event=="diagnosis")) | first | .t) <= (map(select(.event=="result")) | first | .t)' "$f"
}

@test "TLS + private CA in certs.d: dockerd's missing platform is named from the index, as over plain http" {
	push_image test/tls-arm v1 256KiB --platform linux/arm64/v8 --index >/dev/null
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$TLS_REG/test/tls-arm:v1"
	[ "$PW_RC" -eq 1 ]
	# "it has: ..." comes only from the index the probe read
	events "$f" '.event=="diagnosis" and .diagnosis=="no-platform"' | grep -q 'it has: linux/arm64/v8'
}

@test "dockerd's certs.d/HOST/hosts.toml: followed by the containerd image store, and by the probe there; the classic store reads only its certificates" {
	push_image test/tls-alias v1 256KiB --platform linux/arm64/v8 --index >/dev/null
	# a name that resolves nowhere, sent to the TLS registry by a hosts.toml in dockerd's certs.d
	alias=pw-alias.invalid:${TLS_REG##*:}
	echo "$alias" >"$BED_DIR/regtls/alias.addr"
	mkdir -p "/etc/docker/certs.d/$alias"
	printf 'server = "https://%s"\n\n[host."https://%s"]\n  capabilities = ["pull", "resolve"]\n  ca = "%s"\n' \
		"$TLS_REG" "$TLS_REG" "$TLS_CA" >"/etc/docker/certs.d/$alias/hosts.toml"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$alias/test/tls-alias:v1"
	rm -rf "/etc/docker/certs.d/$alias"
	[ "$PW_RC" -eq 1 ]
	if [ "${DOCKER_STORE:-classic}" = containerd ]; then
		# moby resolves with containerd's ConfigureHosts on /etc/docker/certs.d (measured on 28.5.2):
		# the pull reached the registry, and "it has: ..." comes only from the index the probe read
		events "$f" '.event=="diagnosis" and .diagnosis=="no-platform"' | grep -q 'it has: linux/arm64/v8'
	else
		# the classic store never reads hosts.toml: the name does not resolve, for dockerd nor the probe
		jq -e 'select(.event=="result") | .reason | test("pw-alias.invalid")' "$f"
		[ -z "$(events "$f" '.diagnosis=="no-platform"')" ]
	fi
}

# start_front: tests/bed/tlsfront.py on this node's address, the CA's certificate, in front of the
# fault proxy (a TLS load balancer); sets TLS_FRONT and trusts it in both runtimes. Where the fault
# proxy speaks TLS itself (the containerd-store row) the front re-encrypts to it, trusting the bed's CA.
start_front() {
	local d=$BED_DIR/regtls up_tls=()
	[ "${PROXY_SCHEME:-http}" = https ] && up_tls=(--upstream-ca "$BED_CA")
	if [ -z "${TLS_FRONT:-}" ]; then
		python3 tests/bed/tlsfront.py --listen "$NODE_IP:0" --upstream "$PROXY_ADDR" --cert "$d/srv.crt" \
			--key "$d/srv.key" --port-file "$d/front.port" "${up_tls[@]}" >"$d/front.log" 2>&1 &
		echo "$!" >>"$BED_DIR/tls.pids"
		timeout 20 sh -c "until [ -s '$d/front.port' ]; do sleep 0.1; done"
		export TLS_FRONT=$(cat "$d/front.port")
	fi
	trust "$TLS_FRONT"
}

@test "TLS hop that ignores Range (a TLS load balancer before the fault proxy): range-ignored names that hop" {
	start_front
	img=$(push_image test/tls-norange v1 2MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rules "[{\"digest\":\"$layer\",\"reset_at\":1048576,\"first\":1},{\"digest\":\"*\",\"ignore_range\":true}]"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$TLS_FRONT/test/tls-norange:v1"
	[ "$PW_RC" -eq 0 ]
	events "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' | grep -q "$TLS_FRONT answered a Range request with HTTP 200"
}

@test "TLS: a 429 with Retry-After is named from the probe's own answer, and the next attempt waits as asked" {
	start_front
	rate_limited_pull "$TLS_FRONT" test/tls-busy '429 TOOMANYREQUESTS, retry after 4s'
}

@test "CA removed: the probe says it cannot verify the registry, and the runtime's x509 failure is tls-untrusted" {
	push_image test/tls-gone v1 256KiB >/dev/null
	distrust "$TLS_REG"
	for rt in docker containerd; do
		f="$BATS_TEST_TMPDIR/out-$rt"
		pw_pull "$f" --runtime $rt "$TLS_REG/test/tls-gone:v1"
		[ "$PW_RC" -eq 1 ]
		# the runtime's own failure, not retried, and diagnosed
		jq -e 'select(.event=="result") | (.ok | not) and .error == "permanent" and .attempts == 1 and (.reason | test("x509"))' "$f"
		jq -e 'select(.event=="result") | .diagnosis == "tls-untrusted"' "$f"
		# the probe's own failure, with the settings it used
		jq -e 'select(.event=="result") | .registry_probe | test("registry probe unavailable: .*TLS: .*no runtime settings|registry probe unavailable: .*TLS: .*hosts.toml")' "$f"
	done
	# each names the file its runtime reads the CA from
	events "$BATS_TEST_TMPDIR/out-docker" '.diagnosis=="tls-untrusted"' | grep -q "/etc/docker/certs.d/$TLS_REG"
	events "$BATS_TEST_TMPDIR/out-containerd" '.diagnosis=="tls-untrusted"' | grep -q "$CONTAINERD_HOSTS_DIR/$TLS_REG/hosts.toml"
}

@test "TLS + token auth: pulls with credentials from config.json on dockerd and containerd; without, the auth diagnosis, as over plain http" {
	push_image test/tls-private v1 256KiB >/dev/null
	local d=$BED_DIR/regtls
	start_token_registry puller 'S3cret-pw' "$NODE_IP" "$d/srv.crt" "$d/srv.key" "$TLS_CA"
	echo "$TOKEN_REGISTRY" >"$d/token.addr"
	trust "$TOKEN_REGISTRY"
	credential_configs "$TOKEN_REGISTRY" puller S3cret-pw
	ref="$TOKEN_REGISTRY/test/tls-private:v1"

	for rt in docker containerd; do
		PW_CONFIG="$BATS_TEST_TMPDIR/with.yaml" pw_pull "$BATS_TEST_TMPDIR/ok-$rt" --runtime $rt "$ref"
		[ "$PW_RC" -eq 0 ]
		jq -e 'select(.event=="result") | .ok and .registry_probe == null' "$BATS_TEST_TMPDIR/ok-$rt"
		[ -z "$(grep -h 'S3cret' "$BATS_TEST_TMPDIR/ok-$rt" "$BATS_TEST_TMPDIR/ok-$rt.err")" ]

		f="$BATS_TEST_TMPDIR/anon-$rt"
		PW_CONFIG="$BATS_TEST_TMPDIR/without.yaml" pw_pull "$f" --runtime $rt "$ref"
		[ "$PW_RC" -eq 1 ]
		jq -e 'select(.event=="result") | .error == "permanent" and .attempts == 1' "$f"
		events "$f" '.event=="diagnosis" and .diagnosis=="auth"' | grep -q 'credentials'
		# the probe reached the registry over TLS with the runtime's trust (no "registry probe
		# unavailable: ... TLS"); the registry's refusal is the runtime's story, as over plain http
		jq -e 'select(.event=="result") | .registry_probe == null' "$f"
	done
}

# start_cache: docker-registry as a pull-through cache of the fault proxy (report 000's "Mirror
# Cache"); sets CACHE_ADDR. Where the fault proxy speaks TLS (the containerd-store row) the cache's
# remoteurl is https and it trusts the bed's CA (Go's SSL_CERT_FILE), as a cache in front of a TLS
# registry would.
start_cache() {
	[ -n "${CACHE_ADDR:-}" ] && return 0
	local d=$BED_DIR/cache port scheme=${PROXY_SCHEME:-http} ca=()
	[ "$scheme" = https ] && ca=(SSL_CERT_FILE="$BED_CA")
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
  remoteurl: $scheme://$PROXY_ADDR
YAML
	env $(env | grep -o '^REGISTRY_[A-Z_]*' | sed 's/^/-u /') "${ca[@]}" \
		docker-registry serve "$d/config.yml" >"$d/registry.log" 2>&1 &
	echo "$!" >>"$BED_DIR/tls.pids"
	export CACHE_ADDR=127.0.0.1:$port
	timeout 20 sh -c "until curl -sf -o /dev/null http://$CACHE_ADDR/v2/; do sleep 0.1; done" ||
		{ cat "$d/registry.log" >&2; return 1; }
}

@test "report 000's chain on dockerd: registry-mirrors -> pull-through cache -> cutting LB -> registry; range-ignored names the cache" {
	start_cache
	# the mirror as the node has it: daemon.json, reloaded by SIGHUP (no restart)
	printf '{"registry-mirrors": ["http://%s"]}\n' "$CACHE_ADDR" >"$BED_DIR/daemon.json"
	kill -HUP "$(docker_pid)"
	timeout 20 sh -c "until curl -s --unix-socket '$DOCKER_SOCK' http://d/info | jq -e '.RegistryConfig.Mirrors | index(\"http://$CACHE_ADDR/\")' >/dev/null; do sleep 0.2; done"
	img=$(push_image library/chain v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	# the LB cuts every transfer of the layer at 1 MiB, so the cache never holds it and answers every
	# Range request with 200 and the whole blob: the pull cannot finish through this chain
	proxy_rules "[{\"digest\":\"$layer\",\"reset_at\":1048576}]"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker chain:v1
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' 120
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	events "$f" '.diagnosis=="range-ignored"' | grep -q "$CACHE_ADDR answered a Range request with HTTP 200"
	# the bytes came through the cache (dockerd knows only the cache for docker.io) and were cut
	[ "$(proxy_counters | jq --arg d "$layer" '.blobs[$d].gets')" -ge 2 ]
	[ "$(proxy_counters | jq --arg d "$layer" '.blobs[$d].aborted')" -ge 1 ]
	echo '{}' >"$BED_DIR/daemon.json"
	kill -HUP "$(docker_pid)"
}

@test "report 000's chain on containerd: hosts.toml mirror -> pull-through cache -> cutting LB -> registry; range-ignored names the cache" {
	start_cache
	# the origin under another name (same registry), whose hosts.toml puts the cache first
	origin=localhost:${REGISTRY_ADDR##*:}
	mkdir -p "$CONTAINERD_HOSTS_DIR/$origin"
	printf 'server = "http://%s"\n\n[host."http://%s"]\n  capabilities = ["pull", "resolve"]\n' \
		"$REGISTRY_ADDR" "$CACHE_ADDR" >"$CONTAINERD_HOSTS_DIR/$origin/hosts.toml"
	img=$(push_image test/chain-cd v1 3MiB)
	layer=$(jq -r '.layers[0].digest' <<<"$img")
	proxy_rules "[{\"digest\":\"$layer\",\"reset_at\":1048576}]"
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime containerd "$origin/test/chain-cd:v1"
	wait_json "$f" '.event=="diagnosis" and .diagnosis=="range-ignored"' 120
	kill "$PW_PID" 2>/dev/null || true
	pw_wait_bg
	events "$f" '.diagnosis=="range-ignored"' | grep -q "$CACHE_ADDR answered a Range request with HTTP 200"
	[ "$(proxy_counters | jq --arg d "$layer" '.blobs[$d].aborted')" -ge 1 ]
	rm -rf "$CONTAINERD_HOSTS_DIR/$origin"
}

# pwd_start IMAGE: pullwatch daemon on the bed (control socket in BED_DIR, IMAGE its one preheat
# item on containerd); sets cfg and dpid. pwd_stop ends it.
pwd_start() {
	cfg=$BED_DIR/pwd.yaml
	# one item: an empty list trips a UBSan report fixed on another branch
	printf -- '- image: %s\n  runtime: containerd\n' "$1" >"$BED_DIR/preheat-one.yaml"
	sed -e '/^retry:/,$d' "$PW_CONFIG" >"$cfg"
	cat >>"$cfg" <<YAML
control_socket: $BED_DIR/pw-control.sock
state_dir: $BED_DIR/pw-state
preheat:
  list: $BED_DIR/preheat-one.yaml
YAML
	timeout 300 "$PULLWATCH" daemon --config "$cfg" >"$BED_DIR/pwd.log" 2>&1 &
	dpid=$!
	timeout 30 sh -c "until '$PULLWATCH' status --json --config '$cfg' >/dev/null 2>&1; do sleep 0.1; done" ||
		{ cat "$BED_DIR/pwd.log" >&2; false; }
}

pwd_stop() {
	kill -TERM "$dpid"
	wait "$dpid" || true
}

# where containerd's registry config_path comes from on this row: CRI Status reports it up to 1.7;
# 2.x reports its runtime config only, so it is the bed's config file (version 3 key), by line
config_path_from() {
	if [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ]; then
		echo "$CONTAINERD_CONFIG:$(grep -n "^ *config_path = \"$CONTAINERD_HOSTS_DIR\"" "$CONTAINERD_CONFIG" | head -n1 | cut -d: -f1)"
	else
		echo "CRI Status"
	fi
}

@test "status: each registry host seen, with the runtime's settings for it and whether the probe reached it" {
	push_image test/tls-status v1 256KiB >/dev/null
	pwd_start "$TLS_REG/test/tls-status:v1"
	# containerd trusts it through hosts.toml: reached; dockerd has no certs.d for it: not reached
	timeout 120 "$PULLWATCH" pull --config "$cfg" --runtime containerd "$TLS_REG/test/tls-status:v1" >/dev/null
	rm -rf "/etc/docker/certs.d/$TLS_REG"
	run timeout 120 "$PULLWATCH" pull --config "$cfg" --runtime docker "$TLS_REG/test/tls-status:v1"
	[ "$status" -eq 1 ]
	s=$(timeout 20 "$PULLWATCH" status --json --config "$cfg")
	text=$(timeout 20 "$PULLWATCH" status --config "$cfg")
	pwd_stop
	# the hosts.toml is the one in containerd's own config_path (pw.yaml sets no containerd.hosts_dir),
	# and the source says where that config_path was found
	jq -e --arg h "$TLS_REG" --arg f "$CONTAINERD_HOSTS_DIR/$TLS_REG/hosts.toml" --arg from "$(config_path_from)" '.registries[] |
		select(.host == $h and .runtime == "containerd") | .reached and (.source | contains($f)) and (.ca == "'"$TLS_CA"'")
		and (.source | contains("(config_path from " + $from + ")")) and .settings_error == null' <<<"$s"
	jq -e --arg h "$TLS_REG" '.registries[] | select(.host == $h and .runtime == "docker") |
		(.reached | not) and (.error | test("TLS: ")) and (.ca | endswith("/etc/docker/certs.d/" + $h + "/ca.crt"))' <<<"$s"
	# and the human form says the same
	grep -q "probe reached it via $TLS_REG" <<<"$text"
	grep -q "registry probe unavailable: .*TLS: " <<<"$text"
}

@test "containerd's config file: read for config_path where CRI Status has none (2.x); one pullwatch cannot read is named by file:line:field" {
	push_image test/tls-cfg v1 256KiB >/dev/null
	# containerd read its config at start; a broken table header appended now changes only what
	# pullwatch reads (restored below, before the assertions)
	cp "$CONTAINERD_CONFIG" "$BED_DIR/config.toml.orig"
	printf "\n[plugins.'io.containerd.cri.v1.images'.registry\n" >>"$CONTAINERD_CONFIG"
	line=$(wc -l <"$CONTAINERD_CONFIG")
	pwd_start "$TLS_REG/test/tls-cfg:v1"
	rc=0
	timeout 120 "$PULLWATCH" pull --config "$cfg" --runtime containerd "$TLS_REG/test/tls-cfg:v1" >/dev/null || rc=$?
	s=$(timeout 20 "$PULLWATCH" status --json --config "$cfg")
	pwd_stop
	cp "$BED_DIR/config.toml.orig" "$CONTAINERD_CONFIG"
	# containerd itself trusts the registry: the pull succeeds on every row
	[ "$rc" -eq 0 ]
	if [ "${BED_CONTAINERD_VERSION%%.*}" -ge 2 ]; then
		# the file is where 2.x's config_path is: the error names it, and the probe, left with the
		# default hosts dir (no CA there), could not verify the registry
		jq -e --arg h "$TLS_REG" --arg e "$CONTAINERD_CONFIG:$line: plugins.\"io.containerd.cri.v1.images\".registry: expected ']' to close the table header" \
			'.registries[] | select(.host == $h and .runtime == "containerd") | .settings_error == $e and (.reached | not)' <<<"$s"
	else
		# 1.x: CRI Status names config_path; the file is not read
		jq -e --arg h "$TLS_REG" '.registries[] | select(.host == $h and .runtime == "containerd") |
			.settings_error == null and .reached and (.source | contains("(config_path from CRI Status)"))' <<<"$s"
	fi
}
