#!/usr/bin/env python3
# pty-drive.py - run a program on a pseudo-terminal, type the given
# keystrokes (Python string escapes, e.g. "read 0 1\r\x1b[A\r\x04") one
# chunk at a time, and print everything the program wrote.  For the
# blk-io shell tests (line editing, history, Ctrl-C, Ctrl-D).
# usage: pty-drive.py KEYS [KEYS...] -- PROGRAM ARGS...
# PTY_DELAY (seconds, default 0.3) is the pause before each chunk.
import os, pty, sys, time, select

delay = float(os.environ.get("PTY_DELAY", "0.3"))

sep = sys.argv.index("--")
chunks = [bytes(k, "utf-8").decode("unicode_escape").encode("latin-1") for k in sys.argv[1:sep]]
argv = sys.argv[sep + 1:]
pid, fd = pty.fork()
if pid == 0:
    os.execvp(argv[0], argv)
out = b""
def drain(t):
    global out
    end = time.time() + t
    while time.time() < end:
        r, _, _ = select.select([fd], [], [], 0.05)
        if r:
            try:
                d = os.read(fd, 4096)
            except OSError:
                return False
            if not d:
                return False
            out += d
    return True
drain(delay)
for c in chunks:
    os.write(fd, c)
    if not drain(delay):
        break
drain(1.0)
_, status = os.waitpid(pid, 0)
sys.stdout.write(out.decode("latin-1").replace("\r\n", "\n"))
sys.stdout.write("[exit %d]\n" % os.waitstatus_to_exitcode(status))
