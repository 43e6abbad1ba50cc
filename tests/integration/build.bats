#!/usr/bin/env bats
# The build's promises to a fresh machine: a missing library is named with its Debian package in one
# line, and `make deps` does nothing at all (no apt-get update) when everything is installed.

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")

@test "a missing library fails the build with one line naming its Debian package" {
	run env PKG_CONFIG_LIBDIR=/nonexistent make -C "$REPO" --no-print-directory -n all
	[ "$status" -ne 0 ]
	[[ "$output" == *"missing libcurl: apt-get install libcurl4-openssl-dev (or run: make deps)"* ]]
	[ "$(grep -c 'missing' <<<"$output")" -eq 1 ]
}

@test "make deps is a silent no-op when every package is installed" {
	run timeout 120 make -C "$REPO" --no-print-directory deps
	[ "$status" -eq 0 ]
	[ -z "$output" ]
}

@test "--version and --help answer without a runtime" {
	run "${PULLWATCH:-$REPO/build/pullwatch}" --version
	[ "$status" -eq 0 ]
	[[ "$output" == "pullwatch "* ]]
	run "${PULLWATCH:-$REPO/build/pullwatch}" --help
	[ "$status" -eq 0 ]
	for c in pull watch daemon status check-config; do [[ "$output" == *"  $c"* ]]; done
}
