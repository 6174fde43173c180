"""A root shell on the installed system's serial console (autologin set by the preseed's
late_command for this test): commands with markers, their output and exit status.

Not the VM harness's channel (cluster/vm/guest.py), and for a reason: there the
guest boots our own image with our agent on a virtio-serial port, and speaks one
JSON request and reply a line; here the system is what the Debian installer
installed, with nothing of ours in it, so the only way in is its console: a shell
prompt to wait for, echoed input, and markers around each command's output.  What
the two share is connecting to a unix socket qemu serves, a few lines each.
"""

from __future__ import annotations

import itertools
import re
import select
import socket
import time
from pathlib import Path

from builder.base.errors import ClusterStackError

# The console is a terminal, so trixie's ip(8) and systemctl colour their output
# (seen: "\x1b[32mUP" failed the bond check of an installed node on 2026-12-02).
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def plain(text: str) -> str:
    """A command's console output without colours, terminal modes and carriage returns."""
    return _ESCAPES.sub("", text).replace("\r", "")


class SerialShell:
    def __init__(self, path: Path, transcript: Path) -> None:
        self.path = path
        self.transcript = transcript
        self.sock: socket.socket | None = None
        self.buf = ""
        self._ids = itertools.count(1)

    def _connect(self, timeout: float) -> socket.socket:
        if self.sock is not None:
            return self.sock
        deadline = time.monotonic() + timeout
        while True:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(str(self.path))
                self.sock = s
                return s
            except OSError:
                s.close()
                if time.monotonic() > deadline:
                    raise ClusterStackError(f"no serial console socket at {self.path}") from None
                time.sleep(0.2)

    def _read(self, deadline: float) -> bool:
        sock = self._connect(10)
        ready, _, _ = select.select([sock], [], [], max(0.0, min(1.0, deadline - time.monotonic())))
        if not ready:
            return False
        data = sock.recv(65536)
        if not data:
            raise ClusterStackError("the installed system's serial console closed")
        text = data.decode("utf-8", "replace")
        with open(self.transcript, "a", encoding="utf-8") as f:
            f.write(text)
        self.buf += text
        return True

    def send(self, text: str) -> None:
        self._connect(10).sendall(text.encode())

    def wait_prompt(self, timeout: float) -> float:
        """Seconds until the autologin shell answers."""
        started = time.monotonic()
        deadline = started + timeout
        next_poke = started
        while time.monotonic() < deadline:
            if time.monotonic() >= next_poke:
                self.send("\n")
                next_poke = time.monotonic() + 5
            self._read(deadline)
            if re.search(r"root@[^\s:]+:[^\n]*# ?$", self.buf.rstrip("\r ") + " "):
                try:
                    self.run("true", timeout=30)
                    return time.monotonic() - started
                except ClusterStackError:
                    continue
        raise ClusterStackError(f"no root shell on the serial console in {timeout:.0f} s "
                                f"(transcript: {self.transcript})")

    def run(self, command: str, timeout: float = 60) -> tuple[int, str]:
        n = next(self._ids)
        self.buf = ""
        self.send(f"echo __B{n}__; {command}; echo __E{n}__ $?\n")
        done = re.compile(rf"__B{n}__\r?\n(.*?)__E{n}__ (\d+)", re.S)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if (m := done.search(self.buf)) is not None:
                return int(m.group(2)), plain(m.group(1))
            self._read(deadline)
        raise ClusterStackError(f"no answer to `{command}` on the serial console "
                                f"in {timeout:.0f} s")

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None
