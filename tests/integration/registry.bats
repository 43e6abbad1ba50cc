#!/usr/bin/env bats
# The registry probe and its diagnoses against the bed's real docker-registry and fault proxy, through
# tests/tools/regprobe: digests, Range (honoured by the registry, ignored by the proxy), an
# octet-stream config before a containerd pull, a missing platform, and token auth with credentials
# from a config.json (a second docker-registry on the same storage, tests/bed/tokenserver.py).

load pw_helpers

setup_file() {
	export BED_DIR
	BED_DIR=$(mktemp -d /tmp/pwbed-registry.XXXXXX)
	tests/bed/bed.sh start --no-docker --no-containerd >/dev/null
	# shellcheck disable=SC1091
	source "$BED_DIR/env"
	export REGISTRY_ADDR PROXY_ADDR PROXY_CONTROL BED_PUSHIMG REGISTRY_ROOT
	local build
	build=$(dirname "${PULLWATCH:-$PWD/build/pullwatch}")
	export REGPROBE=${REGPROBE:-$build/tests/regprobe}
	if [ ! -x "$REGPROBE" ]; then
		# not wired into the Makefile yet: build it from the library next to the binary
		REGPROBE=$BED_DIR/regprobe
		local san=""
		case "$build" in */san) san="-fsanitize=address,undefined" ;; esac
		# shellcheck disable=SC2046,SC2086
		cc -std=gnu11 -D_GNU_SOURCE -I. $san $(pkg-config --cflags libcurl jansson libsystemd yaml-0.1) \
			-o "$REGPROBE" tests/tools/regprobe.c "$build/libpullwatch.a" \
			$(pkg-config --libs libcurl jansson libsystemd yaml-0.1 libprotobuf-c) -lm
	fi
	python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo test/regprobe --tag v1 --layers 96KiB,32KiB \
		>"$BED_DIR/img-v1.json"
}

teardown_file() {
	# shellcheck disable=SC2046
	[ -s "$BED_DIR/token.pids" ] && kill $(cat "$BED_DIR/token.pids") 2>/dev/null
	tests/bed/bed.sh stop "$BED_DIR" >/dev/null 2>&1 || true
}

setup() {
	curl -fsS -X POST "$PROXY_CONTROL/reset" >/dev/null
}

probe() { # regprobe ARGS...: JSON in $OUT, exit status in $RC
	RC=0
	OUT=$(timeout 60 "$REGPROBE" "$@" 2>"$BATS_TEST_TMPDIR/err") || RC=$?
	echo "$OUT"
}

@test "resolve: the digest the registry has for the tag, its config and layers" {
	probe resolve "$REGISTRY_ADDR/test/regprobe:v1"
	[ "$RC" -eq 0 ]
	img=$BED_DIR/img-v1.json
	[ "$(jq -r .digest <<<"$OUT")" = "$(jq -r .digest "$img")" ]
	[ "$(jq -r .config.digest <<<"$OUT")" = "$(jq -r .config.digest "$img")" ]
	[ "$(jq -r '.layers | map(.digest) | join(",")' <<<"$OUT")" = "$(jq -r '.layers | map(.digest) | join(",")' "$img")" ]
	[ "$(jq -r .host <<<"$OUT")" = "$REGISTRY_ADDR" ]
	[ "$(jq -r .diagnosis <<<"$OUT")" = none ]
	# by digest as well
	probe resolve "$REGISTRY_ADDR/test/regprobe@$(jq -r .digest "$img")"
	[ "$RC" -eq 0 ]
}

@test "range: docker-registry honours Range with 206" {
	layer=$(jq -r '.layers[0].digest' "$BED_DIR/img-v1.json")
	probe range "$REGISTRY_ADDR/test/regprobe:v1" "$layer"
	[ "$RC" -eq 0 ]
	jq -e '.http_status == 206 and .honoured and .diagnosis == "none"' <<<"$OUT"
}

@test "range: a proxy that ignores Range is named as the hop" {
	curl -fsS -X POST "$PROXY_CONTROL/rules" -d '{"ignore_range": true}' >/dev/null
	layer=$(jq -r '.layers[0].digest' "$BED_DIR/img-v1.json")
	probe range "$PROXY_ADDR/test/regprobe:v1" "$layer"
	[ "$RC" -eq 0 ]
	jq -e --arg h "$PROXY_ADDR" '.http_status == 200 and (.honoured | not) and .host == $h
		and .diagnosis == "range-ignored" and (.diagnosis_text | contains($h))' <<<"$OUT"
	# the proxy really dropped the header
	curl -fsS "$PROXY_CONTROL/counters" | jq -e '.ranges_ignored >= 1'
}

@test "octet-stream config: diagnosed before a containerd pull, not for Docker" {
	python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo test/octet --tag old --layers 16KiB \
		--config-mediatype application/octet-stream >/dev/null
	probe --runtime containerd resolve "$REGISTRY_ADDR/test/octet:old"
	[ "$RC" -eq 0 ]
	jq -e '.config.media_type == "application/octet-stream" and .diagnosis == "octet-stream-config"
		and (.diagnosis_text | contains("current builder"))' <<<"$OUT"
	probe --runtime docker resolve "$REGISTRY_ADDR/test/octet:old"
	jq -e '.diagnosis == "none"' <<<"$OUT"
}

@test "index: the platform is chosen, a missing one is diagnosed" {
	img=$(python3 "$BED_PUSHIMG" --registry "$REGISTRY_ADDR" --repo test/idx --tag v1 --layers 8KiB --index)
	probe --platform linux/amd64 resolve "$REGISTRY_ADDR/test/idx:v1"
	[ "$RC" -eq 0 ]
	jq -e --arg m "$(jq -r .manifest_digest <<<"$img")" '.is_index and .manifest_digest == $m
		and .chosen_platform == "linux/amd64"' <<<"$OUT"
	probe --platform linux/arm64 resolve "$REGISTRY_ADDR/test/idx:v1"
	[ "$RC" -eq 0 ]
	jq -e '.platform_missing and .diagnosis == "no-platform" and .platforms == ["linux/amd64"]' <<<"$OUT"
}

@test "a missing tag fails with 404 and not-found" {
	probe resolve "$REGISTRY_ADDR/test/regprobe:nope"
	[ "$RC" -eq 1 ]
	jq -e '.http_status == 404 and .code == "MANIFEST_UNKNOWN" and .diagnosis == "not-found"' <<<"$OUT"
}

@test "token auth: works with credentials from config.json, fails clearly without, never prints them" {
	dir=$BED_DIR/token
	start_token_registry puller 'S3cret-pw'
	rport=${TOKEN_REGISTRY##*:}
	tport=${TOKEN_REALM##*:}; tport=${tport%%/*}

	printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$rport" "$(printf puller:S3cret-pw | base64)" \
		>"$dir/config.json"
	printf '{"auths":{}}\n' >"$dir/empty.json"

	probe --credentials "$dir/config.json" resolve "127.0.0.1:$rport/test/regprobe:v1"
	[ "$RC" -eq 0 ]
	[ "$(jq -r .digest <<<"$OUT")" = "$(jq -r .digest "$BED_DIR/img-v1.json")" ]

	probe --credentials "$dir/empty.json" resolve "127.0.0.1:$rport/test/regprobe:v1"
	[ "$RC" -eq 1 ]
	jq -e --arg r "http://127.0.0.1:$tport/token" '.http_status == 401 and .diagnosis == "auth"
		and .realm == $r and (.diagnosis_text | contains($r))' <<<"$OUT"

	printf '{"auths":{"127.0.0.1:%s":{"auth":"%s"}}}\n' "$rport" "$(printf puller:wrong-S3cret-pw | base64)" \
		>"$dir/wrong.json"
	probe --credentials "$dir/wrong.json" resolve "127.0.0.1:$rport/test/regprobe:v1"
	[ "$RC" -eq 1 ]
	jq -e '.diagnosis == "auth"' <<<"$OUT"
	[ -z "$(grep 'S3cret' <<<"$OUT")" ]
	[ -z "$(grep 'S3cret' "$BATS_TEST_TMPDIR/err")" ]
}
