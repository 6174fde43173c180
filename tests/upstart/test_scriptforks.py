"""What a main script does before its `exec`, for `expect fork|daemon` (dash's view)."""

from __future__ import annotations

import pytest

from builder.tree.upstart.scriptforks import Fork, script_forks

BUILTIN_ONLY = [
    # corosync's upstream job (init/corosync.conf.in)
    '[ -f "$rpm_sysconf" ] && . $rpm_sysconf\n[ -f "$deb_sysconf" ] && . $deb_sysconf\n'
    "exec $prog $COROSYNC_OPTIONS\n",
    # mountall: read, for, case, export before the exec
    "[ -f /forcefsck ] && force_fsck=--force-fsck\nread line < /proc/cmdline\n"
    "for arg in $line; do\n  case $arg in\n    -q|--quiet|--debug)\n      debug_arg=$arg\n"
    "      ;;\n  esac\ndone\nexport LANG\nexec mountall --daemon $force_fsck\n",
    # statd: the exec only in a branch
    'if [ "x$NEED_STATD" != xno ]; then\n  exec rpc.statd -L $STATDOPTS\nfi\n',
    # redirections, arithmetic, a here-document, functions, `command -v`
    "exec >/dev/null 2>&1\nN=$((1 + 2))\ncat=no\nlog() { echo \"$@\" >&2; }\nlog start\n"
    "command -v foo || true\nexec /usr/sbin/d -n $N\n",
    "case $1 in\n  (a|b) X=1 ;;\n  *) X=2 ;;\nesac\nexec /usr/sbin/d\n",
    "echo '$(not run)' \"\\`not run\\`\"\nexec /usr/sbin/d # | not a pipe\n",
]


@pytest.mark.parametrize("body", BUILTIN_ONLY)
def test_builtins_before_exec_do_not_fork(body: str) -> None:
    assert script_forks(body).fork is None
    assert script_forks(body).execs


@pytest.mark.parametrize(("body", "fork"), [
    ("mkdir -p /run/d\nexec /usr/sbin/d\n", Fork(1, "runs 'mkdir'")),
    ("X=1\n\nstart-stop-daemon --start --exec /usr/sbin/d\n", Fork(3, "runs 'start-stop-daemon'")),
    ("echo hi | logger\nexec d\n", Fork(1, "a pipeline")),
    ("(cd /; exec d)\n", Fork(1, "a subshell")),
    ("OPTS=$(cat /etc/d)\nexec d $OPTS\n", Fork(1, "a command substitution")),
    ('OPTS="`cat /etc/d`"\nexec d $OPTS\n', Fork(1, "a command substitution")),
    ("if [ -x /d ]; then\n  echo \"$(date)\"\nfi\nexec d\n", Fork(2, "a command substitution")),
    ("sleep 1 &\nexec d\n", Fork(1, "runs 'sleep'")),
    (": &\nexec d\n", Fork(1, "a background job")),
    ("[ -x /d ] || { stop; exit 0; }\nexec d\n", Fork(1, "runs 'stop'")),
    ("command d\n", Fork(1, "runs 'd'")),
    ('"$DOCKER" -d $DOCKER_OPTS\n', Fork(1, "runs '$DOCKER'")),
])
def test_first_fork_before_exec(body: str, fork: Fork) -> None:
    assert script_forks(body).fork == fork


def test_what_follows_the_top_level_exec_is_never_run() -> None:
    assert script_forks("exec d\nmkdir /x | y\n").fork is None


def test_script_without_exec() -> None:
    found = script_forks("X=1\n")
    assert (found.fork, found.execs) == (None, False)
