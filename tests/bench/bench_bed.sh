# bench_bed.sh: what the bench scripts that measure on a bed share. Source it from the repository's root:
#   bench_bed_args NAME "$@"    --bed DIR: measure on the running bed in DIR (tests/bench/run.sh passes
#                               each row's); sets BED_DIR and own_bed (0 then, 1 without --bed)
#   bench_bed_start TITLE [ARGS]  without --bed, start a bed of BED_ROW (default bookworm) with
#                               `bed.sh start ARGS`; when it cannot start, print TITLE and why, exit 1.
#                               Either way the bed's env is sourced.
#   bench_bed_stop              stop the bed bench_bed_start started (call it from the script's cleanup)
#   median                      the median of the numbers on stdin ("-" when there are none)
#   now                         the wall clock, in seconds with nanoseconds
#   cpu_ns PID                  PID's run time in ns, summed over its live threads' schedstat (exact)
#   tick_ns PID                 PID's utime + stime in ns: the kernel's sum over all its threads, the
#                               exited ones too (Go ends threads), in clock ticks
#   bench_daemon_start NAME CONFIG LOG   `pullwatch daemon` ($PW) in the background (its pid in dpid),
#                               until its control socket answers, then past its first samples
#                               (INTERVAL + 1 s); exit 1 with its log's tail when it does not start
#   bench_daemon_stop           SIGTERM to dpid's daemon, waited for

bench_bed_args() { # NAME "$@"
	local name=$1
	shift
	own_bed=1
	if [ "${1:-}" = --bed ]; then
		BED_DIR=$2 own_bed=0
		[ -f "$BED_DIR/env" ] || { echo "$name: no bed in $BED_DIR" >&2; exit 2; }
	fi
}

bench_bed_start() { # TITLE [bed.sh start ARGS...]
	local title=$1
	shift
	if [ "$own_bed" = 1 ]; then
		BED_DIR=$(mktemp -d /tmp/pwbench.XXXXXX)
		export BED_DIR
		if ! BED_ROW=${BED_ROW:-bookworm} tests/bed/bed.sh start "$@" >/dev/null 2>"$BED_DIR.log"; then
			printf '### %s\n\n(not measured: the bed did not start; see %s.log)\n\n' "$title" "$BED_DIR"
			exit 1
		fi
		rm -f "$BED_DIR.log"
	fi
	# shellcheck disable=SC1091
	source "$BED_DIR/env"
}

bench_bed_stop() {
	[ "${own_bed:-0}" = 0 ] || [ -z "${BED_DIR:-}" ] || tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true
}

median() { sort -n | awk '{a[NR]=$1} END {if (NR) print (NR%2) ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2; else print "-"}'; }
now() { date +%s.%N; }
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $1} END {printf "%.0f\n", s}'; }
tick_ns() { sed 's/.*) //' "/proc/$1/stat" | awk -v t="$((1000000000 / $(getconf CLK_TCK)))" '{printf "%.0f\n", ($12 + $13) * t}'; }

dpid=
bench_daemon_start() { # NAME CONFIG LOG
	local i
	"$PW" daemon --config "$2" >>"$3" 2>&1 &
	dpid=$!
	for ((i = 0; i < 200; i++)); do
		"$PW" status --config "$2" --json >/dev/null 2>&1 && break
		sleep 0.1
	done
	"$PW" status --config "$2" --json >/dev/null 2>&1 ||
		{ echo "$1: the daemon did not start:" >&2; tail -n 20 "$3" >&2; exit 1; }
	sleep $((${INTERVAL:-1} + 1)) # past its first samples
}
bench_daemon_stop() {
	[ -n "$dpid" ] || return 0
	kill -TERM "$dpid" 2>/dev/null || true
	wait "$dpid" 2>/dev/null || true
	dpid=
}
