#!/bin/sh
# Install every build and test dependency from Debian packages, and fetch the test bed's runtime rows.
# Idempotent: apt-get update runs only when something is missing; the rows are cached.
set -eu
PKGS="build-essential pkg-config git ca-certificates
libcurl4-openssl-dev libjansson-dev libsystemd-dev libyaml-dev libprotobuf-c-dev protobuf-c-compiler libnghttp2-dev
libcmocka-dev bats jq curl python3 systemd
docker.io containerd docker-registry runc pigz zstd e2fsprogs iproute2 procps psmisc
clang gnuplot-nox valgrind go-md2man man-db perl python3-yaml time openssl bc"
missing=""
for p in $PKGS; do
        st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
        case "$st" in *"install ok installed"*) ;; *) missing="$missing $p" ;; esac
done
if [ -n "$missing" ]; then
        if [ "$(id -u)" != 0 ]; then
                echo "deps: missing:$missing (run as root: make deps)" >&2
                exit 1
        fi
        echo "deps: installing$missing"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends $missing
fi
# The test bed's other runtime rows (containerd 1.7 + dockerd 26, containerd 2.1 + dockerd 28):
# downloaded and unpacked once into /var/cache/pullwatch-bed, nothing installed (tests/bed/rows.sh).
if [ "$(id -u)" = 0 ]; then
        "$(dirname "$0")/../tests/bed/rows.sh" fetch
else
        echo "deps: not root: the bed's runtime rows are fetched by the first root test run" >&2
fi
