#!/usr/bin/env bash
# Run every cmocka unit test and every bats integration test; end with "N passed, N failed".
# Runtime rows (tests/bed/rows.sh): every bats file runs on BED_ROW (default bookworm, the installed
# runtimes); the runtime-dependent ones run again on each row of BED_ROWS (default "trixie unstable";
# empty: none). A failure names its row: "FAIL bats containerd [unstable]".
# Exit non-zero when anything failed. Counts come from TAP output, so a crashed binary counts as a
# failure rather than vanishing.
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export PULLWATCH="$PWD/$BUILD/pullwatch"
passed=0 failed=0 skipped=0
log_dir=$(mktemp -d /tmp/pullwatch-check.XXXXXX)

count_tap() { # file label
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

# run_bats FILE ROW[/STORE]: one bats file on one runtime row (tests/bed/rows.sh), dockerd on its
# classic image store or on the containerd one (ROW/containerd), counted and summarized
run_bats() {
        local b=$1 row=${2%%/*} store=classic name label out start rc
        [ "$2" = "$row" ] || store=${2#*/}
        name=$(basename "$b" .bats)
        label=$name
        [ "$2" = "$DEFAULT_ROW" ] || label="$name [$2]"
        out="$log_dir/$name.${2//\//-}.tap"
        start=$(date +%s)
        BED_ROW=$row BED_DOCKER_STORE=$store timeout 900 bats --tap "$b" >"$out" 2>&1
        rc=$?
        count_tap "$out"
        if [ $rc -ne 0 ]; then
                grep -qE '^not ok ' "$out" || failed=$((failed + 1))
                echo "FAIL bats $label (exit $rc, $(( $(date +%s) - start ))s):"
                sed -n '/^not ok/,/^ok /p' "$out" | head -60
        else
                echo "ok   bats $label ($(grep -cE '^ok ' "$out") tests, $(( $(date +%s) - start ))s)"
        fi
}

# The whole suite on the default row; the runtime-dependent files again on every other row.
DEFAULT_ROW=${BED_ROW:-bookworm}
OTHER_ROWS=${BED_ROWS-trixie unstable}
ROW_FILES="docker_pull stall_matrix_docker containerd containerd_limit diagnoses daemon igzip"
# dockerd on the containerd image store (Docker 29's default), on the rows whose dockerd has it
STORE_ROWS=${BED_STORE_ROWS-unstable/containerd}
STORE_FILES="stall_matrix_docker daemon"
export BED_ROW=$DEFAULT_ROW

if [ "${1:-}" != "--unit-only" ]; then
        for b in tests/integration/*.bats; do
                [ -f "$b" ] || continue
                run_bats "$b" "$DEFAULT_ROW"
        done
        for row in $OTHER_ROWS; do
                [ "$row" = "$DEFAULT_ROW" ] && continue
                if ! tests/bed/rows.sh fetch "$row" >"$log_dir/rows-$row.log" 2>&1; then
                        failed=$((failed + 1))
                        echo "FAIL row $row: cannot fetch its runtimes:"; tail -5 "$log_dir/rows-$row.log"
                        continue
                fi
                for f in $ROW_FILES; do
                        run_bats "tests/integration/$f.bats" "$row"
                done
        done
        for row in $STORE_ROWS; do
                for f in $STORE_FILES; do
                        run_bats "tests/integration/$f.bats" "$row"
                done
        done
fi

echo "logs: $log_dir"
if [ "$skipped" -gt 0 ]; then
        # A skip hides a missing component; the bed installs everything, so a skip is a failure.
        echo "skipped tests count as failures: $skipped"
        failed=$((failed + skipped))
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
