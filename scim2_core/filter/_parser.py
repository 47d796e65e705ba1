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
Python recursion), so no input can exhaust the interpreter stack. Nesting and tree depth are
bounded by ``max_depth``, the text by ``max_length``. Chains of one operator
(``a and b and c ...``) are built as *balanced* trees so that a long ``or`` list (clients
batch ``id eq "1" or id eq "2" ...``) stays shallow; ``and``/``or`` are associative, so
the shape never changes the meaning. Up to three operands, the tree is left-associative.

Leniencies (each documented in docs/filters.md): any run of whitespace between tokens
(the ABNF says one SP), ``not(`` without a space, keywords ``true``/``false``/``null`` in
any case (ABNF literals are case-insensitive), raw control characters inside strings, and
``emails[type eq "work"].value eq "x"`` (Entra ID) read as
``emails[type eq "work" and value eq "x"]``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Final

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
# by _NUMBER when used), a word (attribute path or keyword), a ".sub" after "]", or any one
# other character (a bracket, or something no token starts with: reported when reached).
_TOKEN: Final = re.compile(
    r"""\s*("[^"\\]*(?:\\.[^"\\]*)*"|-?[0-9][A-Za-z0-9_$.:+\-]*|[A-Za-z$][A-Za-z0-9_$:.\-]*"""
    r"""|\.[A-Za-z$][A-Za-z0-9_$\-]*|.)""",
    re.DOTALL,
)
_NUMBER: Final = re.compile(r"-?[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?\Z")
_WORD_START: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ$")
_NUMBER_START: Final = frozenset("-0123456789")
_PUNCT: Final = frozenset('"()[].')

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
    return text


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


def _value(tok: str, index: int) -> Value:
    """``compValue = false / null / true / number / string`` (JSON literals)."""
    c = tok[:1]
    if c == '"' and len(tok) > 1:
        if "\\" not in tok:
            return tok[1:-1]
        try:
            value = json.loads(tok, strict=False)
        except ValueError:
            raise _Syntax("bad escape in the string", index) from None
        assert isinstance(value, str)
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
    raise _error(tok, index, "a value (a quoted string, a number, true, false or null)")


def _attr_exp(path: AttrPath, toks: list[str], i: int, shown: str) -> Compare | Present:
    """``attrPath SP "pr"`` or ``attrPath SP compareOp SP compValue``; ``toks[i]`` is
    the operator."""
    tok = toks[i]
    op = tok.lower()
    if op == "pr":
        return Present(path)
    if op in COMPARE_OPS:
        cop: CompareOp = op  # type: ignore[assignment]
        return Compare(path, cop, _value(toks[i + 1], i + 1))
    raise _error(tok, i, f"an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after {shown!r}")


class _Frame:
    """An open group: the root, "(", "not (" or "attr[" awaiting its close."""

    __slots__ = ("kind", "path", "pos", "terms")

    def __init__(self, kind: str, pos: int, path: AttrPath | None = None) -> None:
        self.kind = kind
        self.pos = pos
        self.path = path
        # A disjunction of conjunctions: each term is a list of (node, depth).
        self.terms: list[list[tuple[Filter, int]]] = [[]]


def _balanced(
    items: list[tuple[Filter, int]], cls: type[And] | type[Or], lo: int, hi: int
) -> tuple[Filter, int]:
    # Recursion depth is log2 of the operand count (the text length bounds the count).
    # Same shape as _ast.balanced: the left half takes the extra operand.
    if hi - lo == 1:
        return items[lo]
    mid = lo + (hi - lo + 1) // 2
    left, dl = _balanced(items, cls, lo, mid)
    right, dr = _balanced(items, cls, mid, hi)
    return cls(left, right), 1 + max(dl, dr)


def _close(frame: _Frame) -> tuple[Filter, int]:
    terms = frame.terms
    if len(terms) == 1 and len(terms[0]) == 1:
        return terms[0][0]
    ands = [term[0] if len(term) == 1 else _balanced(term, And, 0, len(term)) for term in terms]
    return _balanced(ands, Or, 0, len(ands))


def _too_deep(max_depth: int) -> _Syntax:
    return _Syntax(f"nested more than {max_depth} levels deep", None)


def _parse(
    toks: list[str], start: int, max_depth: int, in_brackets: bool = False
) -> tuple[Filter, int]:
    """Parse a filter from ``toks[start:]`` (``toks`` ends with the sentinel ``""``);
    returns the tree and the index it stopped at.

    Stops at the end of input, or at a "]" that closes no value path of its own (which is
    how :func:`parse_path` finds the end of ``attr[filter]``).
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
            if len(stack) > max_depth:
                raise _too_deep(max_depth)
            i += 1
            continue
        if tok[:1] not in _WORD_START or not tok:
            raise _error(tok, i, "an attribute path, '(' or 'not'")
        nxt = toks[i + 1]
        if nxt == "(" and tok.lower() == "not":
            # RFC 7644 Figure 1: *1"not" "(" FILTER ")".
            frame = _Frame("not", i)
            stack.append(frame)
            if len(stack) > max_depth:
                raise _too_deep(max_depth)
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
            if len(stack) > max_depth:
                raise _too_deep(max_depth)
            i += 2
            continue
        node: Filter = _attr_exp(path, toks, i + 1, tok)
        i += 2 if isinstance(node, Present) else 3
        depth = 1

        # --- an operand was read: close groups, then expect "and" / "or" / the end ---
        while True:
            frame.terms[-1].append((node, depth))
            tok = toks[i]
            kind = frame.kind
            if tok == ")" and (kind == "(" or kind == "not"):
                node, depth = _close(frame)
                if kind == "not":
                    node, depth = Not(node), depth + 1
                stack.pop()
                frame = stack[-1]
                i += 1
                if depth > max_depth:
                    raise _too_deep(max_depth)
                continue
            if tok == "]" and kind == "[":
                inner, depth = _close(frame)
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
                    extra = _attr_exp(sub, toks, i + 1, dtok)
                    i += 2 if isinstance(extra, Present) else 3
                    inner, depth = And(inner, extra), depth + 1
                node, depth = ValuePath(vpath, inner), depth + 1
                if depth > max_depth:
                    raise _too_deep(max_depth)
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
                    return _close(frame)[0], i
                opener = {"(": "'('", "not": "'not ('", "[": "'['"}[kind]
                closer = "']'" if kind == "[" else "')'"
                raise _Syntax(opener, frame.pos, f" is not closed by {closer}")
            raise _error(tok, i, "'and', 'or' or a closing bracket")


def _tokenize(text: str) -> list[str]:
    toks: list[str] = _TOKEN.findall(text)
    toks.append("")
    return toks


def parse_filter(text: str, *, max_length: int = 4096, max_depth: int = 50) -> Filter:
    """Parse a SCIM filter (RFC 7644 §3.4.2.2) into a :data:`Filter` tree.

    Names are kept as written (see :func:`~scim2_core.filter.bind` for canonical ones).
    Raises :class:`~scim2_core.InvalidFilterError` (400 ``invalidFilter``) naming the
    position and the problem; nothing else, for any input. ``max_depth`` bounds both the
    nesting of brackets and the depth of the tree (clamped to :data:`HARD_MAX_DEPTH`).
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
        node, i = _parse(toks, 0, max_depth)
        if toks[i]:
            raise _Syntax("unexpected ']'", i)
    except _Syntax as exc:
        raise InvalidFilterError(exc.render(text, "filter")) from None
    return node


def parse_path(text: str, *, max_length: int = 4096, max_depth: int = 50) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2, Figure 7).

    ::

        PATH = attrPath / valuePath [subAttr]

    e.g. ``members[value eq "2819c223"]``, ``emails[type eq "work"].value``,
    ``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager``,
    ``name.givenName``. Raises :class:`~scim2_core.InvalidPathError` (400
    ``invalidPath``) and nothing else.
    """
    text = _check_text(text, max_length, InvalidPathError, "path")
    toks = _tokenize(text)
    try:
        return _parse_path(toks, max_depth)
    except _Syntax as exc:
        raise InvalidPathError(exc.render(text, "path")) from None


def _parse_path(toks: list[str], max_depth: int) -> PatchPath:
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
    inner, i = _parse(toks, 2, max(1, max_depth - 1), in_brackets=True)
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
