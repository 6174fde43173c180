"""Lint rules beyond single stanzas: processes, expect, respawn, shell, exec paths."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from builder.tree.upstart.debfiles import read_deb
from builder.tree.upstart.lint import lint_file, main_exec_paths
from builder.tree.upstart.parser import parse

from .conftest import errors, lint

GOOD = """\
description "Corosync cluster engine"
start on (local-filesystems and net-device-up IFACE!=lo)
stop on runlevel [016]
console log
script
    [ -r /etc/default/corosync ] && . /etc/default/corosync
    exec /usr/sbin/corosync -f $COROSYNC_OPTIONS
end script
"""


def test_good_job_is_clean() -> None:
    assert lint(GOOD) == []


def test_two_main_processes() -> None:
    # Upstart loads such a job and runs the last definition (parse_exec and
    # parse_script replace the command): a warning, no longer an error.
    found = lint(GOOD + "exec /usr/sbin/corosync -f\n", "c.conf")
    assert [str(f) for f in found] == [
        "c.conf:9: warning: two main processes: 'script' at line 5 and 'exec' at line 9; "
        "Upstart silently keeps the last"]


def test_two_pre_start_processes() -> None:
    found = lint(GOOD + "pre-start exec /bin/true\npre-start script\n  :\nend script\n")
    assert [(f.line, f.severity, f.message) for f in found] == [
        (10, "warning", "two pre-start processes: 'exec' at line 9 and 'script' at line 10; "
                        "Upstart silently keeps the last")]


def test_expect_with_builtin_only_main_script_is_fine() -> None:
    # corosync's upstream job does this: the shell's pid becomes the daemon's.
    assert lint(GOOD + "expect fork\n") == []
    assert lint(GOOD + "expect daemon\n") == []


@pytest.mark.parametrize(("line", "what"), [
    ("mkdir -p /run/corosync", "runs 'mkdir'"),
    ("echo starting | logger", "a pipeline"),
    ("OPTS=$(cat /etc/corosync/opts)", "a command substitution"),
    ("OPTS=`cat /etc/corosync/opts`", "a command substitution"),
    ("(umask 077)", "a subshell"),
    ("sleep 1 &", "runs 'sleep'"),
])
def test_expect_with_main_script_that_forks_first(line: str, what: str) -> None:
    text = GOOD.replace("    exec /usr/sbin/corosync", f"    {line}\n    exec /usr/sbin/corosync")
    found = errors(lint(text + "expect fork\n", "c.conf"))
    assert [f.line for f in found] == [7]
    assert found[0].message.startswith(
        f"'expect fork' (line 10) with a main 'script' that forks before it execs the "
        f"daemon ({what})")


def test_forks_after_the_exec_do_not_count() -> None:
    text = GOOD.replace("end script", "    mkdir /never\nend script")
    assert lint(text + "expect daemon\n") == []


def test_expect_stop_and_none_are_not_traced() -> None:
    text = GOOD.replace("    exec /usr/sbin/corosync",
                        "    mkdir -p /x\n    exec /usr/sbin/corosync")
    assert lint(text + "expect stop\n") == []
    assert lint(text + "expect none\n") == []


def test_expect_with_script_that_never_execs() -> None:
    text = "expect fork\nstop on runlevel [016]\nscript\n  X=1\nend script\n"
    found = errors(lint(text))
    assert [(f.line, f.message.split(":")[0]) for f in found] == [
        (1, "'expect fork' with a main 'script' that never execs a program")]


def test_expect_with_exec_is_fine() -> None:
    assert lint("expect daemon\nexec /usr/sbin/d\nstop on runlevel [016]\n") == []


def test_expect_without_main_process() -> None:
    found = errors(lint("expect fork\npre-start exec /bin/true\nstop on runlevel [016]\n"))
    assert [(f.line, f.message) for f in found] == [
        (1, "'expect' without a main process (exec or script)")]


def test_respawn_without_limit_is_a_warning() -> None:
    found = lint(GOOD + "respawn\n")
    assert [(f.line, f.severity) for f in found] == [(9, "warning")]
    assert lint(GOOD + "respawn\nrespawn limit 10 5\n") == []


def test_missing_stop_on_is_a_warning() -> None:
    found = lint("start on startup\nexec /x\n")
    assert [(f.line, f.severity, f.message) for f in found] == [
        (1, "warning", "no 'stop on': the job runs through shutdown")]


def test_shell_syntax_error_in_script_names_the_line() -> None:
    text = GOOD + "post-start script\n    if true; then\n        echo ok\n    fi fi\nend script\n"
    found = errors(lint(text, "c.conf"))
    assert len(found) == 1
    assert str(found[0]).startswith("c.conf:12: error: shell syntax in 'post-start script': ")
    assert "fi" in found[0].message


def test_unterminated_if_is_reported_at_end_script() -> None:
    text = GOOD + "pre-start script\n    if true; then\n        echo ok\nend script\n"
    found = errors(lint(text))
    assert [f.line for f in found] == [12]
    assert "end of file unexpected" in found[0].message


def test_shell_syntax_error_in_exec_line() -> None:
    found = errors(lint('exec /usr/sbin/d "unterminated\nstop on runlevel [016]\n'))
    # the tokenizer sees the open quote first; sh -n would too
    assert [f.line for f in found] == [1]
    found = errors(lint("exec /usr/sbin/d ) x\nstop on runlevel [016]\n"))
    assert [(f.line, f.message) for f in found] == [
        (1, "shell syntax in 'script': Syntax error: \")\" unexpected")]


def test_main_exec_paths_follow_continuations_and_wrappers() -> None:
    job = parse("script\n  x=1\n  exec setpriv --reuid=u --init-groups \\\n"
                "      /usr/bin/corosync-qnetd -f\nend script\n")
    assert main_exec_paths(job) == [(3, "/usr/bin/corosync-qnetd")]
    job = parse("pre-start exec /usr/sbin/o2cb.init enable\npost-stop exec /bin/true\n")
    assert main_exec_paths(job) == [(1, "/usr/sbin/o2cb.init")]


def test_exec_path_checked_against_real_deb(trixie_debs: dict[str, Path]) -> None:
    corosync = read_deb(trixie_debs["corosync"])
    assert corosync.package == "corosync"
    assert corosync.ships("/usr/sbin/corosync")
    assert lint(GOOD, debs=[corosync]) == []
    bad = GOOD.replace("/usr/sbin/corosync -f", "/usr/sbin/corosyncd -f")
    found = errors(lint(bad, "c.conf", debs=[corosync]))
    assert [str(f) for f in found] == [
        f"c.conf:7: error: exec path /usr/sbin/corosyncd is not shipped by "
        f"{trixie_debs['corosync'].name}"]
    # the pre-merge path of the same program: say where it really is
    old = GOOD.replace("/usr/sbin/corosync -f", "/sbin/corosync -f")
    found = errors(lint(old, debs=[corosync]))
    assert found[0].message.endswith("(it ships /usr/sbin/corosync)")
    # a relative exec cannot be checked at all
    rel = GOOD.replace("/usr/sbin/corosync -f", "corosync -f")
    assert "use an absolute path" in errors(lint(rel, debs=[corosync]))[0].message


def test_exec_of_other_package_path(trixie_debs: dict[str, Path]) -> None:
    pacemaker = read_deb(trixie_debs["pacemaker"])
    found = errors(lint(GOOD, debs=[pacemaker]))
    assert [(f.line, f.message.split(" is not")[0]) for f in found] == [
        (7, "exec path /usr/sbin/corosync")]


# --- the command line ---------------------------------------------------------

def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "builder.tree.upstart.cli", *args],
                          capture_output=True, text=True, check=False)


def test_cli_lint_reports_file_line_severity(tmp_path: Path) -> None:
    good = tmp_path / "good.conf"
    good.write_text(GOOD)
    bad = tmp_path / "bad.conf"
    bad.write_text(GOOD.replace("console log", "consle log") + "respawn\n")
    res = cli("lint", str(good))
    assert (res.returncode, res.stderr) == (0, "")
    res = cli("lint", str(good), str(bad))
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"{bad}:4: error: unknown stanza 'consle' (did you mean 'console'?)",
        f"{bad}:9: warning: 'respawn' without 'respawn limit': Upstart's default of 10 "
        "in 5 s gives up silently; state the limit",
    ]


def test_cli_warnings_pass_unless_werror(tmp_path: Path) -> None:
    job = tmp_path / "w.conf"
    job.write_text(GOOD + "respawn\n")
    assert cli("lint", str(job)).returncode == 0
    assert cli("lint", "--werror", str(job)).returncode == 1


def test_cli_lint_with_deb(tmp_path: Path, trixie_debs: dict[str, Path]) -> None:
    job = tmp_path / "corosync.conf"
    job.write_text(GOOD.replace("/usr/sbin/corosync -f", "/usr/sbin/not-there -f"))
    res = cli("lint", "--deb", str(trixie_debs["corosync"]), str(job))
    assert res.returncode == 1
    assert f"{job}:7: error: exec path /usr/sbin/not-there is not shipped by" in res.stderr


def test_lint_file_reads_from_disk(tmp_path: Path) -> None:
    job = tmp_path / "x.conf"
    job.write_text("start on (a\nexec /x\nstop on runlevel [016]\n")
    assert [str(f) for f in lint_file(job)] == [
        f"{job}:1: error: unbalanced parentheses: '(' is never closed"]


def test_main_cli_mounts_upstart_lint(tmp_path: Path) -> None:
    """`clusterstack upstart lint` as the main CLI wires it."""
    job = tmp_path / "typo.conf"
    job.write_text(GOOD.replace("console log", "consol log"))
    res = subprocess.run([sys.executable, "-c", "import sys; from builder.cli import main; "
                          "sys.exit(main())", "upstart", "lint", str(job)],
                         capture_output=True, text=True, check=False)
    assert res.returncode == 1, res.stderr
    assert f"{job}:4: error: unknown stanza 'consol' (did you mean 'console'?)" in res.stderr
