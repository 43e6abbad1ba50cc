#!/usr/bin/env bats
# `make image` run the way deploy/kubernetes/pullwatch-daemonset.yaml runs it, through the bed's dockerd:
# the image from scripts/image.py (FROM scratch), loaded with `docker load` and accepted by `ctr images
# import`; `docker run` arguments derived from the manifest by tests/bed/daemonset.py (host pid and
# network namespaces, the securityContext, every volumeMount: the containerd socket and root, journald's
# socket directory, machine-id, state, and the two ConfigMaps projected the kubelet's way with ..data
# symlinks). The container preheats into the bed's containerd, reloads a list change made by swapping
# ..data, alerts to journald and answers `pullwatch status`; `docker inspect` is checked against the
# manifest (same mounts, same capabilities).

load helpers
load pw_helpers

REPO=$(realpath -m "$BATS_TEST_DIRNAME/../..")
MANIFEST=$REPO/deploy/kubernetes/pullwatch-daemonset.yaml
DS=$REPO/tests/bed/daemonset.py

# journald_start, journal, wait_journal: pw_helpers.bash
dk() { docker -H "unix://$DOCKER_SOCK" "$@"; }

# `kubectl exec ds/pullwatch -- pullwatch status`
ds_status() { timeout 20 docker -H "unix://$DOCKER_SOCK" exec pullwatch-ds pullwatch status --json --config /etc/pullwatch/config/pullwatch.yaml; }

wait_ds_status() { # SECS JQ-CONDITION: wait_status, asking the container
	STATUS_FN=ds_status wait_status "$@" || { dk logs --tail 30 pullwatch-ds >&2 || true; return 1; }
}

ready() { printf '(.preheat | map(select(.image == "%s" and .state == "ready")) | length) == 1' "$1"; }

# A ConfigMap volume as the kubelet writes it: a timestamped dir, ..data -> it, KEY -> ..data/KEY;
# an update is a new dir and a rename of ..data_tmp over ..data.
cm_publish() { # DIR KEY CONTENT-FILE
	local dir=$1 key=$2 ts
	ts="..$(date +%Y_%m_%d_%H_%M_%S).$RANDOM$RANDOM"
	mkdir -p "$dir/$ts"
	cp "$3" "$dir/$ts/$key"
	ln -sfn "$ts" "$dir/..data_tmp"
	mv -T "$dir/..data_tmp" "$dir/..data"
	[ -L "$dir/$key" ] || ln -s "..data/$key" "$dir/$key"
}

# the embedded file of a ConfigMap in the manifest
cm_data() { # CONFIGMAP KEY
	python3 -c 'import sys, yaml
for d in yaml.safe_load_all(open(sys.argv[1])):
    if d and d.get("kind") == "ConfigMap" and d["metadata"]["name"] == sys.argv[2]:
        sys.stdout.write(d["data"][sys.argv[3]])' "$MANIFEST" "$1" "$2"
}

setup_file() {
	bed_require docker nsenter journalctl /lib/systemd/systemd-journald python3 jq
	require_pullwatch
	bed_start
	journald_start "$BED_DIR/journal" "$REPO"
	IMAGE_REF=pullwatch:$("$PULLWATCH" --version | cut -d' ' -f2)
	python3 "$REPO/scripts/image.py" "$PULLWATCH" "$BED_DIR/pullwatch-image.tar" "$IMAGE_REF" >"$BED_DIR/image.json"
	push_image test/ds-a v1 256KiB,64KiB >/dev/null
	push_image test/ds-b v1 128KiB >/dev/null
	IMG_A=$PROXY_ADDR/test/ds-a:v1 IMG_B=$PROXY_ADDR/test/ds-b:v1
	# the node: host paths the manifest's volumes name, here under the bed
	echo 0123456789abcdef0123456789abcdef >"$BED_DIR/machine-id"
	mkdir -p "$BED_DIR/ds/state" "$BED_DIR/ds/run" "$BED_DIR/ds/tmp" "$BED_DIR/ds/config" "$BED_DIR/ds/preheat" \
		"$BED_DIR/ds/credentials"
	# the manifest's own pullwatch.yaml, with a splay and recheck that fit a test
	cm_data pullwatch-config pullwatch.yaml | sed -e 's/^\(  *splay:\).*/\1 0s/' -e 's/^\(  *recheck:\).*/\1 2s/' \
		>"$BED_DIR/pullwatch.yaml"
	printf -- '- %s\n' "$IMG_A" >"$BED_DIR/list.yaml"
	cm_publish "$BED_DIR/ds/config" pullwatch.yaml "$BED_DIR/pullwatch.yaml"
	cm_publish "$BED_DIR/ds/preheat" preheat.yaml "$BED_DIR/list.yaml"
	export BED_DS_CONTAINERD_SOCK=$CONTAINERD_SOCK BED_DS_CONTAINERD_ROOT=$CONTAINERD_ROOT \
		BED_DS_JOURNAL=$JDIR/socket BED_DS_MACHINE_ID=$BED_DIR/machine-id \
		BED_DS_STATE=$BED_DIR/ds/state BED_DS_RUN=$BED_DIR/ds/run BED_DS_TMP=$BED_DIR/ds/tmp \
		BED_DS_CONFIG=$BED_DIR/ds/config BED_DS_PREHEAT=$BED_DIR/ds/preheat BED_DS_CREDENTIALS=$BED_DIR/ds/credentials
	export IMAGE_REF IMG_A IMG_B
}

teardown_file() {
	dk rm -f pullwatch-ds >/dev/null 2>&1 || true
	journald_stop
	bed_stop
}

@test "make image: a FROM-scratch tarball that docker load and ctr images import accept, tagged with the version" {
	jq -e --arg r "$IMAGE_REF" '.ref == $r and (.files | index("usr/bin/pullwatch")) != null' "$BED_DIR/image.json"
	# exactly what ldd names, and the binary
	want=$(ldd "$PULLWATCH" | grep -o '/[^ ]*' | sort -u | sed 's|^/||')
	for f in $want; do jq -e --arg f "$f" '.files | index($f) != null' "$BED_DIR/image.json" >/dev/null; done
	run dk load -i "$BED_DIR/pullwatch-image.tar"
	[ "$status" -eq 0 ]
	[[ "$output" == *"Loaded image: $IMAGE_REF"* ]]
	run ctr -a "$CONTAINERD_SOCK" -n pwimage images import "$BED_DIR/pullwatch-image.tar"
	[ "$status" -eq 0 ]
	ctr -a "$CONTAINERD_SOCK" -n pwimage images ls -q | grep -qx "docker.io/library/$IMAGE_REF"
	ctr -a "$CONTAINERD_SOCK" -n pwimage images rm "docker.io/library/$IMAGE_REF" >/dev/null
	run dk run --rm "$IMAGE_REF" --version
	[ "$status" -eq 0 ]
	[ "$output" = "pullwatch ${IMAGE_REF#pullwatch:}" ]
}

@test "the DaemonSet's way, through dockerd: preheats, alerts to journald, answers status; docker inspect matches the manifest" {
	mapfile -t args < <(python3 "$DS" args "$MANIFEST" "$IMAGE_REF")
	dk run -d --name pullwatch-ds "${args[@]}" >/dev/null
	wait_ds_status 60 "$(ready "$IMG_A")"
	cri_status "$IMG_A" | jq -e '.image != null'
	wait_journal 30 '.PULLWATCH_ALERT == "preheat-complete"' MESSAGE_ID=b9497fbecb0a4529b4ad38d29170f11b
	# the lockstep: what dockerd applied is what the manifest asks for
	dk inspect pullwatch-ds >"$BED_DIR/inspect.json"
	run python3 "$DS" check "$MANIFEST" "$BED_DIR/inspect.json"
	echo "$output"
	[ "$status" -eq 0 ]
	# ... and the check sees a manifest that drifted: one more capability, one mount writable
	sed -e 's/add: \["SYS_PTRACE"/add: ["NET_ADMIN", "SYS_PTRACE"/' \
		-e 's|{name: containerd-root, mountPath: /var/lib/containerd, readOnly: true}|{name: containerd-root, mountPath: /var/lib/containerd}|' \
		"$MANIFEST" >"$BED_DIR/drifted.yaml"
	run python3 "$DS" check "$BED_DIR/drifted.yaml" "$BED_DIR/inspect.json"
	[ "$status" -eq 1 ]
	[[ "$output" == *"cap_add"*"NET_ADMIN"* ]]
	[[ "$output" == *"mounts"*"/var/lib/containerd"* ]]
	# host pid namespace: the container sees the bed's containerd
	dk exec pullwatch-ds pullwatch status --config /etc/pullwatch/config/pullwatch.yaml | grep -q "preheat 1/1 ready"
}

@test "the DaemonSet's way: a list change published by swapping ..data is reloaded and preheated" {
	printf -- '- %s\n- %s\n' "$IMG_A" "$IMG_B" >"$BED_DIR/list2.yaml"
	cm_publish "$BED_DIR/ds/preheat" preheat.yaml "$BED_DIR/list2.yaml"
	wait_ds_status 60 "$(ready "$IMG_A") and $(ready "$IMG_B")"
	cri_status "$IMG_B" | jq -e '.image != null'
}
