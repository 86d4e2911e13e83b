"""Run filters and orders as SQL: the parsed ``where`` of a run listing and its ``order_by`` keys, translated
into conditions and sort keys on ``runs`` (joined with ``experiments``), so the database filters, orders, counts
and slices a page of a big workspace.

The translation gives the results :func:`mlo.tracking.where.evaluate` and pandas' sort give on the listing's
DataFrame, or nothing (None) where it cannot promise that, and the caller evaluates in Python as before:

- params are stored as JSON text and a listing decodes a key's column as numbers when every value is a number,
  as strings when every value is a string, and as Python objects otherwise. The kind of a key is read from the
  (key, value) index (the least and greatest value, a few index probes); a key of mixed kind is left to Python;
- a run without the key (or whose metric is NaN) satisfies no comparison, ``!=`` included, and ``is null``
  finds it; every condition here is TRUE or FALSE, never NULL, so ``not`` negates it as pandas does. A ``not``
  is pushed inward (De Morgan's laws over ``and``/``or``) and, on a param or tag key that every run of the
  store has, into the comparison (``not x != v`` is ``x = v``): the database then looks the few runs that
  satisfy ``x = v`` up in the index instead of excluding the many that satisfy ``x != v``. Where some run may
  lack the key, ``not x != v`` is ``x = v or x is null``, whose second set costs as much as the first: the
  negation is then left whole;
- ``like`` with a literal prefix (``'g%'``) also bounds the (key, value) index to the values that begin with it;
- strings compare and sort by code point (SQLite's binary collation, PostgreSQL's ``"C"``); ``like`` is case
  sensitive and ``%``/``_`` match any characters, newlines included;
- literals of another type than the column (a number against strings, ``true``), ``ilike`` and run times are
  left to Python.

Every literal is a bound parameter: hostile values in a filter reach the database as data, never as SQL.
"""

from __future__ import annotations

import math
from typing import Any

from sqlalchemy import (
    Float,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    true,
)
from sqlalchemy.dialects import postgresql

from . import schema as s
from .db import Database

NUMBER = "number"
STRING = "string"
MIXED = "mixed"
ABSENT = "absent"

# run columns compared as strings (status and lifecycle are stored in lower case; the parser lowers literals)
TEXT_ATTRIBUTES = ("run_id", "experiment", "name", "status", "git_commit", "parent_id", "user", "source",
                   "lifecycle")  # fmt: skip
_OPS = ("=", "!=", "<", "<=", ">", ">=")
_JSON_NUMBER_RE = r"^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][-+]?[0-9]+)?$"
_LONGEST_NUMBER = 300  # characters: a JSON number shorter than this is within a double's range


class RunFilter:
    """Translates filters and orders on the runs of one store (see the module's notes). Kinds of param keys
    are read once per instance: make one per listing."""

    def __init__(self, db: Database, json_functions: bool = True, scope: list | None = None):
        self.db = db
        self.scope = scope or []  # conditions on runs (joined with experiments) that pick the listed runs
        self.pg = db.dialect == "postgresql"
        self.json = json_functions
        self._kinds: dict[str, str] = {}
        self._every_run: set[str] = set()  # keys whose kind holds over every run of the store
        self._in_every_run: dict[tuple, bool] = {}
        self._indexed_numbers: dict[
            str, bool
        ] = {}  # param keys whose values are all in the number index  # (table, key): whether every run of the store has it

    # -- kinds of param keys ------------------------------------------------------------------------------------
    def param_kind(self, conn, key: str) -> str:
        """NUMBER, STRING, MIXED or ABSENT: what a listing decodes the values of param ``key`` to."""
        if key not in self._kinds:
            # over every run first (a few probes of the index); values of one kind there are of that kind in
            # any listing. Else over the listed runs alone (a scan of the key's entries)
            kind = self._kind_of(conn, key, scoped=False)
            if kind == MIXED and self.scope:
                kind = self._kind_of(conn, key, scoped=True)
            else:
                self._every_run.add(key)
            self._kinds[key] = kind
        return self._kinds[key]

    def _kind_of(self, conn, key: str, scoped: bool) -> str:
        p, r, e = s.params, s.runs, s.experiments
        v = s.indexed_value(p, self.db.dialect)

        def of_key():
            q = select().select_from(p).where(p.c.key == key)
            if scoped:
                q = q.join(r, r.c.id == p.c.run_id).join(e, r.c.experiment_id == e.c.id).where(*self.scope)
            return q

        low = of_key().add_columns(func.min(v)).scalar_subquery()
        high = of_key().add_columns(func.max(v)).scalar_subquery()
        # "-Infinity" sorts among the negative numbers: a probe of its range
        minus_inf = of_key().add_columns(literal(1)).where(v >= "-I", v < "-J").exists()
        lo, hi, inf = conn.execute(select(low, high, minus_inf)).one()
        if lo is None:
            return ABSENT
        if lo[:1] == '"' and hi[:1] == '"':  # '"' sorts before the first character of any other JSON
            return STRING
        if lo[:1] in "-0123456789" and hi[:1] in "-0123456789" and not inf:
            return NUMBER  # ('-', '.', '/' and the digits are adjacent; only numbers start with them)
        return MIXED

    def _number_indexed(self, conn, key: str) -> bool:
        """Whether every value of param ``key`` is in the number index of schema version 8 (see
        :func:`mlo.store.schema.param_number`): then filters and orders on the key read ranges of it. An index
        probe for the key's values outside it."""
        if key not in self._indexed_numbers:
            p = s.params
            number = s.param_number(p.c.value)
            # in the index's order, so the database probes it (unordered, it may scan the table: half of all
            # params are strings, so it expects one soon)
            outside = (
                select(p.c.key).where(p.c.key == key, number.is_(None)).order_by(p.c.key, number).limit(1)
            )
            self._indexed_numbers[key] = conn.execute(outside).first() is None
        return self._indexed_numbers[key]

    def has_tag(self, conn, key: str) -> bool:
        return _has_key(conn, s.tags, key, s.indexed_value(s.tags, self.db.dialect))

    def has_metric(self, conn, key: str) -> bool:
        return _has_key(conn, s.latest_metrics, key, s.latest_metrics.c.value)

    # -- values -------------------------------------------------------------------------------------------------
    def _text(self, column):
        return column.collate("C") if self.pg else column

    def _param_number(self, column, key: str | None = None):
        if self.pg and key is not None:
            # every value of the key is a JSON number (its kind, over every run): each casts, unless an integer
            # too long for a double, which counts as infinite (a regular expression matched per value tripled
            # the time of a count). The key is checked in the same expression, as the database may evaluate
            # conditions in any order
            double = postgresql.DOUBLE_PRECISION
            beyond = case((column.startswith("-"), literal("-Infinity")), else_=literal("Infinity"))
            return case(
                (
                    and_(s.params.c.key == key, func.length(column) < _LONGEST_NUMBER),
                    cast(column, double),
                ),
                (s.params.c.key == key, cast(beyond, double)),  # an integer of 300 digits or more
            )
        if self.pg:  # a cast error would fail the whole query: only JSON numbers are cast
            return case((column.regexp_match(_JSON_NUMBER_RE), cast(column, postgresql.DOUBLE_PRECISION)))
        return cast(column, Float)

    def _param_string(self, column):
        """The decoded JSON string (None when the JSON functions are missing)."""
        if self.pg:
            path = literal_column("'{}'::text[]")  # the empty path: the value itself, as text
            return cast(column, postgresql.JSONB).op("#>>", return_type=Text)(path)
        return func.json_extract(column, "$") if self.json else None

    def _value(self, conn, kind: str, key: str):
        """(table, the run's value of ``key`` as the listing holds it, the kind) or None."""
        if kind == "metrics":
            return s.latest_metrics, s.latest_metrics.c.value, NUMBER
        if kind == "tags":
            return s.tags, self._text(s.tags.c.value), STRING
        param = self.param_kind(conn, key)
        if param == NUMBER and self.pg and self._number_indexed(conn, key):
            return s.params, s.param_number(s.params.c.value), NUMBER
        if param == NUMBER:
            every = key if key in self._every_run else None
            return s.params, self._param_number(s.params.c.value, every), NUMBER
        if param == STRING:
            decoded = self._param_string(s.params.c.value)
            return None if decoded is None else (s.params, self._text(decoded), STRING)
        if param == ABSENT:
            return s.params, s.params.c.value, ABSENT
        return None

    # -- filters ------------------------------------------------------------------------------------------------
    def where(self, conn, tree: Any):
        """The parsed filter as a condition on ``runs``, or None when Python must evaluate it (also when it is
        too big for one statement: databases cap the bound values and the depth of an expression)."""
        if _size(tree) > MAX_TERMS:
            return None
        return self._where(conn, tree)

    def _where(self, conn, tree: Any, negate: bool = False):
        node = type(tree).__name__
        if node == "BoolOp":
            parts = [self._where(conn, item, negate) for item in tree.items]
            if any(p is None for p in parts):
                return None
            return and_(*parts) if (tree.op == "and") != negate else or_(*parts)
        if node == "Not":
            return self._where(conn, tree.item, not negate)
        if negate:
            pushed = self._negated(conn, tree)
            if pushed is not NotImplemented:
                return pushed
            inner = self._compare(conn, tree)
            return None if inner is None else not_(inner)
        return self._compare(conn, tree)

    _NEGATED_OPS = {"=": "!=", "!=": "=", "<": ">=", "<=": ">", ">": "<=", ">=": "<"}

    def _negated(self, conn, leaf):
        """``not leaf`` for a comparison on a param, metric or tag key: the runs whose value satisfies the
        opposite comparison, or that lack the key; NotImplemented where it is negated as a whole."""
        column, op, value = leaf.column, leaf.op, leaf.value
        kind, _, key = column.partition(".")
        if kind not in ("params", "tags") or op not in (*self._NEGATED_OPS, "in"):
            return NotImplemented
        found = self._value(conn, kind, key)
        if found is None:
            return None
        table, expr, vkind = found
        if vkind == ABSENT:
            return true()  # no run has the key: no comparison holds, so its negation always does
        if not self._in_every_run_of_store(conn, table, key):
            return NotImplemented
        if op == "in":
            condition = self._condition(expr, vkind, op, value, table, key)
            condition = None if condition is None else not_(condition)
        else:
            condition = self._condition(expr, vkind, self._NEGATED_OPS[op], value, table, key)
        if condition is None:
            return None
        of_key = select(table.c.run_id).where(table.c.key == key)
        return s.runs.c.id.in_(of_key.where(condition))

    def _in_every_run_of_store(self, conn, table, key: str) -> bool:
        """Whether every run of the store has ``key`` (then none lacks it, wherever the listing): on PostgreSQL,
        which enforces the foreign key, the key's rows (one per run at most) are as many as the runs (two
        counts of indexes). SQLite keeps rows whose run is gone: there, no."""
        if not self.pg:
            return False
        if (table.name, key) not in self._in_every_run:
            rows = select(func.count()).select_from(table).where(table.c.key == key).scalar_subquery()
            every = select(func.count()).select_from(s.runs).scalar_subquery()
            self._in_every_run[(table.name, key)] = bool(conn.execute(select(rows == every)).scalar())
        return self._in_every_run[(table.name, key)]

    def _compare(self, conn, leaf):
        column, op, value = leaf.column, leaf.op, leaf.value
        if op == "ilike":
            return None
        kind, _, key = column.partition(".")
        if kind not in ("params", "metrics", "tags"):
            return self._attribute(column, op, value)
        found = self._value(conn, kind, key)
        if found is None:
            return None
        table, expr, vkind = found
        # the runs whose value satisfies it: a set the database builds once from the (key, value) index, or
        # walks when it is small (a condition per run, correlated, would look every run up)
        of_key = select(table.c.run_id).where(table.c.key == key)
        if op == "isnull":
            present = of_key if kind != "metrics" else of_key.where(expr.is_not(None))  # NaN: missing
            return s.runs.c.id.not_in(present)
        if vkind == ABSENT:  # no run has the key: no comparison holds (the listing has no such column)
            return false()
        condition = self._condition(expr, vkind, op, value, table, key)
        return None if condition is None else s.runs.c.id.in_(of_key.where(condition))

    def _condition(self, expr, vkind: str, op: str, value, table=None, key=None):
        literals = value if op == "in" else (value,)
        lkind = _literal_kind(op, value)
        if op == "like":
            if vkind != STRING:
                return None
            return and_(expr.is_not(None), self._like(expr, value), *self._prefix_range(table, value))
        if vkind == NUMBER:
            if lkind != NUMBER:  # a number column against '10': compared as numbers when each reads as one
                if any(isinstance(v, bool) for v in literals):
                    return None
                try:
                    literals = tuple(float(v) for v in literals)
                except ValueError:
                    return None
            if any(math.isnan(v) for v in literals):
                return None
            if op == "in" and len({type(v) for v in literals}) > 1:
                # one type for the list's bound values (the first one's would make 0.1 an integer, 0)
                try:
                    literals = tuple(float(v) for v in literals)
                except OverflowError:
                    return None
        elif lkind != STRING or vkind != STRING:
            return None
        on_index = table is s.params and op in ("=", "!=") or self.pg and table in (s.params, s.tags)
        if on_index and vkind == STRING and op in ("=", "!=", "in"):
            same = self._stored_among(table, literals)
            return same if op != "!=" else ~same
        if op == "in":
            return expr.in_(list(literals))
        return _apply(expr, op, literals[0])

    def _stored_among(self, table, literals):
        """The stored text is one of these strings' (params hold ``json.dumps`` of a string, tags the string):
        on the expression the (key, value) index holds, so the database finds them in it."""
        import json

        texts = [json.dumps(v) if table is s.params else v for v in literals]
        if not self.pg:
            return table.c.value == texts[0]  # (params alone, one string: SQLite indexes the whole value)
        stored = s.indexed_value(table, self.db.dialect)
        prefixes = [func.substr(literal(text), 1, s.VALUE_PREFIX) for text in texts]
        indexed = stored.in_(prefixes) if len(prefixes) > 1 else stored == prefixes[0]
        if all(len(text) < s.VALUE_PREFIX for text in texts):
            # a value whose first VALUE_PREFIX characters equal a shorter string is that string: the index
            # answers alone (a check of the whole value would also make the planner expect a few matches)
            return indexed
        return and_(indexed, table.c.value.in_(texts))

    def _prefix_range(self, table, pattern: str) -> list:
        """Bounds on the stored value (as the (key, value) index holds it) of the values that a ``like``
        pattern with a literal prefix can match: ``'g%'`` reads the index from ``"g`` to ``"h`` instead of
        decoding every value of the key."""
        import json

        prefix = ""
        for c in pattern:
            if c in "%_":
                break
            prefix += c
        if not prefix or table not in (s.params, s.tags):
            return []
        # a param is stored as json.dumps of the string, which encodes character by character: the stored text
        # of a string that begins with the prefix begins with the prefix's encoding (without its closing quote)
        low = json.dumps(prefix)[:-1] if table is s.params else prefix
        if self.pg and len(low) >= s.VALUE_PREFIX:
            return []
        last = ord(low[-1])
        if last >= 0x10FFFF or 0xD7FF <= last < 0xE000:
            return []  # no next character to bound it by
        high = low[:-1] + chr(last + 1)  # every text beginning with ``low`` sorts before this (code points)
        stored = s.indexed_value(table, self.db.dialect)
        return [stored >= low, stored < high]

    def _attribute(self, column: str, op: str, value):
        if column not in TEXT_ATTRIBUTES:
            return None  # times and durations: Python compares them as dates and numbers
        r, e = s.runs, s.experiments
        expr = {"run_id": r.c.id, "experiment": e.c.name}.get(column, r.c.get(column))
        expr = self._text(expr)
        if op == "isnull":
            return expr.is_(None)
        condition = self._condition(expr, STRING, op, value)
        return None if condition is None else and_(expr.is_not(None), condition)

    def _like(self, expr, pattern: str):
        if self.pg:
            escaped = pattern.replace("\\", "\\\\")
            return expr.like(escaped, escape="\\")
        glob = "".join({"%": "*", "_": "?", "*": "[*]", "?": "[?]", "[": "[[]"}.get(c, c) for c in pattern)
        return expr.op("GLOB")(glob)

    # -- orders -------------------------------------------------------------------------------------------------
    def order(self, conn, column: str):
        """A sort key for ``column`` (None sorts last, as pandas does), None when Python must sort, or raises
        KeyError when no run has that key."""
        kind, _, key = column.partition(".")
        if kind not in ("params", "metrics", "tags"):
            return None
        if (
            kind == "metrics"
            and not self.has_metric(conn, key)
            or kind == "tags"
            and not self.has_tag(conn, key)
        ):
            raise KeyError(column)
        found = self._value(conn, kind, key)
        if found is None:
            return None
        table, expr, vkind = found
        if vkind == ABSENT:
            raise KeyError(column)
        return select(expr).where(and_(table.c.run_id == s.runs.c.id, table.c.key == key)).scalar_subquery()

    def walk(self, column: str, conn=None):
        """For an order by one metric or tag: (table, key, sort keys that follow its (key, value) index, True),
        so a page walks the index up to its end instead of sorting every run. On PostgreSQL, for an order by a
        param of numbers or strings: (params, key, [its decoded value], False), so a page takes the key's
        first values (ties included) before looking their runs up, instead of decoding the key for each listed
        run in a sort of them all (SQLite too, taking the ties by the page's last value). None for other
        columns."""
        kind, _, key = column.partition(".")
        if kind == "metrics":
            return s.latest_metrics, key, [s.latest_metrics.c.value], True
        if kind == "tags":
            prefix = s.indexed_value(s.tags, self.db.dialect)
            return s.tags, key, [prefix, self._text(s.tags.c.value)] if self.pg else [prefix], True
        # FETCH … WITH TIES came with PostgreSQL 13; SQLite takes the ties by the page's last value
        with_ties = conn is not None and (conn.dialect.server_version_info or (0,)) >= (13,)
        if kind == "params" and (with_ties or not self.pg):
            found = self._value(conn, kind, key)
            if found is not None and found[2] in (NUMBER, STRING):
                return s.params, key, [found[1]], False
        return None


def _has_key(conn, table, key: str, indexed) -> bool:
    # in the order of the (key, value) index: one probe of it. Unordered, PostgreSQL answers "LIMIT 1" with a
    # scan of the table, which passes every row of the keys written before this one
    q = select(table.c.key).where(table.c.key == key).order_by(table.c.key, indexed).limit(1)
    return conn.execute(q).first() is not None


MAX_TERMS = (
    500  # comparisons and literals in a filter translated to SQL (SQLite allows 999 bound values in old
)
# builds, and an expression 1,000 deep)


def _size(node) -> int:
    """Comparisons, literals and operators in a parsed filter."""
    name = type(node).__name__
    if name == "BoolOp":
        return 1 + sum(_size(i) for i in node.items)
    if name == "Not":
        return 1 + _size(node.item)
    return 1 + (len(node.value) if node.op == "in" else 1)


def _literal_kind(op: str, value) -> str | None:
    """NUMBER or STRING when every literal is of that type, else None (booleans, mixtures)."""
    if op in ("isnull", "like", "ilike"):
        return STRING
    literals = value if op == "in" else (value,)
    if all(isinstance(v, str) for v in literals):
        return STRING
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in literals):
        return NUMBER
    return None


def _apply(expr, op: str, value):
    return {
        "=": expr.__eq__,
        "!=": expr.__ne__,
        "<": expr.__lt__,
        "<=": expr.__le__,
        ">": expr.__gt__,
        ">=": expr.__ge__,
    }[op](value)
