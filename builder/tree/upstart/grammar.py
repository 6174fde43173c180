"""What Upstart 1.x accepts: the stanza table of init(5) and event expressions.

`check_stanza` validates one stanza's arguments; `parse_events` turns the
argument tokens of `start on` / `stop on` into an expression tree.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from .parser import TWO_WORD, Stanza, Token

# libnih's signal_names table (nih/signal.c) as built on Linux for Upstart 1.13,
# with the Linux numbers: EMT and LOST are not defined there, UNUSED is (by the
# glibc of that era), and IOT, CLD, POLL are aliases.
SIGNALS = {
    "HUP": 1, "INT": 2, "QUIT": 3, "ILL": 4, "TRAP": 5, "ABRT": 6, "IOT": 6, "BUS": 7,
    "FPE": 8, "KILL": 9, "USR1": 10, "SEGV": 11, "USR2": 12, "PIPE": 13, "ALRM": 14,
    "TERM": 15, "STKFLT": 16, "CHLD": 17, "CLD": 17, "CONT": 18, "STOP": 19, "TSTP": 20,
    "TTIN": 21, "TTOU": 22, "URG": 23, "XCPU": 24, "XFSZ": 25, "VTALRM": 26, "PROF": 27,
    "WINCH": 28, "IO": 29, "POLL": 29, "PWR": 30, "SYS": 31, "UNUSED": 31,
}
LIMITS = {
    "as", "core", "cpu", "data", "fsize", "memlock", "msgqueue", "nice", "nofile",
    "nproc", "rss", "rtprio", "sigpending", "stack",
}
NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
INT_MAX = 2**31 - 1
LONG_MAX = 2**63 - 1
ULONG_MAX = 2**64 - 1


class ArgError(Exception):
    def __init__(self, line: int, message: str) -> None:
        super().__init__(message)
        self.line = line
        self.message = message


@dataclass(frozen=True)
class ArgWarning:
    """Accepted by Upstart, but very likely not what the author meant."""

    line: int
    message: str


Check = Callable[[list[Token], list[ArgWarning]], None]


@dataclass(frozen=True)
class Spec:
    min_args: int
    max_args: int | None  # None: unbounded
    check: Check | None = None
    repeatable: bool = False  # several occurrences add up instead of overriding
    deprecated: str = ""


_C_NUMBER = re.compile(r"[ \t\n\v\f\r]*([+-]?)([0-9]+)")


def c_number(text: str, unsigned: bool = False, base: int = 10) -> int | None:
    """The value C's strtol/strtoul give `text` when Upstart checks `*endptr`, else None.

    Upstart's stanza handlers accept what the C call consumes whole: leading
    blanks and a sign, and (a quirk) the empty string as 0.  strtoul negates a
    `-N` in unsigned arithmetic, so "-1" is ULONG_MAX; out of range is None
    (errno is ERANGE).
    """
    if text == "":
        return 0
    m = _C_NUMBER.fullmatch(text)
    if not m or (base == 8 and any(d in "89" for d in m.group(2))):
        return None
    value = int(m.group(2), base)
    negative = m.group(1) == "-"
    if value > (ULONG_MAX if unsigned else LONG_MAX + negative):
        return None
    if negative:
        value = (ULONG_MAX + 1 - value) % (ULONG_MAX + 1) if unsigned else -value
    return value


def _int(tok: Token, lo: int, hi: int, what: str, unsigned: bool = False) -> int:
    value = c_number(tok.text, unsigned)
    if value is None:
        raise ArgError(tok.line, f"{what} must be an integer, got {tok.text!r}")
    if not lo <= value <= hi:
        raise ArgError(tok.line, f"{what} must be between {lo} and {hi}, got {value}")
    return value


def signal_number(text: str) -> int | None:
    """What `kill signal`, `reload signal` and `normal exit` make of a word, or None.

    init/parse_job.c (stanza_kill, stanza_reload, stanza_normal) asks
    nih_signal_from_name first, which drops a leading "SIG" and compares names
    case-sensitively, and only if that fails reads a number with strtoul,
    accepting up to INT_MAX.
    """
    name = text.removeprefix("SIG")
    if name in SIGNALS:
        return SIGNALS[name]
    value = c_number(text, unsigned=True)
    return value if value is not None and value <= INT_MAX else None


def _signal(tok: Token, warn: list[ArgWarning]) -> None:
    number = signal_number(tok.text)
    if number is None:
        upper = tok.text.upper()
        hint = (f" (signal names are case-sensitive: {upper!r})"
                if upper.removeprefix("SIG") in SIGNALS else "")
        raise ArgError(tok.line, f"unknown signal {tok.text!r}{hint}")
    if tok.text.removeprefix("SIG") in SIGNALS or 1 <= number <= 64:
        return
    if number == 0:
        warn.append(ArgWarning(tok.line, "signal 0 delivers nothing (kill(2) only checks that "
                                         "the process exists)"))
    else:
        warn.append(ArgWarning(tok.line, f"signal {number} is not a Linux signal (1..64): "
                                         "Upstart accepts it, kill(2) will refuse it"))


def _one_of(*choices: str) -> Check:
    def check(args: list[Token], warn: list[ArgWarning]) -> None:
        if args[0].text not in choices:
            raise ArgError(args[0].line, f"expected one of {', '.join(choices)}, "
                                         f"got {args[0].text!r}")
    return check


def _respawn_limit(args: list[Token], warn: list[ArgWarning]) -> None:
    # stanza_respawn: `unlimited`, or COUNT then INTERVAL, each strtol >= 0.
    if args[0].text == "unlimited":
        if len(args) > 1:
            raise ArgError(args[1].line, f"unexpected {args[1].text!r} after "
                                         "'respawn limit unlimited'")
        return
    if len(args) == 1:
        raise ArgError(args[0].line, "respawn limit takes COUNT INTERVAL or 'unlimited'")
    _int(args[0], 0, LONG_MAX, "respawn limit COUNT")
    _int(args[1], 0, LONG_MAX, "respawn limit INTERVAL")


def _normal_exit(args: list[Token], warn: list[ArgWarning]) -> None:
    for tok in args:
        number = signal_number(tok.text)
        if number is None:
            raise ArgError(tok.line, f"unknown signal {tok.text!r} ('normal exit' takes "
                                     "exit statuses and signal names)")
        # A signal name is stored as signum << 8, which is how job_process
        # compares a death by signal: a number above 255 matches a signal.
        if tok.text.removeprefix("SIG") not in SIGNALS and number > 255:
            sig = number >> 8
            what = f"death by signal {sig}" if sig and not number & 0xFF else "nothing"
            warn.append(ArgWarning(tok.line, f"exit status {number} is above 255: Upstart "
                                             f"matches it with {what}"))


def _limit(args: list[Token], warn: list[ArgWarning]) -> None:
    # stanza_limit: RESOURCE SOFT HARD, each value strtoul or `unlimited`.
    if args[0].text not in LIMITS:
        raise ArgError(args[0].line, f"unknown resource {args[0].text!r} "
                                     f"(one of {', '.join(sorted(LIMITS))})")
    if len(args) < 3:
        missing = "a hard value after the soft one" if len(args) == 2 else "soft and hard values"
        raise ArgError(args[-1].line, f"'limit {args[0].text}' needs {missing}: "
                                      f"limit {args[0].text} SOFT HARD")
    for tok in args[1:]:
        if tok.text != "unlimited":
            _int(tok, 0, ULONG_MAX, "limit value", unsigned=True)


def _umask(args: list[Token], warn: list[ArgWarning]) -> None:
    value = c_number(args[0].text, unsigned=True, base=8)
    if value is None or value > 0o777:
        raise ArgError(args[0].line, f"umask must be an octal mask up to 0777, "
                                     f"got {args[0].text!r}")


def _oom_score(args: list[Token], warn: list[ArgWarning]) -> None:
    if args[0].text != "never":
        _int(args[0], -1000, 1000, "oom score")


def _oom_old(args: list[Token], warn: list[ArgWarning]) -> None:
    # stanza_oom: the old oom_adj scale is -17 (OOM_DISABLE) to 15.
    if args[0].text != "never":
        _int(args[0], -17, 15, "oom adjustment")


def _env(args: list[Token], warn: list[ArgWarning]) -> None:
    name = args[0].text.split("=", 1)[0]
    if not NAME.match(name):
        raise ArgError(args[0].line, f"invalid variable name {name!r}")


def _names(args: list[Token], warn: list[ArgWarning]) -> None:
    for tok in args:
        if not NAME.match(tok.text):
            raise ArgError(tok.line, f"invalid variable name {tok.text!r}")


def _events(args: list[Token], warn: list[ArgWarning]) -> None:
    parse_events(args)


def _nice(args: list[Token], warn: list[ArgWarning]) -> None:
    _int(args[0], -20, 19, "nice")


def _timeout(args: list[Token], warn: list[ArgWarning]) -> None:
    _int(args[0], 0, LONG_MAX, "kill timeout")


def _signal_arg(args: list[Token], warn: list[ArgWarning]) -> None:
    _signal(args[0], warn)


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
    "expect": Spec(1, 1, _one_of("stop", "daemon", "fork", "none")),
    "kill signal": Spec(1, 1, _signal_arg),
    "kill timeout": Spec(1, 1, _timeout),
    "reload signal": Spec(1, 1, _signal_arg),
    # process environment
    "console": Spec(1, 1, _one_of("none", "output", "owner", "log")),
    "umask": Spec(1, 1, _umask),
    "nice": Spec(1, 1, _nice),
    "oom score": Spec(1, 1, _oom_score),
    "oom": Spec(1, 1, _oom_old, deprecated="use 'oom score' (range -1000..1000)"),
    "limit": Spec(1, 3, _limit, repeatable=True),
    "chroot": Spec(1, 1),
    "chdir": Spec(1, 1),
    "setuid": Spec(1, 1),
    "setgid": Spec(1, 1),
    "apparmor load": Spec(1, 1),
    "apparmor switch": Spec(1, 1),
    "cgroup": Spec(1, 4, repeatable=True),
    # stanza_debug: honoured only when init runs with --debug, a no-op otherwise.
    "debug": Spec(0, 0),
    # process definitions (checked for count by lint, for syntax by sh -n)
    "exec": Spec(1, None),
    "script": Spec(0, 0),
    **{f"{p} exec": Spec(1, None) for p in ("pre-start", "post-start", "pre-stop", "post-stop")},
    **{f"{p} script": Spec(0, 0) for p in ("pre-start", "post-start", "pre-stop", "post-stop")},
}


def suggest(word: str) -> str:
    heads = {k.split()[0] for k in STANZAS} | set(STANZAS)
    close = [c for c in difflib.get_close_matches(word, sorted(heads), n=2, cutoff=0.7)
             if c != word]
    return f" (did you mean '{close[0]}'?)" if close else ""


def check_stanza(stanza: Stanza) -> list[ArgWarning]:
    """Raise ArgError if the stanza is unknown or its arguments are wrong; else warnings."""
    spec = STANZAS.get(stanza.keyword)
    if spec is None:
        word = stanza.keyword.split()[0]
        seconds = TWO_WORD.get(word)
        if seconds and stanza.keyword not in STANZAS:
            # `stop`, `kill`, ... are the first word of a two-word stanza, not a
            # misspelling: say which second words Upstart's handler takes.
            got = f" {stanza.args[0].text}" if stanza.args else ""
            forms = " or ".join(f"'{word} {w}'" for w in sorted(seconds))
            raise ArgError(stanza.line, f"unknown stanza '{word}{got}': expected {forms}")
        raise ArgError(stanza.line, f"unknown stanza '{word}'{suggest(word)}")
    n = len(stanza.args)
    if n < spec.min_args or (spec.max_args is not None and n > spec.max_args):
        want = (str(spec.min_args) if spec.min_args == spec.max_args
                else f"{spec.min_args}..{spec.max_args if spec.max_args is not None else 'n'}")
        where = stanza.args[spec.max_args].line if spec.max_args is not None and n > \
            spec.max_args else stanza.line
        raise ArgError(where, f"'{stanza.keyword}' takes {want} argument(s), got {n}")
    warnings: list[ArgWarning] = []
    if spec.check:
        spec.check(stanza.args, warnings)
    return warnings


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
    """Make tokens of the parentheses that stood outside quotes.

    parse_on (init/parse_job.c) takes tokens with "()" among the delimiters
    after dequoting has been decided character by character, so in
    `EXEC="lightdm")` the `)` closes a group while `"(x)"` is a plain operand.
    """
    out: list[Token] = []
    for tok in args:
        cuts = tok.parens if tok.parens or tok.quoted else tuple(
            i for i, c in enumerate(tok.text) if c in "()")
        if not cuts:
            out.append(tok)
            continue
        last = 0
        for cut in cuts:
            if tok.text[last:cut]:
                out.append(Token(tok.text[last:cut], tok.line, tok.quoted))
            out.append(Token(tok.text[cut], tok.line))
            last = cut + 1
        if tok.text[last:]:
            out.append(Token(tok.text[last:], tok.line, tok.quoted))
    return out


def _bare(tok: Token | None, text: str) -> bool:
    return tok is not None and tok.text == text and not tok.quoted


OPERAND = re.compile(r"^(?:[A-Za-z_][A-Za-z0-9_]*!?=.*|[^=!()]\S*)$", re.S)


def _event(cur: _Cursor, last_line: int) -> Event | Op:
    tok = cur.peek()
    if tok is None:
        raise ArgError(last_line, "event expression ends where an event was expected")
    if _bare(tok, "("):
        cur.opens.append(cur.take())
        inner = _expr(cur, tok.line)
        close = cur.peek()
        if close is None:
            opened = cur.opens[-1]
            raise ArgError(opened.line, "unbalanced parentheses: '(' is never closed")
        if not _bare(close, ")"):
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
    nxt = cur.peek()
    if nxt is not None and _bare(nxt, "("):
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
        if _bare(tok, ")"):
            raise ArgError(tok.line, "unbalanced parentheses: ')' without a matching '('")
        raise ArgError(tok.line, f"expected 'and' or 'or', found {tok.text!r}")
    return node


def events_in(node: Event | Op) -> list[Event]:
    if isinstance(node, Event):
        return [node]
    return events_in(node.left) + events_in(node.right)
