# journald.sh (sourced): a real systemd-journald running standalone in a private mount namespace, for
# tests and the demo on machines where none runs. tmpfs on /run in that namespace, so its
# /run/systemd/journal/socket is where sd_journal_send writes from processes entered into it with
# `nsenter -t $JPID -m`; journal files bind-mounted out to $JDIR/log (read them with journalctl -D);
# a catalog database of its own. The host's /run, journal and catalog are untouched.
# Its socket directory is also a host directory, $JDIR/socket (/run/systemd/journal bind-mounted from
# it), so a container can be given journald the way a pod gets the node's: a bind mount of that dir.
#   journald_start DIR REPO   sets JDIR, JPID, JTIMEOUT_PID
#   journald_stop

journald_start() {
	JDIR=$1
	local repo=$2 i
	mkdir -p "$JDIR/log" "$JDIR/catdb" "$JDIR/catalog" "$JDIR/socket"
	cp /usr/lib/systemd/catalog/systemd.catalog "$repo/systemd/pullwatch.catalog" "$JDIR/catalog/"
	cat >"$JDIR/journald.conf" <<-EOF
		[Journal]
		Storage=volatile
		ReadKMsg=no
		RateLimitBurst=0
		ForwardToSyslog=no
		ForwardToWall=no
	EOF
	cat >"$JDIR/ns.sh" <<-EOF
		#!/bin/sh
		set -e
		mount -t tmpfs -o mode=0755 tmpfs /run
		mkdir -p /run/systemd/journal /run/log
		mount --bind "$JDIR/log" /run/log
		mount --bind "$JDIR/socket" /run/systemd/journal
		if [ -d /var/log/journal ]; then mount -t tmpfs tmpfs /var/log/journal; fi
		mount -t tmpfs tmpfs /var/lib/systemd
		mkdir -p /var/lib/systemd/catalog
		mount --bind "$JDIR/catdb" /var/lib/systemd/catalog
		mount --bind "$JDIR/catalog" /usr/lib/systemd/catalog
		mount --bind "$JDIR/journald.conf" /etc/systemd/journald.conf
		exec /lib/systemd/systemd-journald
	EOF
	timeout 900 unshare -m --propagation private sh "$JDIR/ns.sh" >"$JDIR/journald.log" 2>&1 3>&- &
	JTIMEOUT_PID=$!
	for ((i = 0; i < 100; i++)); do
		JPID=$(pgrep -P "$JTIMEOUT_PID" -x systemd-journal || true)
		if [ -n "$JPID" ] && timeout 5 nsenter -t "$JPID" -m test -S /run/systemd/journal/socket; then
			export JDIR JPID JTIMEOUT_PID
			return 0
		fi
		sleep 0.1
	done
	echo "journald did not come up:" >&2
	cat "$JDIR/journald.log" >&2
	return 1
}

journald_stop() {
	[ -n "${JTIMEOUT_PID:-}" ] || return 0
	kill -TERM "$JTIMEOUT_PID" 2>/dev/null || true
	timeout 20 tail --pid="$JTIMEOUT_PID" -f /dev/null || kill -KILL "$JPID" 2>/dev/null || true
}
