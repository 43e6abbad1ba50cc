#!/usr/bin/env bash
# timeline.sh EVENTS.json OUT.png [TITLE]: draw one `pullwatch pull --json` run as a PNG with gnuplot.
# One row per layer (first seen on top) with its phases as coloured spans over time and its download
# fraction as a thin line inside the span (flat = no bytes; phases shorter than 0.4 % of the axis are
# widened to stay visible); verdicts marked (stalled/hung/degraded
# red, silent-alive teal, dockerd's own retries orange); cancels and helper kills as red dashed
# lines; the attempts and the backoff between them on a row of their own; the result as a line.
set -euo pipefail
[ $# -ge 2 ] || { echo "usage: $0 EVENTS.json OUT.png [TITLE]" >&2; exit 2; }
events=$1 out=$2 title=${3:-}
command -v gnuplot >/dev/null || { echo "timeline.sh: gnuplot not found (apt-get install gnuplot-nox)" >&2; exit 1; }
command -v jq >/dev/null || { echo "timeline.sh: jq not found" >&2; exit 1; }
work=$(mktemp -d /tmp/pwtimeline.XXXXXX)
trap 'rm -rf "$work"' EXIT

# Everything is derived in one jq pass into tab-separated sections, split by awk below.
jq -s -r '
  def colors: {resolve: "#9467bd", waiting: "#bdbdbd", downloading: "#1f77b4", verifying: "#ff7f0e",
               extracting: "#2ca02c", registering: "#8c564b", done: "#d9f0d3"};
  # IEC, as pullwatch prints sizes
  def human: if . >= 1073741824 then "\(. / 107374182.4 | round / 10)GiB"
             elif . >= 1048576 then "\(. / 104857.6 | round / 10)MiB"
             elif . >= 1024 then "\(. / 102.4 | round / 10)KiB" else "\(.)B" end;
  . as $ev
  | ($ev | map(.t) | max // 0) as $tmax
  | ($ev | reduce (.[] | .layer // empty) as $l ([]; if any(.[]; . == $l) then . else . + [$l] end)) as $layers
  | ($layers | length) as $n
  | ($layers | to_entries | map({key: .value, value: ($n - .key)}) | from_entries) as $row
  | ($ev | map(.attempt // empty) | unique) as $attempts
  | ($attempts | map(. as $a | {key: "\($a)", value: {
        start: ([$ev[] | select(.attempt == $a) | .t] | min),
        end: ([$ev[] | select(.attempt == $a and (.event == "retry" or .event == "result")) | .t] | min
              // ([$ev[] | select(.attempt == $a) | .t] | max))}}) | from_entries) as $att
  # phase spans: each phase lasts until the layer next changes phase or its attempt ends
  | ([$ev[] | select(.event == "phase" and .layer)]
     | group_by([.attempt, .layer])
     | map(. as $g | range(0; length) as $i | $g[$i]
           | {attempt, layer, phase, start: .t,
              end: (if $i + 1 < ($g | length) then $g[$i + 1].t else $att["\(.attempt)"].end end)})) as $spans
  | "#meta\t\($n)\t\($tmax)\t\($attempts | length)",
    ($layers[] as $l | "#layer\t\($row[$l])\t\($l)\t\([$ev[] | select(.layer == $l) | .total // 0] | max | if . > 0 then human else "" end)"),
    ($spans[] | "#span\t\($row[.layer])\t\(.start)\t\(.end)\t\(colors[.phase] // "#000000")\t\(.phase)"),
    # download fraction: the points inside each downloading span, held flat to the span end
    ($spans[] | select(.phase == "downloading") as $s
     | ([$ev[] | select((.event == "progress" or .event == "phase") and .layer == $s.layer and
                        .attempt == $s.attempt and .phase == "downloading" and (.total // 0) > 0 and
                        .t >= $s.start and .t <= $s.end) | [.t, (.current / .total)]]) as $p
     | if ($p | length) > 0 then
         ($p[] | "#frac\t\(.[0])\t\($row[$s.layer] - 0.3 + 0.6 * .[1])"),
         "#frac\t\($s.end)\t\($row[$s.layer] - 0.3 + 0.6 * ($p | last | .[1]))", "#frac"
       else empty end),
    ($ev[] | select(.event == "verdict" and (.verdict == "stalled" or .verdict == "hung" or .verdict == "degraded"))
     | "#bad\t\(.t)\t\(if .layer then $row[.layer] else $n + 1 end)\t\(.verdict)"),
    ($ev[] | select(.event == "verdict" and .verdict == "silent-alive")
     | "#alive\t\(.t)\t\(if .layer then $row[.layer] else $n + 1 end)\t\(.verdict)"),
    ($ev[] | select(.event == "runtime-retry")
     | "#rretry\t\(.t)\t\(if .layer then $row[.layer] else $n + 1 end)\truntime retry"),
    # a cut is often two actions at once (kill-helper, then cancel): one line, one label
    ([$ev[] | select(.event == "action")] | group_by(.t * 10 | floor)[]
     | "#action\t\(.[0].t)\t\(map(.action) | unique | join(" + "))\([.[] | .layer // empty] | unique | if length > 0 then " " + join(",") else "" end)"),
    ($attempts[] as $a | "#attempt\t\($a)\t\($att["\($a)"].start)\t\($att["\($a)"].end)"),
    ($ev[] | select(.event == "retry") | "#backoff\t\(.t)\t\(.t + (.delay_s // 0))"),
    ($ev[] | select(.event == "diagnosis") | "#diag\t\(.diagnosis)"),
    ($ev[] | select(.event == "result")
     | "#result\t\(.t)\t\(.ok)\t\(if .ok then "ok: \(.attempts) attempt\(if .attempts == 1 then "" else "s" end), \(.elapsed_s)s"
                                   else "failed: \(.error // .reason // "" | tostring | .[0:60])" end)"),
    ($ev | map(select(.event == "attempt")) | first | "#image\t\(.image // "")\t\(.runtime // "")")
' "$events" >"$work/all.tsv"

sect() { awk -F'\t' -v k="#$1" 'BEGIN { OFS = "\t" } $1 == k { $1 = ""; sub(/^\t/, ""); print }' "$work/all.tsv"; }
read -r n tmax n_att < <(sect meta)
[ "${n:-0}" -gt 0 ] || { echo "timeline.sh: no layer events in $events" >&2; exit 1; }
sect span >"$work/spans"
sect frac | sed 's/^$//' >"$work/frac"
sect bad >"$work/bad"
sect alive >"$work/alive"
sect rretry >"$work/rretry"
IFS=$'\t' read -r image runtime < <(sect image) || true
diag=$(sect diag | sort -u | paste -sd, - | sed 's/,/, /g')
[ -n "$title" ] || title="pullwatch pull ${image}${runtime:+ ($runtime)}"

xmax=$(awk -v t="$tmax" 'BEGIN { printf "%.3f", t * 1.04 + 0.5 }')
minw=$(awk -v x="$xmax" 'BEGIN { printf "%.4f", x * 0.004 }')
top=$((n + 1))
height=$((170 + 46 * (n + 1)))
[ "$height" -ge 360 ] || height=360
{
	cat <<GP
set terminal pngcairo size 1400,$height font "DejaVu Sans,11" noenhanced
set output "$out"
set title "$title" font "DejaVu Sans,13"
set xlabel "seconds since the pull started${diag:+   |   diagnosis: $diag}"
set xrange [0:$xmax]
set yrange [0.35:$top+1.25]
set grid xtics lc rgb "#e0e0e0"
set border 3
set xtics nomirror out
set ytics nomirror out scale 0
set key outside bottom center horizontal maxcols 12 samplen 2.5 spacing 1
set style fill solid 1.0 noborder
set lmargin 19
GP
	# y labels: the attempts row on top, then the layers
	printf 'set ytics ("attempts" %d' "$top"
	sect layer | while IFS=$'\t' read -r y id size; do printf ', "%s %s" %s' "$id" "$size" "$y"; done
	echo ')'
	# attempts and the backoff between them
	sect attempt | while IFS=$'\t' read -r a s e; do
		shade=$([ $((a % 2)) -eq 1 ] && echo "#9ecae1" || echo "#c6dbef")
		echo "set object rect from $s,$top-0.28 to $e,$top+0.28 fc rgb \"$shade\" fs solid 1.0 noborder back"
		echo "set label \"attempt $a\" at $(awk -v s="$s" -v e="$e" 'BEGIN { print (s + e) / 2 }'),$top center front"
		echo "set arrow from $s,0.4 to $s,$top-0.3 nohead lc rgb \"#9e9e9e\" dt 3 back"
	done
	sect backoff | while IFS=$'\t' read -r s e; do
		echo "set object rect from $s,$top-0.12 to $e,$top+0.12 fc rgb \"#fdae6b\" fs pattern 4 border lc rgb \"#e6550d\" back"
	done
	# cuts: cancels and helper kills, labelled above the attempts row
	sect action | while IFS=$'\t' read -r t what; do
		echo "set arrow from $t,0.4 to $t,$top+0.3 nohead lc rgb \"#d62728\" lw 2 dt 2 front"
		echo "set label \"$what\" at $t,$top+0.62 center tc rgb \"#d62728\" front"
	done
	sect result | while IFS=$'\t' read -r t ok text; do
		c=$([ "$ok" = true ] && echo "#238b45" || echo "#a50f15")
		echo "set arrow from $t,0.4 to $t,$top+0.3 nohead lc rgb \"$c\" lw 2 front"
		echo "set label \"$text\" at $t,$top+1.0 right offset -0.5,0 tc rgb \"$c\" front"
	done
	# the plot: legend entries first (NaN), then spans, fractions and markers
	echo "plot \\"
	for p in "resolve #9467bd" "waiting #bdbdbd" "downloading #1f77b4" "verifying #ff7f0e" \
		"extracting #2ca02c" "registering #8c564b" "done #d9f0d3"; do
		set -- $p
		grep -qP "\t$1\$" "$work/spans" && echo "  NaN with boxes lc rgb \"$2\" title \"$1\", \\"
	done
	echo "  '$work/spans' using ((\$2+\$3)/2):1:((\$3-\$2)/2):(0.3):(int('0x'.substr(strcol(4),2,7))) with boxxyerror lc rgb variable notitle, \\"
	# a phase shorter than a few pixels (dockerd's instant "Verifying Checksum") drawn again, widened
	echo "  '$work/spans' using (\$3-\$2 < $minw ? \$2+$minw/2 : NaN):1:($minw/2):(0.3):(int('0x'.substr(strcol(4),2,7))) with boxxyerror lc rgb variable notitle, \\"
	[ -s "$work/frac" ] && echo "  '$work/frac' using 1:2 with lines lc rgb \"#08306b\" lw 1.5 title \"downloaded fraction\", \\"
	[ -s "$work/alive" ] && echo "  '$work/alive' using 1:2 with points pt 13 ps 2 lc rgb \"#17becf\" title \"silent-alive\", \\"
	[ -s "$work/rretry" ] && echo "  '$work/rretry' using 1:2 with points pt 2 ps 1.8 lw 2 lc rgb \"#fd8d3c\" title \"runtime's own retry\", \\"
	[ -s "$work/bad" ] && {
		echo "  '$work/bad' using 1:2 with points pt 7 ps 2 lc rgb \"#d62728\" title \"stalled / hung / degraded\", \\"
		echo "  '$work/bad' using 1:2:3 with labels offset 0,1.1 tc rgb \"#d62728\" font \",10\" notitle, \\"
	}
	echo "  NaN with lines lc rgb \"#d62728\" lw 2 dt 2 title \"cut (cancel / kill-helper)\", \\"
	echo "  NaN with boxes fs pattern 4 lc rgb \"#e6550d\" title \"backoff\""
} >"$work/plot.gp"
gnuplot "$work/plot.gp"
echo "$out"
