"""Reading the installer while it runs: debconf's protocol stream, and stalls in it.

The installer is booted with DEBCONF_DEBUG=5, so cdebconf logs every command
it gets (`debconf: --> INPUT critical foo/bar`) and its answer (`debconf: <--
30 question skipped`, `<-- 0 question will be asked`) to the installer's
syslog, which the preseed's early_command copies live to the second serial
port (qemu writes it to a file). In an unattended install no
question is ever shown: one that "will be asked", followed by a GO that gets
no answer, is the frontend waiting for a person, i.e. a question the preseed
does not answer. Pure: the harness feeds lines and the clock.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

COMMAND = re.compile(r"debconf(?: \(\w+\))?: --> (\S+)\s*(.*)$")
REPLY = re.compile(r"debconf(?: \(\w+\))?: <-- (.*)$")


@dataclass
class Stall:
    questions: list[str]
    since: float

    def describe(self, now: float) -> str:
        names = ", ".join(self.questions)
        return (f"the installer waits for an answer to {names} (not preseeded; "
                f"no progress for {now - self.since:.0f} s)")


@dataclass
class DebconfWatch:
    grace_s: float = 30.0
    asked: list[str] = field(default_factory=list)   # since the last GO was answered
    last_input: str = ""
    last_progress: str = ""
    go_since: float | None = None
    _pending_input: str = ""
    commands: int = 0

    def feed(self, line: str, now: float) -> None:
        line = line.rstrip("\r\n")
        if (m := COMMAND.search(line)) is not None:
            self.commands += 1
            if self.go_since is not None:
                # debconf logs no reply to GO; the client's next command means it returned
                self.go_since = None
                self.asked = []
            verb, rest = m.group(1).upper(), m.group(2)
            if verb == "INPUT":
                parts = rest.split()
                self._pending_input = parts[-1] if parts else ""
                self.last_input = self._pending_input
            elif verb == "GO":
                self.go_since = now
            elif verb == "PROGRESS":
                parts = rest.split()
                if len(parts) >= 2 and parts[0].upper() in ("START", "INFO"):
                    self.last_progress = parts[-1]
            return
        if (m := REPLY.search(line)) is not None:
            reply = m.group(1)
            if self._pending_input and "will be asked" in reply:
                self.asked.append(self._pending_input)
            self._pending_input = ""

    def stall(self, now: float) -> Stall | None:
        if self.go_since is None or not self.asked or now - self.go_since < self.grace_s:
            return None
        return Stall(list(self.asked), self.go_since)

    def position(self) -> str:
        """Where the install is, for a report: the last question and progress step."""
        bits = [f"last question {self.last_input}" if self.last_input else "",
                f"last progress step {self.last_progress}" if self.last_progress else ""]
        return "; ".join(b for b in bits if b) or "no debconf activity seen"
