"""apt clients of our repository, in private folders: does apt accept it,
and does it refuse it once its Valid-Until has passed?

A private apt (its own APT_CONFIG, lists, cache and dpkg status in one
folder) runs as any user without a root file system, so these checks cost
a second, not a chroot.
"""

from __future__ import annotations

import calendar
import email.utils
import re
import shutil
import tempfile
import time
from pathlib import Path

from builder.base.command import Result, Runner
from builder.base.errors import VerificationError

EXPIRED_MARK = "is expired"
DAY = 86400


def private_apt(work: Path, sources: str) -> dict[str, str]:
    """Set up an apt of its own in `work` for the given sources.list text;
    return the environment that makes apt-get use it."""
    for sub in ("etc/apt/apt.conf.d", "etc/apt/preferences.d", "etc/apt/sources.list.d",
                "etc/apt/trusted.gpg.d", "var/lib/apt/lists/partial",
                "var/cache/apt/archives/partial", "var/lib/dpkg"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    (work / "var/lib/dpkg/status").touch()
    (work / "etc/apt/sources.list").write_text(sources)
    conf = work / "apt.conf"
    # APT_CONFIG is read before any configuration part, so the host's
    # /etc/apt settings (proxies, keyrings, languages) do not leak in.
    conf.write_text(
        f'Dir "{work}/";\n'
        f'Dir::State::status "{work}/var/lib/dpkg/status";\n'
        'APT::Sandbox::User "root";\n'
        'Acquire::Languages "none";\n'
        'Acquire::Retries "0";\n')
    return {"APT_CONFIG": str(conf)}


def apt_update(work: Path, sources: str, runner: Runner, timeout: float = 120) -> Result:
    """`apt-get update` of a private apt; the result, whatever it is."""
    env = private_apt(work, sources)
    return runner.run(["apt-get", "update"], env=env, check=False, timeout=timeout)


def apt_errors(result: Result) -> list[str]:
    """What apt complained about (it exits 0 on some of it, e.g. GPG errors)."""
    text = result.stdout + result.stderr_tail
    return [ln.strip() for ln in text.splitlines() if re.match(r"^(E|W|Err):", ln.strip())]


def _date(ts: float) -> str:
    return time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(ts))


def _parse_date(value: str, where: Path) -> float:
    parsed = email.utils.parsedate_tz(value)
    if not parsed:
        raise VerificationError(f"{where}: cannot read the date '{value}'")
    return calendar.timegm(parsed[:9]) - (parsed[9] or 0)


def _field(text: str, name: str) -> str | None:
    match = re.search(rf"^{name}: (.*)$", text, re.M)
    return match.group(1).strip() if match else None


def _throwaway_key(home: Path, runner: Runner) -> tuple[list[str | Path], Path]:
    home.mkdir(mode=0o700)
    gpg: list[str | Path] = ["gpg", "--homedir", home, "--batch", "--yes", "--no-tty",
                             "--pinentry-mode", "loopback", "--passphrase", ""]
    runner.run([*gpg, "--quick-generate-key", "validity check <check@clusterstack.invalid>",
                "ed25519", "sign", "1d"])
    keyring = home.parent / "check-key.gpg"
    runner.run([*gpg, "--output", keyring, "--export"])
    return gpg, keyring


def expired_release_refused(repo: Path, runner: Runner, *, suite: str | None = None) -> str:
    """Prove that apt refuses our repository once its Valid-Until has passed.

    `repo` is a published repository (out/public/<profile>).  Its Release
    must carry a Valid-Until; a copy of its indexes is then re-signed with a
    throw-away key twice, as it is and with Date and Valid-Until moved into
    the past, and a private apt must accept the first and refuse the second
    as expired.  Our own key is not needed (verify runs without the secret).
    Returns a one-line detail; raises VerificationError naming the Release.
    """
    repo = repo.resolve()
    if suite is None:
        suites = sorted(p.name for p in (repo / "dists").iterdir()) if (
            repo / "dists").is_dir() else []
        if len(suites) != 1:
            raise VerificationError(f"{repo / 'dists'}: expected one suite, found "
                                    f"{', '.join(suites) or 'none'}")
        suite = suites[0]
    release = repo / "dists" / suite / "Release"
    try:
        text = release.read_text()
    except OSError as exc:
        raise VerificationError(f"{release}: {exc.strerror}") from exc
    valid_until, date = _field(text, "Valid-Until"), _field(text, "Date")
    if not valid_until or not date:
        raise VerificationError(f"{release}: has no Valid-Until (or no Date): a mirror could "
                                "serve it, stale, forever")
    lifetime = _parse_date(valid_until, release) - _parse_date(date, release)
    components = _field(text, "Components") or "main"
    with tempfile.TemporaryDirectory(prefix="clusterstack-validity-") as tmp:
        work = Path(tmp)
        gpg, keyring = _throwaway_key(work / "gnupg", runner)
        try:
            outcomes = {}
            now = time.time()
            for name, fields in (("current", None),
                                 ("expired", (now - lifetime - DAY, now - DAY))):
                copy = work / name
                shutil.copytree(repo / "dists", copy / "dists")
                dist = copy / "dists" / suite
                body = text
                if fields:
                    body = re.sub(r"^Date: .*$", f"Date: {_date(fields[0])}", body, flags=re.M)
                    body = re.sub(r"^Valid-Until: .*$", f"Valid-Until: {_date(fields[1])}",
                                  body, flags=re.M)
                (dist / "Release").write_text(body)
                for old in ("InRelease", "Release.gpg"):
                    (dist / old).unlink(missing_ok=True)
                runner.run([*gpg, "--clearsign", "--output", dist / "InRelease",
                            dist / "Release"])
                line = f"deb [signed-by={keyring}] file:{copy} {suite} {components}\n"
                outcomes[name] = apt_update(work / f"apt-{name}", line, runner)
        finally:
            runner.run(["gpgconf", "--homedir", work / "gnupg", "--kill", "all"], check=False)
    current, expired = outcomes["current"], outcomes["expired"]
    if current.returncode != 0 or apt_errors(current):
        why = (apt_errors(current) or [f"exit status {current.returncode}"])[0]
        raise VerificationError(f"{release}: apt does not accept it as published "
                                f"(Valid-Until {valid_until}): {why}")
    said = expired.stdout + expired.stderr_tail
    if expired.returncode == 0 or EXPIRED_MARK not in said:
        raise VerificationError(f"{release}: apt accepted it with Valid-Until moved into the "
                                f"past (exit status {expired.returncode}); a stale mirror "
                                "would go unnoticed")
    return (f"Valid-Until {valid_until} ({lifetime / DAY:g} days); apt refuses it once "
            "passed: " + next(ln for ln in apt_errors(expired) if EXPIRED_MARK in ln)[:200])
