"""Tokenizer and parser for Upstart 1.x job files (init(5)).

The parser is deliberately syntax-only: it splits a job file into stanzas and
process blocks, each carrying the line it starts on.  Whether a stanza is known
and its arguments make sense is decided by `grammar`, and policy by `lint`, so
that one malformed stanza does not hide the problems of the others.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# Stanzas made of two words; the second word is part of the keyword.
TWO_WORD = {
    "start": {"on"},
    "stop": {"on"},
    "respawn": {"limit"},
    "normal": {"exit"},
    "kill": {"signal", "timeout"},
    "reload": {"signal"},
    "apparmor": {"load", "switch"},
    "oom": {"score"},
}
PHASES = ("pre-start", "post-start", "pre-stop", "post-stop")
# Event expressions are the only place where an open parenthesis lets a stanza
# continue on the next line.
PAREN_CONTINUES = {"start on", "stop on"}
# First words of every init(5) stanza.  An unclosed `(` in `start on` must not
# swallow the rest of the file: a line opening with one of these ends it.
STANZA_HEADS = {
    "description", "author", "version", "usage", "start", "stop", "manual", "emits",
    "env", "export", "task", "respawn", "normal", "instance", "expect", "kill", "reload",
    "console", "umask", "nice", "oom", "limit", "chroot", "chdir", "setuid", "setgid",
    "apparmor", "cgroup", "exec", "script", *PHASES,
}
END_SCRIPT = re.compile(r"^\s*end\s+script\s*(#.*)?$")


@dataclass(frozen=True)
class Token:
    text: str
    line: int
    quoted: bool = False
    # Offsets in `text` of the parentheses that stood outside quotes and were not
    # escaped: only those group an event expression.
    parens: tuple[int, ...] = field(default=(), compare=False)


@dataclass
class Stanza:
    keyword: str
    args: list[Token]
    line: int
    raw: str = ""  # source text after the keyword, for exec lines handed to sh


@dataclass
class Process:
    """A process definition: main (`exec`/`script`) or one of PHASES."""

    phase: str  # "main" or a member of PHASES
    kind: str  # "exec" or "script"
    line: int
    command: str = ""  # exec: the command line as Upstart passes it to sh
    body: str = ""  # script: the text between `script` and `end script`
    body_line: int = 0  # line number of the first body line


@dataclass
class ParseError:
    line: int
    message: str


@dataclass
class JobFile:
    path: str
    stanzas: list[Stanza] = field(default_factory=list)
    processes: list[Process] = field(default_factory=list)
    errors: list[ParseError] = field(default_factory=list)

    def find(self, keyword: str) -> list[Stanza]:
        return [s for s in self.stanzas if s.keyword == keyword]

    def process(self, phase: str) -> list[Process]:
        return [p for p in self.processes if p.phase == phase]


class _Lexer:
    """Splits one stanza's text into tokens the way libnih's `nih_config_token` does.

    Whitespace separates and quotes group (a quote may span lines; the line break
    becomes one space).  A backslash keeps the next character literal but is
    itself kept unless that character is a backslash or whitespace, so `\\"` does
    not open a quote.  `#` outside quotes ends the line even inside a word
    (`NIH_CONFIG_CNLWS` lists it as a delimiter).  Where a token has bare
    parentheses is recorded, for `start on` / `stop on`.
    """

    def __init__(self) -> None:
        self.tokens: list[Token] = []
        self.depth = 0  # open parentheses outside quotes
        self.open_quote: str | None = None
        self.quote_line = 0
        self._buf: list[str] = []
        self._buf_line = 0
        self._buf_quoted = False
        self._buf_parens: list[int] = []
        self._quoted_newline = False  # a line break inside quotes awaits its space

    def _flush(self) -> None:
        if self._buf or self._buf_quoted:
            self.tokens.append(Token("".join(self._buf), self._buf_line, self._buf_quoted,
                                     tuple(self._buf_parens)))
        self._buf = []
        self._buf_quoted = False
        self._buf_parens = []

    def _start(self, lineno: int) -> None:
        if not self._buf and not self._buf_quoted:
            self._buf_line = lineno

    def _escape(self, nxt: str) -> None:
        if nxt == "\\" or nxt in " \t\r":
            self._buf.append(nxt)
        else:
            self._buf.extend(("\\", nxt))

    def feed(self, text: str, lineno: int) -> bool:
        """Feed one physical line; return True if it ends with a backslash continuation."""
        i, n = 0, len(text)
        while i < n:
            c = text[i]
            if self.open_quote:
                if self._quoted_newline:
                    if c in " \t\r":
                        i += 1
                        continue
                    self._buf.append(" ")
                    self._quoted_newline = False
                if c == "\\":
                    if i + 1 >= n:
                        self._quote_break()
                        return True
                    self._escape(text[i + 1])
                    i += 2
                    continue
                if c == self.open_quote:
                    self.open_quote = None
                else:
                    self._buf.append(c)
                i += 1
                continue
            if c == "\\":
                if i + 1 >= n:
                    self._flush()
                    return True
                self._start(lineno)
                self._escape(text[i + 1])
                i += 2
                continue
            if c in " \t\r":
                self._flush()
            elif c == "#":
                break
            elif c in "\"'":
                self._start(lineno)
                self._buf_quoted = True
                self.open_quote = c
                self.quote_line = lineno
            else:
                self._start(lineno)
                if c in "()":
                    self.depth += 1 if c == "(" else -1
                    self._buf_parens.append(len(self._buf))
                self._buf.append(c)
            i += 1
        if self.open_quote:
            self._quote_break()
            return False
        self._flush()
        return False

    def _quote_break(self) -> None:
        # A line break inside quotes, escaped or not, becomes one space and the
        # whitespace around it goes with it (nih_config_token's `nl` flag).
        while self._buf and self._buf[-1] in " \t\r":
            self._buf.pop()
        self._quoted_newline = True


def _keyword(tokens: list[Token]) -> tuple[str, list[Token]]:
    first = tokens[0].text
    if len(tokens) > 1 and tokens[1].text in TWO_WORD.get(first, set()):
        return f"{first} {tokens[1].text}", tokens[2:]
    return first, tokens[1:]


def _first_word(line: str) -> str:
    words = line.split(None, 1)
    return words[0] if words else ""


def _raw_after(lines: list[str], start: int, end: int, words: int) -> str:
    """Source text of lines[start..end] with the first `words` words removed.

    For an exec line this is the command as `nih_config_parse_command` reads it:
    up to the first `#` outside quotes and not escaped, so `${VAR#x}` is cut there
    just as Upstart cuts it.
    """
    text = "\n".join(lines[start:end + 1]).lstrip()
    for _ in range(words):
        text = text.split(None, 1)[1] if len(text.split(None, 1)) > 1 else ""
    quote = ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if quote:
            quote = "" if c == quote else quote
        elif c in "\"'":
            quote = c
        elif c == "#":
            text = text[:i]
            break
        i += 1
    return text.strip()


def _starts_stanza(line: str) -> bool:
    word = _first_word(line)
    return word in STANZA_HEADS or word == "end"


def parse(text: str, path: str = "<job>") -> JobFile:
    job = JobFile(path)
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        lineno = i + 1
        stripped = lines[i].strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        lexer = _Lexer()
        start = i
        cont = lexer.feed(lines[i], lineno)
        keyword = ""
        swallowed = False
        while True:
            if lexer.tokens and not keyword:
                keyword, _ = _keyword(lexer.tokens)
            if i + 1 >= len(lines):
                break
            if lexer.open_quote is not None and _starts_stanza(lines[i + 1]):
                # Upstart would read on to the next quote, taking the following
                # stanzas as text and failing (if at all) far below; the mistake
                # is where the quote opens.
                swallowed = True
                break
            more = cont or lexer.open_quote is not None or (
                keyword in PAREN_CONTINUES and lexer.depth > 0
                and not _starts_stanza(lines[i + 1]))
            if not more:
                break
            i += 1
            cont = lexer.feed(lines[i], i + 1)
        if lexer.open_quote:
            job.errors.append(
                ParseError(lexer.quote_line, f"unterminated {lexer.open_quote} quote"))
            if not swallowed:
                break
            i += 1
            continue
        end = i
        i += 1
        if not lexer.tokens:
            continue
        keyword, args = _keyword(lexer.tokens)
        head = lexer.tokens[0].text
        if head == "end" and args and args[0].text == "script":
            job.errors.append(ParseError(lineno, "'end script' without a matching 'script'"))
            continue
        if head in PHASES or head in ("exec", "script"):
            phase = head if head in PHASES else "main"
            rest = lexer.tokens[1:] if head in PHASES else lexer.tokens
            if not rest:
                job.errors.append(ParseError(lineno, f"'{head}' needs 'exec COMMAND' or 'script'"))
                continue
            kind = rest[0].text
            if kind == "exec":
                cmd = _raw_after(lines, start, end, 2 if head in PHASES else 1)
                if len(rest) < 2:
                    job.errors.append(ParseError(lineno, f"'{head} exec' needs a command"))
                    continue
                job.processes.append(Process(phase, "exec", lineno, command=cmd))
                job.stanzas.append(Stanza(f"{head} exec" if head in PHASES else "exec",
                                          rest[1:], lineno, cmd))
            elif kind == "script":
                if len(rest) > 1:
                    job.errors.append(ParseError(
                        lineno, f"unexpected text after 'script': {rest[1].text!r}"))
                body_start = i
                while i < len(lines) and not END_SCRIPT.match(lines[i]):
                    i += 1
                if i >= len(lines):
                    job.errors.append(ParseError(lineno, "'script' block has no 'end script'"))
                    body = "\n".join(lines[body_start:])
                else:
                    body = "\n".join(lines[body_start:i])
                    i += 1
                job.processes.append(Process(phase, "script", lineno, body=body + "\n",
                                             body_line=body_start + 1))
                job.stanzas.append(Stanza(f"{head} script" if head in PHASES else "script",
                                          [], lineno))
            else:
                job.errors.append(ParseError(
                    lineno, f"'{head}' must be followed by 'exec' or 'script', not {kind!r}"))
            continue
        job.stanzas.append(Stanza(keyword, args, lineno, _raw_after(
            lines, start, end, len(keyword.split()))))
    return job
