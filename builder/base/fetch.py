"""Downloads with retries, back-off and a content-addressed cache.

The mirror answers slowly now and then; one slow answer must not fail a
build.  A missing file (404) is final at once and is named in the error.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from . import digest
from .errors import ClusterStackError, VerificationError

log = logging.getLogger("clusterstack.fetch")


class FetchError(ClusterStackError):
    def __init__(self, url: str, reason: str) -> None:
        self.url = url
        self.reason = reason
        super().__init__(f"cannot fetch {url}: {reason}")


class MissingFileError(FetchError):
    """The server says the file does not exist (the partly mirrored archive)."""


@dataclass(frozen=True)
class Fetcher:
    cache_dir: Path
    attempts: int = 5
    backoff: float = 1.0
    timeout: float = 60.0

    def _download(self, url: str, dest: Path) -> None:
        """Fetch url into dest, retrying transient failures with back-off."""
        delay = self.backoff
        for attempt in range(1, self.attempts + 1):
            try:
                req = urllib.request.Request(url, headers={"User-Agent": "clusterstack"})
                with urllib.request.urlopen(req, timeout=self.timeout) as resp, \
                        open(dest, "wb") as out:
                    shutil.copyfileobj(resp, out, 1 << 20)
                return
            except urllib.error.HTTPError as exc:
                if exc.code in (403, 404, 410):
                    raise MissingFileError(url, f"HTTP {exc.code} (not on the mirror)") from exc
                reason = f"HTTP {exc.code}"
            except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
                reason = str(getattr(exc, "reason", exc))
            if attempt == self.attempts:
                raise FetchError(url, f"{reason} (after {attempt} attempts)")
            log.warning("fetching %s failed (%s); retrying in %.0f s", url, reason, delay)
            time.sleep(delay)
            delay *= 2

    def fetch_verified(self, url: str, sha256: str, size: int | None = None) -> Path:
        """Return a cached copy of url whose sha256 is known in advance."""
        cached = self.cache_dir / "by-sha256" / sha256[:2] / sha256
        if cached.is_file():
            return cached
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=cached.parent, prefix=".part-")
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            self._download(url, tmp)
            actual = digest.of_file(tmp)
            if actual != sha256:
                raise VerificationError(
                    f"checksum mismatch for {url}: expected sha256 {sha256}, got {actual}")
            if size is not None and tmp.stat().st_size != size:
                raise VerificationError(
                    f"size mismatch for {url}: expected {size} bytes, "
                    f"got {tmp.stat().st_size}")
            os.replace(tmp, cached)
        finally:
            tmp.unlink(missing_ok=True)
        return cached

    def fetch_fresh(self, url: str, dest: Path) -> Path:
        """Fetch a mutable file (an InRelease) anew; the caller verifies it."""
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".part")
        try:
            self._download(url, tmp)
            os.replace(tmp, dest)
        finally:
            tmp.unlink(missing_ok=True)
        return dest
