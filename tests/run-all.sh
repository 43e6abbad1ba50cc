#!/usr/bin/env bash
# Run every cmocka unit test and every bats integration test; end with "N passed, N failed".
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

if [ "${1:-}" != "--unit-only" ]; then
        for b in tests/integration/*.bats; do
                [ -f "$b" ] || continue
                name=$(basename "$b" .bats)
                out="$log_dir/$name.tap"
                start=$(date +%s)
                timeout 900 bats --tap "$b" >"$out" 2>&1
                rc=$?
                count_tap "$out"
                if [ $rc -ne 0 ]; then
                        grep -qE '^not ok ' "$out" || failed=$((failed + 1))
                        echo "FAIL bats $name (exit $rc, $(( $(date +%s) - start ))s):"
                        sed -n '/^not ok/,/^ok /p' "$out" | head -60
                else
                        echo "ok   bats $name ($(grep -cE '^ok ' "$out") tests, $(( $(date +%s) - start ))s)"
                fi
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
