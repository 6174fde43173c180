"""What Upstart 1.x accepts: the stanza table of init(5) and event expressions.

`check_stanza` validates one stanza's arguments; `parse_events` turns the
argument tokens of `start on` / `stop on` into an expression tree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .parser import Stanza, Token

SIGNALS = {
    "HUP", "INT", "QUIT", "ILL", "TRAP", "ABRT", "BUS", "FPE", "KILL", "USR1", "SEGV",
    "USR2", "PIPE", "ALRM", "TERM", "STKFLT", "CHLD", "CONT", "STOP", "TSTP", "TTIN",
    "TTOU", "URG", "XCPU", "XFSZ", "VTALRM", "PROF", "WINCH", "IO", "POLL", "PWR", "SYS",
}
LIMITS = {
    "as", "core", "cpu", "data", "fsize", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "sigpending", "stack",
}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class ArgError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class Spec:
    min_args: int
    max_args: int | None  # None: unbounded
    check: Callable[[list[Token]], None] | None = None
    repeatable: bool = False  # several occurrences add up instead of overriding
    deprecated: str = ""


def _int(tok: Token, lo: int, hi: int, what: str) -> int:
    try:
        value = int(tok.text, 10)
    except ValueError:
        raise ArgError(tok.line, f"{what} must be an integer, got {tok.text!r}") from None
    if not lo <= value <= hi:
        raise ArgError(tok.line, f"{what} must be between {lo} and {hi}, got {value}")
    return value


def _signal(tok: Token) -> None:
    name = tok.text.upper().removeprefix("SIG")
    if name in SIGNALS:
        return
    if tok.text.isdigit() and 1 <= int(tok.text) <= 64:
        return
    raise ArgError(tok.line, f"unknown signal {tok.text!r}")


def _one_of(*choices: str) -> Callable[[list[Token]], None]:
    def check(args: list[Token]) -> None:
        if args[0].text not in choices:
            raise ArgError(args[0].line, f"expected one of {', '.join(choices)}, "
                                         f"got {args[0].text!r}")
    return check


def _respawn_limit(args: list[Token]) -> None:
    if len(args) == 1:
        if args[0].text != "unlimited":
            raise ArgError(args[0].line, "respawn limit takes COUNT INTERVAL or 'unlimited'")
        return
    _int(args[0], 0, 2**31 - 1, "respawn limit COUNT")
    _int(args[1], 0, 2**31 - 1, "respawn limit INTERVAL")


def _normal_exit(args: list[Token]) -> None:
    for tok in args:
        if tok.text.isdigit():
            _int(tok, 0, 255, "exit status")
        else:
            _signal(tok)


def _limit(args: list[Token]) -> None:
    if args[0].text not in LIMITS:
        raise ArgError(args[0].line, f"unknown resource {args[0].text!r} "
                                     f"(one of {', '.join(sorted(LIMITS))})")
    for tok in args[1:]:
        if tok.text != "unlimited":
            _int(tok, 0, 2**63 - 1, "limit value")


def _umask(args: list[Token]) -> None:
    if not re.fullmatch(r"[0-7]{1,4}", args[0].text) or int(args[0].text, 8) > 0o777:
        raise ArgError(args[0].line, f"umask must be an octal mask up to 0777, "
                                     f"got {args[0].text!r}")


def _oom_score(args: list[Token]) -> None:
    if args[0].text != "never":
        _int(args[0], -1000, 1000, "oom score")


def _oom_old(args: list[Token]) -> None:
    if args[0].text != "never":
        _int(args[0], -16, 15, "oom adjustment")


def _env(args: list[Token]) -> None:
    name = args[0].text.split("=", 1)[0]
    if not NAME.match(name):
        raise ArgError(args[0].line, f"invalid variable name {name!r}")


def _names(args: list[Token]) -> None:
    for tok in args:
        if not NAME.match(tok.text):
            raise ArgError(tok.line, f"invalid variable name {tok.text!r}")


def _events(args: list[Token]) -> None:
    parse_events(args)


def _nice(args: list[Token]) -> None:
    _int(args[0], -20, 19, "nice")


def _timeout(args: list[Token]) -> None:
    _int(args[0], 0, 2**31 - 1, "kill timeout")


def _signal_arg(args: list[Token]) -> None:
    _signal(args[0])


STANZAS: dict[str, Spec] = {
    # documentation
    "description": Spec(1, 1),
    "author": Spec(1, 1),
    "version": Spec(1, 1),
    "usage": Spec(1, 1),
    # events
    "start on": Spec(1, None, _events),
    "stop on": Spec(1, None, _events),
    "manual": Spec(0, 0),
    "emits": Spec(1, None, repeatable=True),
    # environment
    "env": Spec(1, 1, _env, repeatable=True),
    "export": Spec(1, None, _names, repeatable=True),
    # services, tasks and respawning
    "task": Spec(0, 0),
    "respawn": Spec(0, 0),
    "respawn limit": Spec(1, 2, _respawn_limit),
    "normal exit": Spec(1, None, _normal_exit, repeatable=True),
    "instance": Spec(1, 1),
    # process control
    "expect": Spec(1, 1, _one_of("stop", "daemon", "fork")),
    "kill signal": Spec(1, 1, _signal_arg),
    "kill timeout": Spec(1, 1, _timeout),
    "reload signal": Spec(1, 1, _signal_arg),
    # process environment
    "console": Spec(1, 1, _one_of("none", "output", "owner", "log")),
    "umask": Spec(1, 1, _umask),
    "nice": Spec(1, 1, _nice),
    "oom score": Spec(1, 1, _oom_score),
    "oom": Spec(1, 1, _oom_old, deprecated="use 'oom score' (range -1000..1000)"),
    "limit": Spec(3, 3, _limit, repeatable=True),
    "chroot": Spec(1, 1),
    "chdir": Spec(1, 1),
    "setuid": Spec(1, 1),
    "setgid": Spec(1, 1),
    "apparmor load": Spec(1, 1, repeatable=True),
    "apparmor switch": Spec(1, 1),
    "cgroup": Spec(1, 4, repeatable=True),
    # process definitions (checked for count by lint, for syntax by sh -n)
    "exec": Spec(1, None),
    "script": Spec(0, 0),
    **{f"{p} exec": Spec(1, None) for p in ("pre-start", "post-start", "pre-stop", "post-stop")},
    **{f"{p} script": Spec(0, 0) for p in ("pre-start", "post-start", "pre-stop", "post-stop")},
}


def suggest(word: str) -> str:
    heads = {k.split()[0] for k in STANZAS} | set(STANZAS)
    close = difflib.get_close_matches(word, sorted(heads), n=1, cutoff=0.7)
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_stanza(stanza: Stanza) -> None:
    """Raise ArgError if the stanza is unknown or its arguments are wrong."""
    spec = STANZAS.get(stanza.keyword)
    if spec is None:
        word = stanza.keyword.split()[0]
        raise ArgError(stanza.line, f"unknown stanza '{word}'{suggest(word)}")
    n = len(stanza.args)
    if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
        want = (str(spec.min_args) if spec.min_args == spec.max_args
                else f"{spec.min_args}..{spec.max_args if spec.max_args is not None else 'n'}")
        where = stanza.args[spec.max_args].line if spec.max_args is not None and n > \
            spec.max_args else stanza.line
        raise ArgError(where, f"'{stanza.keyword}' takes {want} argument(s), got {n}")
    if spec.check:
        spec.check(stanza.args)


# --- event expressions ------------------------------------------------------

@dataclass
class Event:
    name: str
    operands: list[str]
    line: int

    def env(self) -> dict[str, str]:
        """The KEY=VALUE operands (KEY!=VALUE ones are kept as 'KEY!' keys)."""
        out = {}
        for op in self.operands:
            m = re.match(r"^([A-Za-z_][A-Za-z0-9_]*)(!?)=(.*)$", op)
            if m:
                out[m.group(1) + m.group(2)] = m.group(3)
        return out


@dataclass
class Op:
    op: str  # "and" | "or"
    left: Event | Op
    right: Event | Op


@dataclass
class _Cursor:
    toks: list[Token]
    pos: int = 0
    opens: list[Token] = field(default_factory=list)

    def peek(self) -> Token | None:
        return self.toks[self.pos] if self.pos < len(self.toks) else None

    def take(self) -> Token:
        tok = self.toks[self.pos]
        self.pos += 1
        return tok


def _split_parens(args: list[Token]) -> list[Token]:
    """`(a` and `b)` are written attached to words; make the parentheses tokens."""
    out: list[Token] = []
    for tok in args:
        if tok.quoted:
            out.append(tok)
            continue
        text = tok.text
        while text.startswith("("):
            out.append(Token("(", tok.line))
            text = text[1:]
        closing = len(text) - len(text.rstrip(")"))
        if text.rstrip(")"):
            out.append(Token(text.rstrip(")"), tok.line))
        out.extend(Token(")", tok.line) for _ in range(closing))
    return out


OPERAND = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*!?=.*|[^=!()]\S*)$", re.S)


def _event(cur: _Cursor, last_line: int) -> Event | Op:
    tok = cur.peek()
    if tok is None:
        raise ArgError(last_line, "event expression ends where an event was expected")
    if tok.text == "(":
        cur.opens.append(cur.take())
        inner = _expr(cur, tok.line)
        close = cur.peek()
        if close is None:
            opened = cur.opens[-1]
            raise ArgError(opened.line, "unbalanced parentheses: '(' is never closed")
        if close.text != ")":
            raise ArgError(close.line, f"expected 'and', 'or' or ')', found {close.text!r}")
        cur.opens.pop()
        cur.take()
        return inner
    if tok.text in ("and", "or", ")") and not tok.quoted:
        raise ArgError(tok.line, f"expected an event name, found '{tok.text}'")
    name = cur.take()
    if "=" in name.text or not re.match(r"^[^\s$]+$", name.text):
        raise ArgError(name.line, f"invalid event name {name.text!r}")
    operands: list[str] = []
    seen_named = False
    while (nxt := cur.peek()) is not None and not (
            not nxt.quoted and nxt.text in ("and", "or", "(", ")")):
        arg = cur.take()
        if not arg.quoted and not OPERAND.match(arg.text):
            raise ArgError(arg.line, f"bad event operand {arg.text!r} "
                                     "(expected VALUE, KEY=VALUE or KEY!=VALUE)")
        named = bool(re.match(r"^[A-Za-z_][A-Za-z0-9_]*!?=", arg.text))
        if seen_named and not named:
            raise ArgError(arg.line, f"positional operand {arg.text!r} after a KEY=VALUE one")
        seen_named = seen_named or named
        operands.append(arg.text)
    if (nxt := cur.peek()) is not None and nxt.text == "(":
        raise ArgError(nxt.line, "missing 'and'/'or' before '('")
    return Event(name.text, operands, name.line)


def _expr(cur: _Cursor, last_line: int) -> Event | Op:
    # Upstart gives `and` and `or` the same precedence, binding left to right.
    node = _event(cur, last_line)
    while (tok := cur.peek()) is not None and tok.text in ("and", "or") and not tok.quoted:
        cur.take()
        node = Op(tok.text, node, _event(cur, tok.line))
    return node


def parse_events(args: list[Token]) -> Event | Op:
    """Parse an event expression; raise ArgError naming the offending line."""
    toks = _split_parens(args)
    if not toks:
        raise ArgError(args[0].line if args else 0, "empty event expression")
    cur = _Cursor(toks)
    node = _expr(cur, toks[0].line)
    if (tok := cur.peek()) is not None:
        if tok.text == ")":
            raise ArgError(tok.line, "unbalanced parentheses: ')' without a matching '('")
        raise ArgError(tok.line, f"expected 'and' or 'or', found {tok.text!r}")
    return node


def events_in(node: Event | Op) -> list[Event]:
    if isinstance(node, Event):
        return [node]
    return events_in(node.left) + events_in(node.right)
