"""A CI signing secret, and the ways its material could show up in output."""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass
from pathlib import Path

from support.fakearchive import RUN, Key, make_key


@dataclass
class Secret:
    key: Key
    armored: str
    needles: list[bytes]      # byte strings that only the secret key contains

    def found_in(self, data: bytes) -> list[str]:
        return [n[:16].decode("ascii", "replace") + "..." for n in self.needles if n in data]


def _secret_scalar(packets: bytes) -> bytes:
    """The EdDSA secret of an unprotected v4 secret-key packet (RFC 4880 5.5.3):
    after the public part (version, time, algorithm, curve OID, public point
    MPI) comes the S2K usage octet 0, then the secret MPI."""
    tag = packets[0]
    if tag & 0x40:                       # new-format header
        first = packets[1]
        if first < 192:
            body = 2
        elif first < 224:
            body = 3
        else:
            body = 6
    else:                                # old format: length type in the low bits
        body = 1 + {0: 1, 1: 2, 2: 4}[tag & 0x03]
    i = body
    i += 1 + 4 + 1                       # version, creation time, algorithm
    i += 1 + packets[i]                  # curve OID
    bits = int.from_bytes(packets[i:i + 2], "big")
    i += 2 + (bits + 7) // 8             # public point
    if packets[i] != 0:
        raise ValueError("secret key is protected; expected an unprotected export")
    i += 1
    bits = int.from_bytes(packets[i:i + 2], "big")
    return packets[i + 2:i + 2 + (bits + 7) // 8]


def make_secret(home: Path) -> Secret:
    key = make_key(home, "CI Signing <ci@example.invalid>")
    out = home / "secret.asc"
    RUN.run(["gpg", "--homedir", str(key.home), "--batch", "--armor", "--output", str(out),
             "--export-secret-keys", key.fingerprint])
    armored = out.read_text()
    body = re.search(r"\n\n(.*?)\n=", armored, re.S)
    if body is None:
        raise ValueError("no armor body")
    lines = [ln for ln in body.group(1).splitlines() if ln.strip()]
    raw = base64.b64decode("".join(lines))
    scalar = _secret_scalar(raw)
    needles = [armored.encode(), scalar, scalar.hex().encode(), scalar.hex().upper().encode(),
               base64.b64encode(scalar)[:40], *(ln.encode() for ln in lines if len(ln) >= 40)]
    return Secret(key, armored, needles)
