"""The repository signing key.

The key comes from the environment when one is given (CI's secret store:
CLUSTERSTACK_SIGNING_KEY holds an armored secret key, or
CLUSTERSTACK_SIGNING_KEY_FILE names a file with one); otherwise it is
generated on first use into the keyring directory and kept there.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .command import Runner
from .errors import ClusterStackError

KEY_UID = "ClusterStack Archive Signing Key <archive@clusterstack.invalid>"
ENV_KEY = "CLUSTERSTACK_SIGNING_KEY"
ENV_KEY_FILE = "CLUSTERSTACK_SIGNING_KEY_FILE"


class SigningKeyError(ClusterStackError):
    pass


@dataclass(frozen=True)
class Signer:
    gnupghome: Path
    fingerprint: str
    runner: Runner

    def _gpg(self, *args: str | Path, input: str | None = None) -> str:
        return self.runner.run(
            ["gpg", "--homedir", self.gnupghome, "--batch", "--yes", "--no-tty",
             "--pinentry-mode", "loopback", "--passphrase", "", *args], input=input).stdout

    def clearsign(self, src: Path, dest: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512",
                  "--clearsign", "--output", dest, src)

    def detach_sign(self, src: Path, dest: Path) -> None:
        self._gpg("--local-user", self.fingerprint, "--digest-algo", "SHA512",
                  "--armor", "--detach-sign", "--output", dest, src)

    def export_public(self, armored: Path, binary: Path) -> None:
        self._gpg("--armor", "--output", armored, "--export", self.fingerprint)
        self._gpg("--output", binary, "--export", self.fingerprint)


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


def load(keyring_dir: Path, runner: Runner, *, require_env: bool = False) -> Signer:
    """The signer: from the environment, else the keyring, else a new key.

    With require_env (CI), only a key from the environment will do: a run
    without the secret fails here rather than sign with a key of its own.
    """
    armored = os.environ.get(ENV_KEY)
    if not armored and (key_file := os.environ.get(ENV_KEY_FILE)):
        try:
            armored = Path(key_file).read_text()
        except OSError as exc:
            raise SigningKeyError(f"{ENV_KEY_FILE}={key_file}: {exc.strerror}") from exc
    if require_env and not armored:
        raise SigningKeyError(f"no signing key: set {ENV_KEY} or {ENV_KEY_FILE} from the CI "
                              "secret store (CLUSTERSTACK_REQUIRE_SIGNING_KEY is set; refusing "
                              "to publish with any other key, or unsigned)")
    home = keyring_dir
    if armored:
        # A secret from CI gets a private, throw-away home of its own.
        home = keyring_dir.with_name(keyring_dir.name + "-env")
    home.mkdir(parents=True, exist_ok=True)
    home.chmod(0o700)
    base = ["gpg", "--homedir", home, "--batch", "--no-tty", "--pinentry-mode", "loopback",
            "--passphrase", ""]
    if armored:
        if "PRIVATE KEY BLOCK" not in armored:
            raise SigningKeyError(f"{ENV_KEY}: does not hold an armored OpenPGP secret key")
        runner.run([*base, "--import"], input=armored)
    fprs = _secret_fingerprints(home, runner)
    if not fprs:
        runner.run([*base, "--quick-generate-key", KEY_UID, "ed25519", "sign", "never"])
        fprs = _secret_fingerprints(home, runner)
    if not fprs or not re.fullmatch(r"[0-9A-F]{40}", fprs[0]):
        raise SigningKeyError(f"no usable secret key in {home}")
    return Signer(home, fprs[0], runner)
