# helpers.bash: the test bed (tests/bed/bed.sh) for bats integration tests. `load helpers`, then:
#
#   setup_file()    { bed_start; }          # [--no-docker] [--no-containerd]; exports the bed's env
#
# BED_ROW (exported by the caller: bookworm, the default, trixie or unstable) picks the runtime row
# (tests/bed/rows.sh); bed_start puts the row's binaries first in PATH (BED_ROW_PATH).
#   teardown_file() { bed_stop; }
#
# STRICT MODE: a missing component (dockerd, containerd, docker-registry, a tool, the pullwatch
# binary) must FAIL the test, never skip it: the bed installs everything (make deps), so a skip would
# only hide a broken machine. `skip` is redefined below to fail, and tests/run-all.sh also counts
# any skip as a failure.
#
# After bed_start these are exported (see tests/bed/README.md for the full list): BED_DIR,
# REGISTRY_ADDR, PROXY_ADDR, PROXY_CONTROL, DOCKER_SOCK, DOCKER_PIDFILE, DOCKER_ROOT, CONTAINERD_SOCK,
# CONTAINERD_PIDFILE, CONTAINERD_ROOT, CONTAINERD_HOSTS_DIR, UNPIGZ_MODE_FILE, UNPIGZ_LOG, PULLWATCH.
#
# Functions (all fail loudly, with the reason on stderr):
#   proxy_rule JSON          append a fault rule (object or array); prints the rule ids
#   proxy_rules JSON         replace all rules
#   proxy_clear              remove all rules (held connections stay held; counters kept)
#   proxy_release            reset every connection held by a forever stall
#   proxy_reset              rules cleared, counters zeroed, held connections released
#   proxy_counters [FILTER]  counters JSON (optionally through jq FILTER)
#   push_image REPO TAG SIZES [pushimg args]   push straight to REGISTRY_ADDR; prints pushimg's JSON
#   unpigz_mode MODE         real | slow:SECONDS | drip:SECONDS | sleep | spin | fail (read at every unpigz start)
#   docker_api METHOD PATH [curl args]        Engine API on DOCKER_SOCK, body on stdout
#   docker_pull REF          Engine API pull (fromImage=REF); stream on stdout; fails on an error
#   docker_rmi IMAGE         force-remove, absent is fine
#   ctr_ ARGS                ctr on CONTAINERD_SOCK in namespace k8s.io
#   ctr_pull REF / ctr_rmi REF
#   cri_pull REF / cri_rmi REF / cri_status REF   CRI ImageService over the socket (tests/bed/cri.py)
#   kubelet_pull [OPTS] REF...  kubelet-shaped CRI pulls on CONTAINERD_SOCK (tests/bed/kubelet.py):
#                            no deadline, serial, kubelet's back-off; JSON lines on stdout
#   run_timeout SECS CMD...  timeout with a message (exit 124 when it fired)
#   wait_for SECS CMD...     poll CMD every 0.2 s until it succeeds
#   descendants PID          every descendant pid of PID
#   unpigz_pids [PID]        pids of unpigz processes under PID (default: dockerd and containerd)
#   docker_pid / containerd_pid
#   bed_logs [LINES]         tails of every bed log on stderr (call it from a failing test)

BED_SH=$(realpath -m "$BATS_TEST_DIRNAME/../bed/bed.sh")
BED_CRI=$(realpath -m "$BATS_TEST_DIRNAME/../bed/cri.py")
BED_KUBELET=$(realpath -m "$BATS_TEST_DIRNAME/../bed/kubelet.py")
PULLWATCH=${PULLWATCH:-$(realpath -m "$BATS_TEST_DIRNAME/../../build/pullwatch")}
export BED_SH BED_CRI BED_KUBELET PULLWATCH

skip() {
	echo "skip is not allowed in pullwatch integration tests (missing component = failure): ${*:-}" >&2
	return 1
}

bed_require() { # CMD...: fail unless every command exists
	local c missing=""
	for c in "$@"; do command -v "$c" >/dev/null 2>&1 || missing="$missing $c"; done
	if [ -n "$missing" ]; then
		echo "missing:$missing (run: make deps)" >&2
		return 1
	fi
}

require_pullwatch() {
	[ -x "$PULLWATCH" ] || { echo "no pullwatch binary at $PULLWATCH (run: make)" >&2; return 1; }
}

bed_start() { # [--no-docker] [--no-containerd]
	bed_require docker-registry python3 curl jq timeout setsid || return 1
	BED_DIR=$(mktemp -d /tmp/pwbed.XXXXXX) || return 1
	export BED_DIR
	local logf="${BATS_FILE_TMPDIR:-/tmp}/bed-start.$$.log"
	if ! timeout 180 "$BED_SH" start "$@" >"$logf" 2>&1; then
		echo "bed_start failed:" >&2
		cat "$logf" >&2
		"$BED_SH" stop "$BED_DIR" >/dev/null 2>&1 || true
		return 1
	fi
	# shellcheck disable=SC1091
	source "$BED_DIR/env" || return 1
	# the env file exports; name the essentials so a broken env file fails here, not later
	local v
	for v in BED_DIR REGISTRY_ADDR PROXY_ADDR PROXY_CONTROL UNPIGZ_MODE_FILE BED_ROW; do
		[ -n "${!v:-}" ] || { echo "bed env lacks $v" >&2; return 1; }
	done
	# the row's own binaries (ctr) for the tests too; empty on the installed row
	[ -z "${BED_ROW_PATH:-}" ] || export PATH="$BED_ROW_PATH:$PATH"
}

bed_stop() {
	[ -n "${BED_DIR:-}" ] || return 0
	if [ -n "${BED_KEEP:-}" ]; then
		echo "BED_KEEP set: leaving the bed running in $BED_DIR (stop: $BED_SH stop $BED_DIR)" >&3
		return 0
	fi
	local logf="${BATS_FILE_TMPDIR:-/tmp}/bed-stop.$$.log"
	if ! timeout 120 "$BED_SH" stop "$BED_DIR" >"$logf" 2>&1; then
		echo "bed_stop failed:" >&2
		cat "$logf" >&2
		return 1
	fi
}

bed_logs() { # [LINES]
	local n=${1:-30} f
	for f in "$BED_DIR"/registry.log "$BED_DIR"/proxy.log "$BED_DIR"/docker.log "$BED_DIR"/containerd.log \
		"$BED_DIR"/unpigz.log; do
		[ -s "$f" ] || continue
		echo "----- $f (last $n lines)" >&2
		tail -n "$n" "$f" >&2
	done
}

# ---------------------------------------------------------------- fault proxy
_proxy() { # METHOD PATH [BODY]
	local out rc=0
	if [ $# -ge 3 ]; then
		out=$(curl -sS --max-time 10 --fail-with-body -X "$1" -H 'Content-Type: application/json' \
			--data-binary "$3" "$PROXY_CONTROL$2") || rc=$?
	else
		out=$(curl -sS --max-time 10 --fail-with-body -X "$1" "$PROXY_CONTROL$2") || rc=$?
	fi
	if [ $rc -ne 0 ]; then
		echo "proxy control $1 $2 failed (curl $rc): $out" >&2
		return 1
	fi
	printf '%s\n' "$out"
}

# (no pipelines on _proxy: bats has no pipefail, a failed call must fail the caller)
proxy_rule() { local o; o=$(_proxy POST /rules "$1") && jq -r '.ids[]' <<<"$o"; }
proxy_rules() { local o; o=$(_proxy PUT /rules "$1") && jq -r '.ids[]' <<<"$o"; }
proxy_clear() { _proxy DELETE /rules >/dev/null; }
proxy_release() { _proxy POST /release >/dev/null; }
proxy_reset() { _proxy POST /release >/dev/null && _proxy POST /reset >/dev/null; }
proxy_counters() { # [jq args...]
	local o
	o=$(_proxy GET /counters) || return 1
	if [ $# -gt 0 ]; then jq "$@" <<<"$o"; else printf '%s\n' "$o"; fi
}

# ---------------------------------------------------------------- images
push_image() { # REPO TAG SIZES [pushimg args...]
	local repo=$1 tag=$2 sizes=$3
	shift 3
	timeout 300 python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo "$repo" --tag "$tag" \
		--layers "$sizes" "$@"
}

unpigz_mode() { # MODE
	case "$1" in
	real | sleep | spin | fail | slow:[0-9]* | drip:[0-9]*) ;;
	*) echo "unpigz_mode: unknown mode '$1' (real, slow:SECONDS, drip:SECONDS, sleep, spin, fail)" >&2; return 1 ;;
	esac
	printf '%s\n' "$1" >"$UNPIGZ_MODE_FILE.tmp" && mv -f "$UNPIGZ_MODE_FILE.tmp" "$UNPIGZ_MODE_FILE"
}

# ---------------------------------------------------------------- dockerd
docker_api() { # METHOD PATH [curl args...]
	local m=$1 p=$2
	shift 2
	[ -S "${DOCKER_SOCK:-}" ] || { echo "docker_api: no dockerd socket (bed started with --no-docker?)" >&2; return 1; }
	curl -sS --fail-with-body --max-time "${DOCKER_API_TIMEOUT:-300}" --unix-socket "$DOCKER_SOCK" \
		-X "$m" "$@" "http://localhost$p"
}

docker_pull() { # REF: stream on stdout; status 1 if the stream reports an error
	local ref=$1 name tag out
	case "${ref##*/}" in
	*@*) name=${ref%@*} tag=${ref##*@} ;;
	*:*) name=${ref%:*} tag=${ref##*:} ;;
	*) name=$ref tag=latest ;;
	esac
	out=$(docker_api POST "/images/create?fromImage=$name&tag=$tag") || { printf '%s\n' "$out"; return 1; }
	printf '%s\n' "$out"
	! grep -q '"error"' <<<"$out"
}

docker_rmi() { # IMAGE: absent is fine
	local code
	code=$(curl -sS -o /dev/null -w '%{http_code}' --max-time 60 --unix-socket "$DOCKER_SOCK" \
		-X DELETE "http://localhost/images/$1?force=1") || return 1
	case "$code" in 200 | 404) return 0 ;; esac
	echo "docker_rmi $1: HTTP $code" >&2
	return 1
}

docker_pid() { cat "$DOCKER_PIDFILE"; }

# ---------------------------------------------------------------- containerd
ctr_() { ctr -a "$CONTAINERD_SOCK" -n k8s.io "$@"; }
ctr_pull() { ctr_ images pull --hosts-dir "$CONTAINERD_HOSTS_DIR" "$@"; }
ctr_rmi() { ctr_ images rm --sync "$@" >/dev/null 2>&1 || true; }
cri_pull() { python3 "$BED_CRI" --sock "$CONTAINERD_SOCK" pull "$@"; }
cri_rmi() { python3 "$BED_CRI" --sock "$CONTAINERD_SOCK" rm "$@" >/dev/null 2>&1 || true; }
cri_status() { python3 "$BED_CRI" --sock "$CONTAINERD_SOCK" status "$@"; }
kubelet_pull() { python3 "$BED_KUBELET" --sock "$CONTAINERD_SOCK" "$@"; }
containerd_pid() { cat "$CONTAINERD_PIDFILE"; }

# ---------------------------------------------------------------- processes and time
run_timeout() { # SECS CMD... (CMD may be a shell function: it then runs in a child bash)
	local secs=$1 rc=0
	shift
	if declare -F "$1" >/dev/null; then
		timeout -k 5 "$secs" bash -c "$(declare -f); \"\$@\"" run_timeout "$@" || rc=$?
	else
		timeout -k 5 "$secs" "$@" || rc=$?
	fi
	[ $rc -eq 124 ] && echo "run_timeout: '$*' still running after ${secs}s: killed" >&2
	return $rc
}

wait_for() { # SECS CMD...
	local secs=$1 end
	shift
	end=$(($(date +%s%N) + secs * 1000000000))
	while ! "$@" >/dev/null 2>&1; do
		if [ "$(date +%s%N)" -ge "$end" ]; then
			echo "wait_for: '$*' not true within ${secs}s" >&2
			return 1
		fi
		sleep 0.2
	done
}

descendants() { # PID: every descendant pid, breadth first
	ps -e -o pid=,ppid= | awk -v root="$1" '
		{ kids[$2] = kids[$2] " " $1 }
		END { q[0] = root; h = 0; t = 1
		      while (h < t) { p = q[h++]; n = split(kids[p], k, " ")
		                      for (i = 1; i <= n; i++) { print k[i]; q[t++] = k[i] } } }'
}

unpigz_pids() { # [PID...]: unpigz processes below the given pids (default: dockerd and containerd)
	local roots=("$@") r p c
	if [ ${#roots[@]} -eq 0 ]; then
		[ -r "${DOCKER_PIDFILE:-}" ] && roots+=("$(cat "$DOCKER_PIDFILE")")
		[ -r "${CONTAINERD_PIDFILE:-}" ] && roots+=("$(cat "$CONTAINERD_PIDFILE")")
	fi
	for r in "${roots[@]}"; do
		for p in $(descendants "$r"); do
			c=$(cat "/proc/$p/comm" 2>/dev/null) || continue
			[ "$c" = unpigz ] && echo "$p"
		done
	done
	return 0
}
