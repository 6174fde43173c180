"""Every stanza class of init(5): accepted when well formed, rejected otherwise."""

from __future__ import annotations

import pytest

from builder.upstart.parser import parse

from .conftest import errors, lint

MAIN = "exec /usr/sbin/daemon -f\nstop on runlevel [016]\n"

GOOD = [
    # documentation
    'description "Corosync cluster engine"',
    'author "Someone <someone@example.org>"',
    'version "1.0"',
    'usage "start corosync NODE=<name>"',
    # events
    "start on started corosync",
    "manual",
    "emits cluster-up cluster-down",
    # environment
    "env COROSYNC_OPTIONS=",
    'env COROSYNC_OPTIONS="-p -r"',
    "env LANG",
    "export COROSYNC_OPTIONS LANG",
    # services, tasks, respawning
    "task",
    "respawn\nrespawn limit 10 5",
    "respawn\nrespawn limit unlimited",
    "normal exit 0 1 TERM SIGHUP",
    "instance $NODE",
    # process control
    "expect fork",
    "expect daemon",
    "expect stop",
    "kill signal SIGINT",
    "kill signal 15",
    "kill timeout 30",
    "reload signal USR1",
    # process environment
    "console log",
    "console output",
    "console none",
    "console owner",
    "umask 022",
    "nice -5",
    "oom score -500",
    "oom score never",
    "limit nofile 4096 8192",
    "limit core unlimited unlimited",
    "chroot /srv/jail",
    "chdir /var/lib/corosync",
    "setuid hacluster",
    "setgid haclient",
    "apparmor load /etc/apparmor.d/usr.sbin.corosync",
    "apparmor switch /usr/sbin/corosync",
    "cgroup cpu",
    "cgroup memory $UPSTART_CGROUP memory.limit_in_bytes 52428800",
    # process definitions
    "pre-start exec /bin/mkdir -p /run/corosync",
    "post-stop exec /bin/rm -f /run/corosync/x",
    "pre-stop script\n  echo stopping\nend script",
    "post-start script\n  sleep 1\nend script",
]


@pytest.mark.parametrize("stanza", GOOD)
def test_good_stanza_lints_clean(stanza: str) -> None:
    assert lint(MAIN + stanza + "\n") == []


BAD = [
    ("descripton \"x\"", "unknown stanza 'descripton' (did you mean 'description'?)"),
    ("respwan", "unknown stanza 'respwan' (did you mean 'respawn'?)"),
    ("frobnicate yes", "unknown stanza 'frobnicate'"),
    ("description", "'description' takes 1 argument(s), got 0"),
    ("description two words", "'description' takes 1 argument(s), got 2"),
    ("manual now", "'manual' takes 0 argument(s), got 1"),
    ("env 1FOO=bar", "invalid variable name '1FOO'"),
    ("export FOO-BAR", "invalid variable name 'FOO-BAR'"),
    ("respawn limit 10", "respawn limit takes COUNT INTERVAL or 'unlimited'"),
    ("respawn limit ten 5", "respawn limit COUNT must be an integer"),
    ("normal exit 256", "exit status must be between 0 and 255"),
    ("normal exit SIGFOO", "unknown signal 'SIGFOO'"),
    ("expect forks", "expected one of stop, daemon, fork, got 'forks'"),
    ("kill signal SIGBOGUS", "unknown signal 'SIGBOGUS'"),
    ("kill timeout soon", "kill timeout must be an integer"),
    ("kill", "unknown stanza 'kill'"),
    ("console syslog", "expected one of none, output, owner, log"),
    ("umask 999", "umask must be an octal mask"),
    ("nice 20", "nice must be between -20 and 19"),
    ("oom score 2000", "oom score must be between -1000 and 1000"),
    ("limit files 10 10", "unknown resource 'files'"),
    ("limit nofile 10", "'limit' takes 3 argument(s), got 2"),
    ("limit nofile ten 10", "limit value must be an integer"),
    ("chdir", "'chdir' takes 1 argument(s), got 0"),
    ("cgroup", "'cgroup' takes 1..4 argument(s), got 0"),
    ("pre-start", "'pre-start' needs 'exec COMMAND' or 'script'"),
    ("post-stop run /bin/true", "'post-stop' must be followed by 'exec' or 'script'"),
    ("pre-stop exec", "'pre-stop exec' needs a command"),
    ("end script", "'end script' without a matching 'script'"),
    ("start on", "'start on' takes 1..n argument(s), got 0"),
]


@pytest.mark.parametrize(("stanza", "message"), BAD)
def test_bad_stanza_is_an_error_on_its_line(stanza: str, message: str) -> None:
    found = errors(lint(MAIN + stanza + "\n", "bad.conf"))
    assert [f.line for f in found] == [3], found
    assert message in found[0].message
    assert str(found[0]).startswith("bad.conf:3: error: ")


def test_deprecated_oom_is_a_warning() -> None:
    found = lint(MAIN + "oom -10\n")
    assert [(f.line, f.severity) for f in found] == [(3, "warning")]
    assert "oom score" in found[0].message


def test_duplicate_single_valued_stanza() -> None:
    found = errors(lint(MAIN + "kill timeout 5\nconsole log\nkill timeout 9\n"))
    assert len(found) == 1 and found[0].line == 5
    assert "'kill timeout' given twice (first at line 3)" in found[0].message


def test_repeatable_stanzas_may_repeat() -> None:
    assert lint(MAIN + "env A=1\nenv B=2\nlimit nofile 1 2\nlimit core 0 0\n") == []


# --- tokenizer ---------------------------------------------------------------

def test_comments_quotes_and_continuations() -> None:
    job = parse(
        "# a comment\n"
        'description "a # not a comment"  # trailing comment\n'
        "env X='single quoted'\n"
        "exec /usr/sbin/d \\\n"
        "    --flag\n"
        "start on (a\n"
        "          and b)\n"
        "\n"
        "stop on runlevel [016]\n"
    )
    assert job.errors == []
    desc, env, exec_, start, stop = job.stanzas
    assert desc.args[0].text == "a # not a comment" and desc.line == 2
    assert env.args[0].text == "X=single quoted"
    assert exec_.line == 4 and [t.text for t in exec_.args] == ["/usr/sbin/d", "--flag"]
    assert start.line == 6 and [t.line for t in start.args] == [6, 7, 7]
    assert stop.line == 9


def test_script_block_is_kept_verbatim_with_its_lines() -> None:
    job = parse("pre-start script\n  a # x\n\n  b\n   end   script\nexec /x\n")
    pre, main = job.processes
    assert (pre.phase, pre.kind, pre.line, pre.body_line) == ("pre-start", "script", 1, 2)
    assert pre.body == "  a # x\n\n  b\n"
    assert (main.phase, main.kind, main.line, main.command) == ("main", "exec", 6, "/x")


def test_unterminated_script_and_quote() -> None:
    assert [(e.line, e.message) for e in parse("script\n  echo\n").errors] == [
        (1, "'script' block has no 'end script'")]
    assert [(e.line, e.message) for e in parse('description "open\nmanual\n').errors] == [
        (1, "unterminated \" quote")]


def test_unclosed_paren_does_not_swallow_following_stanzas() -> None:
    found = lint("start on (a or b\nrespawn\nrespawn limit 10 5\nexec /x\n"
                 "kill timeout soon\nstop on runlevel [016]\n")
    assert [(f.line, f.message.split(":")[0]) for f in found] == [
        (1, "unbalanced parentheses"), (5, "kill timeout must be an integer, got 'soon'")]
