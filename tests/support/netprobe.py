"""A build that tries the network, and the loopback server that tells whether it got through.

The probe package's build step opens a TCP connection to a server the test
runs on the host's loopback and sends a tag.  The server records every tag
it receives: a tag that arrives is a build that reached the network.
"""

from __future__ import annotations

import socketserver
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NAME, VERSION = "netprobe", "1.0"
REACHED, UNREACHABLE = "network probe: REACHED", "network probe: unreachable"


def probe_command(port: int, tag: str) -> str:
    """A shell line that sends `tag` to the server; bash is essential, so in every root."""
    return f"bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} && echo {tag} >&3'"


RULES = """#!/usr/bin/make -f
%:
\tdh $@

override_dh_auto_build:
\t{probe} && echo '{reached}' || echo '{unreachable}'
"""

CONTROL = f"""Source: {NAME}
Section: misc
Priority: optional
Maintainer: ClusterStack Tests <tests@clusterstack.invalid>
Build-Depends: debhelper-compat (= 13)
Standards-Version: 4.7.0

Package: {NAME}
Architecture: all
Description: build that tries to reach the network
 Test package: its build connects to a server on loopback.
"""

CHANGELOG = f"""{NAME} ({VERSION}) unstable; urgency=medium

  * Test package.

 -- ClusterStack Tests <tests@clusterstack.invalid>  Tue, 01 Dec 2026 00:00:00 +0000
"""


def make_source(where: Path, port: int) -> Path:
    """The probe's source package (3.0 native); returns its .dsc."""
    tree = where / f"{NAME}-{VERSION}"
    (tree / "debian/source").mkdir(parents=True)
    (tree / "debian/source/format").write_text("3.0 (native)\n")
    (tree / "debian/control").write_text(CONTROL)
    (tree / "debian/changelog").write_text(CHANGELOG)
    rules = tree / "debian/rules"
    rules.write_text(RULES.format(probe=probe_command(port, "build"), reached=REACHED,
                                  unreachable=UNREACHABLE))
    rules.chmod(0o755)
    subprocess.run(["dpkg-source", "-b", tree.name], cwd=where, check=True,
                   capture_output=True)
    return where / f"{NAME}_{VERSION}.dsc"


@contextmanager
def probe_server() -> Iterator[tuple[int, list[str]]]:
    """A TCP server on 127.0.0.1: yields its port and the tags received so far."""
    received: list[str] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            received.append(self.rfile.readline().decode(errors="replace").strip())

    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1], received
        finally:
            server.shutdown()
            thread.join()
