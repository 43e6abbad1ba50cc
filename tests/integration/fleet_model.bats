#!/usr/bin/env bats
# fleet_model.bats: the invariants of `make bench-fleet`'s model (tests/bench/bench_fleet.c), from its
# --tsv rows (layer, nodes, seed fraction, splay s, concurrency, peak pulls at the registry, bytes from
# the registry, half the fleet ready s, whole fleet ready s, slowest pull B/s). Model times compared with
# each other, never with the clock: the P2P layer preheats a large fleet sooner than the registry alone,
# and a seed fraction of 1 (every node pulls from the registry) is exactly the registry alone.

setup_file() {
        REPO="$(cd "$BATS_TEST_DIRNAME/../.." && pwd)"
        PW_BUILD="${BUILD:-build}"
        local san=
        [[ $PW_BUILD == */san ]] && san=SANITIZE=1
        timeout 600 make -C "$REPO" --no-print-directory $san BUILD="$PW_BUILD" "$PW_BUILD/bench_fleet" \
                >"$BATS_FILE_TMPDIR/make.log" 2>&1 || { cat "$BATS_FILE_TMPDIR/make.log" >&3; return 1; }
        case $PW_BUILD in /*) FLEET="$PW_BUILD/bench_fleet" ;; *) FLEET="$REPO/$PW_BUILD/bench_fleet" ;; esac
        export FLEET
}

@test "with the P2P layer a 10,000-node fleet is preheated sooner than from the registry alone, which serves only the seeds" {
        run timeout 300 "$FLEET" --tsv
        [ "$status" -eq 0 ]
        echo "$output"
        # both layers, both fleets
        [ "$(awk '$1 == "registry" && $2 == 10000' <<<"$output" | wc -l)" -ge 3 ]
        [ "$(awk '$1 == "p2p" && $2 == 10000' <<<"$output" | wc -l)" -ge 3 ]
        awk -F'\t' '
                $2 != 10000 { next }
                $1 == "registry" { if (!r || $9 < r) r = $9; rb = $7; rt[$4 " " $5] = $9; rp[$4 " " $5] = $6 }
                $1 == "p2p" { if (!p || $9 < p) p = $9; pb = $7; f = $3; pt[$4 " " $5] = $9; pp[$4 " " $5] = $6 }
                END {
                        # the best splay with the mirror beats the best splay without it
                        if (!(p < r)) { print "p2p best " p " s, registry best " r " s"; exit 1 }
                        # the registry serves the seeds only: ceil(f x N) x K x S of N x K x S
                        if (!(pb < rb) || pb / rb < f - 1e-9 || pb / rb >= f + 1 / 10000) { print "bytes p2p " pb " registry " rb " f " f; exit 1 }
                        # same splay and concurrency, a splay short of the registry-only fit (0s, 2m):
                        # sooner, and fewer pulls open at the registry
                        n = 0
                        for (k in pt) {
                                split(k, s, " ")
                                if (!(k in rt) || s[1] > 600) continue
                                n++
                                if (!(pt[k] < rt[k]) || !(pp[k] < rp[k])) { print "row " k ": " pt[k] " " pp[k] " vs " rt[k] " " rp[k]; exit 1 }
                        }
                        if (n < 3) { print "only " n " rows to compare"; exit 1 }
                }' <<<"$output"
}

@test "with --seed-fraction 1 every P2P row is the registry-only row with the same splay and concurrency" {
        run timeout 300 "$FLEET" --tsv --seed-fraction 1
        [ "$status" -eq 0 ]
        echo "$output"
        awk -F'\t' '
                { key = $2 " " $4 " " $5; row = $3; for (i = 6; i <= NF; i++) row = row " " $i }
                $1 == "registry" { reg[key] = row }
                $1 == "p2p" { p2p[key] = row; n++ }
                END {
                        if (n < 10) { print "only " n " P2P rows"; exit 1 }
                        for (k in p2p)
                                if (!(k in reg) || p2p[k] != reg[k]) { print k ": p2p " p2p[k] " registry " reg[k]; exit 1 }
                }' <<<"$output"
}

@test "a bad flag or value stops bench_fleet with exit 2 and a line naming the flag" {
        local -a cases=(
                "--seed-fraction 0" "--seed-fraction 1.5" "--seed-fraction -0.1" "--seed-fraction ten"
                "--images 0" "--images 2.5" "--size 0" "--size 1GiB" "--registry-bw nan" "--node-bw -1"
        )
        local c
        for c in "${cases[@]}"; do
                # shellcheck disable=SC2086
                run "$FLEET" --tsv $c
                echo "$c: $status: $output"
                [ "$status" -eq 2 ]
                [[ ${lines[0]} == "bench_fleet: ${c%% *} '${c#* }': expected "* ]]
        done
        run "$FLEET" --tsv --bogus 1
        [ "$status" -eq 2 ]
        [[ ${lines[0]} == "bench_fleet: unknown flag '--bogus'" ]]
        run "$FLEET" --tsv --seed-fraction
        [ "$status" -eq 2 ]
        [[ ${lines[0]} == "bench_fleet: --seed-fraction needs a value" ]]
}
