"""Regenerate tests/monitoring/data/ from Pacemaker's own regression data.

Not a test: run by hand when the data should follow a new Pacemaker.

    python3 tests/monitoring/collect_data.py PACEMAKER_GIT_DIR TRIXIE_ROOT

PACEMAKER_GIT_DIR is a clone of ClusterLabs/pacemaker (tags Pacemaker-2.1.5
and Pacemaker-3.0.0), TRIXIE_ROOT a Debian trixie root with
pacemaker-cli-utils 3.0 installed (mmdebstrap --variant=apt
--include=pacemaker-cli-utils trixie DIR); this host's crm_mon (2.1.5) gives
the 2.1 outputs.  Needs root for chroot.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

DATA = Path(__file__).parent / "data"
TAGS = {"pacemaker-2.1": "Pacemaker-2.1.5", "pacemaker-3.0": "Pacemaker-3.0.0"}
# Scheduler regression CIBs, shown by crm_mon as the cluster they record.
SCHEDULER = [
    "standby", "stonith-1", "quorum-4", "no_quorum_demote", "failcount",
    "monitor-onfail-stop", "unmanaged-block-restart", "promoted-with-blocked",
    "group-fail", "node-maintenance-1", "rsc-maintenance", "stop-all-resources",
    "clone-fail-block-colocation", "remote-fence-unclean",
]
# Tests of cts/cli/regression.crm_mon.exp: file name -> title per version.
EXPECTED: dict[str, tuple[str | None, str]] = {
    "exp-basic": ("XML output", "Basic output (XML)"),
    # 2.1.5's regression tests have this one as text only.
    "exp-maintenance-mode": (None, "Output of all resources with maintenance-mode enabled (XML)"),
    "exp-unmanaged-offline": ("XML output of active unmanaged resource on offline node",
                              "Output of active unmanaged resource on offline node (XML)"),
}
ARGS = ["crm_mon", "-1", "--output-as=xml", "--inactive"]


def git_show(repo: Path, tag: str, path: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "show", f"{tag}:{path}"],
                          check=True, capture_output=True, text=True).stdout


def exp_test(text: str, title: str) -> str:
    match = re.search(rf"=#=#=#= Begin test: {re.escape(title)} =#=#=#=\n(.*?)=#=#=#= End test",
                      text, re.S)
    if match is None:
        raise SystemExit(f"test '{title}' not found")
    body = match.group(1)
    return body[body.index("<pacemaker-result"):body.index("</pacemaker-result>")] + \
        "</pacemaker-result>\n"


def main(repo: Path, root: Path) -> None:
    for version, tag in TAGS.items():
        out = DATA / version
        out.mkdir(parents=True, exist_ok=True)
        exp = git_show(repo, tag, "cts/cli/regression.crm_mon.exp")
        for name, titles in EXPECTED.items():
            title = titles[version == "pacemaker-3.0"]
            if title is not None:
                (out / f"{name}.xml").write_text(exp_test(exp, title))
        for name in SCHEDULER:
            cib = git_show(repo, tag, f"cts/scheduler/xml/{name}.xml")
            if version == "pacemaker-3.0":
                (root / "tmp" / "cib.xml").write_text(cib)
                cmd = ["chroot", str(root), "env", "CIB_file=/tmp/cib.xml", *ARGS]
            else:
                (DATA / "cib.xml").write_text(cib)
                cmd = ["env", f"CIB_file={DATA / 'cib.xml'}", *ARGS]
            result = subprocess.run(cmd, capture_output=True, text=True, check=False)
            (out / f"{name}.xml").write_text(result.stdout)
        down = ["chroot", str(root), *ARGS] if version == "pacemaker-3.0" else ARGS
        result = subprocess.run(down, capture_output=True, text=True, check=False)
        (out / "pacemaker-down.xml").write_text(result.stdout)
    (DATA / "cib.xml").unlink(missing_ok=True)
    cibs = DATA / "cib"
    cibs.mkdir(exist_ok=True)
    for name in ("standby", "quorum-4"):
        (cibs / f"{name}.xml").write_text(git_show(repo, TAGS["pacemaker-2.1"],
                                                   f"cts/scheduler/xml/{name}.xml"))
    (root / "tmp" / "cib.xml").unlink(missing_ok=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
