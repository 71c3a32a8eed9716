"""Variable substitution in Dockerfile words, as docker's shell lexer does it.

    expand_word('${A:-x}/"b c"', {"B": "1"})        -> 'x/b c'
    expand_words('$P 53/udp', {"P": "80 81"})        -> ['80', '81', '53/udp']

Rules (moby's shell/lex.go): `$VAR` and `${VAR}`; `${VAR:-word}` (word when VAR is unset or
empty), `${VAR-word}` (when unset), `${VAR:+word}` (word when VAR is set and not empty),
`${VAR+word}` (when set), `${VAR:?msg}` / `${VAR?msg}` (an error); single quotes keep their
text literally, double quotes keep spaces and allow `$`; the escape character (`\\` or the
`escape` directive's backtick) makes the next character literal. Quotes are removed from the
result. Pure: text in, text out.
"""

from __future__ import annotations


class ExpansionError(ValueError):
    pass


class _Lexer:
    def __init__(self, text: str, env: dict[str, str], escape: str, words: bool):
        self.s = text
        self.i = 0
        self.env = env
        self.escape = escape
        self.words = words      # split on unquoted whitespace (and on spaces of expansions)

    def peek(self) -> str:
        return self.s[self.i] if self.i < len(self.s) else ""

    def next(self) -> str:
        ch = self.peek()
        self.i += 1
        return ch

    def run(self, stop: str = "") -> list[str]:
        """Words up to the end (or to an unquoted `stop` character, for `${...:-word}`).
        Unquoted whitespace, in the text or in an expansion's value, ends a word (when
        splitting); quoted text and escaped characters never do."""
        out: list[str] = []
        word: list[str] = []
        in_word = False

        def add(text: str, raw: bool) -> None:
            nonlocal word, in_word
            if raw or not self.words:
                word.append(text)
                in_word = True
                return
            for c in text:
                if c.isspace():
                    if in_word:
                        out.append("".join(word))
                        word, in_word = [], False
                else:
                    word.append(c)
                    in_word = True

        while self.i < len(self.s):
            ch = self.peek()
            if stop and ch == stop:
                break
            if ch == self.escape:
                self.i += 1
                add(self.next() if self.i < len(self.s) else ch, True)
            elif ch == "'":
                self.i += 1
                add(self._single(), True)
            elif ch == '"':
                self.i += 1
                add(self._double(), True)
            elif ch == "$":
                self.i += 1
                add(self._dollar(), False)
            else:
                self.i += 1
                add(ch, False)
        if in_word or not self.words:
            out.append("".join(word))
        return out

    def _single(self) -> str:
        start = self.i
        end = self.s.find("'", start)
        if end < 0:
            raise ExpansionError("unexpected end of statement while looking for matching "
                                 "single-quote")
        self.i = end + 1
        return self.s[start:end]

    def _double(self) -> str:
        out = []
        while True:
            if self.i >= len(self.s):
                raise ExpansionError("unexpected end of statement while looking for matching "
                                     "double-quote")
            ch = self.next()
            if ch == '"':
                return "".join(out)
            if ch == self.escape:
                nxt = self.peek()
                if nxt in ('"', "$", self.escape):  # the characters an escape protects here
                    out.append(self.next())
                    continue
                if nxt == "\n":
                    self.i += 1
                    continue
                out.append(ch)
            elif ch == "$":
                out.append(self._dollar())
            else:
                out.append(ch)

    def _name(self) -> str:
        start = self.i
        while self.i < len(self.s) and (self.s[self.i].isalnum() or self.s[self.i] == "_"):
            self.i += 1
        return self.s[start:self.i]

    def _dollar(self) -> str:
        ch = self.peek()
        if ch == "{":
            self.i += 1
            return self._braced()
        name = self._name()
        if not name:
            return "$"
        return self.env.get(name, "")

    def _braced(self) -> str:
        name = self._name()
        if not name:
            raise ExpansionError("missing ':' in substitution" if self.peek() != "}" else
                                 "bad substitution")
        ch = self.next()
        if ch == "}":
            return self.env.get(name, "")
        colon = ch == ":"
        if colon:
            ch = self.next()
        if ch not in ("-", "+", "?"):
            raise ExpansionError(f"unsupported modifier ({ch}) in substitution")
        inner = _Lexer(self.s, self.env, self.escape, False)
        inner.i = self.i
        word = inner.run(stop="}")[0]
        if inner.peek() != "}":
            raise ExpansionError("syntax error: missing '}'")
        self.i = inner.i + 1
        is_set = name in self.env
        value = self.env.get(name, "")
        if ch == "-":
            return word if (not is_set or (colon and not value)) else value
        if ch == "+":
            return word if (is_set and (value or not colon)) else ""
        if not is_set or (colon and not value):
            raise ExpansionError(f"{name}: {word or 'is not allowed to be empty' if colon else 'is not allowed to be unset'}")
        return value


def expand_word(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """One word: variables substituted, quotes and escapes removed, spaces kept."""
    return _Lexer(text, env, escape, False).run()[0]


def expand_words(text: str, env: dict[str, str], escape: str = "\\") -> list[str]:
    """Words split at unquoted whitespace, after substitution (EXPOSE, VOLUME, ...)."""
    return _Lexer(text, env, escape, True).run()


def expand_heredoc(text: str, env: dict[str, str], escape: str = "\\") -> str:
    """A heredoc's body (unquoted delimiter): `$VAR` and `${VAR...}` substituted, an escaped
    `$` kept as `$`, every other character (quotes, backslashes, newlines) as it is."""
    lexer = _Lexer(text, env, escape, False)
    out = []
    while lexer.i < len(text):
        ch = lexer.peek()
        if ch == escape and text[lexer.i + 1:lexer.i + 2] == "$":
            out.append("$")
            lexer.i += 2
        elif ch == "$":
            lexer.i += 1
            out.append(lexer._dollar())
        else:
            out.append(ch)
            lexer.i += 1
    return "".join(out)
