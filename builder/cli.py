"""The `clusterstack` command line: plan, build, publish, verify."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from . import __version__, signing
from . import backend as backends
from .build import Builder, BuildFailed
from .command import Runner
from .errors import ClusterStackError
from .fetch import Fetcher
from .lock import exclusive
from .plan import as_json, format_plan, make_plan
from .progress import Progress
from .publish import publish
from .stack import Stack
from .verify import VerifyFailed, format_table, verify
from .workspace import Workspace

log = logging.getLogger("clusterstack")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="clusterstack", description=__doc__)
    p.add_argument("--version", action="version", version=f"clusterstack {__version__}")
    p.add_argument("--stack", type=Path, help="stack definition folder (default: found from .)")
    p.add_argument("--out", type=Path, help="output folder (default: STACK/out or "
                   "$CLUSTERSTACK_OUT)")
    p.add_argument("--cache", type=Path, help="download cache (default: "
                   "~/.cache/clusterstack or $CLUSTERSTACK_CACHE)")
    p.add_argument("-v", "--verbose", action="store_true", help="log every command line")
    sub = p.add_subparsers(dest="command", required=True)

    def with_profile(name: str, help: str) -> argparse.ArgumentParser:
        sp = sub.add_parser(name, help=help, description=help)
        sp.add_argument("--profile", default=os.environ.get("CLUSTERSTACK_PROFILE", "trixie"))
        return sp

    sp = with_profile("plan", "show components, strategies, versions and what a build does")
    sp.add_argument("--json", action="store_true")
    sp = with_profile("build", "bring every component's packages up to date")
    sp.add_argument("--component", action="append", help="only this component (repeatable)")
    sp.add_argument("--import", dest="imported", action="append", metavar="COMPONENT",
                    help="take this component's binaries from the base archive instead of "
                    "building it, for this run (repeatable)")
    sp.add_argument("-j", "--jobs", type=int, default=2)
    sp.add_argument("--backend", choices=backends.BACKENDS, default="unshare")
    with_profile("render", "render generated source trees (debian/) without building")
    with_profile("publish", "publish the signed apt repository atomically")
    sp = with_profile("verify", "install from the published repository into a fresh root")
    sp.add_argument("--cluster", action="store_true", help="form a real multi-node cluster")
    sp.add_argument("--vm", action="store_true", help="with --cluster: qemu kernel tier")
    sp.add_argument("--nodes", type=int, default=3)
    sp = sub.add_parser("upstart", help="Upstart job tools")
    up = sp.add_subparsers(dest="upstart_command", required=True)
    lint = up.add_parser("lint", help="strictly check Upstart job files")
    try:
        from .upstart import cli as upstart_cli
        upstart_cli.configure_parser(lint)
    except ImportError:
        pass
    return p


def _cmd_plan(args: argparse.Namespace, builder: Builder) -> int:
    rows = make_plan(builder)
    print(json.dumps(as_json(rows), indent=2) if args.json else format_plan(rows))
    return 0


def _cmd_build(args: argparse.Namespace, builder: Builder) -> int:
    try:
        outcomes = builder.run()
    except BuildFailed as exc:
        outcomes = exc.outcomes
        _print_outcomes(outcomes)
        raise
    _print_outcomes(outcomes)
    return 0


def _print_outcomes(outcomes: list) -> None:
    for o in outcomes:
        extra = f"  log: {o.log}" if o.status == "failed" else ""
        print(f"{o.component:<20} {o.status:<11} {o.version}{extra}")
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING,
                        format="%(name)s: %(message)s")
    try:
        return _dispatch(args)
    except ClusterStackError as exc:
        print(f"clusterstack: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("clusterstack: interrupted", file=sys.stderr)
        return 130


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "upstart":
        from .upstart import cli as upstart_cli
        return upstart_cli.run(args)
    ws = Workspace.create(args.stack, args.out, args.cache)
    runner = Runner()
    progress = Progress()
    fetcher = Fetcher(ws.cache_dir / "downloads")
    with exclusive(ws.out_dir):
        stack = Stack.load(ws, args.profile, getattr(args, "component", None),
                           getattr(args, "imported", None))
        if args.command == "plan":
            return _cmd_plan(args, Builder(stack, runner, fetcher, progress))
        if args.command == "render":
            for tree in Builder(stack, runner, fetcher, progress).render_all():
                print(tree)
            return 0
        if args.command == "build":
            if not stack.profile.reachable:
                raise ClusterStackError(f"profile {stack.profile.name}: its archive is not "
                                        "reachable from here; it is rendered and tested only")
            backend = backends.load(args.backend, ws, stack.profile,
                                    runner.for_log(ws.log_path(stack.profile.name,
                                                               "_build-root")))
            return _cmd_build(args, Builder(stack, runner, fetcher, progress, backend,
                                            args.jobs))
        if args.command == "publish":
            signer = signing.load(ws.keyring_dir, runner.for_log(
                ws.log_path(stack.profile.name, "_publish")),
                generate=not os.environ.get("CLUSTERSTACK_REQUIRE_SIGNING_KEY"))
            pub = publish(stack, signer, runner.for_log(ws.log_path(stack.profile.name,
                                                                    "_publish")), progress)
            print(f"published {pub.packages} packages for {pub.suite} at {pub.path}\n"
                  f"signing key {pub.fingerprint}: {pub.key_file}")
            return 0
        if args.command == "verify":
            if args.cluster:
                from .cluster import cli as cluster_cli
                return cluster_cli.run(args, stack, runner, progress)
            vrunner = runner.for_log(ws.log_path(stack.profile.name, "_verify"))
            checks = verify(stack, vrunner, progress, ws.profile_out(stack.profile.name) /
                            "verify", apt_cache=ws.cache_dir / "apt-archives")
            print(format_table(checks))
            if not all(c.ok for c in checks):
                raise VerifyFailed(f"verification failed; log: {vrunner.log_path}")
            return 0
    raise ClusterStackError(f"unknown command {args.command}")


if __name__ == "__main__":
    sys.exit(main())
