"""The project's own jobs: render for each profile, lint clean, keep their ordering."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from builder.base.errors import InputError
from builder.tree.upstart.debfiles import DebFiles
from builder.tree.upstart.grammar import events_in, parse_events
from builder.tree.upstart.parser import parse
from builder.tree.upstart.render import (
    UPSTART_DIR,
    Rendered,
    jobs_for_package,
    load_jobs,
    render_all,
    write,
)

TRIXIE = {"name": "trixie", "init": "systemd"}
TRUSTY = {"name": "trusty", "init": "upstart"}
PROFILES = [TRIXIE, TRUSTY]
ALL_JOBS = {"corosync", "pacemaker", "dlm_controld", "corosync-qdevice", "corosync-qnetd",
            "keepalived", "sbd", "drbd", "o2cb", "ocfs2", "heartbeat"}


def by_name(rendered: list[Rendered]) -> dict[str, Rendered]:
    return {r.job.name: r for r in rendered}


def start_stop(r: Rendered) -> tuple[list[str], list[str]]:
    job = parse(r.conf)
    out = []
    for kw in ("start on", "stop on"):
        (st,) = job.find(kw)
        out.append([" ".join([e.name, *e.operands]) for e in events_in(parse_events(st.args))])
    return out[0], out[1]


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p["name"])
def test_every_template_renders_and_lints_clean(profile: dict) -> None:
    rendered = render_all(profile)
    names = {r.job.name for r in rendered}
    if profile["name"] == "trixie":
        assert names == ALL_JOBS
    else:  # qdevice/qnetd did not exist in Ubuntu 14.04
        assert names == ALL_JOBS - {"corosync-qdevice", "corosync-qnetd"}
    for r in rendered:
        assert r.findings == [], "\n".join(map(str, r.findings))


def test_every_template_file_is_listed_in_jobs_yaml() -> None:
    listed = {j.template for j in load_jobs(TRIXIE)}
    on_disk = {p.name for p in UPSTART_DIR.glob("*.conf.j2")}
    assert listed == on_disk


@pytest.mark.network
def test_exec_paths_are_shipped_by_the_real_trixie_packages(
        trixie_files: dict[str, DebFiles]) -> None:
    rendered = render_all(TRIXIE, debs=trixie_files)
    checked = [r.job.name for r in rendered if r.job.package in trixie_files]
    assert set(checked) == ALL_JOBS
    for r in rendered:
        assert r.findings == [], "\n".join(map(str, r.findings))
        if r.job.package in trixie_files:
            assert trixie_files[r.job.package].ships(r.job.daemon), r.job.name


@pytest.mark.network
def test_jobs_yaml_daemon_path_not_shipped_is_caught(
        tmp_path: Path, trixie_files: dict[str, DebFiles]) -> None:
    upstart = tmp_path / "upstart"
    shutil.copytree(UPSTART_DIR, upstart)
    yml = upstart / "jobs.yaml"
    yml.write_text(yml.read_text().replace("daemon: /usr/sbin/pacemakerd",
                                           "daemon: /usr/sbin/pacemaker"))
    rendered = by_name(render_all(TRIXIE, upstart, debs=trixie_files))
    (finding,) = rendered["pacemaker"].findings
    assert finding.path == "pacemaker.conf.j2 [trixie]" and finding.severity == "error"
    assert finding.message.startswith("exec path /usr/sbin/pacemaker is not shipped by pacemaker_")
    conf_lines = rendered["pacemaker"].conf.splitlines()
    assert conf_lines[finding.line - 1].strip() == "exec /usr/sbin/pacemaker"


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p["name"])
def test_every_job_stops_on_the_profiles_runlevels(profile: dict) -> None:
    for r in render_all({**profile, "runlevel_stop": "[06]"}):
        _, stop = start_stop(r)
        assert "runlevel [06]" in stop, r.job.name


def test_ordering_on_corosync() -> None:
    jobs = by_name(render_all(TRIXIE))
    for name in ("pacemaker", "dlm_controld", "corosync-qdevice"):
        start, stop = start_stop(jobs[name])
        assert start == ["started corosync"], name
        assert stop == ["runlevel [016]", "stopping corosync"], name
    # sbd arms the watchdog before corosync forms the cluster, disarms after it left
    start, stop = start_stop(jobs["sbd"])
    assert start == ["starting corosync"]
    assert "stopped corosync" in stop
    # corosync's pre-stop waits for what runs on top of it, even at shutdown
    pre_stop = parse(jobs["corosync"].conf).process("pre-stop")[0].body
    assert "for dependent in pacemaker dlm_controld corosync-qdevice; do" in pre_stop
    trusty = by_name(render_all(TRUSTY))
    assert "for dependent in pacemaker dlm_controld; do" in \
        parse(trusty["corosync"].conf).process("pre-stop")[0].body
    start, _ = start_stop(jobs["ocfs2"])
    assert start == ["started o2cb"]


def test_daemons_run_in_the_foreground_so_expect_is_avoided() -> None:
    for r in render_all(TRIXIE):
        job = parse(r.conf)
        expect = [s.args[0].text for s in job.find("expect")]
        if r.job.expect == "none":
            assert expect == [], r.job.name
        else:  # only daemons without a foreground mode may declare it
            assert r.job.name in ("sbd", "heartbeat") and expect == [r.job.expect]
    fg = {"corosync": " -f ", "dlm_controld": "--foreground", "keepalived": "--dont-fork",
          "corosync-qdevice": " -f ", "corosync-qnetd": " -f "}
    jobs = by_name(render_all(TRIXIE))
    for name, flag in fg.items():
        assert flag in parse(jobs[name].conf).process("main")[0].body, name


def test_daemons_have_a_bounded_readiness_check_from_etc_default() -> None:
    for r in render_all(TRIXIE):
        job = parse(r.conf)
        post = job.process("post-start")
        if r.job.kind != "daemon":
            assert post == [], r.job.name
            continue
        (proc,) = post
        assert f"probe={shlex.quote(r.job.ready)}\n" in proc.body
        assert 'until timeout 5 sh -c "$probe" >/dev/null 2>&1; do' in proc.body
        assert f". /etc/default/{r.job.defaults}" in proc.body
        assert f"limit=${{{r.job.timeout_var}:-{r.job.ready_timeout}}}" in proc.body
        assert "exit 1" in proc.body
        if r.default_text is not None:
            assert f"\n{r.job.timeout_var}={r.job.ready_timeout}\n" in r.default_text
    jobs = by_name(render_all(TRIXIE))
    assert "corosync-cfgtool -s" in jobs["corosync"].conf
    assert "cibadmin --query" in jobs["pacemaker"].conf


def test_profile_overrides_apply() -> None:
    jobs = by_name(render_all(TRUSTY))
    assert jobs["drbd"].job.package == "drbd8-utils"
    assert "exec /sbin/drbdadm adjust" in jobs["drbd"].conf
    assert by_name(render_all(TRIXIE))["drbd"].job.daemon == "/usr/sbin/drbdadm"


def test_profile_packages_limit_the_jobs() -> None:
    rendered = render_all({**TRIXIE, "packages": ["corosync", "pacemaker"]})
    assert {r.job.name for r in rendered} == {"corosync", "pacemaker"}
    with pytest.raises(InputError, match="requires \\['corosync'\\]"):
        render_all({**TRIXIE, "packages": ["pacemaker"]})


def test_profile_needs_name_and_init() -> None:
    with pytest.raises(InputError, match="profile needs 'init'"):
        render_all({"name": "trixie"})
    with pytest.raises(InputError, match="unknown init system"):
        render_all({"name": "trixie", "init": "runit"})


def test_write_lays_out_etc_init_and_etc_default(tmp_path: Path) -> None:
    paths = write(render_all(TRUSTY), tmp_path)
    rel = {str(p.relative_to(tmp_path)) for p in paths}
    assert "etc/init/corosync.conf" in rel and "etc/default/corosync" in rel
    assert "etc/default/dlm" in rel  # dlm-controld's own /etc/default name
    assert "etc/default/o2cb" not in rel  # ocfs2-tools' postinst writes that one


# --- a broken template must not ship --------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder.tree.upstart.cli", *args],
                          capture_output=True, text=True, check=False)


@pytest.mark.parametrize(("change", "expected"), [
    (("kill timeout 30", "kil timeout 30"), "unknown stanza 'kil' (did you mean 'kill'?)"),
    (("start on (local-filesystems and", "start on ((local-filesystems and"),
     "unbalanced parentheses: '(' is never closed"),
    (("mkdir -p /var/log/corosync", "mkdir -p /var/log/corosync; fi"),
     "shell syntax in 'pre-start script': Syntax error: \"fi\" unexpected"),
])
def test_render_refuses_to_write_a_job_that_fails_lint(
        tmp_path: Path, change: tuple[str, str], expected: str) -> None:
    upstart = tmp_path / "upstart"
    shutil.copytree(UPSTART_DIR, upstart)
    tpl = upstart / "corosync.conf.j2"
    assert change[0] in tpl.read_text()
    tpl.write_text(tpl.read_text().replace(change[0], change[1]))
    dest = tmp_path / "root"
    res = cli("render", "--profile", "trusty", "--init", "upstart",
              "--upstart-dir", str(upstart), str(dest))
    assert res.returncode == 1
    lines = res.stderr.splitlines()
    assert lines[-1] == "upstart: not writing jobs for trusty: lint failed"
    (finding,) = [ln for ln in lines if ": error: " in ln]
    path, line, _, message = finding.split(":", 3)
    assert path == "corosync.conf.j2 [trusty]"
    rendered = by_name(render_all(TRUSTY))["corosync"].conf.splitlines()
    assert change[0].split()[0] in rendered[int(line) - 1]
    assert message.strip().startswith(expected)
    assert not dest.exists()


def test_render_cli_writes_clean_jobs(tmp_path: Path) -> None:
    res = cli("render", "--profile", "trusty", "--init", "upstart", str(tmp_path))
    assert res.returncode == 0, res.stderr
    assert (tmp_path / "etc/init/pacemaker.conf").read_text() == \
        by_name(render_all(TRUSTY))["pacemaker"].conf


def test_jobs_for_package_picks_the_component_jobs() -> None:
    rendered = render_all(TRUSTY)
    assert [r.job.name for r in jobs_for_package(rendered, "ocfs2-tools")] == ["o2cb", "ocfs2"]
    assert [r.job.name for r in jobs_for_package(rendered, "corosync")] == ["corosync"]
    assert jobs_for_package(rendered, "crmsh") == []


def test_render_is_a_clusterstack_subcommand(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from builder.cli import main
    assert main(["upstart", "render", "--profile", "trusty", "--init", "upstart",
                 str(tmp_path)]) == 0
    assert str(tmp_path / "etc/init/pacemaker.conf") in capsys.readouterr().out.splitlines()
