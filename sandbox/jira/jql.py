"""JQL's syntax: a real tokenizer and recursive-descent parser with Jira's syntax error messages.

Grammar: ``[condition] [ORDER BY field [ASC|DESC], ...]`` where a condition combines clauses with OR, AND, NOT and
parentheses (AND binds tighter than OR), and a clause is ``field op value``, ``field [NOT] IN (values)`` or
``field IS [NOT] EMPTY``; values are words, quoted strings or functions such as ``currentUser()``. A query that
does not parse is a :class:`JqlError`, never a query that matches everything. :mod:`.jqleval` gives it meaning.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_TOKEN = re.compile(
    r"""\s*(?:(?P<string>"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|(?P<op>!=|>=|<=|!~|[=<>~(),])|(?P<word>[^\s=!<>~(),"']+))"""
)
_KEYWORDS = {"AND", "OR", "NOT", "IN", "IS", "EMPTY", "NULL", "ORDER", "BY", "ASC", "DESC"}
_OPERATORS = "'=', '!=', '<', '>', '<=', '>=', '~', '!~', 'IN', 'NOT IN', 'IS' and 'IS NOT'"


class JqlError(Exception):
    """A query Jira would reject; ``messages`` go into the 400's ``errorMessages``."""

    def __init__(self, messages: list[str]) -> None:
        super().__init__("; ".join(messages))
        self.messages = messages


@dataclass(frozen=True)
class Token:
    """A lexical token with its 1-based character position."""

    kind: str
    text: str
    position: int


@dataclass(frozen=True)
class Value:
    """An operand: a string, a bare word or number, or a function call such as ``currentUser()``."""

    text: str
    quoted: bool = False
    function: bool = False


@dataclass(frozen=True)
class Clause:
    """``field operator operand(s)``; IS/IS NOT EMPTY has no values."""

    field: str
    operator: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class Bool:
    """``AND``/``OR`` of parts, or ``NOT`` of one."""

    kind: str
    parts: tuple[Node, ...]


Node = Clause | Bool


@dataclass
class Query:
    """A parsed query: an optional condition and the ORDER BY list of (field, ascending)."""

    where: Node | None
    order: list[tuple[str, bool]] = field(default_factory=list)


def _tokens(jql: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(jql):
        if jql[position:].strip() == "":
            break
        match = _TOKEN.match(jql, position)
        if match is None or match.end() == position:
            start = len(jql) - len(jql[position:].lstrip())
            quote = jql[start:]
            raise JqlError(
                [
                    f"Error in the JQL Query: The quoted string '{quote[1:]}' has not been completed. "
                    f"(line 1, character {start + 1})"
                ]
            )
        kind = match.lastgroup or "word"
        text = match.group(kind)
        tokens.append(Token(kind, text, match.start(kind) + 1))
        position = match.end()
    return tokens


class _Parser:
    def __init__(self, jql: str) -> None:
        self.tokens = _tokens(jql)
        self.index = 0

    def peek(self) -> Token | None:
        return self.tokens[self.index] if self.index < len(self.tokens) else None

    def op_text(self) -> str | None:
        token = self.peek()
        return token.text if token is not None and token.kind == "op" else None

    def keyword(self, *words: str) -> bool:
        token = self.peek()
        return token is not None and token.kind == "word" and token.text.upper() in words

    def take(self) -> Token:
        token = self.peek()
        if token is None:
            raise JqlError(["Error in the JQL Query: Expecting more input at the end of the query."])
        self.index += 1
        return token

    def fail(self, expecting: str) -> JqlError:
        token = self.peek()
        if token is None:
            return JqlError([f"Error in the JQL Query: Expecting {expecting} but reached the end of the query."])
        where = f"(line 1, character {token.position})"
        return JqlError([f"Error in the JQL Query: Expecting {expecting} but got '{token.text}'. {where}"])

    def query(self) -> Query:
        where: Node | None = None
        if self.peek() is not None and not self.keyword("ORDER"):
            where = self.disjunction()
        order: list[tuple[str, bool]] = []
        if self.keyword("ORDER"):
            self.take()
            if not self.keyword("BY"):
                raise self.fail("'by'")
            self.take()
            while True:
                token = self.take()
                if token.kind == "op":
                    raise JqlError(
                        [
                            f"Error in the JQL Query: Expecting a field name but got '{token.text}'. "
                            f"(line 1, character {token.position})"
                        ]
                    )
                ascending = True
                if self.keyword("ASC", "DESC"):
                    ascending = self.take().text.upper() == "ASC"
                order.append((_unquote(token), ascending))
                if self.op_text() == ",":
                    self.take()
                    continue
                break
        if self.peek() is not None:
            raise self.fail("either 'OR' or 'AND'")
        return Query(where, order)

    def disjunction(self) -> Node:
        parts = [self.conjunction()]
        while self.keyword("OR"):
            self.take()
            parts.append(self.conjunction())
        return parts[0] if len(parts) == 1 else Bool("OR", tuple(parts))

    def conjunction(self) -> Node:
        parts = [self.negation()]
        while self.keyword("AND"):
            self.take()
            parts.append(self.negation())
        return parts[0] if len(parts) == 1 else Bool("AND", tuple(parts))

    def negation(self) -> Node:
        if self.keyword("NOT"):
            self.take()
            return Bool("NOT", (self.negation(),))
        token = self.peek()
        if token is not None and token.kind == "op" and token.text == "(":
            self.take()
            node = self.disjunction()
            if self.op_text() != ")":
                raise self.fail("')'")
            self.take()
            return node
        return self.clause()

    def clause(self) -> Clause:
        token = self.take()
        if token.kind == "op" or token.text.upper() in _KEYWORDS:
            raise JqlError(
                [
                    f"Error in the JQL Query: Expecting a field name but got '{token.text}'. "
                    f"(line 1, character {token.position})"
                ]
            )
        name = _unquote(token)
        operator = self.operator()
        if operator in ("IS", "IS NOT"):
            if not self.keyword("EMPTY", "NULL"):
                raise self.fail("'EMPTY' or 'NULL'")
            self.take()
            return Clause(name, operator, ())
        if operator in ("IN", "NOT IN"):
            if self.op_text() != "(":
                raise self.fail("'('")
            self.take()
            values = [self.operand()]
            while self.op_text() == ",":
                self.take()
                values.append(self.operand())
            if self.op_text() != ")":
                raise self.fail("')'")
            self.take()
            return Clause(name, operator, tuple(values))
        return Clause(name, operator, (self.operand(),))

    def operator(self) -> str:
        token = self.peek()
        if token is not None and token.kind == "op" and token.text not in "(),":
            self.take()
            return token.text
        if self.keyword("IN"):
            self.take()
            return "IN"
        if self.keyword("IS"):
            self.take()
            if self.keyword("NOT"):
                self.take()
                return "IS NOT"
            return "IS"
        if self.keyword("NOT"):
            self.take()
            if self.keyword("IN"):
                self.take()
                return "NOT IN"
            self.index -= 1
        token = self.peek()
        if token is None:
            raise JqlError(
                [
                    f"Error in the JQL Query: Expecting operator before the end of the query. "
                    f"The valid operators are {_OPERATORS}."
                ]
            )
        raise JqlError(
            [
                f"Error in the JQL Query: Expecting operator but got '{token.text}'. The valid operators "
                f"are {_OPERATORS}. (line 1, character {token.position})"
            ]
        )

    def operand(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return Value(_unquote(token), quoted=True)
        if token.kind == "op":
            raise JqlError(
                [
                    f"Error in the JQL Query: Expecting either a value, list or function but got "
                    f"'{token.text}'. (line 1, character {token.position})"
                ]
            )
        if self.op_text() == "(":
            self.take()
            if self.op_text() != ")":
                raise self.fail("')'")
            self.take()
            return Value(token.text, function=True)
        return Value(token.text)


def _unquote(token: Token) -> str:
    if token.kind != "string":
        return token.text
    return re.sub(r"\\(.)", r"\1", token.text[1:-1])


def parse(jql: str) -> Query:
    """Parse a JQL query, or raise JqlError with Jira's message."""
    return _Parser(jql).query()
