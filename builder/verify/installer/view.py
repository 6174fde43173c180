"""The installer's view of Debian's mirror: consistent, and signed by a run-local key.

d-i's net-retriever fetches `dists/SUITE/Release` with its detached
`Release.gpg`, checks them with gpgv against the initrd's
/usr/share/keyrings/archive.gpg, then checks the udeb index
(`main/debian-installer/binary-amd64/Packages.xz`) against Release's SHA256 and
size, and anna checks every udeb's sha256 against that index. debootstrap
(base-installer) and apt in the new system read `InRelease` instead.

The mirror reachable here is a partial copy, inconsistent exactly there: its
`Release.gpg` is a BAD signature over its `Release`, its udeb index is not the
one the signed Release lists (and the listed one's by-hash copy is gone), and
its pool lacks some udebs at the versions that index lists. So, as a site with
a local partial mirror does, the harness serves the installer a view of its
own, for three files only:

- the udeb index: the mirror's, minus what the pool does not hold (another
  kernel's udebs, udebs the initrd already carries, and whatever then has an
  unmet dependency), with the pinned substitutes of data/pins.yaml where the
  listed version is gone; what the install needs must survive, else one clear
  error naming it;
- `Release`: Debian's own signed Release (the body of its InRelease, verified
  with Debian's keyring) with only the udeb index's lines changed to the index
  served, signed (`Release.gpg`) by a key made for this run and thrown away
  after signing;
- the initrd's `archive.gpg`: Debian's keyring plus that run-local key.

Everything else (InRelease, the deb indices, every .deb and .udeb) is Debian's,
through apt-cacher-ng, unchanged: debootstrap and apt still verify InRelease
against Debian's keys only, and anna still checks each udeb's sha256.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import http.client
import http.server
import json
import lzma
import os
import re
import shutil
import tempfile
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.repo.signing import HOME_PREFIX, Signer, scratch_root

from .netboot import PINS_FILE, UDEB_INDEX, InstallerInputError, UdebPin

KEY_UID = "ClusterStack installer view, this run only <installer-view@clusterstack.invalid>"
INDEX_NAMES = (UDEB_INDEX, UDEB_INDEX + ".gz", UDEB_INDEX + ".xz")
# What this unattended install runs beyond the initrd: if the view cannot offer one of
# these, the install would stop on it, so the run stops before booting instead.
NEEDED = ("anna", "bootstrap-base", "partman-auto", "partman-partitioning", "partman-ext3",
          "e2fsprogs-udeb",
          "grub-installer", "pkgsel", "apt-setup-udeb", "apt-mirror-setup", "finish-install",
          "base-installer", "network-preseed")
FIELD = re.compile(r"^([A-Za-z0-9-]+): ?(.*)$", re.M)


@dataclass(frozen=True)
class Udeb:
    package: str
    version: str
    filename: str
    sha256: str
    size: int
    priority: str
    kernel: str            # Kernel-Version, "" for udebs that are not kernel modules
    depends: list[list[str]]   # alternatives per dependency, names only
    provides: list[str]
    stanza: str


def _names(value: str) -> list[list[str]]:
    return [[alt.split()[0] for alt in dep.split("|") if alt.strip()]
            for dep in value.split(",") if dep.strip()]


def parse_index(text: str) -> list[Udeb]:
    out = []
    for stanza in text.split("\n\n"):
        stanza = stanza.strip("\n")
        f = dict(FIELD.findall(stanza))
        if "Package" not in f or "Filename" not in f or "SHA256" not in f:
            continue
        out.append(Udeb(f["Package"], f.get("Version", ""), f["Filename"], f["SHA256"],
                        int(f.get("Size", "0")), f.get("Priority", "optional"),
                        f.get("Kernel-Version", ""), _names(f.get("Depends", "")),
                        [p[0] for p in _names(f.get("Provides", ""))], stanza))
    return out


def installed_packages(status_text: str) -> set[str]:
    """The udebs an initrd already carries (its /var/lib/dpkg/status)."""
    return {f["Package"] for f in (dict(FIELD.findall(s)) for s in status_text.split("\n\n"))
            if "Package" in f}


def substitute(udeb: Udeb, pin: UdebPin) -> Udeb:
    """The index entry with the pinned file: the same package, the pool's version.
    Its other fields (Depends, ...) stay the index's: a pin is for a rebuild of the
    same source, whose control fields are the same."""
    stanza = udeb.stanza
    for name, value in (("Version", pin.version), ("Filename", pin.filename),
                        ("SHA256", pin.sha256), ("Size", str(pin.size))):
        stanza = re.sub(rf"^{name}: .*$", f"{name}: {value}", stanza, flags=re.M)
    stanza = re.sub(r"^(MD5sum|SHA1): .*\n?", "", stanza, flags=re.M)
    return replace(udeb, version=pin.version, filename=pin.filename, sha256=pin.sha256,
                   size=pin.size, stanza=stanza)


@dataclass
class IndexView:
    udebs: list[Udeb]
    substituted: list[str] = field(default_factory=list)   # "pkg old -> new"
    in_initrd: list[str] = field(default_factory=list)     # missing, but the initrd has it
    other_kernels: int = 0
    dropped: dict[str, str] = field(default_factory=dict)  # package -> why

    def text(self) -> str:
        return "".join(u.stanza + "\n\n" for u in self.udebs)

    def short(self) -> str:
        """For the report's table: the counts, and the names the pool lacks."""
        gone = sorted(p for p, why in self.dropped.items() if why.endswith("not in the pool"))
        bits = [f"{len(self.udebs)} udebs"]
        if self.substituted:
            bits.append("pinned " + ", ".join(s.split()[0] + " " + s.split()[-1]
                                              for s in self.substituted))
        bits.append(f"left out: {len(gone)} not in the pool ({', '.join(gone)}), "
                    f"{len(self.dropped) - len(gone)} depending on them, "
                    f"{self.other_kernels} of other kernels, {len(self.in_initrd)} "
                    "already in the initrd")
        return "; ".join(bits)

    def summary(self) -> str:
        bits = [f"{len(self.udebs)} udebs"]
        if self.substituted:
            bits.append("pinned " + ", ".join(self.substituted))
        if self.in_initrd:
            bits.append(f"{len(self.in_initrd)} not in the pool but in the initrd")
        if self.other_kernels:
            bits.append(f"{self.other_kernels} of other kernels left out")
        if self.dropped:
            bits.append(f"{len(self.dropped)} left out (" + ", ".join(
                f"{p}: {why}" for p, why in sorted(self.dropped.items())) + ")")
        return "; ".join(bits)


def consistent_index(udebs: list[Udeb], present: Callable[[Udeb], bool], installed: set[str],
                     abi: str, pins: Iterable[UdebPin], needed: Iterable[str] = NEEDED
                     ) -> IndexView:
    """The part of the mirror's udeb index the pool holds, closed under Depends."""
    pinned = {p.package: p for p in pins}
    view = IndexView([])
    kept: list[Udeb] = []
    for udeb in udebs:
        if udeb.kernel and udeb.kernel != abi:
            view.other_kernels += 1
            continue
        if present(udeb):
            kept.append(udeb)
        elif (pin := pinned.get(udeb.package)) is not None and present(sub := substitute(
                udeb, pin)):
            kept.append(sub)
            view.substituted.append(f"{udeb.package} {udeb.version} -> {pin.version}")
        elif udeb.package in installed:
            view.in_initrd.append(udeb.package)
        else:
            view.dropped[udeb.package] = f"{udeb.filename} is not in the pool"
    while True:  # a dependency left out takes its dependants with it
        offered = installed | {u.package for u in kept} | {p for u in kept for p in u.provides}
        unmet = {u.package: next(d for d in u.depends if not set(d) & offered)
                 for u in kept if any(not set(d) & offered for d in u.depends)}
        if not unmet:
            break
        for package, dep in unmet.items():
            view.dropped[package] = f"needs {' | '.join(dep)}"
        kept = [u for u in kept if u.package not in unmet]
    view.udebs = kept
    have = {u.package for u in kept} | installed
    if missing := [p for p in needed if p not in have]:
        raise InstallerInputError(
            "the mirror cannot give the installer what this install needs: " + "; ".join(
                f"{p} ({view.dropped.get(p, 'not in the installer index')})" for p in missing)
            + f" (pin a version the pool holds in {PINS_FILE})")
    kernel = f"kernel-image-{abi}-di"
    if kernel not in have:
        raise InstallerInputError(f"the mirror's installer index has no {kernel} in its pool")
    return view


def kernel_available(udebs: list[Udeb], present: Callable[[Udeb], bool]
                     ) -> Callable[[str], str | None]:
    """For netboot.choose: why the mirror cannot serve a kernel's udebs, or None."""
    def check(abi: str) -> str | None:
        mine = [u for u in udebs if u.kernel == abi]
        if not any(u.package == f"kernel-image-{abi}-di" for u in mine):
            listed = sorted({u.kernel for u in udebs if u.kernel})
            return f"the installer index lists kernel udebs for {', '.join(listed) or 'none'}"
        gone = [u.filename.rsplit("/", 1)[-1] for u in mine if not present(u)]
        if gone:
            return f"{len(gone)} of its {len(mine)} udebs are not in the pool (e.g. {gone[0]})"
        return None
    return check


class PoolCheck:
    """Is a udeb in the mirror's pool at the size its index lists? HEAD requests, in
    parallel, remembered per index (the pool of a published index does not change)."""

    def __init__(self, base_url: str, memo: Path, workers: int = 8, timeout: float = 30) -> None:
        self.base_url = base_url.rstrip("/")
        self.memo = memo
        self.workers = workers
        self.timeout = timeout
        self.sizes: dict[str, int] = json.loads(memo.read_text()) if memo.is_file() else {}

    def _head(self, filename: str) -> int:
        req = urllib.request.Request(f"{self.base_url}/{filename}", method="HEAD",
                                     headers={"User-Agent": "clusterstack"})
        for _ in range(3):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                    return int(resp.headers.get("Content-Length") or -1)
            except urllib.error.HTTPError as exc:
                if exc.code in (403, 404, 410):
                    return 0
            except (urllib.error.URLError, TimeoutError, OSError):
                continue
        raise ClusterStackError(f"{self.base_url}/{filename}: the mirror does not answer")

    def check(self, udebs: Iterable[Udeb]) -> None:
        todo = sorted({u.filename for u in udebs} - set(self.sizes))
        if todo:
            with concurrent.futures.ThreadPoolExecutor(self.workers) as pool:
                for name, size in zip(todo, pool.map(self._head, todo), strict=True):
                    self.sizes[name] = size
            self.memo.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.memo.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.sizes, sort_keys=True))
            tmp.replace(self.memo)

    def present(self, udeb: Udeb) -> bool:
        return self.sizes.get(udeb.filename, 0) == udeb.size


def release_view(release_text: str, files: dict[str, bytes]) -> str:
    """Debian's Release with the udeb index's checksum lines for exactly `files`."""
    out: list[str] = []
    section = ""
    algorithms = {"MD5Sum": hashlib.md5, "SHA256": hashlib.sha256}
    for line in release_text.splitlines():
        if not line.startswith(" "):
            section = line.split(":", 1)[0]
            out.append(line)
            if section in algorithms:
                digest = algorithms[section]
                out += [f" {digest(data).hexdigest()} {len(data):>16} {name}"
                        for name, data in sorted(files.items())]
            continue
        parts = line.split()
        if len(parts) == 3 and parts[2] in INDEX_NAMES:
            continue
        out.append(line)
    if not any(line.startswith("SHA256:") for line in out):
        raise InstallerInputError("the signed Release has no SHA256 section")
    return "\n".join(out) + "\n"


@dataclass(frozen=True)
class SignedView:
    directory: Path          # mirror-relative paths under it, e.g. dists/trixie/Release
    public_key: bytes        # binary OpenPGP key, for the initrd's archive.gpg
    fingerprint: str


def sign_view(directory: Path, suite: str, release_text: str, index_text: str,
              runner: Runner) -> SignedView:
    """Write the view's files and sign its Release with a key made for it, then
    destroyed: nothing but the public half outlives this call."""
    dists = directory / "dists" / suite
    shutil.rmtree(directory, ignore_errors=True)
    index_dir = dists / UDEB_INDEX.rsplit("/", 1)[0]
    index_dir.mkdir(parents=True)
    raw = index_text.encode()
    files = {UDEB_INDEX: raw, UDEB_INDEX + ".xz": lzma.compress(raw, preset=6)}
    for name, data in files.items():
        (dists / name).write_bytes(data)
    (dists / "Release").write_text(release_view(release_text, files))
    home = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{os.getpid()}-", dir=scratch_root()))
    home.chmod(0o700)
    gpg = ["gpg", "--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback",
           "--passphrase", ""]
    signer = Signer(home, "", runner)
    try:
        runner.run([*gpg, "--quick-generate-key", KEY_UID, "ed25519", "sign", "2d"])
        listing = runner.run([*gpg, "--with-colons", "--list-secret-keys"]).stdout
        fprs = [ln.split(":")[9] for ln in listing.splitlines() if ln.startswith("fpr:")]
        if not fprs:
            raise ClusterStackError(f"gpg made no key in {home}")
        signer = Signer(home, fprs[0], runner)
        signer.detach_sign(dists / "Release", dists / "Release.gpg")
        armored, binary = home / "key.asc", home / "key.gpg"
        signer.export_public(armored, binary)
        key = binary.read_bytes()
    finally:
        signer.close()
    return SignedView(directory, key, fprs[0])


class MirrorFront:
    """HTTP on 127.0.0.1: the view's files, everything else from apt-cacher-ng.

    One response per connection (HTTP/1.0 semantics): apt and the installer's
    wget both cope, and a stream is passed through without re-framing it.
    """

    def __init__(self, view: Path, prefix: str, upstream_port: int, log: Path) -> None:
        self.view = view
        self.prefix = prefix.rstrip("/")     # /debian
        self.upstream_port = upstream_port
        self.log = log
        self.served: list[str] = []
        self.server: http.server.ThreadingHTTPServer | None = None
        self.thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        if self.server is None:
            raise ClusterStackError("the mirror front is not started")
        return self.server.server_address[1]

    def local_file(self, path: str) -> Path | None:
        path = path.split("?", 1)[0]
        if not path.startswith(self.prefix + "/dists/") or ".." in path.split("/"):
            return None
        candidate = self.view / path.removeprefix(self.prefix + "/")
        return candidate if candidate.is_file() else None

    def hidden(self, path: str) -> bool:
        """The mirror's own copies of what the view replaces, never passed through."""
        path = path.split("?", 1)[0]
        return "/debian-installer/" in path and (
            path.endswith("/Packages.gz") or "/by-hash/" in path)

    def start(self) -> None:
        front = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.0"

            def log_message(self, format: str, *args: object) -> None:
                with open(front.log, "a") as f:
                    f.write(f"{self.log_date_time_string()} {format % args}\n")

            def do_HEAD(self) -> None:
                self.do_GET(body=False)

            def do_GET(self, body: bool = True) -> None:
                if (local := front.local_file(self.path)) is not None:
                    data = local.read_bytes()
                    front.served.append(self.path)
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(data)))
                    self.send_header("Content-Type", "application/octet-stream")
                    self.end_headers()
                    if body:
                        self.wfile.write(data)
                    return
                if front.hidden(self.path):
                    self.send_error(404, "not in the installer's view")
                    return
                front.proxy(self, body)

        self.log.parent.mkdir(parents=True, exist_ok=True)
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True,
                                       name="mirror-front")
        self.thread.start()

    def proxy(self, handler: http.server.BaseHTTPRequestHandler, body: bool) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", self.upstream_port, timeout=300)
        try:
            headers = {k: v for k, v in handler.headers.items()
                       if k.lower() in ("range", "if-modified-since", "if-range",
                                        "cache-control", "user-agent", "accept")}
            headers["Host"] = handler.headers.get("Host", "localhost")
            conn.request(handler.command, handler.path, headers=headers)
            resp = conn.getresponse()
            handler.send_response(resp.status, resp.reason)
            for key, value in resp.getheaders():
                if key.lower() not in ("connection", "keep-alive", "transfer-encoding"):
                    handler.send_header(key, value)
            handler.send_header("Connection", "close")
            handler.end_headers()
            if body:
                shutil.copyfileobj(resp, handler.wfile, 1 << 16)
        except (OSError, http.client.HTTPException) as exc:
            handler.log_message("proxy error for %s: %s", handler.path, exc)
        finally:
            conn.close()

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
        if self.thread is not None:
            self.thread.join(timeout=10)

    def running(self) -> bool:
        return self.thread is not None and self.thread.is_alive()
