"""The ha_cluster_exporter start wrapper of prometheus-hacluster-exporter-debian."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FILES = ROOT / "monitoring" / "prometheus-hacluster-exporter"
START = FILES / "ha_cluster_exporter-start"
NO_DRBD = "--drbdsetup-path=/dev/null/drbdsetup-not-used"
# /proc/drbd of the two module generations (first lines, as the kernel prints them)
DRBD84 = "version: 8.4.11 (api:1/proto:86-101)\nsrcversion: 2A5E3C7A8F0B1B6D3C2E1F0\n"
DRBD9 = "version: 9.2.12 (api:2/proto:86-122)\nGIT-hash: 0123456789abcdef\n"


def start(tmp_path: Path, *args: str, proc_drbd: str | None = None,
          modinfo: str | None = None, collector: str | None = None) -> tuple[list[str], str]:
    """Run the wrapper with a fake exporter that prints its arguments."""
    exporter = tmp_path / "ha_cluster_exporter"
    exporter.write_text('#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n')
    exporter.chmod(0o755)
    bindir = tmp_path / "bin"
    bindir.mkdir(exist_ok=True)
    if modinfo is not None:
        fake = bindir / "modinfo"
        fake.write_text(f"#!/bin/sh\n{modinfo}\n")
        fake.chmod(0o755)
    env = {"PATH": f"{bindir}:/usr/bin:/bin", "HA_CLUSTER_EXPORTER": str(exporter),
           "HA_CLUSTER_EXPORTER_PROC_DRBD": str(tmp_path / "proc-drbd")}
    if modinfo is None:
        # no modinfo on PATH: a PATH with only the shell's tools
        env["PATH"] = str(bindir) + ":" + os.path.dirname(
            subprocess.run(["sh", "-c", "command -v sed"], capture_output=True, text=True,
                           check=True).stdout.strip())
    if proc_drbd is not None:
        (tmp_path / "proc-drbd").write_text(proc_drbd)
    if collector is not None:
        env["DRBD_COLLECTOR"] = collector
    proc = subprocess.run(["sh", str(START), *args], capture_output=True, text=True, env=env,
                          timeout=30, check=True)
    return proc.stdout.splitlines(), proc.stderr


def test_drbd84_loaded_leaves_collector_out(tmp_path: Path) -> None:
    args, log = start(tmp_path, "--log.level=warn", proc_drbd=DRBD84)
    assert args == [NO_DRBD, "--log.level=warn"]
    assert log == ("DRBD metrics not collected: drbd kernel module 8.4.11 is not DRBD 9"
                   " (drbdsetup status --json needs 9) (DRBD_COLLECTOR in"
                   " /etc/default/prometheus-hacluster-exporter)\n")


def test_drbd9_loaded_keeps_collector(tmp_path: Path) -> None:
    assert start(tmp_path, proc_drbd=DRBD9, modinfo="echo 8.4.11") == ([], "")


@pytest.mark.parametrize(("version", "collected"), [("8.4.11", False), ("9.2.12", True),
                                                     ("", False)])
def test_module_not_loaded_asks_modinfo(tmp_path: Path, version: str, collected: bool) -> None:
    args, log = start(tmp_path, modinfo=f"echo {version}" if version else "exit 1")
    assert (args == []) is collected
    assert (log == "") is collected
    if not version:
        assert "no drbd kernel module found" in log


def test_without_modinfo(tmp_path: Path) -> None:
    args, log = start(tmp_path)
    assert args == [NO_DRBD]
    assert "no drbd kernel module found" in log


def test_administrator_decides(tmp_path: Path) -> None:
    assert start(tmp_path, proc_drbd=DRBD84, collector="yes") == ([], "")
    args, log = start(tmp_path, proc_drbd=DRBD9, collector="no")
    assert args == [NO_DRBD]
    assert "DRBD_COLLECTOR=no" in log
    # an explicit --drbdsetup-path in ARGS wins; kingpin refuses a repeated flag
    args, _ = start(tmp_path, "--drbdsetup-path=/usr/sbin/drbdsetup", proc_drbd=DRBD84)
    assert args == ["--drbdsetup-path=/usr/sbin/drbdsetup"]


def test_dropin_reads_debian_defaults() -> None:
    dropin = (FILES / "debian.conf").read_text().splitlines()
    assert "EnvironmentFile=-/etc/default/prometheus-hacluster-exporter" in dropin
    # ExecStart= empty first: a drop-in may only replace it, not add a second
    assert dropin.index("ExecStart=") < dropin.index(
        "ExecStart=/usr/libexec/prometheus-hacluster-exporter-debian/"
        "ha_cluster_exporter-start $ARGS")
    defaults = (FILES / "default").read_text()
    assert 'ARGS=""' in defaults
    assert "DRBD_COLLECTOR=auto" in defaults
