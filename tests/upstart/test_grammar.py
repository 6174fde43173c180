"""Every stanza class of init(5): accepted when well formed, rejected otherwise."""

from __future__ import annotations

import pytest

from builder.tree.upstart.parser import parse

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
    "expect none",
    "debug",
    "kill signal SIGIOT",
    "kill signal CLD",
    "reload signal 1",
    "normal exit 0 1 255 KILL SIGTERM",
    "umask 0027",
    "limit nofile unlimited 4096",
    "limit core -1 -1",
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
    ("normal exit -1", "unknown signal '-1'"),
    ("normal exit term", "unknown signal 'term'"),
    ("normal exit SIGFOO", "unknown signal 'SIGFOO'"),
    ("expect forks", "expected one of stop, daemon, fork, none, got 'forks'"),
    ("kill signal SIGBOGUS", "unknown signal 'SIGBOGUS'"),
    ("kill signal term", "unknown signal 'term' (signal names are case-sensitive: 'TERM')"),
    ("kill signal sigterm", "unknown signal 'sigterm'"),
    ("reload signal -1", "unknown signal '-1'"),
    ("kill signal 2147483648", "unknown signal '2147483648'"),
    ("kill timeout soon", "kill timeout must be an integer"),
    ("kill", "unknown stanza 'kill'"),
    ("kill sig 9", "unknown stanza 'kill sig': expected 'kill signal' or 'kill timeout'"),
    ("stop", "unknown stanza 'stop': expected 'stop on'"),
    ("oom -18", "oom adjustment must be between -17 and 15"),
    ("debug now", "'debug' takes 0 argument(s), got 1"),
    ("respawn limit unlimited 5", "unexpected '5' after 'respawn limit unlimited'"),
    ("umask 0778", "umask must be an octal mask"),
    ("console syslog", "expected one of none, output, owner, log"),
    ("umask 999", "umask must be an octal mask"),
    ("nice 20", "nice must be between -20 and 19"),
    ("oom score 2000", "oom score must be between -1000 and 1000"),
    ("limit files 10 10", "unknown resource 'files'"),
    ("limit nofile 65536", "'limit nofile' needs a hard value after the soft one"),
    ("limit nofile", "'limit nofile' needs soft and hard values"),
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


@pytest.mark.parametrize("stanza", ["oom -10", "oom -17", "oom never"])
def test_deprecated_oom_is_a_warning(stanza: str) -> None:
    # stanza_oom still takes the oom_adj scale, -17 (OOM_DISABLE) to 15
    found = lint(MAIN + stanza + "\n")
    assert [(f.line, f.severity) for f in found] == [(3, "warning")]
    assert "oom score" in found[0].message


def test_duplicate_single_valued_stanza_is_a_warning() -> None:
    # Upstart keeps the last value (each stanza_* handler frees the previous
    # one), so this is valid: a warning, no longer an error.
    found = lint(MAIN + "kill timeout 5\nconsole log\nkill timeout 9\n")
    assert [(f.line, f.severity) for f in found] == [(5, "warning")]
    assert "'kill timeout' given twice (first at line 3)" in found[0].message
    found = lint("start on a\nstart on b\n" + MAIN)
    assert [(f.line, f.severity) for f in found] == [(2, "warning")]
    assert found[0].message.startswith("'start on' given twice (first at line 1)")


@pytest.mark.parametrize(("stanza", "message"), [
    # strtoul reads the number once the name lookup fails; kill(2) takes 0..64
    ("reload signal 0", "signal 0 delivers nothing"),
    ("kill signal 99", "signal 99 is not a Linux signal"),
    # a number above 255 is compared with signum << 8
    ("normal exit 256", "exit status 256 is above 255: Upstart matches it with death by "
                        "signal 1"),
    ("normal exit 300", "exit status 300 is above 255: Upstart matches it with nothing"),
])
def test_accepted_but_suspicious_values_warn(stanza: str, message: str) -> None:
    found = lint(MAIN + stanza + "\n")
    assert [(f.line, f.severity) for f in found] == [(3, "warning")], found
    assert found[0].message.startswith(message)


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


def test_unterminated_quote_is_reported_where_it_opens() -> None:
    # Upstart would read on to the next quote (line 5), swallowing three stanzas.
    found = errors(lint("exec /x\n"
                        'description "corosync\n'
                        "stop on runlevel [016]\n"
                        "consle log\n"
                        'env X="y"\n', "q.conf"))
    assert [str(f) for f in found] == [
        'q.conf:2: error: unterminated " quote',
        "q.conf:4: error: unknown stanza 'consle' (did you mean 'console'?)"]


def test_quote_may_span_lines_as_one_space() -> None:
    (desc,) = parse('description "Corosync   \n    cluster engine"\n').stanzas
    assert desc.args[0].text == "Corosync cluster engine"


def test_hash_ends_the_line_even_inside_a_word() -> None:
    # NIH_CONFIG_CNLWS has '#': the token stops there and the rest is a comment.
    (env,) = parse("env COLOR=#fff\n").stanzas
    assert [t.text for t in env.args] == ["COLOR="]
    (env,) = parse('env COLOR="#fff" # comment\n').stanzas
    assert [t.text for t in env.args] == ["COLOR=#fff"]


def test_backslash_is_kept_before_ordinary_characters() -> None:
    (env,) = parse('env A=\\"x\n').stanzas
    assert [t.text for t in env.args] == ['A=\\"x']
    (env,) = parse("env A=x\\ y\n").stanzas
    assert [t.text for t in env.args] == ["A=x y"]


def test_exec_command_is_cut_at_a_hash() -> None:
    # nih_config_parse_command stops at an unquoted '#': sh gets "${VAR".
    found = errors(lint("exec /usr/sbin/d ${OPTS#-}\nstop on runlevel [016]\n"))
    assert [f.line for f in found] == [1]
    assert found[0].message.startswith("shell syntax in 'script'")
    assert lint("exec /usr/sbin/d '${OPTS#-}' # why\nstop on runlevel [016]\n") == []
