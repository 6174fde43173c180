"""The one error type that ends a conversion: bad input, reported with its line."""

from __future__ import annotations


class MigrateError(Exception):
    """Input that cannot be converted at all. `line` is the line in cluster.conf."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.message = message
        self.line = line
        super().__init__(f"line {line}: {message}" if line else message)
