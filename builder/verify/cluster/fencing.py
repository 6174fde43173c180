"""The harness side of fencing: a controller that fence_nsnode talks to.

A fence agent runs inside one node and cannot see any other node's
processes; the controller runs in the harness, which can. It listens on a
unix socket whose directory is bind-mounted into every node, executes
"off" (and "on", when the harness can boot a node again) and records every
request as a fencing event.
"""

from __future__ import annotations

import json
import logging
import socketserver
import threading
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from .options import FenceEvent

log = logging.getLogger("clusterstack.cluster")

# Where the controller's socket directory appears inside every node.
NODE_SOCKET_DIR = "/run/clusterstack-fence"
SOCKET_NAME = "fence.sock"
BROKEN_DELAY_S = 1.0


def agent_path() -> Path:
    """The fence agent script shipped with this package."""
    return Path(str(resources.files(__package__) / "agents" / "fence_nsnode"))


class FenceTarget:
    """What the controller needs of one node: its state and how to power it off and on."""

    def __init__(self, name: str, is_on: Callable[[], bool], power_off: Callable[[], None],
                 power_on: Callable[[], None] | None = None) -> None:
        self.name = name
        self.is_on = is_on
        self.power_off = power_off
        self.power_on = power_on


class FenceController:
    def __init__(self, socket_dir: Path, clock_start: float | None = None) -> None:
        self.socket_dir = socket_dir
        self.socket_path = socket_dir / SOCKET_NAME
        self.targets: dict[str, FenceTarget] = {}
        self.events: list[FenceEvent] = []
        self._start = clock_start if clock_start is not None else time.monotonic()
        self._lock = threading.Lock()  # one power action at a time, as on a real PDU
        self._server: socketserver.ThreadingUnixStreamServer | None = None
        self._thread: threading.Thread | None = None
        # A broken fence device (a PDU that does not answer): "off" and "on" fail.
        self._broken = threading.Event()

    def break_device(self) -> None:
        """From now on every power action fails, after a delay like a PDU's timeout."""
        self._broken.set()

    def repair_device(self) -> None:
        self._broken.clear()

    def add(self, target: FenceTarget) -> None:
        self.targets[target.name] = target

    def handle(self, request: dict) -> dict:
        """Answer one request of fence_nsnode; the socket plumbing is elsewhere."""
        action = request.get("action")
        if action == "list":
            return {"ok": True, "nodes": sorted(self.targets),
                    "status": {n: "on" if t.is_on() else "off"
                               for n, t in sorted(self.targets.items())}}
        node = request.get("node", "")
        target = self.targets.get(node)
        if target is None:
            return {"ok": False, "error": f"unknown node {node!r}"}
        if action == "status":
            return {"ok": True, "status": "on" if target.is_on() else "off"}
        if action not in ("off", "on"):
            return {"ok": False, "error": f"unknown action {action!r}"}
        with self._lock:
            at = time.monotonic() - self._start
            try:
                if self._broken.is_set():
                    # Fail slowly, as a dead PDU does, not in a tight retry loop.
                    time.sleep(BROKEN_DELAY_S)
                    raise RuntimeError("the fence device does not answer (broken by the harness)")
                if action == "off":
                    target.power_off()
                elif target.power_on is None:
                    raise RuntimeError("this harness cannot power nodes on")
                else:
                    target.power_on()
                result = "ok"
            except Exception as exc:  # reported to the agent, which fails the fencing
                result = f"failed: {exc}"
            event = FenceEvent(node=node, action=action,
                               requested_by=str(request.get("from", "?")), at=round(at, 3),
                               result=result)
            self.events.append(event)
            log.info("fencing: %s %s (asked by %s): %s", action, node, event.requested_by,
                     result)
        if result != "ok":
            return {"ok": False, "error": result}
        return {"ok": True, "status": "on" if target.is_on() else "off"}

    def start(self) -> None:
        self.socket_dir.mkdir(parents=True, exist_ok=True)
        self.socket_path.unlink(missing_ok=True)
        controller = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                try:
                    request = json.loads(self.rfile.readline() or b"{}")
                    reply = controller.handle(request)
                except ValueError as exc:
                    reply = {"ok": False, "error": f"bad request: {exc}"}
                self.wfile.write((json.dumps(reply) + "\n").encode())

        self._server = socketserver.ThreadingUnixStreamServer(str(self.socket_path), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever,
                                        name="fence-controller", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        self.socket_path.unlink(missing_ok=True)
