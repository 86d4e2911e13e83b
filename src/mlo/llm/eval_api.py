"""What the REST API and the JupyterLab panel show of evaluations, as plain JSON-ready records: the list of stored
``llm_eval`` reports, and two of them compared (per scorer, and per example with the largest changes first).
The HTTP handler is a thin adapter over these two functions."""

from __future__ import annotations

import math
from typing import Any

MAX_EXAMPLES = 500
MAX_TEXT = 2000


def _num(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _text(v: Any) -> Any:
    if v is None or isinstance(v, (int, float, bool)):
        return v
    s = v if isinstance(v, str) else str(v)
    return s if len(s) <= MAX_TEXT else s[: MAX_TEXT - 1] + "…"


def list_evals(limit: int = 100, offset: int = 0) -> dict[str, Any]:
    """Stored evaluations, newest first: ``{"evals": [...], "total": n}``; each has id, created (µs), the prompt
    or app, data, rows, repeats, passed, the scorers' means, cost and failure rate."""
    from .. import workspace
    from .eval_report import KIND

    ws = workspace.current(create=False)
    recs = ws.reports.list(kind=KIND, limit=None)
    out = []
    for r in recs[offset : offset + limit]:
        s = r.summary or {}
        out.append(
            {
                "id": r.id,
                "created": r.created_at,
                "subject": r.subject,
                "prompt": s.get("prompt"),
                "app": s.get("app"),
                "data": s.get("data") or (s.get("data_digest") or "")[:12],
                "data_digest": s.get("data_digest"),
                "rows": s.get("rows"),
                "repeats": s.get("repeats"),
                "passed": r.passed,
                "means": {k: _num(v) for k, v in (s.get("means") or {}).items()},
                "cost_usd": _num(s.get("cost_usd")),
                "failure_rate": _num(s.get("failure_rate")),
            }
        )
    return {"evals": out, "total": len(recs)}


def compare_evals_record(a: str, b: str, limit: int = MAX_EXAMPLES) -> dict[str, Any]:
    """Evaluation ``b`` against ``a`` (stored ids or unique prefixes): labels, per scorer both means, the delta and
    its interval; per example (largest change first, at most ``limit``) inputs, expected, both outputs and
    per-scorer scores and deltas. Raises :class:`~mlo.errors.InvalidInput` / ``NotFound`` with one line."""
    from .eval_compare import compare

    cmp = compare(a, b)
    frame = cmp.to_frame().head(limit)
    examples = []
    for rec in frame.to_dict(orient="records"):
        examples.append(
            {
                "index": int(rec["index"]),
                "inputs": {k: _text(v) for k, v in (rec.get("inputs") or {}).items()},
                "expected": _text(rec.get("expected")),
                "output_a": _text(rec.get("output_a")),
                "output_b": _text(rec.get("output_b")),
                "scores": {
                    n: {"a": _num(rec[f"{n}.a"]), "b": _num(rec[f"{n}.b"]), "delta": _num(rec[f"{n}.delta"])}
                    for n in cmp.names
                },
            }
        )

    def side(rep) -> dict[str, Any]:
        return {
            "id": rep.id,
            "label": cmp._label(rep),
            "data": rep.data.get("ref") or (rep.data.get("digest") or "")[:12],
            "rows": rep.n,
            "passed": rep.passed if rep.checks else None,
            "cost_usd": _num(rep.aggregates.get("cost_usd")),
        }

    return {
        "a": side(cmp.a),
        "b": side(cmp.b),
        "scorers": {
            n: {k: (_num(v) if k not in ("rows", "same_version") else v) for k, v in d.items()}
            for n, d in cmp.scorers.items()
        },
        "examples": examples,
        "total_examples": cmp.a.n,
    }
