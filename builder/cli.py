"""The `clusterstack` command line: plan, build, publish, verify."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from builder import __version__
from builder.base import digest
from builder.base.command import Runner
from builder.base.errors import ClusterStackError
from builder.base.fetch import Fetcher
from builder.base.lock import exclusive
from builder.base.progress import Progress
from builder.base.workspace import Workspace
from builder.build import artifacts, report
from builder.build.analysis import Contexts, analyse, render_trees
from builder.build.build import Builder, BuildFailed
from builder.build.outcome import Outcome, Status
from builder.build.plan import as_json, format_plan, make_plan
from builder.buildroot import backend as backends
from builder.ci import pipeline
from builder.stack.stack import Stack
from builder.tree.strategy import STRATEGIES
from builder.tree.upstart import cli as upstart_cli

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
    _build_arguments(with_profile("build", "bring every component's packages up to date"))
    with_profile("render", "render generated source trees (debian/) without building")
    with_profile("publish", "publish the signed apt repository atomically")
    _verify_arguments(with_profile(
        "verify", "install from the published repository into a fresh root"))
    sp = with_profile("key", "print the builder's input hash of components (CI cache keys)")
    sp.add_argument("--component", action="append", required=True)
    with_profile("report", "write report.json/html from the recorded state of every component")
    _ci_arguments(with_profile(
        "ci", "write a CI pipeline generated from the build graph, or run it"))
    _preseed_arguments(with_profile(
        "preseed", "write the Debian installer preseed of a cluster node"))
    sp = sub.add_parser("upstart", help="Upstart job tools")
    upstart_cli.configure_subcommands(sp.add_subparsers(dest="upstart_command", required=True))
    return p


def _build_arguments(sp: argparse.ArgumentParser) -> None:
    """`clusterstack build`."""
    sp.add_argument("--component", action="append", help="only this component (repeatable)")
    sp.add_argument("--import", dest="imported", action="append", metavar="COMPONENT",
                    help="take this component's binaries from the base archive instead of "
                    "building it, for this run (repeatable; default: the components "
                    f"${pipeline.IMPORT_VARIABLE} names, the CI pipeline's variable)")
    sp.add_argument("--strategy", action="append", choices=list(STRATEGIES),
                    help="only components of this strategy (repeatable)")
    sp.add_argument("--from-artifacts", type=Path, metavar="DIR",
                    help="another output folder: its built components are taken from it "
                    "(e.g. one a CI job's artifacts were unpacked into)")
    sp.add_argument("-j", "--jobs", type=int, default=2, help="builds at the same time")
    sp.add_argument("--parallel", type=int, default=os.cpu_count() or 1, metavar="N",
                    help="make jobs inside each build (DEB_BUILD_OPTIONS parallel=N; "
                    "default: the number of CPUs)")
    sp.add_argument("--backend", choices=list(backends.BACKENDS), default="unshare")
    sp.add_argument("--scratch", default="auto", metavar="auto|none|DIR",
                    help="where the unshare backend unpacks build roots: auto = /dev/shm "
                    "when it is a tmpfs with room to spare; none = sbuild's /tmp")


def _verify_arguments(sp: argparse.ArgumentParser) -> None:
    """`clusterstack verify`."""
    sp.add_argument("--cluster", action="store_true", help="form a real multi-node cluster")
    sp.add_argument("--vm", action="store_true", help="with --cluster: qemu kernel tier")
    sp.add_argument("--no-gfs2", action="store_true",
                    help="with --vm: leave out DLM + GFS2 on both guests")
    sp.add_argument("--no-lvs", action="store_true",
                    help="with --vm: leave out keepalived's LVS load balancing (two real "
                    "servers behind a VIP, directed from both guests)")
    sp.add_argument("--installer", action="store_true",
                    help="install a node with trixie's debian-installer and our preseed "
                    "(qemu), then check it")
    sp.add_argument("--nodes", type=int, default=3)
    sp.add_argument("--scenario", default="full", metavar="short|full|NAME[,NAME]",
                    help="with --cluster: short = VIP + one kill fail-over (CI); full = "
                    "every named fault scenario with MariaDB; or a comma-separated list "
                    "of names (see builder/verify/cluster/README.md)")
    sp.add_argument("--init", choices=["script", "systemd"], default="script",
                    help="with --cluster: script = the harness's own PID 1 starts the "
                    "daemons; systemd = nodes boot systemd (systemd-nspawn) and pcs "
                    "creates the cluster")
    sp.add_argument("--shell", choices=["pcs", "crmsh"], default=None,
                    help="with --cluster --init systemd: the bootstrap tool (default pcs; "
                    "crmsh: crm cluster init and join)")
    sp.add_argument("--howto", type=Path, metavar="PAGE",
                    help="with --cluster --init systemd: run this how-to page's commands "
                    "word for word (docs/howto-mariadb-failover.md), then the fail-overs")


def _ci_arguments(sp: argparse.ArgumentParser) -> None:
    """`clusterstack ci`."""
    sp.add_argument("--format", choices=sorted(pipeline.FORMATS), default="gitlab")
    sp.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")
    sp.add_argument("--check", type=Path, metavar="FILE",
                    help="fail unless FILE is what would be generated now")
    sp.add_argument("--stats", action="store_true",
                    help="jobs, critical path and sum of measured build times")
    sp.add_argument("--job", metavar="NAME",
                    help="in CI job NAME: check what it starts from (the pipeline variable "
                    f"${pipeline.IMPORT_VARIABLE}, the artifacts of the jobs given with "
                    "--needs) and fail with one error naming what is missing")
    sp.add_argument("--needs", action="append", default=[], metavar="JOB",
                    help="with --job: a job whose artifacts it takes (repeatable)")


def _preseed_arguments(sp: argparse.ArgumentParser) -> None:
    """`clusterstack preseed`."""
    sp.add_argument("--url", required=True, help="where nodes reach the published "
                    "repository (e.g. http://mirror.example/clusterstack/trixie)")
    sp.add_argument("--key-url", help="its signing key (default: URL/"
                    "clusterstack-archive-keyring.gpg)")
    sp.add_argument("--hostname", default="node1")
    sp.add_argument("--domain", default="cluster.example")
    sp.add_argument("--address", required=True, metavar="ADDR/PREFIX",
                    help="bond0's address on the installed system")
    sp.add_argument("--gateway", required=True)
    sp.add_argument("--bond-mode", default="active-backup",
                    help="active-backup (default; needs nothing from the switch) or 802.3ad")
    sp.add_argument("--bond-slaves", default="", metavar="'NIC1 NIC2'",
                    help="default: the first two NICs the installed system has")
    sp.add_argument("--ssh-key", type=Path, metavar="FILE", help="root's authorized key")
    sp.add_argument("--mirror", default="deb.debian.org", help="Debian mirror host")
    sp.add_argument("--proxy", default="", help="HTTP proxy for the mirror")
    sp.add_argument("-o", "--output", type=Path, help="file to write (default: stdout)")


@dataclass(frozen=True)
class Session:
    """What every command of one invocation works with."""

    args: argparse.Namespace
    workspace: Workspace
    stack: Stack
    runner: Runner
    fetcher: Fetcher
    progress: Progress

    @property
    def profile(self) -> str:
        return self.stack.profile.name

    def contexts(self, backend: backends.Backend | None = None, parallel: int = 1) -> Contexts:
        return Contexts.create(self.stack, self.runner, self.fetcher, backend, parallel)

    def log_runner(self, name: str) -> Runner:
        """A runner logging into out/<profile>/logs/<name>.log."""
        return self.runner.for_log(self.workspace.log_path(self.profile, name))


def _cmd_plan(s: Session) -> int:
    rows = make_plan(s.contexts(), s.progress)
    print(json.dumps(as_json(rows), indent=2) if s.args.json else format_plan(rows))
    return 0


def _cmd_key(s: Session) -> int:
    entries = analyse(s.contexts(), s.progress).entries
    keys = [entries[c].key for c in s.args.component]
    print(keys[0] if len(keys) == 1 else digest.of_mapping(
        dict(zip(s.args.component, keys, strict=True))))
    return 0


def _cmd_report(s: Session) -> int:
    path = report.from_state(s.workspace.profile_out(s.profile), s.profile,
                             [r.name for r in s.stack.recipes])
    print(path.with_suffix(".html"))
    return 0


def _cmd_render(s: Session) -> int:
    for tree in render_trees(s.contexts(), s.progress):
        print(tree)
    return 0


def _ci_job(args: argparse.Namespace, ws: Workspace) -> int:
    # Not the whole pipeline: that needs the build graph, which renders every
    # component whose state is not here; the check needs only the recipes.
    stack = Stack.load(ws, args.profile)
    found = pipeline.check_job(ws, stack.profile.name, stack.profile.suite, stack.recipes,
                               args.job, args.needs, dict(os.environ))
    imported = pipeline.imports_from_env()
    print(f"job {args.job}: " + ("; ".join(found) if found else "takes no artifacts")
          + (f"; {pipeline.IMPORT_VARIABLE}: {' '.join(imported)}" if imported else ""))
    return 0


def _cmd_ci(s: Session) -> int:
    args = s.args
    pipe = pipeline.make(s.stack, analyse(s.contexts(), s.progress))
    if args.stats:
        path_time, all_time, path = pipeline.critical_path(pipe, s.workspace.state_dir(s.profile))
        print(f"jobs: {len(pipe.jobs)} ({sum(j.stage == 'build' for j in pipe.jobs)} build jobs)\n"
              f"critical path: {path_time:.0f} s ({' -> '.join(path)})\n"
              f"sum of build times: {all_time:.0f} s\n"
              f"speed-up with enough runners: {all_time / max(path_time, 1e-9):.2f}x")
        return 0
    text = pipeline.render(pipe, args.format)
    if args.check:
        current = args.check.read_text() if args.check.is_file() else ""
        if current != text:
            raise ClusterStackError(f"{args.check} is not up to date with the build graph; "
                                    f"regenerate it: clusterstack ci --format {args.format} "
                                    f"-o {args.check}")
        print(f"{args.check} is up to date")
        return 0
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(text)
    else:
        print(text, end="")
    return 0


def _cmd_preseed(s: Session) -> int:
    from builder.tree.preseed import Bond, Mirror, Node, Preseed, Repository, render_preseed
    args = s.args
    url = args.url.rstrip("/")
    key = ""
    if args.ssh_key:
        try:
            key = args.ssh_key.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ClusterStackError(f"{args.ssh_key}: cannot read: {exc.strerror}") from exc
    values = Preseed(
        node=Node(hostname=args.hostname, domain=args.domain, ssh_key=key),
        mirror=Mirror(hostname=args.mirror, proxy=args.proxy),
        repository=Repository(url=url, key_url=args.key_url
                              or f"{url}/clusterstack-archive-keyring.gpg"),
        bond=Bond(address=args.address, gateway=args.gateway, mode=args.bond_mode,
                  slaves=args.bond_slaves))
    values.check()
    text = render_preseed(s.workspace.packaging_dir, s.stack.profile, values)
    if args.output:
        args.output.write_text(text, encoding="utf-8")
    else:
        print(text, end="")
    return 0


def _cmd_build(s: Session) -> int:
    args = s.args
    if not s.stack.profile.reachable:
        raise ClusterStackError(f"profile {s.profile}: its archive is not "
                                "reachable from here; it is rendered and tested only")
    if args.from_artifacts:
        artifacts.bring(args.from_artifacts, s.workspace, s.profile)
    backend = backends.load(args.backend, s.workspace, s.stack.profile,
                            s.log_runner("_build-root"),
                            backends.BackendOptions(scratch=args.scratch))
    builder = Builder(s.stack, s.runner, s.fetcher, s.progress, backend, args.jobs,
                      max(1, args.parallel))
    try:
        outcomes = builder.run()
    except BuildFailed as exc:
        _print_outcomes(exc.outcomes)
        raise
    _print_outcomes(outcomes)
    return 0


def _print_outcomes(outcomes: list[Outcome]) -> None:
    for o in outcomes:
        extra = f"  log: {o.log}" if o.status == Status.FAILED else ""
        print(f"{o.component:<20} {o.status:<11} {o.version}{extra}")
    counts: dict[str, int] = {}
    for o in outcomes:
        counts[o.status] = counts.get(o.status, 0) + 1
    print(", ".join(f"{n} {s}" for s, n in sorted(counts.items())))


def _cmd_publish(s: Session) -> int:
    # publish, signing and verify are imported by the commands that use them:
    # `plan` and a no-op `build` must start quickly (issue 19).
    from builder.repo import signing
    from builder.repo.publish import publish
    signer = signing.load(s.workspace.keyring_dir, s.log_runner("_publish"),
                          require_env=bool(os.environ.get("CLUSTERSTACK_REQUIRE_SIGNING_KEY")))
    pub = publish(s.stack, signer, s.log_runner("_publish"), s.progress)
    print(f"published {pub.packages} packages for {pub.suite} at {pub.path}\n"
          f"signing key {pub.fingerprint}: {pub.key_file}")
    return 0


def _cmd_verify(s: Session) -> int:
    from builder.verify.verify import VerifyFailed, format_table, verify
    if s.args.installer:
        from builder.verify.installer import cli as installer_cli
        return installer_cli.run(s.stack, s.fetcher, s.progress)
    if s.args.cluster:
        from builder.verify.cluster import cli as cluster_cli
        return cluster_cli.run(s.args, s.stack, s.runner, s.progress)
    vrunner = s.log_runner("_verify")
    checks = verify(s.stack, vrunner, s.progress, s.workspace.profile_out(s.profile) / "verify",
                    apt_cache=s.workspace.cache_dir / "apt-archives")
    print(format_table(checks))
    if not all(c.ok for c in checks):
        raise VerifyFailed(f"verification failed; log: {vrunner.log_path}")
    return 0


COMMANDS: dict[str, Callable[[Session], int]] = {
    "plan": _cmd_plan, "key": _cmd_key, "report": _cmd_report, "ci": _cmd_ci,
    "render": _cmd_render, "build": _cmd_build, "publish": _cmd_publish,
    "preseed": _cmd_preseed, "verify": _cmd_verify,
}


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


def _load_stack(args: argparse.Namespace, ws: Workspace) -> Stack:
    only = getattr(args, "component", None)
    strategies = getattr(args, "strategy", None)
    imported: list[str] | None = None
    if args.command in ("build", "key", "plan"):
        imported = getattr(args, "imported", None)
        if not imported and pipeline.imports_from_env():
            imported = pipeline.imports_from_env()
            pipeline.check_imports(imported, {r.name for r in Stack.load(ws, args.profile).recipes},
                                   os.environ.get("CI_JOB_NAME") or os.environ.get("GITHUB_JOB"))
    if imported and strategies:
        # `--strategy` picks by the strategy a recipe is written with: the CI
        # job of the cheap components builds the same ones whatever a run imports.
        chosen = Stack.load(ws, args.profile, only, None, strategies).selected
        if chosen:
            only, strategies = sorted(chosen), None
    return Stack.load(ws, args.profile, only, imported, strategies)


def _dispatch(args: argparse.Namespace) -> int:
    if args.command == "upstart":
        return upstart_cli.run(args)
    if args.command not in COMMANDS:
        raise ClusterStackError(f"unknown command {args.command}")
    ws = Workspace.create(args.stack, args.out, args.cache)
    if args.command == "ci" and args.needs and not args.job:
        raise ClusterStackError("ci --needs goes with --job NAME")
    with exclusive(ws.out_dir):
        if args.command == "ci" and args.job:
            return _ci_job(args, ws)
        session = Session(args, ws, _load_stack(args, ws), Runner(),
                          Fetcher(ws.cache_dir / "downloads"), Progress())
        return COMMANDS[args.command](session)


if __name__ == "__main__":
    sys.exit(main())
