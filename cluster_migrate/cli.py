"""cluster-migrate: the command line, and the all-or-nothing writing of the output folder."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from .cib import render_cib
from .convert import convert
from .corosync import render_corosync
from .errors import MigrateError
from .parse import parse_file
from .report import Report
from .shells import render_crm, render_pcs

OUTPUT_FILES = ("corosync.conf", "cib.xml", "crm.sh", "pcs.sh", "report.txt", "report.json")
# A folder holding this file is taken to be an earlier conversion (safe to replace
# with --force); any other non-empty folder is never touched.
MARKER = "report.json"


def _addresses(values: list[str]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for value in values:
        name, sep, addrs = value.partition("=")
        if not sep or not name or not addrs:
            raise MigrateError(f"--address {value!r}: expected NODE=ADDR[,ADDR2]")
        out[name] = [a for a in addrs.split(",") if a]
    return out


def convert_files(source: Path, addresses: dict[str, list[str]]) -> tuple[dict[str, str],
                                                                          Report]:
    """Everything in memory first: a bad input must not leave anything on disk."""
    cluster = parse_file(source)
    unknown = sorted(set(addresses) - {n.name for n in cluster.nodes})
    if unknown:
        raise MigrateError(f"--address names unknown node(s): {', '.join(unknown)}")
    report = Report(str(source))
    corosync_conf = render_corosync(cluster, addresses, report)
    config = convert(cluster, report)
    files = {
        "corosync.conf": corosync_conf,
        "cib.xml": render_cib(config),
        "crm.sh": render_crm(config),
        "pcs.sh": render_pcs(config),
    }
    files["report.txt"] = report.to_text()
    files["report.json"] = report.to_json()
    return files, report


def write_output(out: Path, files: dict[str, str], force: bool) -> None:
    """Write into a temporary folder beside `out`, then rename it into place."""
    out = out.absolute()
    if out.exists():
        if not out.is_dir():
            raise MigrateError(f"{out} exists and is not a folder")
        contents = list(out.iterdir())
        if contents and not (out / MARKER).exists():
            raise MigrateError(f"{out} is not empty and holds no earlier conversion; "
                               f"choose another folder")
        if contents and not force:
            raise MigrateError(f"{out} already holds a conversion; use --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in files.items():
            path = tmp / name
            path.write_text(text, encoding="utf-8")
            os.chmod(path, 0o755 if name.endswith(".sh") else 0o644)
        # cib.xml holds fence passwords from cluster.conf, as cluster.conf did.
        os.chmod(tmp / "cib.xml", 0o600)
        os.chmod(tmp, 0o755)
        if out.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old.", dir=out.parent))
            os.rename(out, old / "previous")
            os.rename(tmp, out)
            shutil.rmtree(old)
        else:
            os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="cluster-migrate",
        description="Convert a Red Hat Cluster Suite cluster.conf (cman + rgmanager) into "
                    "corosync.conf (corosync 3), cib.xml (Pacemaker), crm.sh, pcs.sh and a "
                    "report of every decision.")
    parser.add_argument("cluster_conf", type=Path, help="the cluster.conf to convert")
    parser.add_argument("-o", "--output", type=Path, required=True,
                        help="folder to create with the converted files")
    parser.add_argument("--force", action="store_true",
                        help="replace an earlier conversion in the output folder")
    parser.add_argument("--address", action="append", default=[], metavar="NODE=ADDR[,ADDR]",
                        help="addresses for a node's knet links (default: its name and "
                             "altnames); repeat per node")
    args = parser.parse_args(argv)
    try:
        files, report = convert_files(args.cluster_conf, _addresses(args.address))
        write_output(args.output, files, args.force)
    except MigrateError as exc:
        where = f"{args.cluster_conf}:{exc.line}: " if exc.line else ""
        print(f"cluster-migrate: error: {where}{exc.message}", file=sys.stderr)
        return 1
    counts = report.counts()
    for entry in report.entries:
        if entry.severity == "critical":
            print(f"cluster-migrate: WARNING: line {entry.line}: {entry.message}",
                  file=sys.stderr)
    print(f"wrote {', '.join(OUTPUT_FILES)} to {args.output}")
    print(f"report: {counts['critical']} critical, {counts['error']} not carried over, "
          f"{counts['warning']} warnings, {counts['info']} notes - read "
          f"{args.output / 'report.txt'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
