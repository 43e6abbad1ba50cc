#!/usr/bin/env bash
# bed.sh: the pullwatch integration test bed. A real docker-registry, a fault-injecting proxy in
# front of it, a private dockerd (with its own managed containerd) and a standalone containerd with
# CRI, all under $BED_DIR, plus an unpigz wrapper whose behaviour tests switch at run time.
#
#   BED_DIR=$(mktemp -d /tmp/pwbed.XXXXXX) tests/bed/bed.sh start [--no-docker] [--no-containerd]
#   tests/bed/bed.sh env    [DIR]   # print $BED_DIR/env (shell `export VAR=...` lines)
#   tests/bed/bed.sh status [DIR]   # which components are running
#   tests/bed/bed.sh stop   [DIR]   # kill everything, unmount what is left, remove the dir
#
# start prints BED_DIR on stdout (creating a temp dir when BED_DIR is unset); everything else goes
# to stderr. Tunables (environment): BED_MAX_DOWNLOADS (dockerd --max-concurrent-downloads, 3),
# BED_STORAGE_DRIVER (overlay2, falls back to vfs), BED_TIMEOUT (per-daemon start timeout, 60 s),
# BED_LOG_LEVEL (info), BED_DOCKERD_ARGS (extra dockerd flags, word-split), BED_ROW (the runtime
# row: bookworm (default), trixie or unstable; see tests/bed/rows.sh), BED_IGZIP=1 (the unpigz
# wrapper also as $BED_DIR/bin/igzip, which containerd 2.0+ prefers), BED_CRI_PROGRESS_TIMEOUT (CRI's
# image_pull_progress_timeout, e.g. 5s; unset: containerd's default). The caller's own
# environment is passed to the daemons, so e.g. MOBY_DISABLE_PIGZ / CONTAINERD_DISABLE_PIGZ set by
# the caller reach them. See tests/bed/README.md.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
MARK=PWBED_OWNER   # environment marker carried by every process the bed starts (and their children)
TIMEOUT=${BED_TIMEOUT:-60}
LOG_LEVEL=${BED_LOG_LEVEL:-info}

log() { echo "bed: $*" >&2; }
die() { echo "bed: ERROR: $*" >&2; exit 1; }

tail_log() { # file: show the end of a daemon log on failure
	if [ -s "$1" ]; then
		echo "----- last lines of $1 -----" >&2
		tail -n 25 "$1" >&2
		echo "-----" >&2
	fi
}

resolve_dir() {
	local d=${1:-${BED_DIR:-}}
	[ -n "$d" ] || die "BED_DIR is not set (and no DIR argument given)"
	case "$d" in /*) ;; *) d="$PWD/$d" ;; esac
	d=$(realpath -m -- "$d")
	[ "$d" != / ] || die "refusing BED_DIR=/"
	printf '%s\n' "$d"
}

alive() { [ -n "${1:-}" ] && kill -0 "$1" 2>/dev/null; }
readpid() { [ -r "$1" ] && tr -dc 0-9 <"$1" || true; }

# pids of every process carrying $MARK=$BED_DIR in its initial environment
marked_pids() {
	local p env e want="$MARK=$BED_DIR"
	for p in /proc/[0-9]*; do
		p=${p#/proc/}
		[ "$p" = $$ ] || [ "$p" = "$BASHPID" ] && continue
		mapfile -d "" -t env 2>/dev/null <"/proc/$p/environ" || continue
		for e in "${env[@]}"; do
			if [ "$e" = "$want" ]; then
				echo "$p"
				break
			fi
		done
	done
}

has_mark() { # pid: does it belong to this bed?
	local e env
	mapfile -d "" -t env 2>/dev/null <"/proc/$1/environ" || return 1
	for e in "${env[@]}"; do [ "$e" = "$MARK=$BED_DIR" ] && return 0; done
	return 1
}

wait_gone() { # seconds pid...: wait until none of the pids is alive
	local secs=$1 p left
	shift
	local end=$((SECONDS + secs))
	while :; do
		left=""
		for p in "$@"; do alive "$p" && left="$left $p"; done
		[ -z "$left" ] && return 0
		[ $SECONDS -ge $end ] && return 1
		sleep 0.2
	done
}

# mount points at or below $BED_DIR, deepest first
bed_mounts() {
	awk -v d="$BED_DIR" '{
		m = $5
		while (match(m, /\\[0-7][0-7][0-7]/)) {
			c = sprintf("%c", (substr(m, RSTART+1, 1)*64) + (substr(m, RSTART+2, 1)*8) + substr(m, RSTART+3, 1))
			m = substr(m, 1, RSTART-1) c substr(m, RSTART+4)
		}
		if (m == d || index(m, d "/") == 1) print length(m) "\t" m
	}' /proc/self/mountinfo | sort -rn | cut -f2- | uniq
}

unmount_all() {
	local i m ms
	for i in 1 2 3 4 5; do
		mapfile -t ms < <(bed_mounts)
		[ ${#ms[@]} -eq 0 ] && return 0
		for m in "${ms[@]}"; do
			umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || umount -R -l "$m" 2>/dev/null || true
		done
	done
	mapfile -t ms < <(bed_mounts)
	[ ${#ms[@]} -eq 0 ] || { log "mounts still present under $BED_DIR: ${ms[*]}"; return 1; }
}

kill_all() {
	local f p pids=()
	# graceful first, in dependency order: dockerd stops its managed containerd and unmounts its root
	for f in docker.pid docker.launch.pid containerd.pid proxy.pid registry.pid; do
		p=$(readpid "$BED_DIR/$f")
		if alive "$p" && has_mark "$p"; then
			kill -TERM "$p" 2>/dev/null || true
			pids+=("$p")
		fi
	done
	if [ ${#pids[@]} -gt 0 ]; then
		wait_gone 20 "${pids[@]}" || log "some daemons ignored SIGTERM for 20 s: $(echo "${pids[@]}")"
	fi
	# everything still carrying the marker (unpigz wrappers in hang modes, a managed containerd whose
	# dockerd died, shims...)
	local round
	for round in TERM KILL KILL; do
		mapfile -t pids < <(marked_pids)
		[ ${#pids[@]} -eq 0 ] && return 0
		log "sending SIG$round to leftover bed processes: ${pids[*]}"
		kill -"$round" "${pids[@]}" 2>/dev/null || true
		wait_gone 5 "${pids[@]}" || true
	done
	mapfile -t pids < <(marked_pids)
	[ ${#pids[@]} -eq 0 ] || { log "processes survived SIGKILL: ${pids[*]}"; return 1; }
}

cleanup_dir() { # kill + unmount, keep the directory
	kill_all || true
	unmount_all || true
	untrust_all
}

# ---------------------------------------------------------------- start helpers
# Start a daemon in the background, detached from the caller: new session, stdin from /dev/null,
# stdout+stderr to a log, every other inherited fd closed (bats waits on fd 3 otherwise).
launch() { # logfile cmd...
	local logf=$1 v unset=()
	shift
	# docker-registry takes any REGISTRY_* variable as a config override (REGISTRY_ADDR from a bed
	# env the caller sourced, say): none of the caller's reach it
	if [ "$1" = docker-registry ]; then
		for v in $(compgen -e); do
			case "$v" in REGISTRY_*) unset+=(-u "$v") ;; esac
		done
	fi
	(
		for fd in /proc/$BASHPID/fd/*; do
			fd=${fd##*/}
			[ "$fd" -gt 2 ] 2>/dev/null && eval "exec $fd>&-"
		done
		exec setsid env -u XDG_RUNTIME_DIR "${unset[@]}" "$MARK=$BED_DIR" BED_DIR="$BED_DIR" TMPDIR="$BED_DIR/tmp" \
			UNPIGZ_MODE_FILE="$BED_DIR/unpigz.mode" PATH="$BED_DIR/bin:$PATH" \
			"$@" </dev/null >>"$logf" 2>&1
	) &
	LAUNCHED=$!
}

wait_until() { # secs pid logfile what cmd...: poll cmd until it succeeds, the pid dies, or timeout
	local secs=$1 pid=$2 logf=$3 what=$4
	shift 4
	local end=$((SECONDS + secs))
	while :; do
		if "$@" >/dev/null 2>&1; then
			return 0
		fi
		if ! alive "$pid"; then
			WAIT_WHY="$what exited during startup"
			return 1
		fi
		if [ $SECONDS -ge $end ]; then
			WAIT_WHY="$what did not answer within ${secs}s"
			return 2
		fi
		sleep 0.2
	done
}

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

write_unpigz_wrapper() {
	local real
	real=$(PATH=/usr/bin:/bin:/usr/local/bin command -v unpigz || true)
	[ -n "$real" ] || log "no real unpigz found: mode 'real' will use gzip -dc"
	REAL_UNPIGZ=$real
	mkdir -p "$BED_DIR/bin" "$BED_DIR/tmp" "$BED_DIR/run"
	rm -f "$BED_DIR/run/hang.fifo"
	mkfifo "$BED_DIR/run/hang.fifo"
	echo real >"$BED_DIR/unpigz.mode"
	: >"$BED_DIR/unpigz.log"
	cat >"$BED_DIR/bin/unpigz" <<EOF
#!/bin/bash
# pullwatch test bed unpigz wrapper (generated by bed.sh). Mode read from the mode file at every
# invocation: real | slow:SECONDS | drip:SECONDS | sleep | spin | fail. See tests/bed/README.md.
REAL='$real'
MODE_FILE='$BED_DIR/unpigz.mode'
LOGF='$BED_DIR/unpigz.log'
TMPD='$BED_DIR/tmp'
FIFO='$BED_DIR/run/hang.fifo'
export LC_ALL=C
mode=real
if [ -r "\$MODE_FILE" ]; then read -r mode <"\$MODE_FILE" || true; fi
[ -n "\$mode" ] || mode=real
pcomm=?; read -r pcomm </proc/\$PPID/comm 2>/dev/null || true
printf '%s pid=%d ppid=%d parent=%s mode=%s args=%s name=%s\n' "\$EPOCHREALTIME" \$\$ \$PPID "\$pcomm" "\$mode" "\$*" "\${0##*/}" >>"\$LOGF"
realdec() { if [ -n "\$REAL" ]; then "\$REAL" "\$@"; else gzip -dc; fi; }
case "\$mode" in
real)
	if [ -n "\$REAL" ]; then exec "\$REAL" "\$@"; fi
	exec gzip -dc ;;
slow:*)
	secs=\${mode#slow:}; case "\$secs" in ''|*[!0-9.]*|*.*.*) secs=5 ;; esac
	whole=\${secs%%.*}; frac=000000; case "\$secs" in *.*) frac=\${secs#*.}000000; frac=\${frac:0:6} ;; esac
	tmp=\$(mktemp "\$TMPD/unpigz.XXXXXX")
	trap 'rm -f "\$tmp" "\$tmp.sum" "\$tmp.copy"; exit 143' TERM INT
	if ! realdec -d -c >"\$tmp"; then rm -f "\$tmp"; exit 1; fi
	end=\$(( \${EPOCHREALTIME/./} + \${whole:-0} * 1000000 + 10#\$frac ))
	while [ \${EPOCHREALTIME/./} -lt \$end ]; do
		dd if="\$tmp" bs=1M count=8 status=none | sha256sum >>"\$tmp.sum"  # read + CPU (children)
		dd if="\$tmp" of="\$tmp.copy" bs=1M count=1 conv=fsync status=none  # write I/O, fsync'ed
		i=0; while [ \$i -lt 20000 ]; do i=\$((i + 1)); done              # CPU in this process
	done
	cat "\$tmp"; rc=\$?
	rm -f "\$tmp" "\$tmp.sum" "\$tmp.copy"
	exit \$rc ;;
drip:*)
	secs=\${mode#drip:}; case "\$secs" in ''|*[!0-9]*) secs=15 ;; esac
	tmp=\$(mktemp "\$TMPD/unpigz.XXXXXX")
	trap 'rm -f "\$tmp"; exit 143' TERM INT
	if ! realdec -d -c >"\$tmp"; then rm -f "\$tmp"; exit 1; fi
	n=\$((secs * 2)); [ \$n -ge 1 ] || n=1
	size=\$(stat -c %s "\$tmp"); chunk=\$(( (size + n - 1) / n )); [ \$chunk -ge 1 ] || chunk=1
	i=0; rc=0; exec 3<>"\$FIFO"    # nobody writes it: read -t is a sleep without a child
	while [ \$i -lt \$n ]; do       # all input taken at once, the output in n pieces 0.5 s apart
		dd if="\$tmp" bs=\$chunk skip=\$i count=1 status=none || { rc=1; break; }
		i=\$((i + 1)); [ \$i -lt \$n ] && { read -r -t 0.5 -u 3 _ || true; }
	done
	rm -f "\$tmp"
	exit \$rc ;;
sleep)
	head -c 65536 >/dev/null          # take a little input, then block forever in read(2)
	exec 3<>"\$FIFO"
	while :; do read -r -u 3 _ || sleep 1; done ;;
spin)
	while :; do :; done ;;            # CPU forever, no I/O, no output
fail)
	head -c 4096 >/dev/null
	echo "unpigz: injected failure (test bed)" >&2
	exit 1 ;;
*)
	echo "unpigz wrapper: unknown mode '\$mode', acting as real" >&2
	if [ -n "\$REAL" ]; then exec "\$REAL" "\$@"; fi
	exec gzip -dc ;;
esac
EOF
	chmod 755 "$BED_DIR/bin/unpigz"
	# BED_IGZIP=1: the same wrapper as igzip, which containerd 2.0+ runs before unpigz (1.x ignores it)
	if [ "${BED_IGZIP:-0}" = 1 ]; then
		cp "$BED_DIR/bin/unpigz" "$BED_DIR/bin/igzip"
	fi
}

start_registry() {
	local attempt port
	mkdir -p "$BED_DIR/registry/data"
	for attempt in 1 2 3 4 5; do
		port=$(free_port)
		cat >"$BED_DIR/registry/config.yml" <<EOF
version: 0.1
log:
  level: info
  accesslog:
    disabled: false
storage:
  filesystem:
    rootdirectory: $BED_DIR/registry/data
  delete:
    enabled: true
  cache:
    blobdescriptor: inmemory
  maintenance:
    uploadpurging:
      enabled: false
http:
  addr: 127.0.0.1:$port
  headers:
    X-Content-Type-Options: [nosniff]
health:
  storagedriver:
    enabled: false
EOF
		: >"$BED_DIR/registry.log"
		launch "$BED_DIR/registry.log" docker-registry serve "$BED_DIR/registry/config.yml"
		echo "$LAUNCHED" >"$BED_DIR/registry.pid"
		if wait_until "$TIMEOUT" "$LAUNCHED" "$BED_DIR/registry.log" docker-registry \
			curl -fsS --max-time 2 "http://127.0.0.1:$port/v2/"; then
			if alive "$LAUNCHED"; then
				REGISTRY_ADDR=127.0.0.1:$port
				log "docker-registry pid $LAUNCHED on $REGISTRY_ADDR"
				return 0
			fi
		fi
		if grep -q "address already in use" "$BED_DIR/registry.log"; then
			log "port $port taken, retrying"
			continue
		fi
		kill -KILL "$LAUNCHED" 2>/dev/null || true
		tail_log "$BED_DIR/registry.log"
		die "${WAIT_WHY:-docker-registry failed}"
	done
	die "docker-registry: no free port after 5 attempts"
}

# A private CA and a certificate for 127.0.0.1 signed by it, for a proxy that speaks TLS.
make_tls() {
	local d=$BED_DIR/tls
	mkdir -p "$d"
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" -days 2 \
		-subj /CN=pullwatch-bed-ca >/dev/null 2>&1 || die "openssl: cannot make the bed's CA"
	openssl req -newkey rsa:2048 -nodes -keyout "$d/server.key" -out "$d/server.csr" -subj /CN=127.0.0.1 \
		>/dev/null 2>&1 || die "openssl: cannot make the proxy's key"
	printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >"$d/ext"
	openssl x509 -req -in "$d/server.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
		-out "$d/server.crt" -days 2 -extfile "$d/ext" >/dev/null 2>&1 || die "openssl: cannot sign the proxy's certificate"
}

# dockerd trusts a registry's CA only from /etc/docker/certs.d/HOST:PORT (no flag moves it): the
# bed writes its proxy's entry there and removes exactly that entry when it stops.
trust_proxy_for_docker() {
	local d=/etc/docker/certs.d/$PROXY_ADDR
	mkdir -p "$d"
	cp "$BED_DIR/tls/ca.crt" "$d/ca.crt"
	echo "$d" >>"$BED_DIR/certs.d.entries"
}

untrust_all() {
	local d
	[ -s "$BED_DIR/certs.d.entries" ] || return 0
	while read -r d; do
		case "$d" in /etc/docker/certs.d/127.0.0.1:*) rm -rf -- "$d" ;; esac
	done <"$BED_DIR/certs.d.entries"
	rm -f "$BED_DIR/certs.d.entries"
}

start_proxy() {
	local tls=() scheme=http
	rm -f "$BED_DIR/proxy.ports"
	: >"$BED_DIR/proxy.log"
	if [ "$PROXY_TLS" = 1 ]; then
		make_tls
		tls=(--tls-cert "$BED_DIR/tls/server.crt" --tls-key "$BED_DIR/tls/server.key")
		scheme=https
	fi
	launch "$BED_DIR/proxy.log" python3 -u "$HERE/faultproxy.py" --upstream "$REGISTRY_ADDR" \
		--listen 127.0.0.1:0 --control 127.0.0.1:0 --port-file "$BED_DIR/proxy.ports" "${tls[@]}"
	echo "$LAUNCHED" >"$BED_DIR/proxy.pid"
	if ! wait_until "$TIMEOUT" "$LAUNCHED" "$BED_DIR/proxy.log" faultproxy test -s "$BED_DIR/proxy.ports"; then
		tail_log "$BED_DIR/proxy.log"
		die "$WAIT_WHY"
	fi
	local pp cp
	pp=$(jq -r .proxy "$BED_DIR/proxy.ports")
	cp=$(jq -r .control "$BED_DIR/proxy.ports")
	PROXY_ADDR=127.0.0.1:$pp
	PROXY_CONTROL=http://127.0.0.1:$cp
	curl -fsS --max-time 5 "$PROXY_CONTROL/health" >/dev/null || { tail_log "$BED_DIR/proxy.log"; die "faultproxy control API does not answer"; }
	curl -fsS --max-time 5 --cacert "$BED_DIR/tls/ca.crt" "$scheme://$PROXY_ADDR/v2/" >/dev/null ||
		{ tail_log "$BED_DIR/proxy.log"; die "faultproxy does not relay /v2/ to the registry"; }
	PROXY_SCHEME=$scheme
	log "faultproxy pid $LAUNCHED on $PROXY_ADDR, control $PROXY_CONTROL"
}

docker_ping() { curl -fsS --max-time 2 --unix-socket "$BED_DIR/docker.sock" http://localhost/_ping; }

start_docker() {
	local drv=${BED_STORAGE_DRIVER:-overlay2} rc
	# BED_DOCKER_STORE=containerd: the containerd image store (Docker 29's default; a feature on 28),
	# pulling through the bed's containerd as a node's dockerd pulls through containerd.service.
	# There dockerd reaches a plain-http registry only by failing over from https, which
	# containerd 2.1's resolver does not do for a HEAD: the proxy speaks TLS with the bed's CA.
	local store_args=()
	if [ "${BED_DOCKER_STORE:-classic}" = containerd ]; then
		echo '{"features": {"containerd-snapshotter": true}}' >"$BED_DIR/daemon.json"
		store_args=(--containerd "$BED_DIR/containerd.sock")
		# the storage driver names a containerd snapshotter there: overlay2 is none of them
		[ -n "${BED_STORAGE_DRIVER:-}" ] || drv=overlayfs
		trust_proxy_for_docker
	else
		echo '{}' >"$BED_DIR/daemon.json"
	fi
	while :; do
		rm -rf "$BED_DIR/docker" "$BED_DIR/docker-exec"
		mkdir -p "$BED_DIR/docker" "$BED_DIR/docker-exec"
		: >"$BED_DIR/docker.log"
		# As Debian's docker.service runs it: `dockerd -H fd://`, the socket bound and held by a
		# listener (PID 1 on a node; sockact.py here) that also parents decoy processes named
		# tar/gzip/unpigz outside dockerd's tree. BED_DOCKER_ACTIVATION=direct: dockerd binds it.
		local host=(-H "unix://$BED_DIR/docker.sock") front=()
		if [ "${BED_DOCKER_ACTIVATION:-socket}" = socket ]; then
			host=(-H fd://)
			front=(python3 -u "$HERE/sockact.py" --socket "$BED_DIR/docker.sock"
				--decoy-dir "$BED_DIR/decoys" --decoy-pids "$BED_DIR/decoys.pids"
				--child-path "$BED_DIR/bin:$PATH" --)
		fi
		# shellcheck disable=SC2086
		launch "$BED_DIR/docker.log" "${front[@]}" dockerd \
			--data-root "$BED_DIR/docker" --exec-root "$BED_DIR/docker-exec" \
			"${host[@]}" --pidfile "$BED_DIR/docker.pid" \
			--config-file "$BED_DIR/daemon.json" --log-level "$LOG_LEVEL" \
			--iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
			--storage-driver "$drv" --max-concurrent-downloads "${BED_MAX_DOWNLOADS:-3}" \
			--insecure-registry "$PROXY_ADDR" --insecure-registry "$REGISTRY_ADDR" \
			"${store_args[@]}" ${ROW_DOCKERD_ARGS:-} ${BED_DOCKERD_ARGS:-}
		echo "$LAUNCHED" >"$BED_DIR/docker.launch.pid"
		rc=0
		wait_until "$TIMEOUT" "$LAUNCHED" "$BED_DIR/docker.log" dockerd docker_ping || rc=$?
		if [ $rc -eq 0 ]; then
			break
		fi
		kill -TERM "$LAUNCHED" 2>/dev/null || true
		wait_gone 15 "$LAUNCHED" || kill -KILL "$LAUNCHED" 2>/dev/null || true
		cleanup_dir
		if [ "$drv" = overlay2 ] && [ $rc -eq 1 ]; then
			tail_log "$BED_DIR/docker.log"
			log "dockerd with overlay2 failed; retrying with vfs"
			drv=vfs
			continue
		fi
		tail_log "$BED_DIR/docker.log"
		die "$WAIT_WHY"
	done
	DOCKER_STORAGE_DRIVER=$drv
	local pid
	pid=$(readpid "$BED_DIR/docker.pid")
	[ "$pid" = "$LAUNCHED" ] || log "note: dockerd pidfile says $pid, launched $LAUNCHED"
	log "dockerd pid $pid ($drv) on $BED_DIR/docker.sock"
}

write_containerd_config() {
	local c=$BED_DIR/containerd addr
	mkdir -p "$c/root" "$c/state" "$c/opt" "$c/certs.d" "$c/cni/bin" "$c/cni/conf"
	for addr in "$PROXY_ADDR" "$REGISTRY_ADDR"; do
		mkdir -p "$c/certs.d/$addr"
		if [ "$addr" = "$PROXY_ADDR" ] && [ "$PROXY_TLS" = 1 ]; then
			cat >"$c/certs.d/$addr/hosts.toml" <<EOF
server = "https://$addr"

[host."https://$addr"]
  capabilities = ["pull", "resolve", "push"]
  ca = "$BED_DIR/tls/ca.crt"
EOF
			continue
		fi
		cat >"$c/certs.d/$addr/hosts.toml" <<EOF
server = "http://$addr"

[host."http://$addr"]
  capabilities = ["pull", "resolve", "push"]
EOF
	done
	local v3=0
	[ "${ROW_CONTAINERD_MAJOR:-1}" -ge 2 ] && v3=1
	cat >"$c/config.toml" <<EOF
version = $((v3 ? 3 : 2))
root = "$c/root"
state = "$c/state"
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"$( ((v3)) && printf ',\n  "io.containerd.snapshotter.v1.blockfile", "io.containerd.snapshotter.v1.erofs"')]

[grpc]
  address = "$BED_DIR/containerd.sock"

[ttrpc]
  address = "$BED_DIR/containerd.sock.ttrpc"

[debug]
  address = ""
  level = "$LOG_LEVEL"

[metrics]
  address = ""

[plugins]
  [plugins."io.containerd.internal.v1.opt"]
    path = "$c/opt"
EOF
	if ((v3)); then
		# containerd 2.x (config version 3): the CRI plugin is split into images, runtime and the
		# grpc service; NRI is on by default with a node-global socket: off, so rows run side by side
		cat >>"$c/config.toml" <<EOF
  [plugins."io.containerd.nri.v1.nri"]
    disable = true
  [plugins."io.containerd.cri.v1.images"]
    snapshotter = "overlayfs"
    max_concurrent_downloads = ${BED_CRI_MAX_DOWNLOADS:-3}
$( [ -z "${BED_CRI_PROGRESS_TIMEOUT:-}" ] || printf '    image_pull_progress_timeout = "%s"\n' "$BED_CRI_PROGRESS_TIMEOUT")
    [plugins."io.containerd.cri.v1.images".pinned_images]
      sandbox = "registry.k8s.io/pause:3.10"
    [plugins."io.containerd.cri.v1.images".registry]
      config_path = "$c/certs.d"
  [plugins."io.containerd.cri.v1.runtime"]
    [plugins."io.containerd.cri.v1.runtime".containerd]
      default_runtime_name = "runc"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.cri.v1.runtime".cni]
      bin_dirs = ["$c/cni/bin"]
      conf_dir = "$c/cni/conf"
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
  [plugins."io.containerd.transfer.v1.local"]
    max_concurrent_downloads = ${BED_CRI_MAX_DOWNLOADS:-3}
    config_path = "$c/certs.d"
EOF
		return 0
	fi
	cat >>"$c/config.toml" <<EOF
  [plugins."io.containerd.grpc.v1.cri"]
    disable_tcp_service = true
    stream_server_address = "127.0.0.1"
    stream_server_port = "0"
    sandbox_image = "registry.k8s.io/pause:3.6"
    max_concurrent_downloads = ${BED_CRI_MAX_DOWNLOADS:-3}
$( [ -z "${BED_CRI_PROGRESS_TIMEOUT:-}" ] || printf '    image_pull_progress_timeout = "%s"\n' "$BED_CRI_PROGRESS_TIMEOUT")
    [plugins."io.containerd.grpc.v1.cri".containerd]
      snapshotter = "overlayfs"
      default_runtime_name = "runc"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
        runtime_type = "io.containerd.runc.v2"
    [plugins."io.containerd.grpc.v1.cri".cni]
      bin_dir = "$c/cni/bin"
      conf_dir = "$c/cni/conf"
    [plugins."io.containerd.grpc.v1.cri".registry]
      config_path = "$c/certs.d"
EOF
}

containerd_ready() {
	ctr -a "$BED_DIR/containerd.sock" version >/dev/null 2>&1 || return 1
	ctr -a "$BED_DIR/containerd.sock" plugins ls 2>/dev/null | grep -Eq '^io\.containerd\.grpc\.v1[[:space:]]+cri[[:space:]].*[[:space:]]ok[[:space:]]*$'
}

start_containerd() {
	write_containerd_config
	: >"$BED_DIR/containerd.log"
	launch "$BED_DIR/containerd.log" containerd --config "$BED_DIR/containerd/config.toml" --log-level "$LOG_LEVEL"
	echo "$LAUNCHED" >"$BED_DIR/containerd.pid"
	if ! wait_until "$TIMEOUT" "$LAUNCHED" "$BED_DIR/containerd.log" containerd containerd_ready; then
		tail_log "$BED_DIR/containerd.log"
		ctr -a "$BED_DIR/containerd.sock" plugins ls 2>/dev/null | grep -Ev ' ok *$' >&2 || true
		die "$WAIT_WHY (or its CRI plugin is not ok)"
	fi
	log "containerd pid $LAUNCHED on $BED_DIR/containerd.sock (CRI ok)"
}

write_env() {
	local f=$BED_DIR/env
	{
		echo "# pullwatch test bed, written by $HERE/bed.sh start at $(date -u +%FT%TZ)"
		q() { printf 'export %s=%q\n' "$1" "$2"; }
		q BED_DIR "$BED_DIR"
		q BED_SH "$HERE/bed.sh"
		q BED_PUSHIMG "$HERE/pushimg.py"
		q BED_BIN "$BED_DIR/bin"
		q BED_HAS_DOCKER "$WITH_DOCKER"
		q BED_HAS_CONTAINERD "$WITH_CONTAINERD"
		q BED_ROW "$ROW"
		q BED_ROW_PATH "$ROW_PATH"
		q BED_CONTAINERD_VERSION "$ROW_CONTAINERD_VERSION"
		q BED_DOCKERD_VERSION "$ROW_DOCKERD_VERSION"
		q BED_IGZIP "${BED_IGZIP:-0}"
		q REGISTRY_ADDR "$REGISTRY_ADDR"
		q REGISTRY_PIDFILE "$BED_DIR/registry.pid"
		q REGISTRY_ROOT "$BED_DIR/registry/data"
		# (not REGISTRY_LOG: docker-registry reads REGISTRY_<SECTION> variables as config overrides)
		q REGISTRY_LOGFILE "$BED_DIR/registry.log"
		q PROXY_ADDR "$PROXY_ADDR"
		q PROXY_SCHEME "$PROXY_SCHEME"
		q BED_CA "$BED_DIR/tls/ca.crt"
		q PROXY_CONTROL "$PROXY_CONTROL"
		q PROXY_PIDFILE "$BED_DIR/proxy.pid"
		q PROXY_LOG "$BED_DIR/proxy.log"
		q UNPIGZ_MODE_FILE "$BED_DIR/unpigz.mode"
		q UNPIGZ_LOG "$BED_DIR/unpigz.log"
		q UNPIGZ_REAL "$REAL_UNPIGZ"
		if [ "$WITH_DOCKER" = 1 ]; then
			q DOCKER_SOCK "$BED_DIR/docker.sock"
			q DOCKER_HOST "unix://$BED_DIR/docker.sock"
			q DOCKER_PIDFILE "$BED_DIR/docker.pid"
			q DOCKER_ACTIVATION "${BED_DOCKER_ACTIVATION:-socket}"
			q DOCKER_STORE "${BED_DOCKER_STORE:-classic}"
			q DOCKER_DECOY_PIDS "$BED_DIR/decoys.pids"
			q DOCKER_ROOT "$BED_DIR/docker"
			q DOCKER_EXEC_ROOT "$BED_DIR/docker-exec"
			q DOCKER_LOG "$BED_DIR/docker.log"
			q DOCKER_STORAGE_DRIVER "$DOCKER_STORAGE_DRIVER"
			q DOCKER_MAX_DOWNLOADS "${BED_MAX_DOWNLOADS:-3}"
			q DOCKER_CONTAINERD_SOCK "$BED_DIR/docker-exec/containerd/containerd.sock"
			q DOCKER_CONTAINERD_PIDFILE "$BED_DIR/docker-exec/containerd/containerd.pid"
		fi
		if [ "$WITH_CONTAINERD" = 1 ]; then
			q CONTAINERD_SOCK "$BED_DIR/containerd.sock"
			q CONTAINERD_ADDRESS "$BED_DIR/containerd.sock"
			q CONTAINERD_NAMESPACE k8s.io
			q CONTAINERD_PIDFILE "$BED_DIR/containerd.pid"
			q CONTAINERD_ROOT "$BED_DIR/containerd/root"
			q CONTAINERD_STATE "$BED_DIR/containerd/state"
			q CONTAINERD_CONFIG "$BED_DIR/containerd/config.toml"
			q CONTAINERD_HOSTS_DIR "$BED_DIR/containerd/certs.d"
			q CONTAINERD_LOG "$BED_DIR/containerd.log"
		fi
	} >"$f.tmp"
	mv "$f.tmp" "$f"
}

# The runtime row (BED_ROW): its binaries go first in this script's PATH, so every daemon the bed
# launches (after $BED_DIR/bin, the unpigz wrapper), the containerd dockerd spawns, and the ctr of
# containerd_ready are the row's. Fetched (once, cached, locked) when missing.
select_row() {
	ROW=${BED_ROW:-bookworm}
	"$HERE/rows.sh" fetch "$ROW" || die "cannot fetch runtime row $ROW"
	ROW_PATH=$("$HERE/rows.sh" path "$ROW")
	[ -z "$ROW_PATH" ] || PATH="$ROW_PATH:$PATH"
	local versions
	versions=$("$HERE/rows.sh" versions "$ROW") || die "row $ROW: cannot read the runtime versions"
	ROW_CONTAINERD_VERSION=$(awk '$1 == "containerd" {print $2}' <<<"$versions")
	ROW_DOCKERD_VERSION=$(awk '$1 == "dockerd" {print $2}' <<<"$versions")
	ROW_CONTAINERD_MAJOR=${ROW_CONTAINERD_VERSION%%.*}
	# flags start_docker adds for this row's dockerd (none needed so far)
	ROW_DOCKERD_ARGS=""
	log "row $ROW: containerd $ROW_CONTAINERD_VERSION, dockerd $ROW_DOCKERD_VERSION"
}

cmd_start() {
	WITH_DOCKER=1 WITH_CONTAINERD=1
	while [ $# -gt 0 ]; do
		case "$1" in
		--no-docker) WITH_DOCKER=0 ;;
		--no-containerd) WITH_CONTAINERD=0 ;;
		*) die "start: unknown option $1" ;;
		esac
		shift
	done
	local t0=$SECONDS
	select_row
	# an igzip installed on the machine (package isal) would take containerd 2.x's gzip layers past
	# the unpigz wrapper: off, unless the bed provides its own (BED_IGZIP=1) or the caller decided
	if [ "${BED_IGZIP:-0}" != 1 ] && [ -z "${CONTAINERD_DISABLE_IGZIP+x}" ] && command -v igzip >/dev/null; then
		log "igzip found in PATH: CONTAINERD_DISABLE_IGZIP=1 for the bed's daemons"
		export CONTAINERD_DISABLE_IGZIP=1
	fi
	for c in docker-registry python3 curl jq setsid mkfifo; do
		command -v "$c" >/dev/null || die "missing $c (run: make deps)"
	done
	[ "$WITH_DOCKER" = 0 ] || command -v dockerd >/dev/null || die "missing dockerd (apt-get install docker.io)"
	[ "$WITH_CONTAINERD" = 0 ] || { command -v containerd >/dev/null && command -v ctr >/dev/null; } ||
		die "missing containerd/ctr (apt-get install containerd)"
	[ "$(id -u)" = 0 ] || die "the bed runs dockerd and containerd: it needs root"
	if [ -z "${BED_DIR:-}" ]; then
		BED_DIR=$(mktemp -d /tmp/pwbed.XXXXXX)
	fi
	BED_DIR=$(resolve_dir "$BED_DIR")
	# unix socket paths are limited to 107 bytes; dockerd's managed containerd sits deepest
	[ ${#BED_DIR} -le 60 ] || die "BED_DIR too long for unix socket paths (${#BED_DIR} > 60 chars): $BED_DIR"
	mkdir -p "$BED_DIR"
	if [ -e "$BED_DIR/.pwbed" ]; then
		log "$BED_DIR holds a previous bed: stopping it first"
		cleanup_dir
		find "$BED_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
	elif [ -n "$(ls -A "$BED_DIR")" ]; then
		die "$BED_DIR is not empty and not a bed dir: refusing to use it"
	fi
	echo "$$" >"$BED_DIR/.pwbed"
	export BED_DIR
	# on any failure from here on, tear down what was started so nothing is left behind
	trap 'rc=$?; if [ $rc -ne 0 ]; then log "start failed: cleaning up"; cleanup_dir; rm -f "$BED_DIR/env"; fi' EXIT
	PROXY_TLS=0
	if [ "${BED_DOCKER_STORE:-classic}" = containerd ]; then
		[ "$WITH_DOCKER" = 1 ] && [ "$WITH_CONTAINERD" = 1 ] ||
			die "BED_DOCKER_STORE=containerd needs both dockerd and the containerd it pulls through"
		PROXY_TLS=1
	fi
	write_unpigz_wrapper
	start_registry
	start_proxy
	if [ "${BED_DOCKER_STORE:-classic}" = containerd ]; then
		start_containerd
		start_docker
	else
		[ "$WITH_DOCKER" = 0 ] || start_docker
		[ "$WITH_CONTAINERD" = 0 ] || start_containerd
	fi
	write_env
	trap - EXIT
	log "ready in $((SECONDS - t0))s: source $BED_DIR/env"
	echo "$BED_DIR"
}

cmd_stop() {
	BED_DIR=$(resolve_dir "${1:-}")
	if [ ! -d "$BED_DIR" ]; then
		log "$BED_DIR does not exist: nothing to stop"
		return 0
	fi
	[ -e "$BED_DIR/.pwbed" ] || die "$BED_DIR is not a bed dir (no .pwbed): refusing to remove it"
	local rc=0
	kill_all || rc=1
	unmount_all || rc=1
	untrust_all
	if [ $rc -eq 0 ]; then
		rm -rf -- "$BED_DIR" 2>/dev/null || { sleep 1; unmount_all || true; rm -rf -- "$BED_DIR"; } || rc=1
	fi
	[ $rc -eq 0 ] && log "stopped, $BED_DIR removed" || log "stop incomplete: $BED_DIR kept"
	return $rc
}

cmd_env() {
	BED_DIR=$(resolve_dir "${1:-}")
	[ -r "$BED_DIR/env" ] || die "no $BED_DIR/env: is the bed started?"
	cat "$BED_DIR/env"
}

cmd_status() {
	BED_DIR=$(resolve_dir "${1:-}")
	[ -d "$BED_DIR" ] || die "$BED_DIR does not exist"
	local f p st=0
	for f in registry.pid proxy.pid docker.pid containerd.pid docker-exec/containerd/containerd.pid; do
		[ -e "$BED_DIR/$f" ] || continue
		p=$(readpid "$BED_DIR/$f")
		if alive "$p"; then echo "${f%.pid}: running (pid $p)"; else echo "${f%.pid}: NOT running"; st=1; fi
	done
	echo "processes: $(marked_pids | wc -l)  mounts: $(bed_mounts | wc -l)"
	return $st
}

case "${1:-}" in
start) shift; cmd_start "$@" ;;
stop) shift; cmd_stop "$@" ;;
env) shift; cmd_env "$@" ;;
status) shift; cmd_status "$@" ;;
*) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
