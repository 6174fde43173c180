"""Relay one guest connection to a port on the host's loopback (qemu guestfwd `cmd:`).

qemu runs inside the private switch namespace, whose loopback is not the
host's: for each connection the guest opens to a guestfwd address, slirp
starts this script (through nsenter into the harness's own network
namespace) with the connection as stdin/stdout. Standard library only.
"""

from __future__ import annotations

import os
import selectors
import socket
import sys


def relay(host: str, port: int) -> None:
    upstream = socket.create_connection((host, port), timeout=30)
    upstream.settimeout(None)
    sel = selectors.DefaultSelector()
    sel.register(0, selectors.EVENT_READ, "guest")
    sel.register(upstream, selectors.EVENT_READ, "host")
    open_sides = 2
    while open_sides:
        for key, _ in sel.select():
            if key.data == "guest":
                data = os.read(0, 65536)
                if not data:
                    sel.unregister(0)
                    open_sides -= 1
                    upstream.shutdown(socket.SHUT_WR)
                    continue
                upstream.sendall(data)
            else:
                data = upstream.recv(65536)
                if not data:
                    return  # the server is done; closing stdout ends the guest's side
                view = memoryview(data)
                while view:
                    view = view[os.write(1, view):]


if __name__ == "__main__":
    relay(sys.argv[1], int(sys.argv[2]))
