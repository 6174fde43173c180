"""The base archive, read through its signed chain.

InRelease is checked with gpgv against the profile's keyring; the Packages
index is taken by the checksum the signed Release gives; each .deb by the
checksum the verified Packages index gives.  Nothing unverified reaches the
pool.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
import json
import lzma
import os
import re
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import closing
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from debian.debian_support import Version

from builder.base.command import CommandError, Runner
from builder.base.errors import VerificationError
from builder.base.fetch import Fetcher, MissingFileError
from builder.stack.profile import Archive, Profile


@dataclass(frozen=True)
class BinaryPackage:
    package: str
    version: str
    architecture: str
    source: str
    source_version: str
    filename: str
    sha256: str
    size: int
    base_uri: str
    suite: str
    provides: str = ""

    @property
    def url(self) -> str:
        return f"{self.base_uri}/{self.filename}"

    @property
    def deb_name(self) -> str:
        return self.filename.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class SourcePackage:
    package: str
    version: str
    directory: str
    files: list[tuple[str, str, int]]     # (name, sha256, size), the .dsc first
    base_uri: str
    suite: str

    @property
    def dsc(self) -> str:
        return self.files[0][0]

    def url(self, name: str) -> str:
        return f"{self.base_uri}/{self.directory}/{name}"


@dataclass(frozen=True)
class VerifiedRelease:
    archive: Archive
    suite: str
    inrelease_sha256: str
    by_hash: bool
    sha256: dict[str, tuple[str, int]]   # index path -> (sha256, size)
    # the signed Release itself (InRelease without its signature)
    text: str = field(default="", repr=False, compare=False)

    @property
    def label(self) -> str:
        return f"{self.archive.uri} {self.suite}"


# Bump when the parsed-index format changes, so old memos are not read.
# v3: an SQLite table per index, looked up by name instead of read whole (a
# plan reads a few entries; loading all of Packages and Sources took seconds).
MEMO_FORMAT = "v3"


def release_fields(text: str) -> dict[str, str]:
    """The fields of a Release file (lower-cased names; continuation lines kept,
    one per line).  Parsed here rather than with python-debian, whose import
    alone costs more than a no-op plan may take."""
    fields: dict[str, str] = {}
    name = ""
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break          # a Release has one paragraph
            continue
        if line[0] in " \t":
            if name:
                fields[name] += "\n" + line.strip()
            continue
        key, sep, value = line.partition(":")
        if sep:
            name = key.strip().lower()
            fields[name] = value.strip()
    return fields


def release_sha256(fields: dict[str, str]) -> dict[str, tuple[str, int]]:
    """Index path -> (sha256, size), from a Release's SHA256 field."""
    sums = {}
    for line in fields.get("sha256", "").splitlines():
        parts = line.split()
        if len(parts) == 3:
            sha, size, name = parts
            sums[name] = (sha, int(size))
    return sums


def check_gpgv_status(status: str, what: str) -> None:
    """Judge gpgv's machine-readable status the way apt does."""
    tokens = [line.split()[1:2] for line in status.splitlines() if line.startswith("[GNUPG:]")]
    seen = {t[0] for t in tokens if t}
    for bad in ("BADSIG", "EXPKEYSIG", "REVKEYSIG", "EXPSIG"):
        if bad in seen:
            raise VerificationError(f"{what}: signature check failed ({bad})")
    if "VALIDSIG" not in seen:
        if "NO_PUBKEY" in seen or "ERRSIG" in seen:
            raise VerificationError(f"{what}: signed by a key that is not in the keyring")
        raise VerificationError(f"{what}: not signed (no valid OpenPGP signature)")


def verify_inrelease(raw: Path, keyring: Path, url: str, runner: Runner) -> str:
    """The signed Release inside the InRelease file `raw` (fetched from `url`), once
    gpgv has checked its signature against `keyring` and its Valid-Until has not
    passed.  Every reader of a Release goes through here."""
    what = f"{url} (keyring {keyring})"
    if not keyring.is_file():
        raise VerificationError(f"{what}: keyring file does not exist")
    signed = raw.with_name(raw.name + ".verified")
    signed.unlink(missing_ok=True)
    try:
        result = runner.run(
            ["gpgv", "--status-fd", "1", "--keyring", keyring, "--output", signed, raw],
            check=False)
    except CommandError as exc:  # gpgv missing altogether
        raise VerificationError(f"{what}: {exc}") from exc
    check_gpgv_status(result.stdout, what)
    if result.returncode not in (0, 2):
        # 2 = some signature by a key we do not hold; one VALIDSIG suffices.
        raise VerificationError(f"{what}: gpgv exit status {result.returncode}")
    text = signed.read_text(encoding="utf-8")
    if valid_until := release_fields(text).get("valid-until"):
        parsed = email.utils.parsedate_tz(valid_until)
        if parsed and calendar.timegm(parsed[:9]) - (parsed[9] or 0) < time.time():
            raise VerificationError(f"{what}: Release expired on {valid_until}")
    return text


def _parse_packages(text: str, base_uri: str, suite: str) -> list[BinaryPackage]:
    out = []
    field = re.compile(
        r"^(Package|Version|Architecture|Source|Filename|SHA256|Size|Provides): (.*)$", re.M)
    for para in text.split("\n\n"):
        f = dict(field.findall(para))
        if "Package" not in f or "Filename" not in f or "SHA256" not in f:
            continue
        source, _, src_ver = f.get("Source", f["Package"]).partition(" ")
        out.append(BinaryPackage(
            package=f["Package"], version=f["Version"], architecture=f["Architecture"],
            source=source, source_version=src_ver.strip("()") or f["Version"],
            filename=f["Filename"], sha256=f["SHA256"], size=int(f.get("Size", 0)),
            base_uri=base_uri, suite=suite, provides=f.get("Provides", ""),
        ))
    return out


def _parse_sources(text: str, base_uri: str, suite: str) -> list[SourcePackage]:
    out = []
    single = re.compile(r"^(Package|Version|Directory): (.*)$", re.M)
    for para in text.split("\n\n"):
        f = dict(single.findall(para))
        sums = re.search(r"^Checksums-Sha256:\n((?: .*\n?)+)", para, re.M)
        if "Package" not in f or not sums:
            continue
        files = []
        for line in sums.group(1).splitlines():
            sha, size, name = line.split()
            files.append((name, sha, int(size)))
        files.sort(key=lambda e: not e[0].endswith(".dsc"))
        out.append(SourcePackage(f["Package"], f["Version"], f.get("Directory", ""), files,
                                 base_uri, suite))
    return out


@dataclass(frozen=True)
class _Table:
    """How one kind of index is parsed and memoised."""

    cls: type
    parse: Callable[[str, str, str], list[Any]]
    columns: tuple[str, ...]        # the fields entries are looked up by
    bases: Callable[[str, tuple[str, ...]], list[str]]   # (component, archs) -> index paths


PACKAGES = _Table(BinaryPackage, _parse_packages, ("package", "version", "source"),
                  lambda component, archs: [f"{component}/binary-{a}/Packages" for a in archs])
SOURCES = _Table(SourcePackage, _parse_sources, ("package", "version"),
                 lambda component, archs: [f"{component}/source/Sources"])


class UpstreamArchive:
    """The profile's base archive: every configured suite, verified."""

    def __init__(self, profile: Profile, fetcher: Fetcher, runner: Runner, state_dir: Path):
        self.profile = profile
        self.fetcher = fetcher
        self.runner = runner
        self.state_dir = state_dir
        # The memos known to exist in this run (one archive object per run),
        # and a lock: the builds of one run look entries up from threads.
        self._memos: set[Path] = set()
        self._memo_lock = threading.Lock()

    def _verify_inrelease(self, archive: Archive, suite: str) -> VerifiedRelease:
        url = f"{archive.uri}/dists/{suite}/InRelease"
        raw = self.fetcher.fetch_fresh(
            url, self.state_dir / "upstream" / _slug(archive.uri) / suite / "InRelease")
        text = verify_inrelease(raw, archive.keyring, url, self.runner)
        release = release_fields(text)
        return VerifiedRelease(
            archive=archive, suite=suite,
            inrelease_sha256=hashlib.sha256(raw.read_bytes()).hexdigest(),
            by_hash=release.get("acquire-by-hash", "no").lower() == "yes",
            sha256=release_sha256(release), text=text)

    @cached_property
    def releases(self) -> list[VerifiedRelease]:
        """Every suite's Release, fetched and checked anew in each run.

        The suites are fetched side by side: each is a round trip to the
        mirror and a gpgv, and a no-op plan waits for all of them."""
        suites = [(a, s) for a in self.profile.archives for s in a.suites]
        with ThreadPoolExecutor(max_workers=max(1, len(suites))) as pool:
            return list(pool.map(lambda pair: self._verify_inrelease(*pair), suites))

    def fingerprint(self) -> str:
        """Changes exactly when any suite's signed Release changes."""
        joined = "\n".join(f"{r.label} {r.inrelease_sha256}" for r in self.releases)
        return hashlib.sha256(joined.encode()).hexdigest()

    def _index(self, rel: VerifiedRelease, base: str) -> str:
        """The text of one index (e.g. main/source/Sources), verified by the Release."""
        decoders = {".xz": lzma.decompress, "": bytes}
        suffix = next((s for s in decoders if base + s in rel.sha256), None)
        if suffix is None:
            raise VerificationError(f"{rel.label}: Release lists no {base} index")
        name, decode = base + suffix, decoders[suffix]
        sha, size = rel.sha256[name]
        directory = f"{rel.archive.uri}/dists/{rel.suite}"
        url = (f"{directory}/{name.rsplit('/', 1)[0]}/by-hash/SHA256/{sha}" if rel.by_hash
               else f"{directory}/{name}")
        return decode(self.fetcher.fetch_verified(url, sha, size).read_bytes()).decode(
            "utf-8", "replace")

    def index_text(self, rel: VerifiedRelease, base: str) -> str:
        """One index, verified; the plain path when the mirror lacks its by-hash copy,
        as apt falls back (this mirror has no by-hash for debian-installer/)."""
        try:
            return self._index(rel, base)
        except MissingFileError:
            if not rel.by_hash:
                raise
        return self._index(replace(rel, by_hash=False), base)

    def _memo(self, rel: VerifiedRelease, table: _Table, base: str) -> Path:
        """The memo of one index (an SQLite file named by the index checksum),
        made from the verified index the first time it is asked for."""
        sha = rel.sha256.get(base + ".xz", rel.sha256.get(base, ("none", 0)))[0]
        memo = self.fetcher.cache_dir / "indices" / f"{sha}.{MEMO_FORMAT}.sqlite"
        if memo in self._memos:
            return memo
        with self._memo_lock:
            if not memo.is_file():
                self._write_memo(memo, table, self._index(rel, base), rel)
            self._memos.add(memo)
        return memo

    def _write_memo(self, memo: Path, table: _Table, text: str, rel: VerifiedRelease) -> None:
        entries = table.parse(text, rel.archive.uri, rel.suite)
        memo.parent.mkdir(parents=True, exist_ok=True)
        # Written aside and renamed: a reader never sees half a memo.
        tmp = memo.with_name(f".{memo.name}.{os.getpid()}.tmp")
        tmp.unlink(missing_ok=True)
        try:
            with closing(sqlite3.connect(tmp)) as db:
                cols = ", ".join(table.columns)
                db.execute(f"CREATE TABLE entries (seq INTEGER PRIMARY KEY, {cols}, data TEXT)")
                for col in table.columns:
                    db.execute(f"CREATE INDEX by_{col} ON entries ({col})")
                db.executemany(
                    f"INSERT INTO entries ({cols}, data) VALUES "
                    f"({', '.join('?' * (len(table.columns) + 1))})",
                    ([*(getattr(e, c) for c in table.columns), json.dumps(asdict(e))]
                     for e in entries))
                db.commit()
            os.replace(tmp, memo)
        finally:
            tmp.unlink(missing_ok=True)

    def _lookup(self, table: _Table, where: str = "", args: tuple[str, ...] = ()
                ) -> Iterator[Any]:
        """Entries of every configured index of this kind, in the order of the
        suites, then of the index; `where` is an SQL condition on its columns."""
        for rel in self.releases:
            for component in rel.archive.components:
                for base in table.bases(component, self.profile.architectures):
                    memo = self._memo(rel, table, base)
                    # immutable: a memo is named by its content and never changes.
                    with closing(sqlite3.connect(f"file:{memo}?mode=ro&immutable=1",
                                                 uri=True)) as db:
                        rows = db.execute(f"SELECT data FROM entries "
                                          f"{'WHERE ' + where if where else ''} ORDER BY seq",
                                          args).fetchall()
                    yield from (table.cls(**json.loads(row[0])) for row in rows)

    def source_package(self, name: str, version: str) -> SourcePackage | None:
        """The source package `name` at exactly `version`, from any suite."""
        return next(self._lookup(SOURCES, "package = ? AND version = ?", (name, version)),
                    None)

    def source_versions(self, name: str) -> list[str]:
        return sorted({s.version for s in self._lookup(SOURCES, "package = ?", (name,))},
                      key=Version)

    @cached_property
    def provided(self) -> set[str]:
        """Every binary package name, real or virtual, the base archive offers."""
        names: set[str] = set()
        for p in self._lookup(PACKAGES):
            names.add(p.package)
            names.update(x.split()[0] for x in p.provides.split(",") if x.strip())
        return names

    def binaries_of_source(self, source: str) -> list[BinaryPackage]:
        """The newest version of each binary built from `source`."""
        candidates = list(self._lookup(PACKAGES, "source = ?", (source,)))
        if not candidates:
            return []
        newest_src = max(Version(p.source_version) for p in candidates)
        best: dict[tuple[str, str], BinaryPackage] = {}
        for p in candidates:
            if Version(p.source_version) != newest_src:
                continue
            key = (p.package, p.architecture)
            if key not in best or Version(p.version) > Version(best[key].version):
                best[key] = p
        return sorted(best.values(), key=lambda p: (p.package, p.architecture))

    def binary(self, package: str, version: str) -> BinaryPackage | None:
        """One binary package of this architecture (or all) at exactly `version`."""
        return next(self._lookup(PACKAGES, "package = ? AND version = ?", (package, version)),
                    None)

    def binary_versions(self, package: str) -> list[str]:
        return sorted({p.version for p in self._lookup(PACKAGES, "package = ?", (package,))},
                      key=Version)

    def suites_label(self) -> str:
        return ", ".join(r.label for r in self.releases)


def _slug(uri: str) -> str:
    return re.sub(r"[^A-Za-z0-9.-]+", "_", uri.split("://", 1)[-1]).strip("_")
