"""The notebook view of an :class:`~mlo.llm.eval_report.EvalReport`: the scores with their intervals, the gates,
and the worst rows first (failures, then the lowest scores)."""

from __future__ import annotations

from html import escape

from ..report.html import STYLE, badge, fmt, fmt_duration, table

SHOWN_ROWS = 20


def _clip(v, n: int = 120) -> str:
    t = "" if v is None else str(v)
    return t if len(t) <= n else t[: n - 1] + "…"


def _judge_cost(agg: dict) -> str:
    if "judge_input_tokens" not in agg:
        return ""
    jc = agg.get("judge_cost_usd")
    return (
        f" (judge {agg['judge_input_tokens']}+{agg['judge_output_tokens']} tokens,"
        f" {'unpriced' if jc is None else f'${jc:.4g}'})"
    )


def render(rep) -> str:
    agg = rep.aggregates
    title = rep.app.get("prompt") or rep.app.get("name")
    head = f"<div class='mlo-h'>evaluation of {escape(str(title))}"
    if rep.checks:
        head += " " + badge("finished" if rep.passed else "gate")
    head += "</div>"
    cost = agg.get("cost_usd")
    meta = (
        f"{rep.n} rows × {rep.repeats} · data {escape(str(rep.data.get('ref') or rep.data.get('digest', '')[:12]))}"
        f" · {agg['failed']} failed calls · p50 {fmt_duration(agg.get('latency_p50_s'))}"
        f" · {agg['input_tokens']}+{agg['output_tokens']} tokens"
        f" · {'unpriced' if cost is None else f'${cost:.4g}'}"
        + _judge_cost(agg)
        + (f" · report {escape(rep.id[:12])}" if rep.id else "")
    )
    scores = table(
        ["scorer", "version", "mean", "95% CI", "rows"],
        [
            [
                s["name"],
                s["version"],
                agg[s["name"]]["mean"],
                f"[{fmt(agg[s['name']]['ci_low'])}, {fmt(agg[s['name']]['ci_high'])}]",
                agg[s["name"]]["n"],
            ]
            for s in rep.scorers
        ],
        numeric={2, 4},
    )
    parts = [STYLE, head, f"<div class='mlo-m'>{meta}</div>", scores]
    if rep.checks:
        parts.append(
            table(
                ["check", "status", "value", "detail"],
                [
                    [
                        c.name,
                        badge("finished" if c.passed else "skipped" if c.passed is None else "gate"),
                        c.value,
                        c.detail or c.headline(),
                    ]
                    for c in rep.checks
                ],
                numeric={2},
                raw={1},
            )
        )
    names = [s["name"] for s in rep.scorers]
    worst = rep.worst(SHOWN_ROWS)
    rows = []
    for r in worst:
        sc = r.get("scores") or {}
        reasons = r.get("reasons") or {}
        why = "; ".join(f"{k}: {v}" for k, v in reasons.items())
        rows.append(
            [
                r["index"],
                _clip(r.get("inputs")),
                _clip(r.get("expected"), 60),
                _clip(r.get("output")) if not r.get("error") else f"error: {_clip(r['error'])}",
                *[sc.get(n) for n in names],
                _clip(why, 100),
                fmt_duration(r.get("latency_s")),
            ]
        )
    parts.append(f"<div class='mlo-m'>worst {len(worst)} of {len(rep.rows)} rows</div>")
    parts.append(
        table(
            ["row", "inputs", "expected", "output", *names, "why", "latency"],
            rows,
            numeric=set(range(4, 4 + len(names))),
        )
    )
    return "<div>" + "".join(parts) + "</div>"
