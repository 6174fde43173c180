"""`clusterstack upstart ...`: lint job files, render the project's jobs.

The main CLI mounts `configure_subcommands` under its `upstart` word and
dispatches to `run(args)`, which reads `args.upstart_command`.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from builder.base.command import Runner

# The linter and the renderer (jinja2) are imported when a command runs: the
# main CLI builds this parser on every call, `plan` and `build` included.
if TYPE_CHECKING:
    from .lint import Finding


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of `clusterstack upstart lint` (the main CLI owns the `lint` word)."""
    parser.add_argument("--deb", action="append", default=[], type=Path, metavar="DEB",
                        help="check each job's exec path against this .deb's file list "
                             "(repeatable; paths may come from any of them)")
    parser.add_argument("--werror", action="store_true", help="treat warnings as errors")
    parser.add_argument("files", nargs="+", type=Path, metavar="FILE")


def configure_render_parser(parser: argparse.ArgumentParser) -> None:
    """Arguments of `clusterstack upstart render`: render, lint, write only if clean."""
    parser.add_argument("--profile", required=True, help="profile name, e.g. trixie, trusty")
    parser.add_argument("--init", required=True, choices=["systemd", "upstart", "sysvinit"])
    parser.add_argument("--runlevel-stop", default="[016]")
    parser.add_argument("--deb", action="append", default=[], type=Path, metavar="DEB")
    parser.add_argument("--upstart-dir", type=Path,
                        help="the job templates (default: the project's upstart/)")
    parser.add_argument("--werror", action="store_true")
    parser.add_argument("dest", type=Path, help="root to write etc/init and etc/default under")


def configure_subcommands(sub: argparse._SubParsersAction) -> None:
    """`lint` and `render` under the caller's `upstart` word."""
    configure_parser(sub.add_parser("lint", help="strictly check Upstart job files"))
    configure_render_parser(sub.add_parser(
        "render", help="render the project's jobs for a profile and lint them"))


def _report(findings: list[Finding], werror: bool) -> int:
    from .lint import ERROR, WARNING
    for f in findings:
        print(f, file=sys.stderr)
    bad = [f for f in findings if f.severity == ERROR or (werror and f.severity == WARNING)]
    return 1 if bad else 0


def run(args: argparse.Namespace) -> int:
    from .debfiles import read_deb
    from .lint import lint_file
    from .render import UPSTART_DIR, JobProfile, render_all, write
    runner = Runner()
    debs = [read_deb(d, runner) for d in args.deb]
    if args.upstart_command == "lint":
        findings: list[Finding] = []
        for path in args.files:
            findings += lint_file(path, debs=debs, runner=runner)
        return _report(findings, args.werror)
    profile = JobProfile(args.profile, args.init, args.runlevel_stop)
    rendered = render_all(profile, args.upstart_dir or UPSTART_DIR,
                          debs={d.package: d for d in debs}, runner=runner)
    findings = [f for r in rendered for f in r.findings]
    status = _report(findings, args.werror)
    if status:
        # A job that does not lint clean is not written: nothing ships it.
        print(f"upstart: not writing jobs for {args.profile}: lint failed", file=sys.stderr)
        return status
    for path in write(rendered, args.dest):
        print(path)
    return 0


def main(argv: list[str] | None = None) -> int:
    """`python -m builder.tree.upstart.cli`: the same as `clusterstack upstart`."""
    parser = argparse.ArgumentParser(prog="clusterstack upstart")
    configure_subcommands(parser.add_subparsers(dest="upstart_command", required=True))
    return run(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
