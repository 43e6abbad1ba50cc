#!/usr/bin/env python3
"""rusage.py OUT -- CMD...: runs CMD (stdin/stdout/stderr passed through) and writes to OUT its exact CPU:
"USER_S SYS_S MAXRSS_KIB" from wait4's rusage. Linux scales a child's utime/stime to its scheduler run
time (ns), so this is not the 10 ms tick /usr/bin/time -f %U prints. Exits with CMD's status."""
import os
import sys


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.stderr.write("usage: rusage.py OUT -- CMD...\n")
        return 2
    out, cmd = sys.argv[1], sys.argv[3:]
    pid = os.fork()
    if pid == 0:
        try:
            os.execvp(cmd[0], cmd)
        finally:
            os._exit(127)
    _, status, ru = os.wait4(pid, 0)
    with open(out, "w") as f:
        f.write("%.6f %.6f %d\n" % (ru.ru_utime, ru.ru_stime, ru.ru_maxrss))
    return os.waitstatus_to_exitcode(status) if status else 0


if __name__ == "__main__":
    sys.exit(main())
