#!/usr/bin/env bash
# fleet.sh [--update]: the fleet model (build/bench_fleet: the daemon's own splay over 1,000 and 10,000
# synthetic machine-ids, against the registry alone and with a P2P mirror layer) as a markdown section
# on stdout and bench/fleet.png. tests/bench/run.sh calls it inside the whole bench; `make bench-fleet`
# runs it alone with --update, which replaces the section in bench/results.md without rerunning the
# rest. FLEET_ARGS passes the model's inputs, each optional:
#   --images K            images each node preheats (default 2; a whole number, 1-1000)
#   --size BYTES          size of each image (default 1073741824, 1 GiB)
#   --registry-bw BYTES/S the registry's bandwidth, shared fairly between open pulls (default 1.25e9,
#                         10 Gbit/s)
#   --node-bw BYTES/S     each node's link, download and (P2P) upload each (default 1.25e8, 1 Gbit/s)
#   --seed-fraction F     with the P2P layer, the fraction of the nodes that pull from the registry;
#                         the others fetch from peers (default 0.1; 0 < F <= 1, 1 = no mirror layer)
# e.g. FLEET_ARGS="--seed-fraction 0.02 --size 4e9" make bench-fleet. A bad flag or value stops it
# with a line naming the flag (exit 2). build/bench_fleet --tsv prints the raw rows.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
work=$(mktemp -d /tmp/pwfleet.XXXXXX)
trap 'rm -rf "$work"' EXIT

section() {
	echo "## Fleet model: splay, per-node concurrency and a P2P mirror layer"
	echo
	echo "A model, not a measurement: nothing here was pulled. It is a fluid model stepped in time"
	echo "(\`tests/bench/bench_fleet.c\`) that shows where the time and the connections go. The daemon's own"
	echo "splay function (\`preheat_splay_delay\`, machine-id x image) over synthetic machine-ids; each node"
	echo "pulls its images at most \`preheat.concurrency\` at once; the registry's bandwidth B is shared"
	echo "fairly between open pulls, each node's link L between its own."
	echo
	echo "The P2P rows add a mirror layer (Spegel, Dragonfly or Kraken as the runtime's registry mirror):"
	echo
	echo "- a fraction f of the nodes, the seeds (the first f x N machine-ids), pull from the registry as"
	echo "  above; every other node pulls only from peers and never from the registry;"
	echo "- a peer pull gets only bytes some seed of that image already has (pieces in order, so it can"
	echo "  follow the furthest seed but not pass it), at most L shared by the node's own pulls;"
	echo "- every node holding bytes of an image uploads them, its upload L split between the images it"
	echo "  holds; links are full duplex (uploading does not slow a node's own download);"
	echo "- left out: latency, protocol overhead, peer churn, dead peers that stay listed (Spegel #1365),"
	echo "  a mirror that fails, and the misses a real mirror sends to the registry (Spegel answers 404 and"
	echo "  containerd goes to the next host; Dragonfly's scheduler lets a bounded number of peers go back"
	echo "  to source). With a real mirror, f is what those misses and seed peers add up to."
	echo
	# shellcheck disable=SC2086
	"$BUILD/bench_fleet" --curve "$work/curve" ${FLEET_ARGS:-}
	echo
	echo "Reading it: from the registry alone its bandwidth sets the time to a preheated fleet"
	echo "(N x K x S / B) whatever the splay; the splay sets how many pulls share it. With no splay (or the"
	echo "default 2m on a large fleet) every node pulls at once and each pull crawls at B / (N x concurrency):"
	echo "near \`watchdog.trickle_rate\` (32 KiB/s) on 10,000 nodes, where healthy pulls start to look"
	echo "degraded. A splay about N x K x S / B keeps the open pulls near the registry's capacity and every"
	echo "pull at a useful rate."
	echo
	echo "With the P2P layer the registry serves only the seeds, f x N x K x S, and the fleet is ready about"
	echo "when the seeds are: f x N x K x S / B, plus one image's time at node bandwidth (K x S / L), since"
	echo "the other nodes follow the seeds' bytes. The splay to set shrinks by the same factor, to about"
	echo "f x N x K x S / B: shorter crowds the registry with seeds that crawl (and the peers that follow"
	echo "them crawl with them); longer only delays the fleet. A splay left at the registry-only N x K x S / B"
	echo "after the mirror is deployed keeps the fleet waiting the whole registry-only time for nothing (the"
	echo "last P2P row of each fleet). And the preheat must start after the node's mirror is ready, or the"
	echo "nodes whose mirror is not up go to the registry as in the rows without it (OpenKruise #1679):"
	echo "pullwatch's preheat waits for a node-local mirror that does not answer (preheat.mirror_wait,"
	echo "\`deploy/kubernetes/README.md\`)."
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
		     "$work/curve.3.dat" using (\$1/3600):(\$2 > 0 ? \$2 : 1/0) with lines lw 2 lc rgb "#2ca02c" title "splay N x K x S / B, concurrency 1", \
		     "$work/curve.8.dat" using (\$1/3600):(\$2 > 0 ? \$2 : 1/0) with lines lw 2 lc rgb "#1f77b4" title "P2P, seeds only: splay f x N x K x S / B, concurrency 1"
	GP
	then
		echo "![fleet](fleet.png)"
		echo
		echo "\`bench/fleet.png\`: open pulls at the registry over time for 10,000 nodes (log scale); with"
		echo "the P2P layer only the seeds pull there."
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
	# replace the old section (heading to the next heading of its level, or the whole run's footer
	# after its "---"), or append it
	awk -v f="$work/section.md" '
		/^## Fleet model/ { while ((getline l < f) > 0) print l; skip = 1; done = 1; next }
		skip && (/^## / || /^---$/) { skip = 0 }
		!skip { print }
		END { if (!done) { print ""; while ((getline l < f) > 0) print l } }' bench/results.md >"$work/results.md"
	mv "$work/results.md" bench/results.md
else
	cp "$work/section.md" bench/results.md
fi
cat "$work/section.md"
