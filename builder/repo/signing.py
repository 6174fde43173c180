"""The repository signing key.

The key comes from the environment when one is given (CI's secret store:
CLUSTERSTACK_SIGNING_KEY holds an armored secret key, or
CLUSTERSTACK_SIGNING_KEY_FILE names a file with one); otherwise it is
generated on first use and kept in the keyring directory as one armored
file, signing-key.asc, mode 0600 in a 0700 folder.

Signing always happens in a temporary GNUPGHOME of its own (on /dev/shm when
there is one, so the unprotected secret is never written to a disk), which
Signer.close() removes together with its gpg-agent.  A home left behind by a
killed run is removed by the next one.  The secret never reaches a log: it
goes to gpg on stdin or as a file, never on a command line or stdout, and
CLUSTERSTACK_SIGNING_KEY is taken out of the environment once read, so the
programs publish runs do not inherit it.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from builder.base.command import Runner
from builder.base.errors import ClusterStackError

KEY_UID = "ClusterStack Archive Signing Key <archive@clusterstack.invalid>"
ENV_KEY = "CLUSTERSTACK_SIGNING_KEY"
ENV_KEY_FILE = "CLUSTERSTACK_SIGNING_KEY_FILE"
KEY_FILE = "signing-key.asc"
HOME_PREFIX = "clusterstack-gnupg-"


class SigningKeyError(ClusterStackError):
    pass


def _base(home: Path) -> list[str | Path]:
    return ["gpg", "--homedir", home, "--batch", "--yes", "--no-tty", "--pinentry-mode",
            "loopback", "--passphrase", ""]


def _stop_agent(home: Path, runner: Runner) -> None:
    """Stop the home's gpg-agent, which holds the secret in memory, and wait
    until it is gone (it removes its socket last)."""
    # Never raises: it runs while another error may be on its way out.
    with contextlib.suppress(ClusterStackError):
        socket = runner.run(["gpgconf", "--homedir", home, "--list-dirs", "agent-socket"],
                            check=False).stdout.strip()
        runner.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)
        deadline = time.monotonic() + 5
        while socket and os.path.exists(socket) and time.monotonic() < deadline:
            time.sleep(0.02)
        runner.run(["gpgconf", "--homedir", home, "--remove-socketdir"], check=False)


@dataclass(frozen=True)
class Signer:
    gnupghome: Path          # temporary: close() removes it
    fingerprint: str
    runner: Runner

    def _gpg(self, *args: str | Path, input: str | None = None) -> str:
        return self.runner.run([*_base(self.gnupghome), *args], input=input).stdout

    def clearsign(self, src: Path, dest: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512",
                  "--clearsign", "--output", dest, src)

    def detach_sign(self, src: Path, dest: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512",
                  "--armor", "--detach-sign", "--output", dest, src)

    def export_public(self, armored: Path, binary: Path) -> None:
        self._gpg("--armor", "--output", armored, "--export", self.fingerprint)
        self._gpg("--output", binary, "--export", self.fingerprint)

    def close(self) -> None:
        """Stop the home's gpg-agent and remove the home (and the secret in it)."""
        if self.gnupghome.name.startswith(HOME_PREFIX) and self.gnupghome.exists():
            _stop_agent(self.gnupghome, self.runner)
            shutil.rmtree(self.gnupghome, ignore_errors=True)

    def __enter__(self) -> Signer:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


def _secret_fingerprints(gnupghome: Path, runner: Runner) -> list[str]:
    result = runner.run(["gpg", "--homedir", gnupghome, "--batch", "--with-colons",
                         "--list-secret-keys"], check=False)
    fprs, in_sec = [], False
    for line in result.stdout.splitlines():
        fields = line.split(":")
        if fields[0] == "sec":
            in_sec = True
        elif fields[0] == "fpr" and in_sec:
            fprs.append(fields[9])
            in_sec = False
    return fprs


def scratch_root() -> Path:
    """Where temporary homes go: memory when possible."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK):
        return shm
    return Path(tempfile.gettempdir())


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove_stale_homes(runner: Runner) -> None:
    """Homes of runs that were killed (SIGKILL leaves no chance to clean up)."""
    for home in scratch_root().glob(f"{HOME_PREFIX}*"):
        match = re.match(rf"{HOME_PREFIX}(\d+)-", home.name)
        try:
            mine = home.stat().st_uid == os.getuid()
        except OSError:
            continue
        if match and mine and not _alive(int(match.group(1))):
            _stop_agent(home, runner)
            shutil.rmtree(home, ignore_errors=True)


def _write_secret(path: Path, data: bytes) -> None:
    """Write a secret file that is 0600 from its first byte on."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.unlink(missing_ok=True)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def _export_secret(home: Path, fingerprint: str, runner: Runner) -> bytes:
    # Through a file in the 0700 home, never stdout: the runner tees stdout
    # into the log.
    out = home / "export.asc"
    runner.run([*_base(home), "--armor", "--output", out, "--export-secret-keys", fingerprint])
    try:
        return out.read_bytes()
    finally:
        out.unlink(missing_ok=True)


def _stored_key(keyring_dir: Path, home: Path, runner: Runner) -> str:
    """The kept key's armored text: signing-key.asc, made on first use (or
    taken from a keyring folder that an earlier clusterstack used as its home)."""
    keyring_dir.mkdir(parents=True, exist_ok=True)
    keyring_dir.chmod(0o700)
    stored = keyring_dir / KEY_FILE
    for partial in keyring_dir.glob(f".{KEY_FILE}.*.tmp"):
        partial.unlink(missing_ok=True)   # a run killed while writing it
    if not stored.is_file():
        legacy = _secret_fingerprints(keyring_dir, runner) if any(
            keyring_dir.glob("private-keys-v1.d")) else []
        if legacy:
            data = _export_secret(keyring_dir, legacy[0], runner)
            _stop_agent(keyring_dir, runner)
        else:
            runner.run([*_base(home), "--quick-generate-key", KEY_UID, "ed25519", "sign",
                        "never"])
            fprs = _secret_fingerprints(home, runner)
            if not fprs:
                raise SigningKeyError(f"gpg generated no secret key in {home}")
            data = _export_secret(home, fprs[0], runner)
        _write_secret(stored, data)
    if stored.stat().st_mode & 0o077:
        stored.chmod(0o600)
    for path in keyring_dir.rglob("*"):
        # What an older clusterstack kept here holds the same secret.
        with contextlib.suppress(OSError):
            path.chmod(0o700 if path.is_dir() else 0o600)
    try:
        return stored.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SigningKeyError(f"{stored}: cannot read the signing key ({exc})") from exc


def load(keyring_dir: Path, runner: Runner, *, require_env: bool = False) -> Signer:
    """The signer, in a fresh temporary home: the key from the environment,
    else the one kept in keyring_dir, else a new one kept there.

    With require_env (CI), only a key from the environment will do: a run
    without the secret fails here rather than sign with a key of its own.
    The caller closes the signer (publish does); at the latest it is closed
    when the process exits.
    """
    armored = os.environ.pop(ENV_KEY, None)
    source = ENV_KEY
    if not armored and (key_file := os.environ.get(ENV_KEY_FILE)):
        source = f"{ENV_KEY_FILE}={key_file}"
        try:
            armored = Path(key_file).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise SigningKeyError(f"{source}: {getattr(exc, 'strerror', None) or exc}") from exc
    if require_env and not armored:
        raise SigningKeyError(f"no signing key: set {ENV_KEY} or {ENV_KEY_FILE} from the CI "
                              "secret store (CLUSTERSTACK_REQUIRE_SIGNING_KEY is set; refusing "
                              "to publish with any other key, or unsigned)")
    if armored and "PRIVATE KEY BLOCK" not in armored:
        raise SigningKeyError(f"{source}: does not hold an armored OpenPGP secret key")
    _remove_stale_homes(runner)
    home = Path(tempfile.mkdtemp(prefix=f"{HOME_PREFIX}{os.getpid()}-", dir=scratch_root()))
    home.chmod(0o700)
    signer = Signer(home, "", runner)
    try:
        if not armored:
            source = str(keyring_dir / KEY_FILE)
            armored = _stored_key(keyring_dir, home, runner)
        runner.run([*_base(home), "--import"], input=armored, check=False)
        fprs = _secret_fingerprints(home, runner)
        if not fprs or not re.fullmatch(r"[0-9A-F]{40}", fprs[0]):
            raise SigningKeyError(f"{source}: no usable secret key in it")
    except BaseException:
        signer.close()
        raise
    signer = Signer(home, fprs[0], runner)
    atexit.register(signer.close)
    return signer
