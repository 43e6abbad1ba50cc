#!/usr/bin/env bats
# install.bats: `make install` into a DESTDIR lays out every file where systemd, journald, tmpfiles
# and man look for them, keeps an operator's /etc files, `make uninstall` takes back exactly what it
# put there, and the generated unit passes `systemd-analyze verify` (make verify-unit).

setup_file() {
        REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
        export REPO
        export PW_BUILD="${BUILD:-build}"
        # The binary is installed, so it must exist; no skip when it does not build.
        if [ ! -x "$REPO/$PW_BUILD/pullwatch" ]; then
                timeout 600 make -C "$REPO" BUILD="$PW_BUILD" all >&3 2>&1 || {
                        echo "# make all failed: cannot test install" >&3
                        return 1
                }
        fi
}

setup() {
        DEST="$(mktemp -d)"
        UNITDIR="$(pkg-config --variable=systemdsystemunitdir systemd 2>/dev/null || true)"
        UNITDIR="${UNITDIR:-/usr/lib/systemd/system}"
        TMPFILESDIR="$(pkg-config --variable=tmpfilesdir systemd 2>/dev/null || true)"
        TMPFILESDIR="${TMPFILESDIR:-/usr/lib/tmpfiles.d}"
}

teardown() {
        rm -rf "$DEST"
}

pw_make() {
        timeout 300 make -C "$REPO" --no-print-directory BUILD="$PW_BUILD" PREFIX=/usr DESTDIR="$DEST" "$@"
}

installed_files() {
        echo "/usr/bin/pullwatch"
        echo "$UNITDIR/pullwatch.service"
        echo "$UNITDIR/pullwatch-cri.socket"
        echo "/usr/lib/systemd/catalog/pullwatch.catalog"
        echo "$TMPFILESDIR/pullwatch.conf"
        echo "/usr/share/man/man8/pullwatch.8"
        echo "/usr/share/man/man5/pullwatch.yaml.5"
        echo "/etc/pullwatch/pullwatch.yaml"
        echo "/etc/pullwatch/preheat.yaml"
}

@test "make install lays out every file, and nothing else" {
        run pw_make install
        echo "$output"
        [ "$status" -eq 0 ]
        for f in $(installed_files); do
                [ -f "$DEST$f" ] || { echo "missing: $f" >&2; return 1; }
        done
        [ -x "$DEST/usr/bin/pullwatch" ]
        cmp "$REPO/$PW_BUILD/pullwatch" "$DEST/usr/bin/pullwatch"
        got="$(cd "$DEST" && find . -type f | sed 's|^\.||' | sort)"
        want="$(installed_files | sort)"
        [ "$got" = "$want" ] || { diff <(echo "$want") <(echo "$got") >&2; return 1; }
        # Examples verbatim
        cmp "$REPO/config/pullwatch.yaml.example" "$DEST/etc/pullwatch/pullwatch.yaml"
        cmp "$REPO/config/preheat.yaml.example" "$DEST/etc/pullwatch/preheat.yaml"
}

@test "the installed unit runs the installed binary and has no template left" {
        pw_make install
        unit="$DEST$UNITDIR/pullwatch.service"
        grep -qx 'ExecStart=/usr/bin/pullwatch daemon' "$unit"
        grep -qx 'Type=notify' "$unit"
        run grep -n '@[A-Z_]*@' "$unit"
        [ "$status" -eq 1 ]
}

@test "journald finds the installed catalog under the DESTDIR root" {
        pw_make install
        run timeout 30 journalctl --root="$DEST" --update-catalog
        [ "$status" -eq 0 ]
        run timeout 30 journalctl --root="$DEST" --list-catalog
        [ "$status" -eq 0 ]
        [ "$(echo "$output" | grep -c ' pullwatch: ')" -ge 19 ]
}

@test "systemd-tmpfiles creates the runtime and state dirs from the installed entry" {
        pw_make install
        run timeout 30 systemd-tmpfiles --root="$DEST" --create pullwatch.conf
        [ "$status" -eq 0 ]
        [ "$(stat -c %a "$DEST/run/pullwatch")" = 700 ]
        [ "$(stat -c %a "$DEST/var/lib/pullwatch")" = 700 ]
}

@test "the installed man pages render, with every alert kind in pullwatch(8)" {
        pw_make install
        command -v man >/dev/null || { echo "man missing: apt-get install man-db" >&2; return 1; }
        run env MANWIDTH=120 man -l "$DEST/usr/share/man/man8/pullwatch.8"
        [ "$status" -eq 0 ]
        [[ "$output" == *"EXIT STATUS"* ]]
        for id in $(grep -o 'ID("[0-9a-f]\{32\}")' "$REPO/daemon/agent/alert_catalog.c" | cut -d'"' -f2); do
                [[ "$output" == *"$id"* ]] || { echo "pullwatch(8) lacks $id" >&2; return 1; }
        done
        run env MANWIDTH=120 man -l "$DEST/usr/share/man/man5/pullwatch.yaml.5"
        [ "$status" -eq 0 ]
        [[ "$output" == *"watchdog.network_stall"* ]]
        [[ "$output" == *"PREHEAT LIST"* ]]
}

@test "a second install keeps an operator's changed /etc files" {
        pw_make install
        echo "runtime: docker   # mine" > "$DEST/etc/pullwatch/pullwatch.yaml"
        echo "- mine:1" > "$DEST/etc/pullwatch/preheat.yaml"
        run pw_make install
        [ "$status" -eq 0 ]
        [[ "$output" == *"keeping existing"* ]]
        [ "$(cat "$DEST/etc/pullwatch/pullwatch.yaml")" = "runtime: docker   # mine" ]
        [ "$(cat "$DEST/etc/pullwatch/preheat.yaml")" = "- mine:1" ]
}

@test "make uninstall removes what install put there and keeps modified config" {
        pw_make install
        echo "# tuned for this node" >> "$DEST/etc/pullwatch/pullwatch.yaml"
        run pw_make uninstall
        echo "$output"
        [ "$status" -eq 0 ]
        # Only the modified config is left; the untouched example went with the rest.
        got="$(cd "$DEST" && find . -type f | sed 's|^\.||')"
        [ "$got" = "/etc/pullwatch/pullwatch.yaml" ]
        [[ "$(cat "$DEST/etc/pullwatch/pullwatch.yaml")" == *"tuned for this node"* ]]
        [[ "$output" == *"keeping modified"* ]]
}

@test "make uninstall after an untouched install leaves no file" {
        pw_make install
        run pw_make uninstall
        [ "$status" -eq 0 ]
        [ -z "$(find "$DEST" -type f)" ]
        [ ! -e "$DEST/etc/pullwatch" ]
}

@test "make verify-unit passes (systemd-analyze verify and security threshold)" {
        run timeout 300 make -C "$REPO" --no-print-directory BUILD="$PW_BUILD" verify-unit
        echo "$output"
        [ "$status" -eq 0 ]
        [[ "$output" == *"verify-unit: ok"* ]]
}
