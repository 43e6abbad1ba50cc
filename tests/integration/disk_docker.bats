#!/usr/bin/env bats
# Disk-aware pulls against a real dockerd (classic image store, overlay2) whose data root is a small
# tmpfs (disk.bats does the same for containerd): the image filesystem is found from dockerd's /info
# (DockerRootDir) and measured with statvfs. An image that cannot fit is not started (disk-pressure
# with the numbers, no registry bytes); a pull that runs out of space midway waits until the space is
# there (no attempt meanwhile), then pulls again. dockerd keeps nothing of a failed pull's unfinished
# layers (it downloads into <data-root>/tmp and deletes the partial file on the error), so the retry
# downloads every layer that was not registered again: the bound that holds is the first attempt's
# partial bytes plus one whole image, < 2x the image (not containerd's 1.5x).

load helpers
load pw_helpers

# A second dockerd, data root on a tmpfs of $1, on the bed's containerd (for containers only: the
# classic store pulls without it), with the bed's marker so bed_stop ends it even when a test fails.
start_small_dockerd() {
	SMALL=$BED_DIR/small-docker
	mkdir -p "$SMALL/root" "$SMALL/exec"
	echo '{}' >"$SMALL/daemon.json"
	mount -t tmpfs -o "size=$1" pwsmalld "$SMALL/root"
	(
		exec setsid env PWBED_OWNER="$BED_DIR" TMPDIR="$BED_DIR/tmp" PATH="$BED_DIR/bin:$PATH" \
			dockerd --data-root "$SMALL/root" --exec-root "$SMALL/exec" -H "unix://$SMALL/docker.sock" \
			--pidfile "$SMALL/docker.pid" --containerd "$CONTAINERD_SOCK" --config-file "$SMALL/daemon.json" \
			--iptables=false --ip-masq=false --bridge=none --userland-proxy=false \
			--storage-driver overlay2 --insecure-registry "$PROXY_ADDR" \
			</dev/null >"$SMALL/docker.log" 2>&1
	) &
	echo $! >"$SMALL/launch.pid"
	if ! wait_for 60 small_docker_ok; then
		tail -n 30 "$SMALL/docker.log" >&2
		return 1
	fi
	export SMALL
}

small_docker_ok() { curl -fsS --max-time 2 --unix-socket "$SMALL/docker.sock" http://localhost/_ping >/dev/null 2>&1; }

stop_small_dockerd() {
	[ -n "${SMALL:-}" ] || return 0
	local pid
	pid=$(cat "$SMALL/launch.pid" 2>/dev/null) || true
	if [ -n "$pid" ]; then
		kill "$pid" 2>/dev/null || true
		wait_for 30 bash -c "! kill -0 $pid"
	fi
	umount "$SMALL/root" 2>/dev/null || umount -l "$SMALL/root" 2>/dev/null || true
	rm -f "$SMALL/launch.pid"
}

setup_file() {
	bed_require fallocate
	require_pullwatch
	bed_start --no-docker
	start_small_dockerd 160m
	small_disk_config "$SMALL/docker.sock" /nonexistent/containerd.sock
}

teardown_file() {
	stop_small_dockerd
	bed_stop
}

blob_bytes() { proxy_counters -r '.blob_bytes'; }
held_is() { [ "$(proxy_counters -r .held)" -eq "$1" ]; }
avail_bytes() { df --output=avail -B1 "$SMALL/root" | tail -n 1 | tr -d ' '; }
# bytes of dockerd's downloads in progress (it writes them under <data-root>/tmp)
small_tmp_bytes() { du -sb "$SMALL/root/tmp" 2>/dev/null | awk '{ print $1 }'; }
tmp_at_least() { [ "$(small_tmp_bytes)" -ge "$1" ]; }

@test "disk (dockerd): a 120 MB image against 80 MB free is not started: disk-pressure with the numbers, no registry bytes" {
	stop_small_dockerd
	start_small_dockerd 80m
	push_image test/ddisk-big v1 40MiB,40MiB,40MiB >/dev/null
	proxy_reset
	f="$BATS_TEST_TMPDIR/out"
	pw_pull "$f" --runtime docker "$PROXY_ADDR/test/ddisk-big:v1"
	cat "$f.err" >&2
	[ "$PW_RC" -eq 1 ]
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-pressure"' | grep -q "needs 120"
	# the filesystem measured is dockerd's data root, as /info names it
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-pressure"' | grep -q "$SMALL/root"
	jq -e 'select(.event=="result") | (.ok | not) and (.reason | startswith("not started"))' "$f"
	[ -z "$(events "$f" '.event=="attempt"')" ]
	[ "$(blob_bytes)" -eq 0 ]
	stop_small_dockerd
	start_small_dockerd 160m
}

@test "disk (dockerd): out of space mid-pull, the retry waits for the space (statvfs) and pulls again: < 2x the image served" {
	img=$(push_image test/ddisk-mid v1 24MiB,8MiB)
	big=$(biggest_layer "$img")
	size=$(jq -r .total_blob_bytes <<<"$img") # layers and config: what a whole pull fetches
	proxy_reset
	proxy_rule "{\"digest\":\"$big\",\"stall_at\":12582912,\"stall_for\":\"forever\",\"first\":1}" >/dev/null
	f="$BATS_TEST_TMPDIR/out"
	pw_pull_bg "$f" --runtime docker "$PROXY_ADDR/test/ddisk-mid:v1"
	wait_for 60 held_is 1
	# the big layer's first 12 MiB are in dockerd's tmp dir: fill the disk, then let the body go on
	wait_for 60 tmp_at_least 12582912
	fallocate -l "$(avail_bytes)" "$SMALL/root/filler"
	curl -fsS -X POST "$PROXY_CONTROL/resume" >/dev/null
	wait_json "$f" '.event=="retry" and (.reason | startswith("waiting for disk space"))' 120
	events "$f" '.event=="diagnosis" and .diagnosis=="disk-full"' | grep -q 'no space left'
	# nothing pulls while the space is not there
	[ "$(jq -s '[.[] | select(.event=="attempt")] | length' "$f")" -eq 1 ]
	first=$(blob_bytes)
	rm -f "$SMALL/root/filler"
	pw_wait_bg
	cat "$f.err" >&2
	[ "$PW_RC" -eq 0 ]
	jq -e 'select(.event=="result") | .ok and .attempts == 2' "$f"
	served=$(blob_bytes)
	echo "served $served for an image of $size ($first before the wait)" >&2
	proxy_counters -c '.blobs | map_values({bytes, requests, range_requests})' >&2
	# the first attempt stopped short of the whole image; the retry fetched at most the whole image
	[ "$first" -lt "$size" ]
	[ "$served" -le $((first + size)) ]
	[ "$served" -lt $((size * 2)) ]
}
