"""Error types the CLI turns into one clear message and a non-zero exit."""

from __future__ import annotations

from pathlib import Path


class ClusterStackError(Exception):
    """An error meant for the user: its text is the whole message."""

    exit_code = 1


class InputError(ClusterStackError):
    """Bad input data, located by file and, where known, line and key."""

    exit_code = 2

    def __init__(
        self, path: Path | str, message: str, *, line: int | None = None, key: str | None = None
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.key = key
        self.message = message
        where = str(path) + (f":{line}" if line else "")
        what = f"{key}: {message}" if key else message
        super().__init__(f"{where}: {what}")


class VerificationError(ClusterStackError):
    """Something fetched or produced failed a signature or checksum check."""

    exit_code = 3


class LockedError(ClusterStackError):
    """Another clusterstack run holds the output directory."""

    exit_code = 4
