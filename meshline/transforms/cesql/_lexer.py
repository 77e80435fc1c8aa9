"""CESQL lexer: expression text -> list of tokens with their 1-based columns.

Token kinds: ``INT`` (value: non-negative ``int``; a sign is a separate ``-``/``+``
token the parser folds in), ``STR`` (value: the unescaped string), ``WORD`` (an
identifier or function name, value as written), ``KW`` (a keyword, value upper
case), ``OP`` (a symbol) and ``EOF``.

String literals follow the spec's EBNF plus the reference ANTLR lexer: a
backslash always takes the next character with it; ``\\'`` inside ``'…'`` and
``\\"`` inside ``"…"`` stand for the quote, every other pair is kept as written
(so ``'a\\%'`` reaches LIKE with its backslash).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from meshline.transforms.cesql._errors import CesqlParseError

__all__ = ["EOF", "INT", "KEYWORDS", "KW", "OP", "STR", "WORD", "Token", "tokenize"]

INT = "INT"
STR = "STR"
WORD = "WORD"
KW = "KW"
OP = "OP"
EOF = "EOF"

KEYWORDS = frozenset({"AND", "OR", "XOR", "NOT", "LIKE", "IN", "EXISTS", "TRUE", "FALSE"})

_WORD = re.compile(r"[A-Za-z0-9_]+")
_SPACE = frozenset(" \t\r\n\f\v")
_TWO_CHAR_OPS = frozenset({"!=", "<>", "<=", ">="})
_ONE_CHAR_OPS = frozenset("=<>+-*/%(),")
_MAX_INT_DIGITS = 10  # 2147483648 has 10 digits; anything longer is out of range anyway


class Token(NamedTuple):
    kind: str
    value: object
    column: int  # 1-based

    def describe(self) -> str:
        """How the token reads in an error message."""
        if self.kind == EOF:
            return "end of expression"
        if self.kind == STR:
            return f"string {self.value!r}"
        return repr(str(self.value))


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; raise :class:`CesqlParseError` on a character no token starts with."""
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char in _SPACE:
            i += 1
        elif char in "'\"":
            value, end = _read_string(text, i)
            tokens.append(Token(STR, value, i + 1))
            i = end
        elif match := _WORD.match(text, i):
            tokens.append(_word_token(match.group(), i + 1))
            i = match.end()
        elif text[i : i + 2] in _TWO_CHAR_OPS:
            tokens.append(Token(OP, text[i : i + 2], i + 1))
            i += 2
        elif char in _ONE_CHAR_OPS:
            tokens.append(Token(OP, char, i + 1))
            i += 1
        else:
            raise CesqlParseError(f"unexpected character {char!r}", i + 1)
    tokens.append(Token(EOF, None, n + 1))
    return tokens


def _word_token(word: str, column: int) -> Token:
    if word.isdigit():  # ASCII only: the pattern admits nothing else
        digits = word.lstrip("0") or "0"
        if len(digits) > _MAX_INT_DIGITS:
            raise CesqlParseError("integer literal out of the 32-bit range", column)
        return Token(INT, int(digits), column)
    upper = word.upper()
    if upper in KEYWORDS:
        return Token(KW, upper, column)
    return Token(WORD, word, column)


def _read_string(text: str, start: int) -> tuple[str, int]:
    """Read the literal opening at ``start``; return its value and the index after it."""
    quote = text[start]
    parts: list[str] = []
    i, n = start + 1, len(text)
    while i < n:
        char = text[i]
        if char == "\\" and i + 1 < n:
            pair = text[i : i + 2]
            parts.append(quote if pair[1] == quote else pair)
            i += 2
        elif char == quote:
            return "".join(parts), i + 1
        else:
            parts.append(char)
            i += 1
    raise CesqlParseError("unterminated string literal", start + 1)
