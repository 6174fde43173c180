"""Event expressions of `start on` / `stop on`."""

from __future__ import annotations

import pytest

from builder.tree.upstart.grammar import ArgError, Event, Op, events_in, parse_events
from builder.tree.upstart.parser import parse

from .conftest import errors, lint


def expr(text: str) -> Event | Op:
    (stanza,) = parse(f"start on {text}\n").stanzas
    return parse_events(stanza.args)


def show(node: Event | Op) -> str:
    if isinstance(node, Event):
        return " ".join([node.name, *node.operands])
    return f"({show(node.left)} {node.op} {show(node.right)})"


@pytest.mark.parametrize(("text", "tree"), [
    ("started corosync", "started corosync"),
    ("runlevel [2345]", "runlevel [2345]"),
    ("runlevel [!2345]", "runlevel [!2345]"),
    ("net-device-up IFACE!=lo", "net-device-up IFACE!=lo"),
    ("starting JOB=corosync INSTANCE=", "starting JOB=corosync INSTANCE="),
    ("stopped corosync RESULT=failed", "stopped corosync RESULT=failed"),
    ("(local-filesystems and net-device-up IFACE!=lo)",
     "(local-filesystems and net-device-up IFACE!=lo)"),
    ("a or b and c", "((a or b) and c)"),
    ("a and (b or c)", "(a and (b or c))"),
    ("((a))", "a"),
    ("runlevel [016] or stopping corosync", "(runlevel [016] or stopping corosync)"),
    ('my-event MSG="two words"', "my-event MSG=two words"),
    ("filesystem and started $DEP", "(filesystem and started $DEP)"),
])
def test_good_expressions(text: str, tree: str) -> None:
    assert show(expr(text)) == tree


def test_multi_line_expression_keeps_token_lines() -> None:
    (stanza,) = parse("start on (local-filesystems\n    and net-device-up IFACE!=lo\n"
                      "    and started corosync)\n").stanzas
    found = events_in(parse_events(stanza.args))
    assert [(e.name, e.line) for e in found] == [
        ("local-filesystems", 1), ("net-device-up", 2), ("started", 3)]
    assert found[1].env() == {"IFACE!": "lo"}


@pytest.mark.parametrize(("text", "message"), [
    ("(started corosync", "unbalanced parentheses: '(' is never closed"),
    ("started corosync)", "unbalanced parentheses: ')' without a matching '('"),
    ("(a and (b or c)", "unbalanced parentheses: '(' is never closed"),
    ("a and", "event expression ends where an event was expected"),
    ("and a", "expected an event name, found 'and'"),
    ("a or or b", "expected an event name, found 'or'"),
    ("()", "expected an event name, found ')'"),
    ("(a) b", "expected 'and' or 'or', found 'b'"),
    ("((a) b)", "expected 'and', 'or' or ')', found 'b'"),
    ("a (b)", "missing 'and'/'or' before '('"),
    ("IFACE=lo", "invalid event name 'IFACE=lo'"),
    ("net-device-up IFACE=lo eth0", "positional operand 'eth0' after a KEY=VALUE one"),
    ("started =corosync", "bad event operand '=corosync'"),
])
def test_bad_expressions(text: str, message: str) -> None:
    with pytest.raises(ArgError) as exc:
        expr(text)
    assert exc.value.message.startswith(message)


def test_unbalanced_start_on_names_the_line_of_the_open_paren() -> None:
    text = ("description \"x\"\n"
            "start on (local-filesystems\n"
            "          and (net-device-up IFACE!=lo\n"
            "exec /usr/sbin/corosync -f\n"
            "stop on runlevel [016]\n")
    found = errors(lint(text, "corosync.conf"))
    assert [str(f) for f in found] == [
        "corosync.conf:3: error: unbalanced parentheses: '(' is never closed"]


def test_stop_on_is_checked_too() -> None:
    found = errors(lint("exec /x\nstop on runlevel [016] or\n"))
    assert [(f.line, f.message) for f in found] == [
        (2, "event expression ends where an event was expected")]


# --- parentheses are found after dequoting (parse_on, init/parse_job.c) ---------

@pytest.mark.parametrize(("text", "tree"), [
    ('(stopped display-manager EXEC="lightdm")', "stopped display-manager EXEC=lightdm"),
    ("(starting lightdm or stopped display-manager EXEC='gdm')",
     "(starting lightdm or stopped display-manager EXEC=gdm)"),
    ('my-event MSG="(not a group)"', "my-event MSG=(not a group)"),
    ('my-event "("', "my-event ("),
    ("a and(b or c)", "(a and (b or c))"),
    ('my-event "and"', "my-event and"),
])
def test_parentheses_outside_quotes_group(text: str, tree: str) -> None:
    assert show(expr(text)) == tree


def test_quoted_close_paren_does_not_close_a_group() -> None:
    with pytest.raises(ArgError) as exc:
        expr('(a X=")"')
    assert exc.value.message == "unbalanced parentheses: '(' is never closed"


def test_multi_line_stop_on_with_quoted_operand_lints_clean() -> None:
    text = ("exec /x\n"
            "stop on (stopping display-manager\n"
            '         or stopped display-manager EXEC="lightdm")  # a comment\n')
    assert lint(text) == []
