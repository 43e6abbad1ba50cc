#!/usr/bin/env bats
# catalog.bats: systemd/pullwatch.catalog is accepted by journalctl's own importer, which builds the
# binary database `journalctl -x` reads, and every MESSAGE_ID of daemon/agent/alert_catalog.c is in it.
# Runs against a throwaway --root, so no journald and no write to the host's catalog are needed.

setup() {
        REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
        ROOT="$(mktemp -d)"
        mkdir -p "$ROOT/usr/lib/systemd/catalog"
        cp "$REPO/systemd/pullwatch.catalog" "$ROOT/usr/lib/systemd/catalog/"
        command -v journalctl >/dev/null || { echo "journalctl missing: apt-get install systemd" >&2; return 1; }
}

teardown() {
        rm -rf "$ROOT"
}

ids_in_source() {
        grep -o 'ID("[0-9a-f]\{32\}")' "$REPO/daemon/agent/alert_catalog.c" | cut -d'"' -f2 | sort
}

@test "journalctl --update-catalog builds a database from the catalog" {
        run timeout 30 journalctl --root="$ROOT" --update-catalog
        [ "$status" -eq 0 ]
        [ -s "$ROOT/var/lib/systemd/catalog/database" ]
}

@test "--list-catalog shows every alert kind's MESSAGE_ID once, defined by pullwatch" {
        timeout 30 journalctl --root="$ROOT" --update-catalog
        run timeout 30 journalctl --root="$ROOT" --list-catalog
        [ "$status" -eq 0 ]
        want="$(ids_in_source)"
        [ "$(echo "$want" | wc -l)" -ge 19 ]
        got="$(echo "$output" | awk '$2 == "pullwatch:" { print $1 }' | sort)"
        if [ "$got" != "$want" ]; then
                diff <(echo "$want") <(echo "$got") >&2 || true
                return 1
        fi
}

@test "the decompressor-hang entry names the remedy" {
        timeout 30 journalctl --root="$ROOT" --update-catalog
        run timeout 30 journalctl --root="$ROOT" --dump-catalog 68b0cfb7102247809926089a597b07b1
        [ "$status" -eq 0 ]
        [[ "$output" == *"Subject: Decompressor hung"* ]]
        [[ "$output" == *"MOBY_DISABLE_PIGZ=true"* ]]
        [[ "$output" == *"CONTAINERD_DISABLE_PIGZ=1"* ]]
        [[ "$output" == *"CONTAINERD_DISABLE_IGZIP=1"* ]]
        [[ "$output" == *"Support: man:pullwatch(8)"* ]]
}

@test "every entry has a body of its own in the database" {
        timeout 30 journalctl --root="$ROOT" --update-catalog
        for id in $(ids_in_source); do
                run timeout 30 journalctl --root="$ROOT" --dump-catalog "$id"
                [ "$status" -eq 0 ]
                # header (4-5 lines) + blank + at least three lines of body
                [ "$(echo "$output" | grep -c .)" -ge 8 ] || { echo "$id: short entry" >&2; return 1; }
        done
}
