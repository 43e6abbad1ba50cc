#!/usr/bin/env bash
# rows.sh: the bed's runtime rows. A row is a (containerd, dockerd) pair from one Debian suite:
#
#   bookworm  containerd 1.6 + dockerd 20.10   the installed packages (nothing to fetch)
#   trixie    containerd 1.7 + dockerd 26      unpacked from trixie's .debs
#   unstable  containerd 2.1 + dockerd 28      unpacked from unstable's .debs
#
#   tests/bed/rows.sh fetch [ROW...]    download + unpack (default: every row); cached, idempotent
#   tests/bed/rows.sh path ROW          print the row's bin dirs (PATH prefix; empty for bookworm)
#   tests/bed/rows.sh versions ROW      print "containerd VERSION" and "dockerd VERSION" lines
#   tests/bed/rows.sh list              the row names
#
# Nothing is installed and the system's apt sources stay untouched: `apt-get update` and
# `apt-get download` run with a private sources list and private lists/cache dirs under the cache
# dir, built from the archive URI the system's own apt sources name; `dpkg-deb -x` unpacks into
# $BED_ROWS_CACHE/<row>/root (default /var/cache/pullwatch-bed). The binaries of these suites run
# unchanged on Debian 12 (Go binaries). A lock (flock) serialises
# concurrent fetches of one cache dir.
set -euo pipefail

CACHE=${BED_ROWS_CACHE:-/var/cache/pullwatch-bed}
ROWS="bookworm trixie unstable"
# packages per row: containerd (containerd, containerd-shim-runc-v2, ctr) and docker.io (dockerd,
# docker-proxy). Not runc nor tini (docker-init): trixie's and unstable's runc need glibc 2.38 and
# unstable's docker-init is a dangling symlink; pulls run no container, and the installed runc and
# docker-init (later in PATH) satisfy the daemons' start-up lookups.
PKGS="containerd docker.io"

log() { echo "rows: $*" >&2; }
die() { echo "rows: ERROR: $*" >&2; exit 1; }

valid_row() {
	case " $ROWS " in *" $1 "*) return 0 ;; esac
	die "unknown row '$1' (rows: $ROWS)"
}

# The archive URI of the system's own Debian sources: the first deb source whose suites include
# the release's codename (deb822 .sources first, then one-line .list files).
archive_uri() {
	local codename f
	codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -r "$f" ] || continue
		awk -v cn="$codename" '
			function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " cn " ") && uris != "") { split(uris, u, " "); print u[1]; found = 1; exit } types = suites = uris = "" }
			/^[[:space:]]*#/ { next }
			/^[[:space:]]*$/ { flush(); next }
			tolower($1) == "types:" { $1 = ""; types = $0 }
			tolower($1) == "suites:" { $1 = ""; suites = $0 }
			tolower($1) == "uris:" { $1 = ""; uris = $0; sub(/^ +/, "", uris) }
			END { if (!found) flush() }' "$f"
	done | head -n1 | grep . && return 0
	for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
		[ -r "$f" ] || continue
		# deb [options] URI suite component...
		sed -E 's/\[[^]]*\]//' "$f" | awk -v cn="$codename" '$1 == "deb" && $3 == cn { print $2; exit }'
	done | head -n1 | grep . && return 0
	return 1
}

row_dir() { echo "$CACHE/$1"; }

row_path() { # row: PATH prefix of the row's binaries ("" for the installed row)
	valid_row "$1"
	[ "$1" = bookworm ] && return 0
	local r
	r=$(row_dir "$1")/root
	echo "$r/usr/sbin:$r/usr/bin:$r/usr/libexec/docker/cli-plugins"
}

fetch_row() { # row
	local row=$1 d uri
	valid_row "$row"
	[ "$row" = bookworm ] && return 0
	d=$(row_dir "$row")
	if [ -e "$d/root/.complete" ]; then
		return 0
	fi
	uri=$(archive_uri) || die "no Debian archive URI in /etc/apt/sources.list{,.d}"
	log "fetching row $row from $uri (suite $row)"
	rm -rf "$d"
	mkdir -p "$d/apt/lists/partial" "$d/apt/cache/archives/partial" "$d/debs" "$d/root"
	printf 'deb %s %s main\n' "$uri" "$row" >"$d/apt/sources.list"
	: >"$d/apt/status"
	local apt=(apt-get -q -o Dir::Etc::SourceList="$d/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null
		-o Dir::State::Lists="$d/apt/lists" -o Dir::Cache="$d/apt/cache" -o Dir::State::status="$d/apt/status"
		-o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null
		-o APT::Architecture="$(dpkg --print-architecture)" -o APT::Sandbox::User=root)
	"${apt[@]}" update >"$d/apt.log" 2>&1 || { tail -n 20 "$d/apt.log" >&2; die "apt-get update for $row failed"; }
	# shellcheck disable=SC2086 # a list of package names
	(cd "$d/debs" && "${apt[@]}" download $PKGS >>"$d/apt.log" 2>&1) ||
		{ tail -n 20 "$d/apt.log" >&2; die "apt-get download for $row failed"; }
	local deb
	for deb in "$d"/debs/*.deb; do
		dpkg-deb -x "$deb" "$d/root"
	done
	find "$d/root" -xtype l -delete # dangling symlinks (docker-init -> tini-static) must not shadow the installed ones
	local p
	{
		for p in $PKGS; do
			printf '%s %s\n' "$p" "$(dpkg-deb -f "$d"/debs/"${p}"_*.deb Version)"
		done
	} >"$d/packages"
	row_versions "$row" >"$d/versions" || die "row $row: the unpacked binaries do not run"
	rm -rf "$d/apt/cache/archives" # the .debs stay in debs/
	touch "$d/root/.complete"
	log "row $row ready: $(tr '\n' ' ' <"$d/versions")"
}

row_versions() { # row: what the binaries say (bookworm: the installed ones)
	local row=$1 p cv dv
	valid_row "$row"
	p=$(row_path "$row")
	cv=$(PATH="$p${p:+:}$PATH" containerd --version | awk '{print $3}')
	dv=$(PATH="$p${p:+:}$PATH" dockerd --version | sed -E 's/^Docker version ([^,]+),.*/\1/')
	[ -n "$cv" ] && [ -n "$dv" ] || return 1
	# upstream versions: v1.7.24~ds1 -> 1.7.24, 2.1.9+unknown -> 2.1.9, 28.5.2+dfsg4 -> 28.5.2
	cv=${cv#v}
	printf 'containerd %s\ndockerd %s\n' "${cv%%[~+-]*}" "${dv%%[~+-]*}"
}

cmd_fetch() {
	local rows=("$@") row
	[ ${#rows[@]} -gt 0 ] || read -r -a rows <<<"$ROWS"
	for row in "${rows[@]}"; do valid_row "$row"; done
	mkdir -p "$CACHE"
	exec 9>"$CACHE/.lock"
	flock 9
	for row in "${rows[@]}"; do fetch_row "$row"; done
}

case "${1:-}" in
fetch) shift; cmd_fetch "$@" ;;
path) [ $# -eq 2 ] || die "usage: rows.sh path ROW"; row_path "$2" ;;
versions)
	[ $# -eq 2 ] || die "usage: rows.sh versions ROW"
	valid_row "$2"
	if [ "$2" != bookworm ] && [ -r "$(row_dir "$2")/versions" ]; then cat "$(row_dir "$2")/versions"; else row_versions "$2"; fi ;;
list) echo "$ROWS" ;;
*) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
