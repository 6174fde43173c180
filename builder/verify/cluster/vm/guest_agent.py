#!/usr/bin/python3
"""clusterstack-guest-agent: runs inside a VM guest; copied into the image as is (stdlib only).

The guests have no network beyond their private bridge and no ssh, so the
harness drives them over two virtio-serial ports that qemu connects to unix
sockets on the host:

- clusterstack.ctl: one JSON request per line from the host (run a command,
  write a file), one JSON reply per line back, strictly in turn;
- clusterstack.fence: the guest's fence agent (fence_nsnode, unchanged) talks
  to a unix socket here; each request is relayed as one line to the host's
  fence controller and its one-line answer relayed back.
"""

import base64
import glob
import json
import os
import socket
import subprocess
import sys
import threading
import time

FENCE_SOCKET = "/run/clusterstack-fence/fence.sock"
ENV = {"PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
       "HOME": "/root", "LANG": "C.UTF-8"}


def port(name: str) -> str:
    """The /dev node of the virtio-serial port called `name` (no udev here for the symlinks)."""
    for path in glob.glob("/sys/class/virtio-ports/*/name"):
        with open(path) as f:
            if f.read().strip() == name:
                return "/dev/" + path.split("/")[-2]
    raise SystemExit(f"no virtio port {name}")


class Port:
    def __init__(self, name: str) -> None:
        self.fd = os.open(port(name), os.O_RDWR)
        self.buf = b""

    def readline(self) -> bytes:
        while b"\n" not in self.buf:
            chunk = os.read(self.fd, 65536)
            if not chunk:
                time.sleep(0.1)  # the host side is not connected (yet): reads return nothing
                continue
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(self.fd, view)
            view = view[n:]


def handle(request: dict) -> dict:
    if "put" in request:
        path = request["put"]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(base64.b64decode(request["data"]))
        os.chmod(path, int(request.get("mode", "644"), 8))
        return {"rc": 0, "out": ""}
    argv = request["argv"]
    if request.get("detach"):
        # Daemons (corosync, pacemakerd) outlive the request; PID 1 adopts them.
        log = open(request.get("log", "/dev/null"), "ab")  # noqa: SIM115
        subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=ENV,
                         start_new_session=True)
        return {"rc": 0, "out": ""}
    try:
        proc = subprocess.run(argv, input=(request.get("input") or "").encode(),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=ENV,
                              timeout=request.get("timeout", 60))
        return {"rc": proc.returncode, "out": proc.stdout.decode("utf-8", "replace")}
    except subprocess.TimeoutExpired as exc:
        out = (exc.stdout or b"").decode("utf-8", "replace")
        return {"rc": -9, "out": out + f"\n(killed after {exc.timeout} s)\n"}
    except OSError as exc:
        return {"rc": 127, "out": str(exc)}


def serve_control() -> None:
    ctl = Port("clusterstack.ctl")
    while True:
        line = ctl.readline()
        try:
            request = json.loads(line)
            reply = handle(request)
            reply["id"] = request.get("id")
        except Exception as exc:  # one bad request must not end the agent
            reply = {"rc": 1, "out": f"agent error: {exc}", "id": None}
        ctl.write((json.dumps(reply) + "\n").encode())


def serve_fence() -> None:
    fence = Port("clusterstack.fence")
    lock = threading.Lock()
    os.makedirs(os.path.dirname(FENCE_SOCKET), exist_ok=True)
    if os.path.exists(FENCE_SOCKET):
        os.unlink(FENCE_SOCKET)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(FENCE_SOCKET)
    server.listen(8)

    def relay(conn: socket.socket) -> None:
        with conn:
            data = b""
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
            with lock:  # one request on the wire at a time: answers come back in order
                fence.write(data)
                answer = fence.readline()
            conn.sendall(answer + b"\n")

    while True:
        conn, _ = server.accept()
        threading.Thread(target=relay, args=(conn,), daemon=True).start()


def main() -> int:
    threading.Thread(target=serve_fence, daemon=True).start()
    serve_control()
    return 0


if __name__ == "__main__":
    sys.exit(main())
