#!/usr/bin/env python3
"""rusage.py OUT -- CMD...: runs CMD (stdin/stdout/stderr passed through) and writes to OUT its exact CPU:
"USER_S SYS_S MAXRSS_KIB WALL_S START" from wait4's rusage, CMD's wall time from its fork to its end and
the wall clock at its fork, also in OUT.start as soon as CMD runs (so a bench times CMD, not this interpreter's start-up: with pyenv's shim that
alone took 0.5 s); TERM and INT are passed on to CMD. Linux scales a child's utime/stime to its scheduler run
time (ns), so this is not the 10 ms tick /usr/bin/time -f %U prints. Exits with CMD's status."""
import os
import time
import signal
import sys


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write("usage: rusage.py OUT -- CMD...\n")
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    child = []
    # a TERM or INT for us is for CMD (a daemon stopped by the bench); set before the fork (exec resets
    # them to the default in the child)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda s, f: child and os.kill(child[0], s))
    start, t0 = time.time(), time.monotonic()
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    child.append(pid)
    with open(out + ".start", "w") as f:  # readable while CMD runs (a daemon the bench stops later)
        f.write("%.6f\n" % start)
    while True:
        try:
            _, status, ru = os.wait4(pid, 0)
            wall = time.monotonic() - t0
            break
        except InterruptedError:
            continue
    with open(out, "w") as f:
        f.write("%.6f %.6f %d %.6f %.6f\n" % (ru.ru_utime, ru.ru_stime, ru.ru_maxrss, wall, start))
    return os.waitstatus_to_exitcode(status) if status else 0


if __name__ == "__main__":
    sys.exit(main())
