#!/usr/bin/env python3
"""sockact.py: start a daemon socket-activated, the way systemd's docker.socket starts dockerd.

This process binds and listens on the unix socket (as PID 1 does for docker.socket, so SO_PEERCRED
on a connection names this process, not the daemon), keeps it open, and forks the daemon with the
socket as fd 3 and LISTEN_FDS=1 / LISTEN_PID / LISTEN_FDNAMES. It also starts sleeping decoy
processes named like a runtime's helpers (tar, gzip, unpigz, ...) as its own children: outside the
daemon's process tree, exactly where unrelated tools sit on a real node. Their pids go to
--decoy-pids, one a line. SIGTERM/SIGINT: forwarded to the daemon; when it has exited, the decoys
are ended and this process exits with the daemon's status. --name sets the socket's
FileDescriptorName (LISTEN_FDNAMES; default the socket file's name). --respawn: a daemon that dies
without being told to (kill -9, a crash) is started again when the next connection waits on the
socket, as systemd re-activates a service from its socket unit; the connections that arrived
meanwhile queue in the listen backlog. Its pid goes to --pid-file at every start.

    sockact.py --socket PATH --decoy-dir DIR --decoy-pids FILE [--decoy NAME ...] [--name NAME]
               [--respawn] [--pid-file FILE] -- CMD ARGS...
"""
import argparse
import os
import select
import shutil
import signal
import socket
import sys


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--socket", required=True)
    ap.add_argument("--decoy-dir", required=True)
    ap.add_argument("--decoy-pids", required=True)
    ap.add_argument("--decoy", action="append", default=[])
    ap.add_argument("--child-path", help="PATH for the daemon (an interpreter wrapper such as pyenv's "
                    "shim may have changed this process's own)")
    ap.add_argument("--name")
    ap.add_argument("--respawn", action="store_true")
    ap.add_argument("--pid-file")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()
    cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
    if not cmd:
        ap.error("no command")

    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(a.socket)
    os.chmod(a.socket, 0o660)
    s.listen(128)

    # Decoys: a sleeping process whose comm is the helper's name (comm comes from the executed
    # file's name, so a symlink to sleep named "gzip" runs as "gzip").
    sleep = shutil.which("sleep") or "/bin/sleep"
    os.makedirs(a.decoy_dir, exist_ok=True)
    decoys = []
    for name in a.decoy or ["tar", "gzip", "unpigz"]:
        path = os.path.join(a.decoy_dir, name)
        if not os.path.lexists(path):
            os.symlink(sleep, path)
        pid = os.fork()
        if pid == 0:
            os.setpgid(0, 0)  # a signal to the bed's group must not be what ends them
            devnull = os.open(os.devnull, os.O_RDWR)
            for fd in (0, 1, 2):
                os.dup2(devnull, fd)
            os.closerange(3, 1024)
            os.execv(path, [name, "infinity"])
        decoys.append(pid)
    with open(a.decoy_pids + ".tmp", "w") as f:
        f.write("".join(f"{p}\n" for p in decoys))
    os.rename(a.decoy_pids + ".tmp", a.decoy_pids)

    def spawn():
        pid = os.fork()
        if pid == 0:
            fd = s.fileno()
            if fd != 3:
                os.dup2(fd, 3)
            os.set_inheritable(3, True)
            os.closerange(4, 1024)
            env = dict(os.environ, LISTEN_FDS="1", LISTEN_PID=str(os.getpid()),
                       LISTEN_FDNAMES=a.name or os.path.basename(a.socket))
            if a.child_path:
                env["PATH"] = a.child_path
            os.execvpe(cmd[0], cmd, env)  # looked up in env's PATH
        if a.pid_file:
            with open(a.pid_file + ".tmp", "w") as f:
                f.write(f"{pid}\n")
            os.rename(a.pid_file + ".tmp", a.pid_file)
        return pid

    child = spawn()
    stopping = False

    def forward(signum, frame):
        nonlocal stopping
        stopping = True
        try:
            os.kill(child, signum)
        except ProcessLookupError:
            pass

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 1
    while True:
        try:
            pid, st = os.waitpid(child, 0)
        except InterruptedError:
            continue
        except ChildProcessError:
            break
        if pid != child:
            continue
        status = os.waitstatus_to_exitcode(st)
        if not a.respawn or stopping:
            break
        # the socket stays open here; the next connection starts the daemon again
        while not stopping:
            try:
                r, _, _ = select.select([s], [], [], 1.0)
            except InterruptedError:
                continue
            if r:
                break
        if stopping:
            break
        child = spawn()
    for pid in decoys:
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
    try:
        os.unlink(a.socket)
    except FileNotFoundError:
        pass
    sys.exit(status if status >= 0 else 128 - status)


if __name__ == "__main__":
    main()
