"""CESQL parser: tokens -> AST, by recursive descent with precedence climbing.

Precedence, highest first (spec 3.6): function calls; ``NOT`` and unary ``-``;
``LIKE`` / ``IN`` (postfix, optionally negated) and ``EXISTS``; ``* / %``;
``+ -``; comparisons; ``AND OR XOR`` — one level, left to right, exactly as the
spec lists them. Runs of the same ``AND``/``OR`` become one n-ary node, so a long
flat disjunction does not make a deep tree.

A sign directly before an integer literal is folded into it (the grammar's
``integer-literal ::= ('+'|'-')? digit+``), so ``-2147483648`` is a valid
literal; the 32-bit range is checked after folding. Nesting is capped at
``MAX_DEPTH`` levels so that neither parsing, compiling nor evaluating can
exhaust Python's stack.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from meshline.transforms.cesql._errors import CesqlParseError
from meshline.transforms.cesql._lexer import EOF, INT, KW, OP, STR, WORD, Token, tokenize
from meshline.transforms.cesql._values import INT_MAX, INT_MIN

__all__ = [
    "MAX_DEPTH",
    "Attribute",
    "Binary",
    "Call",
    "Exists",
    "In",
    "Like",
    "Literal",
    "Logical",
    "Node",
    "Unary",
    "parse",
]

MAX_DEPTH = 64

_IDENTIFIER = re.compile(r"[A-Za-z0-9]+")
_FUNCTION_NAME = re.compile(r"[A-Za-z][A-Za-z_]*")
_PRECEDENCE = {
    "AND": 1, "OR": 1, "XOR": 1,
    "=": 2, "!=": 2, "<>": 2, "<": 2, "<=": 2, ">": 2, ">=": 2,
    "+": 3, "-": 3,
    "*": 4, "/": 4, "%": 4,
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class Literal:
    value: bool | int | str
    column: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Attribute:
    name: str  # lower case: identifiers are case-insensitive, attribute names lower case
    column: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Exists:
    name: str
    column: int
    depth: int = 1


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "NOT" or "-"
    operand: Node
    column: int
    depth: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str  # arithmetic, comparison or "XOR"
    left: Node
    right: Node
    column: int
    depth: int


@dataclass(frozen=True, slots=True)
class Logical:
    op: str  # "AND" or "OR"
    operands: tuple[Node, ...]
    column: int
    depth: int


@dataclass(frozen=True, slots=True)
class Like:
    operand: Node
    pattern: str
    negated: bool
    column: int
    depth: int


@dataclass(frozen=True, slots=True)
class In:
    operand: Node
    items: tuple[Node, ...]
    negated: bool
    column: int
    depth: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str  # upper case: function names are case-insensitive
    args: tuple[Node, ...]
    column: int
    depth: int


Node = Literal | Attribute | Exists | Unary | Binary | Logical | Like | In | Call


def parse(text: str) -> Node:
    """Parse a CESQL expression; raise :class:`CesqlParseError` (with its column) when it is invalid."""
    return _Parser(tokenize(text)).parse_all()


def _depth(column: int, *children: Node) -> int:
    depth = 1 + max(child.depth for child in children)
    if depth > MAX_DEPTH:
        raise CesqlParseError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", column)
    return depth


def _is_kw(token: Token, *words: str) -> bool:
    return token.kind == KW and token.value in words


def _is_op(token: Token, symbol: str) -> bool:
    return token.kind == OP and token.value == symbol


class _Parser:
    def __init__(self, tokens: list[Token]):
        self._tokens = tokens
        self._index = 0
        self._level = 0

    # -- token access -------------------------------------------------------------------

    def _peek(self, ahead: int = 0) -> Token:
        return self._tokens[min(self._index + ahead, len(self._tokens) - 1)]

    def _next(self) -> Token:
        token = self._peek()
        self._index += 1
        return token

    def _expect_op(self, symbol: str, what: str) -> Token:
        token = self._next()
        if not _is_op(token, symbol):
            raise _unexpected(token, what)
        return token

    def _enter(self, column: int) -> None:
        self._level += 1
        if self._level > MAX_DEPTH:
            raise CesqlParseError(f"expression nested too deeply (more than {MAX_DEPTH} levels)", column)

    # -- grammar ------------------------------------------------------------------------

    def parse_all(self) -> Node:
        if self._peek().kind == EOF:
            raise CesqlParseError("the expression is empty", 1)
        node = self._expression(0)
        token = self._peek()
        if token.kind != EOF:
            raise _unexpected(token, "an operator or the end of the expression")
        return node

    def _expression(self, min_precedence: int) -> Node:
        self._enter(self._peek().column)
        left = self._postfix()
        while True:
            token = self._peek()
            precedence = _PRECEDENCE.get(str(token.value)) if token.kind in (OP, KW) else None
            if precedence is None or precedence < min_precedence:
                break
            self._next()
            left = _binary(token, left, self._expression(precedence + 1))
        self._level -= 1
        return left

    def _postfix(self) -> Node:
        operand = self._unary()
        while True:
            token, negated = self._peek(), False
            if _is_kw(token, "NOT") and _is_kw(self._peek(1), "LIKE", "IN"):
                self._next()
                token, negated = self._peek(), True
            if _is_kw(token, "LIKE"):
                self._next()
                operand = self._like(operand, negated, token.column)
            elif _is_kw(token, "IN"):
                self._next()
                items = self._parenthesized_list("a parenthesized set of values after IN", allow_empty=False)
                operand = In(operand, items, negated, token.column, _depth(token.column, operand, *items))
            else:
                return operand

    def _like(self, operand: Node, negated: bool, column: int) -> Node:
        pattern = self._next()
        if pattern.kind != STR:
            raise _unexpected(pattern, "a string literal pattern after LIKE")
        return Like(operand, str(pattern.value), negated, column, _depth(column, operand))

    def _unary(self) -> Node:
        token = self._peek()
        if _is_kw(token, "NOT") or _is_op(token, "-") or _is_op(token, "+"):
            following = self._peek(1)
            if token.kind == OP and following.kind == INT:
                self._index += 2
                value = -following.value if token.value == "-" else following.value  # type: ignore[operator]
                return _int_literal(value, token.column)  # type: ignore[arg-type]
            if _is_op(token, "+"):
                raise _unexpected(following, "an integer after '+'")
            self._next()
            self._enter(token.column)
            operand = self._unary()
            self._level -= 1
            return Unary(str(token.value), operand, token.column, _depth(token.column, operand))
        return self._primary()

    def _primary(self) -> Node:
        token = self._next()
        if token.kind == INT:
            return _int_literal(token.value, token.column)  # type: ignore[arg-type]
        if token.kind == STR:
            return Literal(str(token.value), token.column)
        if _is_kw(token, "TRUE", "FALSE"):
            return Literal(token.value == "TRUE", token.column)
        if _is_kw(token, "EXISTS"):
            name = self._next()
            if name.kind != WORD:
                raise _unexpected(name, "an attribute name after EXISTS")
            return Exists(_attribute_name(name), token.column)
        if _is_op(token, "("):
            node = self._expression(0)
            self._expect_op(")", "')'")
            return node
        if token.kind == WORD:
            if _is_op(self._peek(), "("):
                return self._call(token)
            return Attribute(_attribute_name(token), token.column)
        raise _unexpected(token, "an expression")

    def _call(self, name: Token) -> Node:
        text = str(name.value)
        if not _FUNCTION_NAME.fullmatch(text):
            raise CesqlParseError(f"invalid function name {text!r} (letters and '_' only)", name.column)
        args = self._parenthesized_list("'('", allow_empty=True)
        depth = _depth(name.column, *args) if args else 1
        return Call(text.upper(), args, name.column, depth)

    def _parenthesized_list(self, what: str, *, allow_empty: bool) -> tuple[Node, ...]:
        """``( expr , expr … )``, as function arguments or the set of IN."""
        self._expect_op("(", what)
        if allow_empty and _is_op(self._peek(), ")"):
            self._next()
            return ()
        items = [self._expression(0)]
        while _is_op(self._peek(), ","):
            self._next()
            items.append(self._expression(0))
        self._expect_op(")", "',' or ')'")
        return tuple(items)


def _binary(token: Token, left: Node, right: Node) -> Node:
    op = str(token.value)
    if op in ("AND", "OR"):
        if isinstance(left, Logical) and left.op == op:
            depth = max(left.depth, _depth(token.column, right))
            return Logical(op, (*left.operands, right), left.column, depth)
        return Logical(op, (left, right), token.column, _depth(token.column, left, right))
    return Binary(op, left, right, token.column, _depth(token.column, left, right))


def _int_literal(value: int, column: int) -> Literal:
    if not INT_MIN <= value <= INT_MAX:
        raise CesqlParseError(f"integer literal {value} is out of the 32-bit range", column)
    return Literal(value, column)


def _attribute_name(token: Token) -> str:
    text = str(token.value)
    if not _IDENTIFIER.fullmatch(text):
        raise CesqlParseError(f"invalid attribute name {text!r} (letters and digits only)", token.column)
    return text.lower()


def _unexpected(token: Token, expected: str) -> CesqlParseError:
    return CesqlParseError(f"expected {expected}, found {token.describe()}", token.column)
