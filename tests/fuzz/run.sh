#!/usr/bin/env bash
# Run each libFuzzer harness for FUZZ_SECONDS on its seed corpus (tests/fuzz/corpus/<name>, read
# only) plus a scratch corpus under build/fuzz/; fail when any harness crashes, leaks or times out.
# Crash inputs land in build/fuzz/artifacts/<name>/: add a fixed one to the seed corpus as regression.
set -u
cd "$(dirname "$0")/../.."
secs=${FUZZ_SECONDS:-60}
out=build/fuzz
failed=()

# Inputs longer than any real one only slow the search: a request line is 4 KiB at most, a stream
# message or manifest rarely over a few dozen.
max_len() {
	case $1 in
	fuzz_control) echo 4200 ;;
	fuzz_reference) echo 512 ;;
	fuzz_credentials | fuzz_config) echo 8192 ;;
	fuzz_registry | fuzz_docker_stream | fuzz_grpc_frames | fuzz_grpc_server) echo 65536 ;;
	*) echo 4096 ;;
	esac
}

for bin in "$@"; do
	name=$(basename "$bin")
	seeds=tests/fuzz/corpus/$name
	scratch=$out/corpus/$name
	art=$out/artifacts/$name
	mkdir -p "$scratch" "$art" "$seeds"
	log=$out/$name.log
	dict=()
	case $name in
	fuzz_config) dict=(-dict=tests/fuzz/yaml.dict) ;;
	fuzz_docker_stream | fuzz_registry | fuzz_control | fuzz_credentials) dict=(-dict=tests/fuzz/json.dict) ;;
	esac
	echo "== $name: ${secs}s, max_len $(max_len "$name"), $(ls "$seeds" | wc -l) seeds"
	"$bin" -max_total_time="$secs" -max_len="$(max_len "$name")" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$art/" "${dict[@]}" "$scratch" "$seeds" >"$log" 2>&1
	rc=$?
	grep -E '^stat::number_of_executed_units|^#[0-9]+.*DONE' "$log" | tail -2 | sed 's/^/   /'
	if [ $rc -ne 0 ]; then
		failed+=("$name")
		echo "FAIL $name (exit $rc), log $log:"
		grep -E 'ERROR: (AddressSanitizer|LeakSanitizer|libFuzzer)|runtime error|check failed|SUMMARY|Test unit written' "$log" | head -12 | sed 's/^/   /'
	fi
done

if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: ${#failed[@]} failed: ${failed[*]}"
	exit 1
fi
echo "fuzz: all $# harnesses clean for ${secs}s each"
