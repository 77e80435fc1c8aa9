"""Tokenizer and precedence parser for the native jq subset.

The token rules mirror jq 1.8's ``lexer.l`` (longest match, keywords before identifiers,
``.name`` fields, ``..``, ``?//``, strings with ``\\(...)`` interpolation, ``#`` comments with
backslash continuation) and the grammar mirrors ``parser.y``::

    Query := Expr 'as' $var '|' Query | Query '|' Query | Query ',' Query | Expr
    Expr  := Expr '//' Expr                   (right)
           | Expr ('='|'|='|'+='|...) Expr     (nonassoc)
           | Expr 'or' Expr | Expr 'and' Expr  (left)
           | Expr ('=='|'!='|'<'|...) Expr     (nonassoc)
           | Expr ('+'|'-') Expr | Expr ('*'|'/'|'%') Expr
           | Term
    Term  := '.' | '..' | .name | ."str" | literal | string | $var | (Query) | [Query] | {...}
           | '-' Term | reduce/foreach/if/try ... | name | name(args)
           | Term .name | Term [Query] | Term [] | Term [a:b] | Term ? ...

The parser only ever sees programs jq.py already compiled, so it does not report syntax
errors: anything it does not understand (or that is outside the native subset) raises
:class:`Unsupported` and the program runs on jq.py.

AST nodes are tuples ``(tag, ...)``.
"""

from __future__ import annotations

import json
from typing import Any

from meshline.transforms.jqc.errors import Fallback, Unsupported
from meshline.transforms.jqc.numbers import literal_number

__all__ = ["parse"]

Node = tuple[Any, ...]

KEYWORDS = frozenset(
    [
        "as",
        "def",
        "if",
        "then",
        "elif",
        "else",
        "end",
        "and",
        "or",
        "reduce",
        "foreach",
        "try",
        "catch",
        "label",
        "break",
        "import",
        "include",
        "module",
    ]
)
_OPS3 = ("?//", "//=")
_OPS2 = ("!=", "==", "//", "|=", "+=", "-=", "*=", "/=", "%=", "<=", ">=", "..")
_OPS1 = frozenset(".?=;,:|+-*/%$<>[]{}()")
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789")
_DIGITS = frozenset("0123456789")
_WS = frozenset(" \r\n\t")

# token kinds
T_OP = "op"
T_IDENT = "ident"
T_KW = "kw"
T_FIELD = "field"
T_VAR = "var"
T_NUM = "num"
T_STR = "str"  # value: list of parts, each a str or a list of tokens (interpolation)
T_EOF = "eof"

Token = tuple[str, Any]


class _Lexer:
    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0

    def _ident_end(self, i: int) -> int:
        s = self.s
        n = len(s)
        while i < n and s[i] in _IDENT_CHARS:
            i += 1
        if s.startswith("::", i):
            raise Unsupported("module paths")
        return i

    def _skip_comment(self) -> None:
        s = self.s
        n = len(s)
        i = self.i + 1
        while i < n:
            c = s[i]
            if (c == "\\" and i + 1 < n and s[i + 1] == "\\") or (c == "\\" and s.startswith("\n", i + 1)):
                i += 2
            elif c == "\\" and s.startswith("\r\n", i + 1):
                i += 3
            elif c == "\n":
                i += 1
                break
            elif c == "\r" and s.startswith("\n", i + 1):
                i += 2
                break
            else:
                i += 1
        self.i = i

    def tokens(self, stop_at_close: bool = False) -> list[Token]:
        """Tokens up to the end (or, inside ``\\(...)``, up to the matching ``)``)."""
        s = self.s
        n = len(s)
        out: list[Token] = []
        depth = 0
        while True:
            while self.i < n and s[self.i] in _WS:
                self.i += 1
            if self.i >= n:
                if stop_at_close:
                    raise Unsupported("unterminated interpolation")
                out.append((T_EOF, None))
                return out
            i = self.i
            c = s[i]
            if c == "#":
                self._skip_comment()
                continue
            if c == '"':
                self.i = i + 1
                out.append((T_STR, self._string()))
                continue
            if c in _DIGITS or (c == "." and i + 1 < n and s[i + 1] in _DIGITS):
                j = i
                if c == ".":
                    j += 1
                    while j < n and s[j] in _DIGITS:
                        j += 1
                else:
                    while j < n and s[j] in _DIGITS:
                        j += 1
                    if j < n and s[j] == ".":
                        j += 1
                        while j < n and s[j] in _DIGITS:
                            j += 1
                if j < n and s[j] in "eE":
                    k = j + 1
                    if k < n and s[k] in "+-":
                        k += 1
                    if k < n and s[k] in _DIGITS:
                        while k < n and s[k] in _DIGITS:
                            k += 1
                        j = k
                out.append((T_NUM, s[i:j]))
                self.i = j
                continue
            if c == "." and i + 1 < n and s[i + 1] in _IDENT_START:
                j = self._ident_end(i + 1)
                out.append((T_FIELD, s[i + 1 : j]))
                self.i = j
                continue
            if c == "$":
                if s.startswith("$__loc__", i) and not (i + 8 < n and s[i + 8] in _IDENT_CHARS):
                    raise Unsupported("$__loc__")
                if i + 1 < n and s[i + 1] in _IDENT_START:
                    j = self._ident_end(i + 1)
                    out.append((T_VAR, s[i + 1 : j]))
                    self.i = j
                    continue
                raise Unsupported("$")
            if c in _IDENT_START:
                j = self._ident_end(i)
                word = s[i:j]
                out.append((T_KW if word in KEYWORDS else T_IDENT, word))
                self.i = j
                continue
            if c == "@":
                raise Unsupported("formats")
            op = None
            for cand in _OPS3:
                if s.startswith(cand, i):
                    op = cand
                    break
            if op is None:
                for cand in _OPS2:
                    if s.startswith(cand, i):
                        op = cand
                        break
            if op is None and c in _OPS1:
                op = c
            if op is None:
                raise Unsupported(f"character {c!r}")
            self.i = i + len(op)
            if stop_at_close:
                if op in ("(", "[", "{"):
                    depth += 1
                elif op in (")", "]", "}"):
                    if depth == 0:
                        if op != ")":
                            raise Unsupported("bracket mismatch")
                        out.append((T_EOF, None))
                        return out
                    depth -= 1
            out.append((T_OP, op))

    def _string(self) -> list[Any]:
        s = self.s
        n = len(s)
        parts: list[Any] = []
        buf: list[str] = []
        i = self.i
        while True:
            if i >= n:
                raise Unsupported("unterminated string")
            c = s[i]
            if c == '"':
                self.i = i + 1
                break
            if c == "\\":
                if s.startswith("\\(", i):
                    if buf:
                        parts.append("".join(buf))
                        buf = []
                    self.i = i + 2
                    parts.append(self.tokens(stop_at_close=True))
                    i = self.i
                    continue
                # a run of escapes, decoded like jq does: by its JSON parser
                j = i
                while j < n and s[j] == "\\" and not s.startswith("\\(", j):
                    if j + 1 < n and s[j + 1] == "u":
                        k = j + 2
                        while k < n and k < j + 6 and s[k].isascii() and s[k].isalnum():
                            k += 1
                        j = k
                    else:
                        j += 2
                try:
                    buf.append(json.loads('"' + s[i:j] + '"'))
                except ValueError:
                    raise Unsupported("string escape") from None
                i = j
                continue
            buf.append(c)
            i += 1
        if buf:
            parts.append("".join(buf))
        return parts


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.toks = tokens
        self.pos = 0

    # -- token helpers
    def peek(self, k: int = 0) -> Token:
        return self.toks[min(self.pos + k, len(self.toks) - 1)]

    def at(self, kind: str, value: Any = None) -> bool:
        t = self.toks[self.pos]
        return t[0] == kind and (value is None or t[1] == value)

    def at_op(self, value: str) -> bool:
        t = self.toks[self.pos]
        return t[0] == T_OP and t[1] == value

    def at_kw(self, value: str) -> bool:
        t = self.toks[self.pos]
        return t[0] == T_KW and t[1] == value

    def next(self) -> Token:
        t = self.toks[self.pos]
        self.pos += 1
        return t

    def expect_op(self, value: str) -> None:
        if not self.at_op(value):
            raise Unsupported(f"expected {value!r}")
        self.pos += 1

    def expect_kw(self, value: str) -> None:
        if not self.at_kw(value):
            raise Unsupported(f"expected {value!r}")
        self.pos += 1

    # -- grammar
    def parse_program(self) -> Node:
        node = self.parse_query()
        if not self.at(T_EOF):
            raise Unsupported("trailing tokens")
        return node

    def parse_query(self) -> Node:
        """Query: pipes (right assoc) of comma lists."""
        if self.at_kw("def") or self.at_kw("label") or self.at_kw("import") or self.at_kw("include"):
            raise Unsupported("def/label/modules")
        if self.at_kw("module"):
            raise Unsupported("module")
        left = self.parse_comma()
        if left[0] == "bind":
            return left
        if self.at_op("|"):
            self.next()
            right = self.parse_query()
            return ("pipe", left, right)
        return left

    def parse_comma(self) -> Node:
        left = self.parse_bound_expr()
        while left[0] != "bind" and self.at_op(","):
            self.next()
            right = self.parse_bound_expr()
            left = ("comma", left, right)
        return left

    def parse_bound_expr(self) -> Node:
        expr = self.parse_expr()
        if self.at_kw("as"):
            self.next()
            name = self.parse_pattern()
            if self.at_op("?//"):
                raise Unsupported("?//")
            self.expect_op("|")
            body = self.parse_query()
            return ("bind", expr, name, body)
        return expr

    def parse_pattern(self) -> str:
        if not self.at(T_VAR):
            raise Unsupported("destructuring")
        name = self.next()[1]
        if name == "__loc__":
            raise Unsupported("$__loc__")
        return name

    def parse_expr(self) -> Node:
        return self.parse_alt()

    def parse_alt(self) -> Node:
        left = self.parse_assign()
        if self.at_op("//"):
            self.next()
            right = self.parse_alt()
            return ("alt", left, right)
        return left

    _ASSIGN = frozenset(["=", "|=", "+=", "-=", "*=", "/=", "%=", "//="])

    def parse_assign(self) -> Node:
        left = self.parse_or()
        t = self.peek()
        if t[0] == T_OP and t[1] in self._ASSIGN:
            self.next()
            right = self.parse_or()
            return ("assign", t[1], left, right)
        return left

    def parse_or(self) -> Node:
        left = self.parse_and()
        while self.at_kw("or"):
            self.next()
            left = ("or", left, self.parse_and())
        return left

    def parse_and(self) -> Node:
        left = self.parse_cmp()
        while self.at_kw("and"):
            self.next()
            left = ("and", left, self.parse_cmp())
        return left

    _CMP = frozenset(["==", "!=", "<", "<=", ">", ">="])

    def parse_cmp(self) -> Node:
        left = self.parse_additive()
        t = self.peek()
        if t[0] == T_OP and t[1] in self._CMP:
            self.next()
            return ("binop", t[1], left, self.parse_additive())
        return left

    def parse_additive(self) -> Node:
        left = self.parse_multiplicative()
        while True:
            t = self.peek()
            if t[0] == T_OP and t[1] in ("+", "-"):
                self.next()
                left = ("binop", t[1], left, self.parse_multiplicative())
            else:
                return left

    def parse_multiplicative(self) -> Node:
        left = self.parse_term()
        while True:
            t = self.peek()
            if t[0] == T_OP and t[1] in ("*", "/", "%"):
                self.next()
                left = ("binop", t[1], left, self.parse_term())
            else:
                return left

    def parse_term(self) -> Node:
        return self.parse_postfix(self.parse_primary())

    def parse_primary(self) -> Node:
        t = self.next()
        kind, val = t
        if kind == T_OP:
            if val == ".":
                if self.at(T_STR):
                    key = self.parse_string(self.next()[1])
                    return self._maybe_opt(("index", ("identity",), key))
                return ("identity",)
            if val == "..":
                return ("recurse",)
            if val == "-":
                term = self.parse_term()
                inner = term
                while inner[0] == "paren":
                    inner = inner[1]
                if inner[0] == "literal" and type(inner[1]) in (int, float):
                    # negating a literal gives a literal (decNumberMinus: -0 is 0)
                    return ("literal", -inner[1] if inner[1] else inner[1])
                return ("neg", term)
            if val == "(":
                q = self.parse_query()
                self.expect_op(")")
                return ("paren", q)
            if val == "[":
                if self.at_op("]"):
                    self.next()
                    return ("array", None)
                q = self.parse_query()
                self.expect_op("]")
                return ("array", q)
            if val == "{":
                return self.parse_object()
            raise Unsupported(f"unexpected {val!r}")
        if kind == T_FIELD:
            return self._maybe_opt(("index", ("identity",), ("literal", val)))
        if kind == T_NUM:
            try:
                return ("literal", literal_number(val))
            except Fallback:
                raise Unsupported("number literal") from None
        if kind == T_STR:
            return self.parse_string(val)
        if kind == T_VAR:
            return ("var", val)
        if kind == T_KW:
            if val == "if":
                return self.parse_if()
            if val == "reduce":
                src = self.parse_expr()
                self.expect_kw("as")
                name = self.parse_pattern()
                self.expect_op("(")
                init = self.parse_query()
                self.expect_op(";")
                update = self.parse_query()
                self.expect_op(")")
                return ("reduce", src, name, init, update)
            if val == "foreach":
                src = self.parse_expr()
                self.expect_kw("as")
                name = self.parse_pattern()
                self.expect_op("(")
                init = self.parse_query()
                self.expect_op(";")
                update = self.parse_query()
                extract = None
                if self.at_op(";"):
                    self.next()
                    extract = self.parse_query()
                self.expect_op(")")
                return ("foreach", src, name, init, update, extract)
            if val == "try":
                body = self.parse_term()
                if self.at_kw("catch"):
                    raise Unsupported("try/catch")
                return ("try", body)
            raise Unsupported(f"keyword {val}")
        if kind == T_IDENT:
            if val == "true":
                return ("literal", True)
            if val == "false":
                return ("literal", False)
            if val == "null":
                return ("literal", None)
            args: list[Node] = []
            if self.at_op("("):
                self.next()
                args.append(self.parse_query())
                while self.at_op(";"):
                    self.next()
                    args.append(self.parse_query())
                self.expect_op(")")
            return ("call", val, tuple(args))
        raise Unsupported(f"unexpected token {t!r}")

    def _maybe_opt(self, node: Node) -> Node:
        if self.at_op("?"):
            self.next()
            return (*node, True)
        return (*node, False)

    def parse_postfix(self, node: Node) -> Node:
        while True:
            t = self.peek()
            kind, val = t
            if kind == T_FIELD:
                self.next()
                node = self._maybe_opt(("index", node, ("literal", val)))
            elif kind == T_OP and val == "." and self.peek(1)[0] == T_STR:
                self.next()
                key = self.parse_string(self.next()[1])
                node = self._maybe_opt(("index", node, key))
            elif kind == T_OP and val == "." and self.peek(1) == (T_OP, "["):
                self.next()
                node = self._bracket(node)
            elif kind == T_OP and val == "[":
                node = self._bracket(node)
            elif kind == T_OP and val == "?":
                self.next()
                node = ("try", node)
            else:
                return node

    def _bracket(self, node: Node) -> Node:
        self.expect_op("[")
        if self.at_op("]"):
            self.next()
            return self._maybe_opt(("each", node))
        if self.at_op(":"):
            self.next()
            hi = self.parse_query()
            self.expect_op("]")
            return self._maybe_opt(("slice", node, None, hi))
        q = self.parse_query()
        if self.at_op(":"):
            self.next()
            if self.at_op("]"):
                self.next()
                return self._maybe_opt(("slice", node, q, None))
            hi = self.parse_query()
            self.expect_op("]")
            return self._maybe_opt(("slice", node, q, hi))
        self.expect_op("]")
        return self._maybe_opt(("index", node, q))

    def parse_if(self) -> Node:
        cond = self.parse_query()
        self.expect_kw("then")
        then = self.parse_query()
        if self.at_kw("elif"):
            self.next()
            return ("if", cond, then, self.parse_if())
        if self.at_kw("else"):
            self.next()
            other = self.parse_query()
            self.expect_kw("end")
            return ("if", cond, then, other)
        self.expect_kw("end")
        return ("if", cond, then, None)

    def parse_string(self, parts: list[Any]) -> Node:
        node: Node = ("literal", "")
        for part in parts:
            if isinstance(part, str):
                piece: Node = ("literal", part)
            else:
                sub = _Parser(part)
                q = sub.parse_query()
                if not sub.at(T_EOF):
                    raise Unsupported("interpolation")
                piece = ("tostring", q)
            if node[0] == "literal" and piece[0] == "literal":
                node = ("literal", node[1] + piece[1])
            else:
                node = ("binop", "+", node, piece)
        return node

    def parse_object(self) -> Node:
        pairs: list[tuple[Node, Node]] = []
        if self.at_op("}"):
            self.next()
            return ("object", tuple(pairs))
        while True:
            kind, val = self.next()
            if kind in (T_IDENT, T_KW):
                key: Node = ("literal", val)
                if self.at_op(":"):
                    self.next()
                    value = self.parse_dict_expr()
                else:
                    value = ("index", ("identity",), key, False)
            elif kind == T_VAR:
                if self.at_op(":"):
                    self.next()
                    key = ("var", val)
                    value = self.parse_dict_expr()
                else:
                    key = ("literal", val)
                    value = ("var", val)
            elif kind == T_STR:
                key = self.parse_string(val)
                if self.at_op(":"):
                    self.next()
                    value = self.parse_dict_expr()
                else:
                    value = ("index", ("identity",), key, False)
            elif kind == T_OP and val == "(":
                key = self.parse_query()
                self.expect_op(")")
                self.expect_op(":")
                value = self.parse_dict_expr()
            else:
                raise Unsupported("object key")
            pairs.append((key, value))
            if self.at_op(","):
                self.next()
                if self.at_op("}"):
                    self.next()
                    return ("object", tuple(pairs))
                continue
            self.expect_op("}")
            return ("object", tuple(pairs))

    def parse_dict_expr(self) -> Node:
        left = self.parse_expr()
        if self.at_op("|"):
            self.next()
            return ("pipe", left, self.parse_dict_expr())
        return left


def parse(text: str) -> Node:
    """The AST of ``text``; raises :class:`Unsupported` outside the native subset."""
    tokens = _Lexer(text).tokens()
    return _Parser(tokens).parse_program()
