"""A hand-written parser for SCIM filters and PATCH paths (RFC 7644 §3.4.2.2, §3.5.2).

RFC 7644 §3.4.2.2, Figure 1 (with the grouping of Table 5)::

    FILTER    = attrExp / logExp / valuePath / *1"not" "(" FILTER ")"
    valuePath = attrPath "[" valFilter "]"
    valFilter = attrExp / logExp / *1"not" "(" valFilter ")"
    attrExp   = (attrPath SP "pr") / (attrPath SP compareOp SP compValue)
    logExp    = FILTER SP ("and" / "or") SP FILTER
    compValue = false / null / true / number / string
    attrPath  = [URI ":"] ATTRNAME *1subAttr
    compareOp = "eq" / "ne" / "co" / "sw" / "ew" / "gt" / "lt" / "ge" / "le"

"The operators [...] in order of precedence: not, and, or" (Table 4, "Precedence").
"Attribute names and attribute operators used in filters are case insensitive."

The parser is a single pass over a regex tokenizer with an explicit stack of open groups (no
Python recursion), so no input can exhaust the interpreter stack. The depth of the tree is
bounded by ``max_depth``, the nesting of brackets by ``HARD_MAX_DEPTH``, the text by
``max_length``. Chains of one operator (``a and b and c ...``, also when grouped:
``a or (b or c)``) are built as *balanced* trees so that a long ``or`` list (clients batch
``id eq "1" or id eq "2" ...``) stays shallow; ``and``/``or`` are associative, so the shape
never changes the meaning. Up to three operands, the tree is left-associative.
``not (not (x))`` is ``x``. So the tree is as shallow as the filter's meaning allows, and
its depth (what a backend's translation nests, e.g. SQL parentheses) is what is bounded.

Leniencies (each documented in docs/filters.md): any run of whitespace between tokens
(the ABNF says one SP), ``not(`` without a space, keywords ``true``/``false``/``null`` in
any case (ABNF literals are case-insensitive), raw control characters inside strings, and
``emails[type eq "work"].value eq "x"`` (Entra ID) read as
``emails[type eq "work" and value eq "x"]``. With ``tolerant=True`` (the engine's default,
off in strict mode), bare values such as ``userName sw O`` (Microsoft's SCIM validator).
"""

from __future__ import annotations

import json
import math
import re
from typing import Final, TypeAlias, cast

from .._errors import InvalidFilterError, InvalidPathError, ScimError
from ._ast import (
    COMPARE_OPS,
    And,
    AttrPath,
    Compare,
    CompareOp,
    Filter,
    Not,
    Or,
    PatchPath,
    Present,
    Value,
    ValuePath,
)

__all__ = ["HARD_MAX_DEPTH", "parse_filter", "parse_path"]

#: ``max_depth`` is clamped to this, so every recursive walk over a tree (rendering,
#: binding, compiling, a backend's visitor) stays far below Python's recursion limit.
HARD_MAX_DEPTH: Final = 200

# One token per match: a string (JSON, escapes unrolled for speed), a number-like run (checked
# by _NUMBER when used), a word (attribute path, keyword or bare value), a ".sub" right after "]",
# any other run up to a space, a bracket or a quote (reported when reached, or a bare value),
# or one bracket or quote. Words and runs end only at a space, a bracket or a quote, so a
# bare value (``example.com``, ``2015-10-10T14:38:21.8617979-07:00``) is one token. (A word
# is matched as its usual characters, then possessively any others: faster than one
# negated class, same tokens.)
_TOKEN: Final = re.compile(
    r"""\s*("[^"\\]*(?:\\.[^"\\]*)*"|-?[0-9][A-Za-z0-9_$.:+\-]*+[^\s()\[\]"]*+"""
    r"""|[A-Za-z$][A-Za-z0-9_$:.\-]*+[^\s()\[\]"]*+|(?<=\])\.[A-Za-z$][A-Za-z0-9_$\-]*"""
    r"""|[^\s()\[\]"]+|.)""",
    re.DOTALL,
)
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_WORD_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ$")
_NUMBER_START: Final = frozenset("-0123456789")
_PUNCT: Final = frozenset('"()[].')
# What a bare (unquoted) value cannot start with: a bracket, a double quote, or a single
# quote (``'x'`` is a mistake to report, not the three-character string).
_NOT_BARE: Final = frozenset("\"'()[]")

# RFC 7644 Figure 1: ATTRNAME = ALPHA *(nameChar); nameChar = "-" / "_" / DIGIT / ALPHA.
# "$ref" is accepted too: RFC 7643 itself names sub-attributes "$ref" (Group members).
_NAME: Final = re.compile(r"(?:[A-Za-z][A-Za-z0-9_-]*|\$ref)\Z", re.IGNORECASE)
_URN: Final = re.compile(r"urn:[A-Za-z0-9][A-Za-z0-9_$:.\-]*\Z", re.IGNORECASE)

# ``attrPath SP compareOp SP "string-without-escapes"`` or ``attrPath SP "pr"``: the shape of
# most filters, recognised by one regex (see parse_filter); anything else, and every error,
# goes through the general parser.
_SIMPLE: Final = re.compile(
    r"\s*([A-Za-z][A-Za-z0-9_:.\-]*)[ ]+(?:(eq|ne|co|sw|ew|gt|ge|lt|le)[ ]+\"([^\"\\]*)\"|pr)\Z",
    re.IGNORECASE,
)

# RFC 7643 §2.1: a String is "A sequence of zero or more Unicode characters encoded using
# UTF-8 as per [RFC2277] and [RFC3629]", and RFC 3629 §3: "The definition of UTF-8 prohibits
# encoding character numbers between U+D800 and U+DFFF". A lone surrogate (raw, or a JSON
# escape such as "\ud800") is no character: it could never match and no database stores it.
_SURROGATE: Final = re.compile(r"[\ud800-\udfff]")

_KEYWORD_VALUES: Final[dict[str, Value]] = {"true": True, "false": False, "null": None}
_OPS_PR: Final = frozenset((*COMPARE_OPS, "pr"))


class _Syntax(Exception):
    """Internal: a syntax error at token ``index``; rendered with its character position
    by the public functions (positions are only computed when there is an error)."""

    def __init__(self, before: str, index: int | None, after: str = "") -> None:
        super().__init__(before)
        self.before = before
        self.index = index
        self.after = after

    def render(self, text: str, what: str) -> str:
        where = ""
        if self.index is not None:
            where = f" at position {_position(text, self.index)}"
        return f"Invalid {what}: {self.before}{where}{self.after}."


def _position(text: str, index: int) -> int:
    for k, m in enumerate(_TOKEN.finditer(text)):
        if k == index:
            return m.start(1)
    return len(text)


def _shown(tok: str) -> str:
    return repr(tok) if tok else "the end"


def _error(tok: str, index: int, expected: str) -> _Syntax:
    """The error for an unexpected ``tok``: a lexical problem if it has one, else
    "expected ..., got tok"."""
    c = tok[:1]
    if c == '"' and len(tok) == 1:
        return _Syntax("unterminated string starting", index)
    if c in _NUMBER_START and c and not _NUMBER.match(tok):
        return _Syntax(f"{tok!r} is not a valid number", index)
    if c and c not in _WORD_START and c not in _NUMBER_START and (c not in _PUNCT or tok == "."):
        return _Syntax(f"unexpected character {c!r}", index)
    return _Syntax(f"expected {expected}", index, f", got {_shown(tok)}")


def _check_text(text: object, max_length: int, err: type[ScimError], what: str) -> str:
    if not isinstance(text, str):
        raise err(f"Invalid {what}: expected a string.")
    text = text.rstrip()
    if len(text) > max_length:
        raise err(f"Invalid {what}: longer than {max_length} characters.")
    if not text:
        raise err(f"Invalid {what}: it is empty.")
    m = None if text.isascii() else _SURROGATE.search(text)
    if m is not None:
        raise err(
            f"Invalid {what}: the lone surrogate {_escaped(m.group())} at position {m.start()} "
            "is not a Unicode character."
        )
    return text


def _escaped(char: str) -> str:
    return f"\\u{ord(char):04x}"


_PATHS: dict[str, AttrPath] = {}


def _attr_path(word: str, index: int) -> AttrPath:
    """``[URI ":"] ATTRNAME *1subAttr`` from one word token (memoised: words repeat)."""
    path = _PATHS.get(word)
    if path is not None:
        return path
    urn: str | None = None
    rest = word
    if ":" in word:
        urn, _, rest = word.rpartition(":")
        if not _URN.match(urn):
            raise _Syntax(f"{word!r}", index, " has a schema prefix that is not a URN")
    name, dot, sub = rest.partition(".")
    if not _NAME.match(name) or (dot and not _NAME.match(sub)):
        raise _Syntax(f"{word!r}", index, " is not a valid attribute path")
    path = AttrPath(urn, name, sub if dot else None)
    if len(_PATHS) >= 4096:
        _PATHS.clear()
    _PATHS[word] = path
    return path


def _value(tok: str, index: int, tolerant: bool) -> Value:
    """``compValue = false / null / true / number / string`` (JSON literals); with
    ``tolerant``, also a bare word, read as a string (see :func:`parse_filter`)."""
    c = tok[:1]
    if c == '"' and len(tok) > 1:
        if "\\" not in tok:
            return tok[1:-1]
        try:
            value = json.loads(tok, strict=False)
        except ValueError:
            raise _Syntax("bad escape in the string", index) from None
        assert isinstance(value, str)
        m = _SURROGATE.search(value)
        if m is not None:
            # An escaped pair ("\ud83d\ude00") is one character; a lone half is none.
            lone = _escaped(m.group())
            raise _Syntax(
                "the string", index, f" holds the lone surrogate {lone}, not a Unicode character"
            )
        return value
    if c in _NUMBER_START and c and _NUMBER.match(tok):
        try:
            if "." in tok or "e" in tok or "E" in tok:
                number = float(tok)
                if not math.isfinite(number):
                    raise ValueError(tok)
                return number
            return int(tok)
        except ValueError:
            raise _Syntax("number out of range", index) from None
    low = tok.lower()
    if low in _KEYWORD_VALUES:
        return _KEYWORD_VALUES[low]
    if tolerant and c and c not in _NOT_BARE:
        # Microsoft's SCIM validator sends ``userName sw O`` and
        # ``meta.created gt 2015-10-10T14:38:21.8617979-07:00``: a bare word (a run of
        # characters up to a space, a bracket or a quote) that is not a keyword or a number
        # is the string the client meant. bind() reads a dateTime string as a dateTime.
        return tok
    expected = "a value (a quoted string, a number, true, false or null)"
    if c.isalnum():
        # RFC 7644 Figure 1: compValue = false / null / true / number / string, where
        # string is a JSON string: quoted.
        raise _Syntax(f"expected {expected}", index, f", got {tok!r}, which is not quoted")
    raise _error(tok, index, expected)


def _attr_exp(
    path: AttrPath, toks: list[str], i: int, shown: str, tolerant: bool
) -> Compare | Present:
    """``attrPath SP "pr"`` or ``attrPath SP compareOp SP compValue``; ``toks[i]`` is
    the operator."""
    tok = toks[i]
    op = tok.lower()
    if op == "pr":
        return Present(path)
    if op in COMPARE_OPS:
        cop: CompareOp = op  # type: ignore[assignment]
        return Compare(path, cop, _value(toks[i + 1], i + 1, tolerant))
    raise _error(tok, i, f"an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after {shown!r}")


# An operand as the parser holds it: ``(node, depth, parts)``. ``parts`` is what lets a chain
# flatten through parentheses and ``not (not (x))`` fold: for an And node, the operands of
# its chain (a list of items); for an Or node, its conjunction terms (a list of lists of
# items); for a Not node, the item of its operand; None for a comparison or a value path.
_Parts: TypeAlias = "list[_Item] | list[list[_Item]] | _Item | None"
_Item: TypeAlias = "tuple[Filter, int, _Parts]"


class _Frame:
    """An open group: the root, "(", "not (" or "attr[" awaiting its close."""

    __slots__ = ("kind", "path", "pos", "terms")

    def __init__(self, kind: str, pos: int, path: AttrPath | None = None) -> None:
        self.kind = kind
        self.pos = pos
        self.path = path
        # A disjunction of conjunctions: each term is a list of items, none of them an And
        # (an And operand is spliced into the term, see _parse).
        self.terms: list[list[_Item]] = [[]]


def _balanced(items: list[_Item], cls: type[And] | type[Or], lo: int, hi: int) -> _Item:
    # Recursion depth is log2 of the operand count (the text length bounds the count).
    # Same shape as _ast.balanced: the left half takes the extra operand.
    if hi - lo == 1:
        return items[lo]
    mid = lo + (hi - lo + 1) // 2
    left, dl, _ = _balanced(items, cls, lo, mid)
    right, dr, _ = _balanced(items, cls, mid, hi)
    return cls(left, right), 1 + (dl if dl > dr else dr), None


def _conjunction(term: list[_Item]) -> _Item:
    if len(term) == 1:
        return term[0]
    node, depth, _ = _balanced(term, And, 0, len(term))
    return node, depth, term


def _close(frame: _Frame) -> _Item:
    """The item a group's terms make. "and" and "or" are associative, so an "or" group
    that is a whole term of this "or" is spliced into it: ``a or (b or c)`` is the chain
    ``a or b or c`` (an "and" group was already spliced into its term)."""
    terms = frame.terms
    if len(terms) == 1:
        term = terms[0]
        return term[0] if len(term) == 1 else _conjunction(term)
    for term in terms:
        if len(term) == 1 and type(term[0][0]) is Or:
            terms = _splice_ors(terms)
            break
    ands = [term[0] if len(term) == 1 else _conjunction(term) for term in terms]
    node, depth, _ = _balanced(ands, Or, 0, len(ands))
    return node, depth, terms


def _splice_ors(terms: list[list[_Item]]) -> list[list[_Item]]:
    flat: list[list[_Item]] = []
    for term in terms:
        if len(term) == 1 and type(term[0][0]) is Or:
            flat.extend(cast("list[list[_Item]]", term[0][2]))
        else:
            flat.append(term)
    return flat


def _negate(item: _Item) -> _Item:
    # RFC 7644 Table 4: "not: The filter is a match if the expression evaluates to false."
    # Every evaluator (compile_filter, the SQL leaves) is two-valued, so not (not (x)) is x.
    if type(item[0]) is Not:
        return cast("_Item", item[2])
    return Not(item[0]), item[1] + 1, item


def _too_deep(max_depth: int) -> _Syntax:
    return _Syntax(f"nested more than {max_depth} levels deep", None)


def _too_nested() -> _Syntax:
    return _Syntax(f"brackets nested more than {HARD_MAX_DEPTH} levels deep", None)


# One loop over the tokens with an explicit stack of open groups is what keeps any input
# from exhausting the interpreter's stack; split up, the one state machine would be spread
# over functions sharing all of its state. Hence its complexity.
def _parse(  # noqa: C901
    toks: list[str], start: int, max_depth: int, in_brackets: bool, tolerant: bool
) -> tuple[Filter, int]:
    """Parse a filter from ``toks[start:]`` (``toks`` ends with the sentinel ``""``);
    returns the tree and the index it stopped at.

    Stops at the end of input, or at a "]" that closes no value path of its own (which is
    how :func:`parse_path` finds the end of ``attr[filter]``). The tree is at most
    ``max_depth`` deep; brackets nest at most :data:`HARD_MAX_DEPTH` deep.
    """
    max_depth = min(max_depth, HARD_MAX_DEPTH)
    stack = [_Frame("root", 0)]
    frame = stack[0]
    i = start
    while True:
        # --- an operand is expected ---------------------------------------------------
        tok = toks[i]
        if tok == "(":
            frame = _Frame("(", i)
            stack.append(frame)
            if len(stack) > HARD_MAX_DEPTH:
                raise _too_nested()
            i += 1
            continue
        if tok[:1] not in _WORD_START or not tok:
            raise _error(tok, i, "an attribute path, '(' or 'not'")
        nxt = toks[i + 1]
        if nxt == "(" and tok.lower() == "not":
            # RFC 7644 Figure 1: *1"not" "(" FILTER ")".
            frame = _Frame("not", i)
            stack.append(frame)
            if len(stack) > HARD_MAX_DEPTH:
                raise _too_nested()
            i += 2
            continue
        path = _attr_path(tok, i)
        if nxt == "[":
            if in_brackets or any(f.kind == "[" for f in stack):
                raise _Syntax("value filters cannot be nested", i + 1)
            if path.sub is not None:
                raise _Syntax(
                    "a value filter applies to a multi-valued attribute, not to the "
                    f"sub-attribute {tok!r}",
                    i + 1,
                )
            frame = _Frame("[", i + 1, path)
            stack.append(frame)
            if len(stack) > HARD_MAX_DEPTH:
                raise _too_nested()
            i += 2
            continue
        leaf: Filter = _attr_exp(path, toks, i + 1, tok, tolerant)
        i += 2 if isinstance(leaf, Present) else 3
        item: _Item = (leaf, 1, None)

        # --- an operand was read: close groups, then expect "and" / "or" / the end ---
        while True:
            if type(item[0]) is And:
                # "and" is associative: (a and b) is spliced into the term it is part of.
                frame.terms[-1].extend(cast("list[_Item]", item[2]))
            else:
                frame.terms[-1].append(item)
            tok = toks[i]
            kind = frame.kind
            if tok == ")" and (kind == "(" or kind == "not"):
                item = _close(frame)
                if kind == "not":
                    item = _negate(item)
                stack.pop()
                frame = stack[-1]
                i += 1
                continue
            if tok == "]" and kind == "[":
                inner = _close(frame)
                assert frame.path is not None
                vpath = frame.path
                stack.pop()
                frame = stack[-1]
                i += 1
                dtok = toks[i]
                if dtok[:1] == "." and len(dtok) > 1 and toks[i + 1].lower() in _OPS_PR:
                    # Not in the ABNF, but sent by Microsoft Entra ID:
                    # emails[type eq "work"].value eq "x" means
                    # emails[type eq "work" and value eq "x"].
                    sub = _attr_path(dtok[1:], i)
                    extra = _attr_exp(sub, toks, i + 1, dtok, tolerant)
                    i += 2 if isinstance(extra, Present) else 3
                    term = list(cast("list[_Item]", inner[2])) if type(inner[0]) is And else [inner]
                    term.append((extra, 1, None))
                    inner = _conjunction(term)
                item = (ValuePath(vpath, inner[0]), inner[1] + 1, None)
                continue
            low = tok.lower()
            if low == "and":
                i += 1
                break
            if low == "or":
                frame.terms.append([])
                i += 1
                break
            if tok == "" or tok == "]":
                if kind == "root":
                    # The depth is checked once, on the whole tree: a group's depth can
                    # still shrink when it is spliced into a chain or a "not" folds.
                    item = _close(frame)
                    if item[1] > max_depth:
                        raise _too_deep(max_depth)
                    return item[0], i
                opener = {"(": "'('", "not": "'not ('", "[": "'['"}[kind]
                closer = "']'" if kind == "[" else "')'"
                raise _Syntax(opener, frame.pos, f" is not closed by {closer}")
            raise _error(tok, i, "'and', 'or' or a closing bracket")


def _tokenize(text: str) -> list[str]:
    toks: list[str] = _TOKEN.findall(text)
    toks.append("")
    return toks


def parse_filter(
    text: str, *, max_length: int = 4096, max_depth: int = 16, tolerant: bool = False
) -> Filter:
    """Parse a SCIM filter (RFC 7644 §3.4.2.2) into a :data:`Filter` tree.

    Names are kept as written (see :func:`~scim2_core.filter.bind` for canonical ones).
    Raises :class:`~scim2_core.InvalidFilterError` (400 ``invalidFilter``) naming the
    position and the problem; nothing else, for any input.

    The tree is normalised: chains of one operator are balanced whatever their grouping
    (``a or (b or c)`` is the chain ``a or b or c``) and ``not (not (x))`` is ``x``.
    ``max_depth`` bounds the depth of that tree (a comparison is 1 deep; clamped to
    :data:`HARD_MAX_DEPTH`); brackets may nest up to :data:`HARD_MAX_DEPTH` levels.

    ``tolerant`` accepts a bare (unquoted) value where the RFC requires ``compValue``, as
    Microsoft's SCIM validator sends them: ``userName sw O`` compares with the string
    ``"O"``. A bare ``true``/``false``/``null`` or number keeps its JSON meaning; any other
    run of characters up to a space, a bracket or a double quote is a string. Off, the RFC
    grammar is enforced.
    """
    text = _check_text(text, max_length, InvalidFilterError, "filter")
    # Fast path for the filter every IdP sends on every sync: ``userName eq "x"``.
    m = _SIMPLE.match(text)
    if m is not None:
        word, op, value = m.groups()
        try:
            path = _attr_path(word, 0)
        except _Syntax:
            pass  # the general parser reports it
        else:
            if value is None:
                return Present(path)
            cop: CompareOp = op.lower()  # type: ignore[assignment]
            return Compare(path, cop, value)
    toks = _tokenize(text)
    try:
        node, i = _parse(toks, 0, max_depth, False, tolerant)
        if toks[i]:
            raise _Syntax("unexpected ']'", i)
    except _Syntax as exc:
        raise InvalidFilterError(exc.render(text, "filter")) from None
    return node


def parse_path(
    text: str, *, max_length: int = 4096, max_depth: int = 16, tolerant: bool = False
) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2, Figure 7).

    ::

        PATH = attrPath / valuePath [subAttr]

    e.g. ``members[value eq "2819c223"]``, ``emails[type eq "work"].value``,
    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager``,
    ``name.givenName``. Raises :class:`~scim2_core.InvalidPathError` (400
    ``invalidPath``) and nothing else. The value filter is read as by
    :func:`parse_filter` (normalised, ``tolerant``); with its brackets, it is at most
    ``max_depth`` deep.
    """
    text = _check_text(text, max_length, InvalidPathError, "path")
    toks = _tokenize(text)
    try:
        return _parse_path(toks, max_depth, tolerant)
    except _Syntax as exc:
        raise InvalidPathError(exc.render(text, "path")) from None


def _parse_path(toks: list[str], max_depth: int, tolerant: bool) -> PatchPath:
    word = toks[0]
    if word[:1] not in _WORD_START:
        raise _error(word, 0, "an attribute name")
    attr = _attr_path(word, 0)
    if toks[1] == "":
        return PatchPath(attr)
    if toks[1] != "[":
        raise _Syntax(f"unexpected {toks[1]!r}", 1)
    if attr.sub is not None:
        raise _Syntax(
            "a value filter applies to a multi-valued attribute, not to the "
            f"sub-attribute {word!r}",
            1,
        )
    inner, i = _parse(toks, 2, max(1, max_depth - 1), True, tolerant)
    if toks[i] != "]":
        raise _Syntax("'['", 1, " is not closed by ']'")
    sub: str | None = None
    dtok = toks[i + 1]
    if dtok[:1] == "." and len(dtok) > 1:
        sub = dtok[1:]
        if not _NAME.match(sub):
            raise _Syntax(f"{sub!r}", i + 1, " is not an attribute name")
        i += 1
    if toks[i + 1]:
        raise _error(toks[i + 1], i + 1, "the end of the path")
    return PatchPath(attr, inner, sub)
