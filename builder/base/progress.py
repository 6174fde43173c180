"""Progress on the terminal: which package, which stage, elapsed time."""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TextIO


@dataclass
class Progress:
    stream: TextIO = field(default_factory=lambda: sys.stderr)
    started: float = field(default_factory=time.monotonic)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def say(self, component: str, stage: str, detail: str = "") -> None:
        line = f"[{self.elapsed():7.1f}s] {component:<18} {stage:<10} {detail}".rstrip()
        with self._lock:
            print(line, file=self.stream, flush=True)
