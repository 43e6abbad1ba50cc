#!/usr/bin/env bash
# Run every cmocka unit test and every bats integration test; end with "N passed, N failed".
# Runtime rows (tests/bed/rows.sh): every bats file runs on BED_ROW (default bookworm, the installed
# runtimes); the runtime-dependent ones run again on each row of BED_ROWS (default "trixie unstable";
# empty: none), and dockerd's containerd-image-store files on each of BED_STORE_ROWS (default
# "unstable/containerd"; empty: none). Every (file, row) pair is one job; CHECK_JOBS (default 3)
# workers take jobs from one queue, longest first. Three on two cores: the bats files mostly wait on
# the bed's clocks (stall budgets, throttled transfers, the runtimes' own back-offs): stall_matrix_docker
# took 303 s of wall time for 36 s of CPU, so a third worker fills idle cores, not busy ones. Each
# test's time is in its TAP line ("in N ms", bats -T) and each job's in its summary line. A failure
# names its row: "FAIL bats containerd [unstable]". Exit non-zero when anything failed. Counts come
# from TAP output, so a crashed binary counts as a failure rather than vanishing.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export PULLWATCH="$PWD/$BUILD/pullwatch"
passed=0 failed=0 skipped=0
log_dir=$(mktemp -d /tmp/pullwatch-check.XXXXXX)
check_start=$(date +%s)

count_tap() { # file
	local f=$1 p f_ s
	p=$(grep -cE '^ok ' "$f" || true)
	f_=$(grep -cE '^not ok ' "$f" || true)
	s=$(grep -cE '^ok .*# (skip|SKIP)' "$f" || true)
	passed=$((passed + p - s)); failed=$((failed + f_)); skipped=$((skipped + s))
}

for t in "$BUILD"/tests/test_*; do
	[ -x "$t" ] || continue
	name=$(basename "$t")
	out="$log_dir/$name.tap"
	CMOCKA_MESSAGE_OUTPUT=TAP timeout 300 "$t" >"$out" 2>&1
	rc=$?
	count_tap "$out"
	if [ $rc -ne 0 ]; then
		grep -qE '^not ok ' "$out" || failed=$((failed + 1))
		echo "FAIL unit $name (exit $rc):"; grep -E '^not ok|^#' "$out" | head -20
	else
		echo "ok   unit $name ($(grep -cE '^ok ' "$out") tests)"
	fi
done
echo "$passed $failed $skipped" >"$log_dir/counts"

# run_bats FILE ROW[/STORE]: one bats file on one runtime row (tests/bed/rows.sh), dockerd on its
# classic image store or on the containerd one (ROW/containerd); its summary on stdout, its counts
# appended to $log_dir/counts
run_bats() {
	local b=$1 row=${2%%/*} store=classic name label out start rc
	[ "$2" = "$row" ] || store=${2#*/}
	name=$(basename "$b" .bats)
	label=$name
	[ "$2" = "$DEFAULT_ROW" ] || label="$name [$2]"
	out="$log_dir/$name.${2//\//-}.tap"
	start=$(date +%s)
	passed=0 failed=0 skipped=0
	BED_ROW=$row BED_DOCKER_STORE=$store timeout 900 bats -T --tap "$b" >"$out" 2>&1
	rc=$?
	count_tap "$out"
	if [ $rc -ne 0 ]; then
		echo "FAIL bats $label (exit $rc, $(( $(date +%s) - start ))s):"
		if grep -qE '^not ok ' "$out"; then
			sed -n '/^not ok/,/^ok /p' "$out" | head -60
		else
			failed=$((failed + 1)); tail -5 "$out"
		fi
	else
		echo "ok   bats $label ($(grep -cE '^ok ' "$out") tests, $(( $(date +%s) - start ))s)"
	fi
	flock "$log_dir/counts" sh -c 'echo "$1" >>"$2"' _ "$passed $failed $skipped" "$log_dir/counts"
}

DEFAULT_ROW=${BED_ROW:-bookworm}
OTHER_ROWS=${BED_ROWS-trixie unstable}
# the runtime-dependent files, run again on every other row
ROW_FILES="docker_pull stall_matrix_docker containerd containerd_limit diagnoses daemon igzip preheat_gc registry_tls cri_progress_timeout cri_service guard mirror"
# the flows real nodes pull, and report 000 as it happened, also on the newest runtimes
UNSTABLE_FILES="flows report000"
# dockerd on the containerd image store (Docker 29's default), on the rows whose dockerd has it
STORE_ROWS=${BED_STORE_ROWS-unstable/containerd}
STORE_FILES="stall_matrix_docker daemon docker_pull registry_tls diagnoses guard"
JOBS=${CHECK_JOBS:-${ROW_JOBS:-3}}
export BED_ROW=$DEFAULT_ROW

# weight FILE: its usual share of the wall time, so the queue starts with the longest jobs
weight() {
	case $1 in
	flows | stall_matrix_docker | guard) echo 9 ;;
	daemon | containerd | mirror | cri_service) echo 5 ;;
	registry_tls | diagnoses | disk | report000 | bed | fleet_model) echo 3 ;;
	*) echo 1 ;;
	esac
}

if [ "${1:-}" != "--unit-only" ]; then
	jobs_file=$log_dir/jobs
	{
		for b in tests/integration/*.bats; do
			[ -f "$b" ] && echo "$(weight "$(basename "$b" .bats)") $b $DEFAULT_ROW"
		done
		for row in $OTHER_ROWS; do
			[ "$row" = "$DEFAULT_ROW" ] && continue
			files=$ROW_FILES
			[ "$row" = unstable ] && files="$UNSTABLE_FILES $files"
			for f in $files; do echo "$(weight "$f") tests/integration/$f.bats $row"; done
		done
		for row in $STORE_ROWS; do
			for f in $STORE_FILES; do echo "$(weight "$f") tests/integration/$f.bats $row"; done
		done
	} | sort -s -k1,1nr >"$jobs_file"
	# every row's runtimes unpacked before the workers start (rows.sh serialises with flock, once)
	for row in $OTHER_ROWS $STORE_ROWS; do
		row=${row%%/*}
		[ "$row" = bookworm ] && continue
		if ! tests/bed/rows.sh fetch "$row" >"$log_dir/rows-$row.log" 2>&1; then
			echo "FAIL row $row: cannot fetch its runtimes:"; tail -5 "$log_dir/rows-$row.log"
			echo "0 1 0" >>"$log_dir/counts"
			sed -i "/ $row\(\/.*\)\?\$/d" "$jobs_file"
		fi
	done
	echo 0 >"$log_dir/next"
	njobs=$(wc -l <"$jobs_file")
	worker() { # take the next job from the queue until none is left
		local i line
		while :; do
			i=$(flock "$log_dir/next" sh -c 'i=$(cat "$1"); echo $((i + 1)) >"$1"; echo "$i"' _ "$log_dir/next")
			[ "$i" -lt "$njobs" ] || return 0
			line=$(sed -n "$((i + 1))p" "$jobs_file")
			set -- $line
			run_bats "$2" "$3" >"$log_dir/summary.$i" 2>&1
			flock "$log_dir/counts" cat "$log_dir/summary.$i"
		done
	}
	pids=()
	for ((w = 0; w < JOBS; w++)); do
		worker &
		pids+=($!)
	done
	wait "${pids[@]}"
	# the failures again, together at the end where a reader of a CI log looks first
	for ((i = 0; i < njobs; i++)); do
		if [ ! -s "$log_dir/summary.$i" ]; then
			echo "FAIL job $i ($(sed -n "$((i + 1))p" "$jobs_file")): it left no summary"
			echo "0 1 0" >>"$log_dir/counts"
		elif grep -q '^FAIL' "$log_dir/summary.$i"; then
			[ -n "${said_failures:-}" ] || echo "---- failures ----"; said_failures=1
			cat "$log_dir/summary.$i"
		fi
	done
fi

passed=0 failed=0 skipped=0
while read -r p f s; do
	passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
done <"$log_dir/counts"
echo "logs: $log_dir ($(( $(date +%s) - check_start )) s of tests, $JOBS workers)"
if [ "$skipped" -gt 0 ]; then
	# A skip hides a missing component; the bed installs everything, so a skip is a failure.
	echo "skipped tests count as failures: $skipped"
	failed=$((failed + skipped))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
