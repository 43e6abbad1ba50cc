#!/usr/bin/env bash
# fleet.sh [--update]: the fleet model (build/bench_fleet: the daemon's own splay over 1,000 and 10,000
# synthetic machine-ids) as a markdown section on stdout and bench/fleet.png. tests/bench/run.sh calls it
# inside the whole bench; `make bench-fleet` runs it alone with --update, which replaces the section in
# bench/results.md without rerunning the rest. FLEET_ARGS passes inputs (--images K --size BYTES
# --registry-bw BYTES/S --node-bw BYTES/S).
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/pwfleet.XXXXXX)
trap 'rm -rf "$work"' EXIT

section() {
	echo "## Fleet model: splay and per-node concurrency against one registry"
	echo
	echo "The daemon's own splay function (\`preheat_splay_delay\`, machine-id x image) over synthetic"
	echo "machine-ids; each node pulls its images at most \`preheat.concurrency\` at once; the registry's"
	echo "bandwidth is shared fairly between open pulls, each node's link between its own. A fluid model"
	echo "(\`tests/bench/bench_fleet.c\`), not a measurement: it shows where the time and the connections go."
	echo
	# shellcheck disable=SC2086
	"$BUILD/bench_fleet" --curve "$work/curve" ${FLEET_ARGS:-}
	echo
	echo "Reading it: the registry's bandwidth sets the time to a preheated fleet (N x K x S / B) whatever"
	echo "the splay; the splay sets how many pulls share it. With no splay (or the default 2m on a large"
	echo "fleet) every node pulls at once and each pull crawls at B / (N x concurrency): near"
	echo "\`watchdog.trickle_rate\` (32 KiB/s) on 10,000 nodes, where healthy pulls start to look degraded."
	echo "A splay about N x K x S / B keeps the open pulls near the registry's capacity and every pull at a"
	echo "useful rate."
	echo
	if command -v gnuplot >/dev/null && gnuplot <<-GP >/dev/null 2>&1
		set terminal pngcairo size 1000,480 font "sans,10"
		set output "bench/fleet.png"
		set title "10,000 nodes: pulls open at the registry over time"
		set xlabel "hours"
		set ylabel "open pulls"
		set logscale y
		set key top right
		set grid
		plot "$work/curve.0.dat" using (\$1/3600):(\$2 > 0 ? \$2 : 1/0) with lines lw 2 lc rgb "#d62728" title "splay 0s, concurrency 2", \
		     "$work/curve.2.dat" using (\$1/3600):(\$2 > 0 ? \$2 : 1/0) with lines lw 2 lc rgb "#ff7f0e" title "splay 2m, concurrency 1", \
		     "$work/curve.3.dat" using (\$1/3600):(\$2 > 0 ? \$2 : 1/0) with lines lw 2 lc rgb "#2ca02c" title "splay N x K x S / B, concurrency 1"
	GP
	then
		echo "![fleet](fleet.png)"
		echo
		echo "\`bench/fleet.png\`: open pulls at the registry over time for 10,000 nodes (log scale)."
	else
		echo "(fleet plot not drawn: gnuplot missing or failed)"
	fi
	echo
}

mkdir -p bench
if [ "${1:-}" != --update ]; then
	section
	exit 0
fi
section >"$work/section.md"
if [ -f bench/results.md ]; then
	# replace the old section (heading to the next heading of its level), or append it
	awk -v f="$work/section.md" '
		/^## Fleet model/ { while ((getline l < f) > 0) print l; skip = 1; done = 1; next }
		skip && /^## / { skip = 0 }
		!skip { print }
		END { if (!done) { print ""; while ((getline l < f) > 0) print l } }' bench/results.md >"$work/results.md"
	mv "$work/results.md" bench/results.md
else
	cp "$work/section.md" bench/results.md
fi
cat "$work/section.md"
