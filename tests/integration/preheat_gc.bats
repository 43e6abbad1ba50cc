#!/usr/bin/env bats
# The preheater next to kubelet's image garbage collection, on the bed's real containerd (CRI, k8s.io)
# with `pullwatch daemon`, a standalone journald and a short recheck, run the way daemon.bats runs it:
# preheat.pin labels every reference of a preheated image io.cri-containerd.pinned=pinned and removes
# the label when the image leaves the list, and CRI ImageStatus says pinned true, then false, on the
# containerds that report it (1.6.22+, 1.7+: the trixie and unstable rows); an image deleted twice through CRI (what kubelet's GC does)
# is re-pulled once, then held back with preheat-evicted, and pulled again once usage is below the low
# threshold.

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")

state_is() { printf '(.preheat | map(select(.image == "%s" and .state == "%s")) | length) == 1' "$1" "$2"; }

write_gc_config() { # LOW-THRESHOLD
	DOCKER_SOCK=/nonexistent/docker.sock pw_config "runtime: containerd
preheat:
  list: $BED_DIR/list/preheat.yaml
  concurrency: 2
  splay: 0s
  recheck: 1s
  evict_window: 1h
  pin: true
kubelet:
  image_gc_high_threshold: 95
  image_gc_low_threshold: $1
state_dir: $BED_DIR/state
control_socket: $BED_DIR/run/control.sock
alerts:
  rate_limit: 0s"
}

write_list() {
	local f=$BED_DIR/list/preheat.yaml
	shift 0
	printf -- '- %s\n' "$@" >"$f.tmp"
	mv -f "$f.tmp" "$f"
}

# every reference CRI made for IMAGE (tag, repo@digest, image id), one per line
refs_of() {
	local id
	id=$(cri_status "$1" | jq -r '.image.id')
	[ -n "$id" ] && [ "$id" != null ] || return 1
	# every reference CRI made points at the same manifest as the id's own reference
	ctr_ images ls | awk -v id="$id" 'NR > 1 { ref[NR] = $1; dig[NR] = $3; if ($1 == id) t = $3 }
		END { for (i in ref) if (dig[i] == t) print ref[i] }'
}

labels_of() { ctr_ images ls | awk -v r="$1" '$1 == r { print $NF }'; }

all_refs_pinned() { # IMAGE
	local r n=0
	for r in $(refs_of "$1" | sort -u); do
		labels_of "$r" | grep -q 'io.cri-containerd.pinned=pinned' || return 1
		n=$((n + 1))
	done
	[ "$n" -ge 3 ]
}

tag_unpinned() { ! labels_of "$1" | grep -q 'io.cri-containerd.pinned'; }

last_success() { status_json | jq -r --arg i "$1" '.preheat[] | select(.image == $i) | .last_success'; }

cd_has() { cri_status "$1" | jq -e '.image != null' >/dev/null; }
cd_lacks() { cri_status "$1" | jq -e '.image == null' >/dev/null; }

# containerd's CRI reports the label in ImageStatus.pinned from 1.6.22 on the 1.6 branch and from 1.7.0:
# exit 0 when this containerd does, 1 when not, 2 when its version cannot be read ("2.1.9+unknown",
# "v1.7.24", "1.6.20~ds1" all can)
cri_honours_pin() {
	local v
	v=$(ctr -a "$CONTAINERD_SOCK" version | awk '/Server:/ { s = 1 } s && /Version:/ { print $2; exit }')
	if ! [[ $v =~ ^v?([0-9]+)\.([0-9]+)\.([0-9]+) ]]; then
		echo "cannot read containerd's version from '$v'" >&2
		return 2
	fi
	local major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]} patch=${BASH_REMATCH[3]}
	((major > 1 || (major == 1 && (minor > 6 || (minor == 6 && patch >= 22)))))
}

cri_pinned_is() { cri_status "$1" | jq -e --argjson want "$2" '.image.pinned == $want' >/dev/null; }

setup_file() {
	bed_require nsenter journalctl /lib/systemd/systemd-journald python3 jq
	require_pullwatch
	bed_start --no-docker
	mkdir -p "$BED_DIR/list"
	push_image test/gc-pin v1 256KiB,64KiB >/dev/null
	push_image test/gc-evict v1 512KiB >/dev/null
	IMG_PIN=$PROXY_ADDR/test/gc-pin:v1 IMG_EVICT=$PROXY_ADDR/test/gc-evict:v1
	export IMG_PIN IMG_EVICT
	# usage of the bed's disk is above 1 %: an image held back stays held until the threshold moves
	write_gc_config 1
	daemon_bed_start
	write_list "$IMG_PIN" "$IMG_EVICT"
	daemon_start
}

teardown_file() {
	daemon_bed_stop
	bed_stop
}

@test "preheat.pin: every reference of a preheated image is labelled pinned; the label goes when the image leaves the list" {
	wait_status 60 "$(state_is "$IMG_PIN" ready) and $(state_is "$IMG_EVICT" ready)"
	wait_for 20 all_refs_pinned "$IMG_PIN"
	# CRI's own view (what kubelet's image GC reads): pinned in ImageStatus where containerd honours the
	# label; 1.6.20-1.6.21 (bookworm) predate the field, so there the labels above are all there is
	honours=0
	cri_honours_pin || honours=$?
	[ "$honours" -le 1 ]
	if [ "$honours" -eq 0 ]; then
		wait_for 20 cri_pinned_is "$IMG_PIN" true
	else
		cri_pinned_is "$IMG_PIN" false
	fi
	write_list "$IMG_EVICT"
	wait_for 20 tag_unpinned "$IMG_PIN"
	for r in $(refs_of "$IMG_PIN" | sort -u); do
		run labels_of "$r"
		[[ "$output" != *"io.cri-containerd.pinned"* ]]
	done
	# and CRI no longer reports it pinned: kubelet's GC may delete it now
	wait_for 20 cri_pinned_is "$IMG_PIN" false
	# unpinned, not removed: the image stays on the node
	cd_has "$IMG_PIN"
}

@test "preheat.pin: a tag moved to a new digest is pinned again, and the old image's references lose the label" {
	push_image test/gc-move v1 128KiB >/dev/null
	local img=$PROXY_ADDR/test/gc-move:v1 old_id old_refs r
	write_list "$IMG_EVICT" "$img"
	wait_status 60 "$(state_is "$img" ready)"
	wait_for 20 all_refs_pinned "$img"
	old_id=$(cri_status "$img" | jq -r .image.id)
	old_refs=$(refs_of "$img" | grep -v -x -F "$img")
	[ "$(wc -w <<<"$old_refs")" -ge 2 ] # repo@digest and the image id
	push_image test/gc-move v1 192KiB >/dev/null # the tag moves; the recheck pulls the new digest
	wait_for 60 eval '[ "$(cri_status "$img" | jq -r .image.id)" != "$old_id" ]'
	wait_for 20 all_refs_pinned "$img"
	for r in $old_refs; do
		wait_for 20 tag_unpinned "$r"
	done
	# unpinned, not removed: the old image is kubelet's GC's to delete
	ctr_ images ls | awk '{ print $1 }' | grep -q -x -F "$old_id"
}

@test "eviction churn: deleted once it is pulled again; deleted again within evict_window it is held (preheat-evicted, status), and tried again below the low threshold" {
	wait_status 60 "$(state_is "$IMG_EVICT" ready)"
	before=$(last_success "$IMG_EVICT")
	cri_rmi "$IMG_EVICT"
	# the recheck notices and pulls it again (a new success), without any alert
	wait_status 60 "(.preheat[] | select(.image == \"$IMG_EVICT\") | .last_success) != \"$before\""
	wait_status 60 "$(state_is "$IMG_EVICT" ready)"
	cd_has "$IMG_EVICT"
	# the pull made new references: they are pinned like the first ones
	wait_for 20 all_refs_pinned "$IMG_EVICT"
	[ -z "$(journal MESSAGE_ID=fb7ea850e43a4c29b9b032aec2c82654 2>/dev/null)" ]
	cri_rmi "$IMG_EVICT"
	wait_status 60 "$(state_is "$IMG_EVICT" evicted)"
	wait_journal 20 '.PULLWATCH_ALERT == "preheat-evicted" and (.MESSAGE | test("image garbage collection")) and (.MESSAGE | test("% used"))' \
		MESSAGE_ID=fb7ea850e43a4c29b9b032aec2c82654
	status_json | jq -e --arg i "$IMG_EVICT" '.preheat[] | select(.image == $i) | .error | test("evicted twice within 1h")'
	run timeout 20 "$PULLWATCH" status --config "$PW_CONFIG"
	[[ "$output" == *"1 evicted"* ]]
	# held: not pulled again while usage stays above the low threshold
	cd_lacks "$IMG_EVICT"
	[ "$(status_json | jq -r --arg i "$IMG_EVICT" '.preheat[] | select(.image == $i) | .state')" = evicted ]
	# usage now below the low threshold (it moved): tried again
	write_gc_config 90
	kill -HUP "$DAEMON_PID"
	wait_for 60 cd_has "$IMG_EVICT"
	wait_status 60 "$(state_is "$IMG_EVICT" ready)"
}
