#!/usr/bin/env bats
# The build's promises to a fresh machine: a missing library is named with its Debian package in one
# line, and `make deps` does nothing at all (no apt-get update) when everything is installed; the
# sources keep their dependency rules (HACKING.md: basic <- config <- probes <- daemon, no circles).

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

@test "dependencies run one way (basic <- config <- probes <- daemon) and no two files depend on each other in a circle" {
	run python3 "$REPO/scripts/check-deps.py" "${BUILD:-build}"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ "$output" == *"holds, no circles"* ]]
	# and calls were checked, not only includes: the objects were there
	[[ "$output" != *"not checked"* ]]
}

@test "the dependency check names an upward include with its file and line, and an include circle" {
	local t=$BATS_TEST_TMPDIR/tree
	mkdir -p "$t/basic" "$t/config" "$t/probes/registry" "$t/probes/docker" "$t/daemon/agent" "$t/daemon/pull" \
		"$t/daemon/misc"
	printf '#pragma once\n' >"$t/daemon/agent/agent.h"
	printf '#pragma once\n#include <stdio.h>\n#include "daemon/agent/agent.h"\n' >"$t/basic/log.h"
	printf '#pragma once\n#include "config/b.h"\n' >"$t/config/a.h"
	printf '#pragma once\n#include "a.h"\n' >"$t/config/b.h"
	# the wrong way between rooms of one floor: the registry asks a runtime, the pull engine the service
	printf '#pragma once\n' >"$t/probes/docker/docker.h"
	printf '#include "probes/docker/docker.h"\n' >"$t/probes/registry/registry.c"
	printf '#include "daemon/agent/agent.h"\n' >"$t/daemon/pull/pull_job.c"
	# a sub-folder that is no room
	printf '#pragma once\n' >"$t/daemon/misc/thing.h"
	run env CHECK_DEPS_ROOT="$t" python3 "$REPO/scripts/check-deps.py" "$BATS_TEST_TMPDIR/nobuild"
	echo "$output"
	[ "$status" -eq 1 ]
	[[ "$output" == *"basic/log.h:3: includes daemon/agent/agent.h: basic/ may include only basic/"* ]]
	[[ "$output" == *"circle: config/a.h config/b.h"* ]]
	[[ "$output" == *"probes/registry/registry.c:1: includes probes/docker/docker.h: probes/registry/ may include only"* ]]
	[[ "$output" == *"daemon/pull/pull_job.c:1: includes daemon/agent/agent.h: daemon/pull/ may include only"* ]]
	[[ "$output" == *"daemon/misc/thing.h: in no room"* ]]
	[[ "$output" == *"check-deps: 5 problem(s)"* ]]
}
