"""What LLM calls cost: per call, trace, run, prompt version, model and day, from the recorded tokens and the
price table in force (so a back-dated price re-prices past calls); and budgets in ``mlo.toml`` that warn and
can gate a pipeline::

    [llm.budget]
    daily = 5.00      # USD per UTC day, every call of the workspace
    monthly = 100.00  # USD per calendar month (UTC)
    run = 0.50        # USD per run
    action = "warn"   # "warn" (default) or "fail": refuse further calls once a budget is spent

A call whose model has no price is counted apart (``unpriced_calls``), never as $0.
"""

from __future__ import annotations

import datetime as dt
import threading
import warnings
from dataclasses import dataclass, field
from typing import Any

from .. import workspace
from ..errors import GateFailed, InvalidInput, MloError
from .genai import Usage
from .pricing import price_table

GROUPS = ("call", "trace", "run", "prompt", "model", "day")
PERIODS = ("daily", "monthly", "run")


class BudgetWarning(UserWarning):
    """LLM spending went past a budget of ``[llm.budget]``."""


class BudgetExceeded(GateFailed):
    """A budget of ``[llm.budget]`` is spent: exit code 1 in the CLI, a failed stage in a pipeline."""


def _us(when: Any, what: str) -> int | None:
    if when is None:
        return None
    if isinstance(when, str):
        try:
            when = dt.datetime.fromisoformat(when)
        except ValueError:
            raise InvalidInput(f"{what} must be a date or time like 2025-01-31, got {when!r}") from None
    if isinstance(when, dt.datetime):
        if when.tzinfo is None:
            when = when.replace(tzinfo=dt.timezone.utc)
        return int(when.timestamp() * 1e6)
    if isinstance(when, dt.date):
        return int(dt.datetime(when.year, when.month, when.day, tzinfo=dt.timezone.utc).timestamp() * 1e6)
    raise InvalidInput(f"{what} must be a date, a datetime or an ISO string, got {type(when).__name__}")


def _run_ids(ws, run: Any) -> list[str] | None:
    if run is None:
        return None
    from ..tracking import session
    from ..tracking.run import Run

    if isinstance(run, Run):
        return ws.traces.descendants(run.id)
    if isinstance(run, str) and run.strip():
        return ws.traces.descendants(session.get_run(run).id)
    raise InvalidInput(f"run must be a Run or a run id, got {type(run).__name__} {run!r:.40}")


def priced_calls(*, run: Any = None, since: Any = None, until: Any = None, prompt: str | None = None):
    """Every recorded LLM call (in a run and the runs under it, a time window, or of a prompt), with its cost:
    a DataFrame of trace_id, span_id, run_id, model, prompt, time, status, the four token counts, cost_usd
    (NaN when unpriced) and priced."""
    import pandas as pd

    if prompt is not None and (not isinstance(prompt, str) or not prompt):
        raise InvalidInput(f"prompt must be a prompt name or version like 'support/3', got {prompt!r}")
    ws = workspace.current(create=False)
    rows = ws.traces.llm_spans(
        run_ids=_run_ids(ws, run), since=_us(since, "since"), until=_us(until, "until"), prompt=prompt
    )
    table = price_table(ws.config)
    records = []
    for r in rows:
        usage = Usage(r["input_tokens"], r["output_tokens"], r["cached_tokens"], r["reasoning_tokens"])
        c = table.cost(r["model"] or "", usage, when=r["start_time"] / 1e6)
        records.append(
            {
                "trace_id": r["trace_id"],
                "span_id": r["span_id"],
                "run_id": r["run_id"],
                "model": r["model"],
                "prompt": r["prompt"],
                "time": pd.Timestamp(r["start_time"], unit="us", tz="UTC"),
                "status": r["status"],
                "input_tokens": r["input_tokens"] or 0,
                "cached_tokens": r["cached_tokens"] or 0,
                "output_tokens": r["output_tokens"] or 0,
                "reasoning_tokens": r["reasoning_tokens"] or 0,
                "cost_usd": c.usd if c.usd is not None else float("nan"),
                "priced": c.usd is not None,
            }
        )
    cols = [
        "trace_id", "span_id", "run_id", "model", "prompt", "time", "status", "input_tokens", "cached_tokens",
        "output_tokens", "reasoning_tokens", "cost_usd", "priced",
    ]  # fmt: skip
    df = pd.DataFrame.from_records(records, columns=cols)
    df["time"] = pd.to_datetime(df["time"], utc=True)  # a datetime column even when there is no call
    df["cost_usd"] = df["cost_usd"].astype(float)
    df.attrs["price_version"] = table.version
    return df


def costs(
    by: str = "day", *, run: Any = None, since: Any = None, until: Any = None, prompt: str | None = None
):
    """LLM spending grouped ``by`` one of call, trace, run, prompt, model or day: calls, the token counts,
    cost_usd (priced calls only) and unpriced_calls. ``attrs["price_version"]`` names the price table used."""
    if by not in GROUPS:
        raise InvalidInput(f"by must be one of {', '.join(GROUPS)}, got {by!r}")
    df = priced_calls(run=run, since=since, until=until, prompt=prompt)
    version = df.attrs.get("price_version")
    if by == "call":
        return df
    key = {"trace": "trace_id", "run": "run_id", "prompt": "prompt", "model": "model", "day": "day"}[by]
    work = df.assign(
        day=df["time"].dt.strftime("%Y-%m-%d"), calls=1, unpriced_calls=(~df["priced"]).astype(int)
    )
    work[key] = work[key].fillna("(none)")
    out = (
        work.groupby(key, sort=True)[
            [
                "calls",
                "input_tokens",
                "cached_tokens",
                "output_tokens",
                "reasoning_tokens",
                "cost_usd",
                "unpriced_calls",
            ]
        ]  # fmt: skip
        .sum(min_count=0)
        .reset_index()
    )
    out.attrs["price_version"] = version
    return out


# -- budgets --------------------------------------------------------------------------------------------------------
@dataclass
class BudgetLine:
    period: str  # daily | monthly | run
    limit: float
    spent: float
    scope: str  # "2025-01-31", "2025-01", "run 01j…"

    @property
    def exceeded(self) -> bool:
        return self.spent > self.limit

    def describe(self) -> str:
        state = "over" if self.exceeded else "within"
        return f"{self.period} budget {state}: ${self.spent:.4f} of ${self.limit:.2f} ({self.scope})"


@dataclass
class BudgetStatus:
    """Spending against ``[llm.budget]``: one line per budget set; ``exceeded`` when any is over."""

    lines: list[BudgetLine] = field(default_factory=list)
    action: str = "warn"
    price_version: str | None = None

    @property
    def exceeded(self) -> bool:
        return any(line.exceeded for line in self.lines)

    def raise_for_budget(self) -> None:
        """Raise :class:`BudgetExceeded` (exit code 1) when a budget is spent."""
        over = [line.describe() for line in self.lines if line.exceeded]
        if over:
            raise BudgetExceeded("LLM budget spent: " + "; ".join(over) + " (see [llm.budget] in mlo.toml)")

    def to_dict(self) -> dict[str, Any]:
        return {
            "exceeded": self.exceeded,
            "action": self.action,
            "price_version": self.price_version,
            "budgets": [
                {
                    "period": x.period,
                    "limit_usd": x.limit,
                    "spent_usd": round(x.spent, 6),
                    "scope": x.scope,
                    "exceeded": x.exceeded,
                }  # fmt: skip
                for x in self.lines
            ],
        }

    def __str__(self) -> str:
        return "\n".join(x.describe() for x in self.lines) or "no budget set ([llm.budget] in mlo.toml)"

    def _repr_html_(self) -> str:
        from .render import budget_html

        return budget_html(self)


def budget_settings(config: dict) -> dict[str, Any]:
    llm = config.get("llm") if isinstance(config.get("llm"), dict) else {}
    cfg = llm.get("budget") or {}
    if not isinstance(cfg, dict):
        raise InvalidInput("mlo.toml [llm.budget] must be a table, e.g. daily = 5.0")
    for key in PERIODS:
        v = cfg.get(key)
        if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0):
            raise InvalidInput(f"mlo.toml [llm.budget] {key} must be a number of USD >= 0, got {v!r}")
    action = cfg.get("action", "warn")
    if action not in ("warn", "fail"):
        raise InvalidInput(f"mlo.toml [llm.budget] action must be 'warn' or 'fail', got {action!r}")
    return {**cfg, "action": action}


def budget(*, run: Any = None, gate: bool = False) -> BudgetStatus:
    """Spending against ``[llm.budget]`` now: today's, this month's, and the run's (``run``, else the active
    run). With ``gate``, raise :class:`BudgetExceeded` (a ``GateFailed``: exit 1, a failed pipeline stage) when
    a budget is spent."""
    if not isinstance(gate, bool):
        raise InvalidInput(f"gate must be True or False, got {gate!r}")
    ws = workspace.current(create=False)
    cfg = budget_settings(ws.config)
    status = BudgetStatus(action=cfg["action"])
    now = dt.datetime.now(dt.timezone.utc)
    if cfg.get("daily") is not None:
        day = now.date()
        df = priced_calls(since=day)
        status.lines.append(
            BudgetLine("daily", float(cfg["daily"]), float(df["cost_usd"].sum()), day.isoformat())
        )
        status.price_version = df.attrs.get("price_version")
    if cfg.get("monthly") is not None:
        first = now.date().replace(day=1)
        df = priced_calls(since=first)
        status.lines.append(
            BudgetLine("monthly", float(cfg["monthly"]), float(df["cost_usd"].sum()), first.strftime("%Y-%m"))
        )
        status.price_version = df.attrs.get("price_version")
    if cfg.get("run") is not None:
        if run is None:
            from ..tracking import session

            active = session.active_run()
            run = active.id if active is not None else None
        if run is not None:
            df = priced_calls(run=run)
            rid = run if isinstance(run, str) else run.id
            status.lines.append(
                BudgetLine("run", float(cfg["run"]), float(df["cost_usd"].sum()), f"run {rid[:10]}")
            )
            status.price_version = df.attrs.get("price_version")
    if gate:
        status.raise_for_budget()
    return status


class _Watch:
    """The budget check after each call: the first check of a period reads the store, later calls add their
    cost in memory; a warning is shown once per budget and period."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.warned: set[tuple[str, str]] = set()
        self.spent: dict[tuple[str, str], float] = {}
        self.checked: set[str] = set()

    def after_call(self, ws, model: str | None, usage: Usage, when_us: int, run_id: str | None) -> None:
        try:
            cfg = budget_settings(ws.config)
        except MloError:
            return
        periods = [p for p in PERIODS if cfg.get(p) is not None]
        if not periods:
            return
        c = price_table(ws.config).cost(model or "", usage, when=when_us / 1e6)
        now = dt.datetime.fromtimestamp(when_us / 1e6, tz=dt.timezone.utc)
        for period in periods:
            if period == "run":
                if run_id is None:
                    continue
                scope = run_id
                since: Any = None
            else:
                scope = now.strftime("%Y-%m-%d" if period == "daily" else "%Y-%m")
                since = now.date() if period == "daily" else now.date().replace(day=1)
            key = (period, scope)
            with self.lock:
                known = key in self.spent
            if not known:  # the first call of the period here: what the store holds, and this call
                df = priced_calls(since=since, run=run_id if period == "run" else None)
                total = float(df["cost_usd"].sum()) + (c.usd or 0.0)
            else:
                total = self.spent[key] + (c.usd or 0.0)
            with self.lock:
                self.spent[key] = total
                over = total > float(cfg[period]) and key not in self.warned
                if over:
                    self.warned.add(key)
            if over:
                line = BudgetLine(period, float(cfg[period]), total, scope)
                warnings.warn(
                    f"mlo: LLM {line.describe()}; "
                    + (
                        'further calls are refused ([llm.budget] action = "fail")'
                        if cfg["action"] == "fail"
                        else 'set [llm.budget] action = "fail" to stop further calls'
                    ),  # fmt: skip
                    BudgetWarning,
                    stacklevel=2,
                )

    def refuse_if_spent(self, ws) -> None:
        """With ``action = "fail"``, refuse a call (:class:`BudgetExceeded`) once a budget is spent: the first
        call of a day asks the store, later ones what the calls since added up to."""
        try:
            cfg = budget_settings(ws.config)
        except MloError:
            return
        if cfg["action"] != "fail" or not any(cfg.get(p) is not None for p in PERIODS):
            return
        today = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d")
        with self.lock:
            spent = any(k[1] in (today, today[:7]) or k[0] == "run" for k in self.warned)
            checked = today in self.checked
            self.checked.add(today)
        if spent or not checked:
            budget(gate=True)

    def reset(self) -> None:
        with self.lock:
            self.warned.clear()
            self.spent.clear()
            self.checked.clear()


WATCH = _Watch()
