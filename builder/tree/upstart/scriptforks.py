"""Can a job's main `script` fork before it `exec`s the daemon?

With `expect fork` or `expect daemon` Upstart ptraces the main process and
follows its first (or second) fork.  A main `script` is that process: `/bin/sh
-e` running the script.  If the shell only runs builtins before `exec DAEMON`,
the shell's pid becomes the daemon's and Upstart follows the daemon's own forks,
which is what mountall, autofs, apache2, statd, libvirt-bin or corosync's
upstream job rely on.  Anything that makes the shell fork first (an external
command, a pipeline, a subshell, a command substitution, a background job) is
the fork Upstart follows instead, and it tracks a process that soon exits.

This is a conservative reading of POSIX sh as dash (Ubuntu's /bin/sh) runs it:
what it cannot tell apart it counts as a fork.
"""

from __future__ import annotations

from dataclasses import dataclass

# dash's builtins (src/builtins.def): these run in the shell, without a fork.
BUILTINS = {
    ".", ":", "[", "alias", "bg", "break", "cd", "chdir", "continue", "echo", "eval",
    "exit", "export", "false", "fc", "fg", "getopts", "hash", "jobs", "kill", "local",
    "printf", "pwd", "read", "readonly", "return", "set", "shift", "test", "times", "trap",
    "true", "type", "ulimit", "umask", "unalias", "unset", "wait",
}
# Reserved words after which a new command starts.
OPENERS = {"if", "then", "else", "elif", "do", "while", "until", "!", "{"}
CLOSERS = {"fi", "done", "esac", "}"}


@dataclass(frozen=True)
class Fork:
    line: int  # line of the script body, counted from 1
    what: str  # e.g. "runs 'mkdir'", "a pipeline"


@dataclass(frozen=True)
class ScriptForks:
    fork: Fork | None  # the first thing that forks before the exec, if any
    execs: bool  # the script has an `exec PROGRAM` somewhere


@dataclass
class _Word:
    text: str
    line: int
    op: bool = False  # an operator: ; & | && || ;; ( ) newline
    redirect: bool = False  # the target of a redirection, not a command word


class _Scanner:
    def __init__(self, body: str) -> None:
        self.s = body
        self.i = 0
        self.line = 1
        self.words: list[_Word] = []
        self.heredocs: list[str] = []

    def scan(self) -> list[_Word]:
        s = self.s
        buf: list[str] = []
        start = self.line
        redirect_next = False

        def flush() -> None:
            nonlocal buf, redirect_next
            if buf:
                self.words.append(_Word("".join(buf), start, redirect=redirect_next))
                redirect_next = False
            buf = []

        while self.i < len(s):
            c = s[self.i]
            if not buf:
                start = self.line
            if c == "\\":
                if s[self.i + 1:self.i + 2] == "\n":
                    self.line += 1
                else:
                    buf.append(s[self.i + 1:self.i + 2])
                self.i += 2
                continue
            if c == "'":
                end = s.find("'", self.i + 1)
                end = len(s) if end < 0 else end
                buf.append(s[self.i + 1:end] or "''")
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
                continue
            if c == '"':
                self.i += 1
                buf.append(self._double_quoted() or '""')
                continue
            if c == "`":
                end = s.find("`", self.i + 1)
                end = len(s) if end < 0 else end
                self.line += s.count("\n", self.i, end)
                buf.append("`...`")
                self.i = end + 1
                continue
            if c == "$" and s[self.i + 1:self.i + 2] == "(":
                buf.append(self._dollar_paren())
                continue
            if c == "#" and not buf:
                while self.i < len(s) and s[self.i] != "\n":
                    self.i += 1
                continue
            if c in " \t":
                flush()
                self.i += 1
                continue
            if c == "\n":
                flush()
                self.words.append(_Word("\n", self.line, op=True))
                self.line += 1
                self.i += 1
                self._skip_heredocs()
                continue
            if c in "<>":
                if buf and "".join(buf).isdigit():
                    buf = []  # the fd number of `2>&1`
                flush()
                op = c
                self.i += 1
                while self.i < len(s) and s[self.i] in "<>&|-":
                    op += s[self.i]
                    self.i += 1
                if op.startswith("<<"):
                    self._heredoc_word()
                elif not op.endswith("&") or not self._fd_follows():
                    redirect_next = True
                continue
            if c in ";&|()":
                flush()
                op = c
                if s[self.i + 1:self.i + 2] == c and c in ";&|":
                    op += c
                self.words.append(_Word(op, self.line, op=True))
                self.i += len(op)
                continue
            buf.append(c)
            self.i += 1
        flush()
        return self.words

    def _fd_follows(self) -> bool:
        # `>&2`, `<&-`: the fd is part of the operator, not a file name.
        j = self.i
        while j < len(self.s) and (self.s[j].isdigit() or self.s[j] == "-"):
            j += 1
        if j > self.i:
            self.i = j
            return True
        return False

    def _double_quoted(self) -> str:
        s = self.s
        out: list[str] = []
        while self.i < len(s) and s[self.i] != '"':
            c = s[self.i]
            if c == "\\":
                out.append(s[self.i + 1:self.i + 2])
                self.line += s[self.i + 1:self.i + 2] == "\n"
                self.i += 2
                continue
            if c == "`":
                end = s.find("`", self.i + 1)
                end = len(s) if end < 0 else end
                self.line += s.count("\n", self.i, end)
                self.i = end + 1
                out.append("`...`")
                continue
            if c == "$" and s[self.i + 1:self.i + 2] == "(":
                out.append(self._dollar_paren())
                continue
            self.line += c == "\n"
            out.append(c)
            self.i += 1
        self.i += 1
        return "".join(out)

    def _dollar_paren(self) -> str:
        """Skip `$(...)` (dash forks a subshell for it) or `$((...))` (it does not)."""
        s = self.s
        arithmetic = s[self.i + 2:self.i + 3] == "("
        depth, j = 0, self.i + 1
        quote = ""
        while j < len(s):
            c = s[j]
            if quote:
                quote = "" if c == quote else quote
            elif c in "'\"":
                quote = c
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        text = s[self.i:j + 1]
        self.line += text.count("\n")
        self.i = j + 1
        return "$((...))" if arithmetic else "$(...)"

    def _heredoc_word(self) -> None:
        s = self.s
        while self.i < len(s) and s[self.i] in " \t":
            self.i += 1
        j = self.i
        while j < len(s) and s[j] not in " \t\n;&|<>()":
            j += 1
        self.heredocs.append(s[self.i:j].strip("'\"\\"))
        self.i = j

    def _skip_heredocs(self) -> None:
        # dash writes a here-document of up to a pipe's size without forking.
        while self.heredocs:
            delim = self.heredocs.pop(0)
            while self.i < len(self.s):
                end = self.s.find("\n", self.i)
                end = len(self.s) if end < 0 else end
                text = self.s[self.i:end]
                self.i = end + 1
                self.line += 1
                if text.strip("\t") == delim:
                    break


def _command_words(words: list[_Word], k: int) -> tuple[list[_Word], int]:
    """The non-operator words of the simple command starting at k, and where it ends."""
    out: list[_Word] = []
    while k < len(words) and not words[k].op:
        out.append(words[k])
        k += 1
    return out, k


def _forks_in(word: _Word) -> bool:
    return "$(...)" in word.text or "`...`" in word.text


def script_forks(body: str) -> ScriptForks:
    """Find the first fork the main script can make before its top-level `exec PROGRAM`."""
    words = _Scanner(body).scan()
    functions: set[str] = set()
    depth = 0  # open compound commands (if/while/until/for/case/{)
    in_case = False  # expecting case patterns
    execs = False
    k = 0
    while k < len(words):
        w = words[k]
        if in_case and not (w.op and w.text in ("\n", ";;")):
            in_case = False
            if w.text == "esac":
                depth -= 1
                k += 1
                continue
            # a case pattern (`a|b)`, `(a)`) runs up to its `)`: no pipe, no subshell
            k += 1
            while k < len(words) and not (words[k].op and words[k].text == ")"):
                k += 1
            k += 1
            continue
        if w.op:
            what = {"|": "a pipeline", "&": "a background job", "(": "a subshell"}.get(w.text)
            if what:
                return ScriptForks(Fork(w.line, what), execs)
            in_case = in_case or w.text == ";;"
            k += 1
            continue
        if w.text in OPENERS or w.text in CLOSERS:
            depth += 1 if w.text in ("if", "while", "until", "{") else (
                -1 if w.text in CLOSERS else 0)
            k += 1
            continue
        if w.text in ("for", "case"):
            stop = "do" if w.text == "for" else "in"
            while k < len(words) and not (words[k].text == stop and not words[k].op):
                if _forks_in(words[k]):
                    return ScriptForks(Fork(words[k].line, "a command substitution"), execs)
                k += 1
            depth += 1
            in_case = w.text == "case"
            k += 1
            continue
        if k + 2 < len(words) and words[k + 1].text == "(" and words[k + 2].text == ")":
            functions.add(w.text)
            k += 3
            continue
        cmd, k = _command_words(words, k)
        for x in cmd:
            if _forks_in(x):
                return ScriptForks(Fork(x.line, "a command substitution"), execs)
        while cmd and (cmd[0].redirect or _assignment(cmd[0].text)):
            cmd = cmd[1:]
        args = [x for x in cmd if not x.redirect]
        if not args:
            continue
        name = args[0].text
        if name == "exec":
            if len(args) > 1:
                execs = True
                if depth <= 0:
                    return ScriptForks(None, True)
            continue
        if name == "command" and len(args) > 1:
            if args[1].text in ("-v", "-V"):
                continue
            name = args[1].text
        if name in BUILTINS or name in functions:
            continue
        return ScriptForks(Fork(args[0].line, f"runs {name!r}"), execs)
    return ScriptForks(None, execs)


def _assignment(word: str) -> bool:
    name, eq, _ = word.partition("=")
    return bool(eq) and bool(name) and name.replace("_", "a").isalnum() \
        and not name[0].isdigit()
