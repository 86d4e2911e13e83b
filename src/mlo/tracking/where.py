"""The ``where`` filter of run listings: a small expression language evaluated on the runs DataFrame.

    metrics.acc > 0.8 and (params.model = 'rf' or tags.team != "core")
    attributes.status = 'finished' and name like 'base%'
    params.C in (0.1, 1.0) and metrics.loss is not null and not tags.debug = 'true'

Identifiers: ``metrics.*``, ``params.*``, ``tags.*``, ``attributes.*`` (or bare ``status``, ``name``, …);
quote odd names with backticks (``metrics.`val loss```). A run that lacks a key never satisfies a comparison on
it, ``!=`` included; ``is null`` finds such runs. ``like`` (case sensitive) and ``ilike`` match the whole value, and
their ``%`` and ``_`` match any characters, newlines included, as in SQL. Run listings hand what SQL answers alike
to the database (see :mod:`mlo.store.run_filter`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

PREFIXES = {
    "metrics": "metrics",
    "metric": "metrics",
    "params": "params",
    "param": "params",
    "tags": "tags",
    "tag": "tags",
    "attributes": "attributes",
    "attribute": "attributes",
    "attr": "attributes",
    "run": "attributes",
}
# the run attributes, in the order of the runs DataFrame
BASE_COLUMNS = ["run_id", "experiment", "name", "status", "start_time", "end_time", "duration", "git_commit",
                "parent_id", "user", "source"]  # fmt: skip
# MLflow's spellings of run attributes
ALIASES = {"id": "run_id", "run_name": "name", "lifecycle_stage": "lifecycle"}
ATTRIBUTES = {*BASE_COLUMNS, "lifecycle", *ALIASES}
# attributes whose values are lower-case words: compared case-insensitively (status = 'FINISHED' works)
CASELESS = {"status", "lifecycle"}

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<num>[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?)(?![\w.])
      | (?P<str>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*")
      | (?P<op><=|>=|!=|<>|==|=|<|>)
      | (?P<punct>[(),])
      | (?P<ident>(?:[A-Za-z_][\w]*|`[^`]+`)(?:\.(?:`[^`]+`|[\w.\-/:]+))?)
    )""",
    re.VERBOSE,
)
KEYWORDS = {"and", "or", "not", "in", "is", "null", "like", "ilike", "true", "false"}


@dataclass(frozen=True)
class Compare:
    column: str
    op: str  # = != < <= > >= in like ilike isnull
    value: Any


@dataclass(frozen=True)
class BoolOp:
    op: str  # and | or
    items: tuple


@dataclass(frozen=True)
class Not:
    item: Any


def _tokens(text: str) -> list[tuple[str, Any, int]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise InvalidInput(
                f"cannot read the filter at position {pos}: {text[pos : pos + 20]!r} ({text!r})"
            )
        kind = m.lastgroup
        raw = m.group(kind)
        start = m.start(kind)
        if kind == "num":
            out.append(("lit", float(raw) if any(c in raw for c in ".eE") else int(raw), start))
        elif kind == "str":
            body = raw[1:-1]
            body = body.replace("''", "'") if raw[0] == "'" else body
            out.append(("lit", re.sub(r"\\(.)", r"\1", body), start))
        elif kind == "ident" and raw.lower() in KEYWORDS:
            word = raw.lower()
            if word in ("true", "false"):
                out.append(("lit", word == "true", start))
            else:
                out.append(("kw", word, start))
        else:
            out.append((kind, raw, start))
        pos = m.end()
    return out


def column_name(ident: str) -> str:
    """``metrics.acc`` → ``metrics.acc``; ``status`` → ``status``; backticks removed."""
    if "." in ident and not ident.startswith("`"):
        prefix, _, key = ident.partition(".")
    elif ident.startswith("`") and "`." in ident:
        prefix, _, key = ident.partition(".")
    else:
        prefix, key = "", ident
    prefix = prefix.strip("`")
    key = key.strip("`") if key else key
    if not prefix:
        name = ident.strip("`")
        if name not in ATTRIBUTES:
            raise InvalidInput(
                f"unknown field {name!r} in the filter: use metrics.<key>, params.<key>, tags.<key> "
                f"or one of {', '.join(sorted(ATTRIBUTES))}"
            )
        return ALIASES.get(name, name)
    kind = PREFIXES.get(prefix.lower())
    if kind is None:
        raise InvalidInput(
            f"unknown prefix {prefix!r} in the filter: use metrics., params., tags. or attributes."
        )
    if kind == "attributes":
        if key not in ATTRIBUTES:
            raise InvalidInput(f"unknown attribute {key!r}; attributes are {', '.join(sorted(ATTRIBUTES))}")
        return ALIASES.get(key, key)
    return f"{kind}.{key}"


class _Parser:
    def __init__(self, text: str, column=column_name):
        self.text = text
        self.column = column
        self.toks = _tokens(text)
        self.i = 0

    def fail(self, what: str):
        pos = self.toks[self.i][2] if self.i < len(self.toks) else len(self.text)
        raise InvalidInput(f"bad filter {self.text!r}: {what} at position {pos}")

    def peek(self, kind=None, value=None):
        if self.i >= len(self.toks):
            return None
        tok = self.toks[self.i]
        if (kind is None or tok[0] == kind) and (value is None or tok[1] == value):
            return tok
        return None

    def take(self, kind=None, value=None):
        tok = self.peek(kind, value)
        if tok is None:
            self.fail(f"expected {value or kind}")
        self.i += 1
        return tok

    def parse(self):
        node = self.or_()
        if self.i != len(self.toks):
            self.fail(f"unexpected {self.toks[self.i][1]!r}")
        return node

    def or_(self):
        items = [self.and_()]
        while self.peek("kw", "or"):
            self.i += 1
            items.append(self.and_())
        return items[0] if len(items) == 1 else BoolOp("or", tuple(items))

    def and_(self):
        items = [self.not_()]
        while self.peek("kw", "and"):
            self.i += 1
            items.append(self.not_())
        return items[0] if len(items) == 1 else BoolOp("and", tuple(items))

    def not_(self):
        if self.peek("kw", "not"):
            self.i += 1
            return Not(self.not_())
        if self.peek("punct", "("):
            self.i += 1
            node = self.or_()
            self.take("punct", ")")
            return node
        return self.compare()

    def compare(self):
        if not self.peek("ident"):
            self.fail("expected a field such as metrics.acc")
        col = self.column(self.take("ident")[1])
        negate = False
        if self.peek("kw", "is"):
            self.i += 1
            if self.peek("kw", "not"):
                self.i += 1
                negate = True
            self.take("kw", "null")
            node = Compare(col, "isnull", None)
            return Not(node) if negate else node
        if self.peek("kw", "not"):
            self.i += 1
            negate = True
        if self.peek("kw", "in"):
            self.i += 1
            self.take("punct", "(")
            values = [self.literal()]
            while self.peek("punct", ","):
                self.i += 1
                values.append(self.literal())
            self.take("punct", ")")
            node = Compare(col, "in", tuple(values))
        elif self.peek("kw", "like") or self.peek("kw", "ilike"):
            op = self.take("kw")[1]
            pattern = self.literal()
            if not isinstance(pattern, str):
                self.fail(f"{op} needs a quoted pattern")
            node = Compare(col, op, pattern)
        elif negate:
            self.fail("expected in, like or ilike after not")
        else:
            op = self.take("op")[1]
            op = {"==": "=", "<>": "!="}.get(op, op)
            node = Compare(col, op, self.literal())
        if col in CASELESS:
            node = Compare(node.column, node.op, _lower(node.value))
        return Not(node) if negate else node

    def literal(self):
        if self.peek("lit"):
            return self.take("lit")[1]
        if self.peek("kw", "null"):
            self.fail("use 'is null' / 'is not null' to test for a missing value")
        self.fail("expected a number or a quoted string")


def parse_order(order_by) -> list[tuple[str, bool]]:
    """``order_by`` as ``[(column, ascending), …]``: a string (``"metrics.acc desc"``, or several keys joined by
    commas) or a list of such strings, as MLflow's ``search_runs`` takes it. Ascending unless told, as in SQL."""
    if order_by is None:
        return []
    if isinstance(order_by, str):
        items = [part for part in order_by.split(",") if part.strip()]
    elif isinstance(order_by, (list, tuple)):
        items = list(order_by)
    else:
        raise InvalidInput(f"order_by must be a string or a list of strings, got {type(order_by).__name__}")
    out = []
    for item in items:
        if not isinstance(item, str) or not item.strip():
            raise InvalidInput(f"order_by: {item!r} is not a column, e.g. 'metrics.acc desc'")
        parts = item.split()
        direction = parts[-1].lower() if len(parts) > 1 and parts[-1].lower() in ("asc", "desc") else None
        out.append((column_name(" ".join(parts[:-1] if direction else parts)), direction != "desc"))
    return out


def _lower(value):
    if isinstance(value, tuple):
        return tuple(_lower(v) for v in value)
    return value.lower() if isinstance(value, str) else value


def parse(text: str, column=column_name):
    """Parse a filter into a tree of :class:`Compare`, :class:`BoolOp` and :class:`Not`. ``column`` maps an
    identifier to a column name (or raises InvalidInput); run columns by default (other listings, such as LLM
    traces, pass their own)."""
    if not isinstance(text, str) or not text.strip():
        raise InvalidInput("the filter is empty")
    return _Parser(text, column).parse()


def columns_of(node) -> set[str]:
    if isinstance(node, Compare):
        return {node.column}
    if isinstance(node, Not):
        return columns_of(node.item)
    return set().union(*(columns_of(i) for i in node.items))


def evaluate(node, df):
    """A boolean Series: which rows of ``df`` satisfy ``node``."""
    import pandas as pd

    if isinstance(node, BoolOp):
        masks = [evaluate(i, df) for i in node.items]
        out = masks[0]
        for m in masks[1:]:
            out = (out & m) if node.op == "and" else (out | m)
        return out
    if isinstance(node, Not):
        return ~evaluate(node.item, df)
    if node.column not in df.columns:
        return pd.Series(node.op == "isnull", index=df.index, dtype=bool)
    col = df[node.column]
    present = col.notna()
    if node.op == "isnull":
        return ~present
    if node.op in ("like", "ilike"):
        # as SQL's LIKE: the whole value, and % and _ match any characters, newlines included
        regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in node.value)
        flags = re.DOTALL | (re.IGNORECASE if node.op == "ilike" else 0)
        return present & col.astype(str).str.fullmatch(regex, flags=flags).fillna(False).astype(bool)
    values = node.value if node.op == "in" else (node.value,)
    col, values = _align(col, values)
    if node.op == "in":
        result = col.isin(values)
    else:
        value = values[0]
        try:
            result = {
                "=": lambda: col == value,
                "!=": lambda: col != value,
                "<": lambda: col < value,
                "<=": lambda: col <= value,
                ">": lambda: col > value,
                ">=": lambda: col >= value,
            }[node.op]()
        except TypeError:
            raise InvalidInput(
                f"cannot compare {node.column} with {value!r}: the values there are of another type"
            ) from None
    matched = pd.Series(result, index=df.index).astype("boolean").fillna(False).astype(bool)  # NA: no match
    return present & col.notna() & matched


def _align(col, values):
    """Bring the column and the literals to comparable types (numbers, datetimes or strings)."""
    import pandas as pd

    numeric = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values)
    if pd.api.types.is_datetime64_any_dtype(col):
        try:
            return col, tuple(
                pd.Timestamp(v, tz="UTC")
                if not isinstance(v, (int, float))
                else pd.Timestamp(v, unit="s", tz="UTC")
                for v in values
            )
        except (ValueError, TypeError):
            raise InvalidInput(f"cannot read {values!r} as a date for {col.name}") from None
    if pd.api.types.is_bool_dtype(col) or all(isinstance(v, bool) for v in values):
        return col.astype(object), values
    if pd.api.types.is_numeric_dtype(col):
        if numeric:
            return col, values
        try:
            return col, tuple(float(v) for v in values)
        except (TypeError, ValueError):
            return col.astype(str), tuple(str(v) for v in values)
    if numeric:
        return pd.to_numeric(col, errors="coerce"), values
    return col.astype(object).where(col.isna(), col.astype(str)), tuple(str(v) for v in values)
