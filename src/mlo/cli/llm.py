"""``mlo llm``: traces, prompts, prices, costs and the budget gate from the terminal.

``mlo llm budget --gate`` exits with 1 when a budget of ``[llm.budget]`` is spent (a pipeline step that stops
spending), 2 on bad input, 3 on a store fault.
"""

from __future__ import annotations

import click

from . import main
from .output import echo, emit_frame, emit_json, format_option

_FORMAT = format_option("table", "csv", "json")


def _open():
    from .. import workspace

    workspace.current(create=False)


@main.group("llm")
def llm() -> None:
    """LLM calls: traces, prompts, prices, costs and budgets."""


@llm.command("traces")
@click.option("--where", "-w", help='A filter, e.g. "status = \'error\'" or "cost_usd > 0.01".')
@click.option("--run", "-r", help="Only the traces of this run (and the runs under it).")
@click.option("--name", help="Only traces with this name.")
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@_FORMAT
def traces_cmd(where, run, name, limit, fmt) -> None:
    """List recorded traces, newest first."""
    from ..llm.query import traces

    _open()
    df = traces(where, run=run, name=name, limit=limit)
    cols = ["trace_id", "name", "status", "start_time", "duration", "llm_calls", "input_tokens", "output_tokens",
            "cost_usd", "models", "prompts"]  # fmt: skip
    if fmt == "table":
        df = df[cols].assign(trace_id=df["trace_id"].str[:10])
    emit_frame(df, fmt, empty="No traces.")


@llm.command("trace")
@click.argument("trace_id")
@format_option("text", "json")
def trace_cmd(trace_id: str, fmt: str) -> None:
    """Show one trace as a tree of spans."""
    from ..llm.query import get_trace

    _open()
    t = get_trace(trace_id)
    if fmt == "json":
        emit_json(t.to_dict())
        return
    cost = t.cost
    echo(f"{t.name} [{t.status}] {len(t.spans)} spans, {t.duration or 0:.3f} s, "
         f"{'unpriced' if cost is None else f'${cost:.6f}'}  trace {t.id}")  # fmt: skip

    def show(span, depth: int) -> None:
        usage = span.usage
        tokens = f"  {usage.input or 0} in / {usage.output or 0} out" if usage.input is not None else ""
        err = f"  ! {span.error}" if span.error else ""
        echo(
            f"{'  ' * depth}- {span.name} ({span.kind}, {span.status}, {span.duration or 0:.3f} s){tokens}{err}"
        )
        for child in span.children:
            show(child, depth + 1)

    for root in t.roots:
        show(root, 1)


@llm.command("prompts")
@click.argument("name", required=False)
@_FORMAT
def prompts_cmd(name, fmt) -> None:
    """List registered prompt versions (of NAME)."""
    from ..llm.prompts import versions

    _open()
    emit_frame(versions(name), fmt, empty="No prompts.")


@llm.command("diff")
@click.argument("old")
@click.argument("new")
@format_option("text", "json")
def diff_cmd(old, new, fmt) -> None:
    """What changed between two prompt versions or aliases (support/1 support@production)."""
    from ..llm.prompts import diff

    _open()
    d = diff(old, new)
    if fmt == "json":
        emit_json(d.to_dict())
    else:
        echo(str(d))


@llm.command("costs")
@click.option("--by", type=click.Choice(["call", "trace", "run", "prompt", "model", "day"]), default="day",
              show_default=True)  # fmt: skip
@click.option("--run", "-r", help="Only the calls of this run (and the runs under it).")
@click.option("--since", help="Only calls from this date or time on (2025-01-31).")
@click.option("--prompt", "-p", help="Only calls of this prompt (support) or prompt version (support/3).")
@_FORMAT
def costs_cmd(by, run, since, prompt, fmt) -> None:
    """What LLM calls cost, grouped by call, trace, run, prompt, model or day."""
    from ..llm.spending import costs

    _open()
    df = costs(by, run=run, since=since, prompt=prompt)
    emit_frame(df, fmt, empty="No LLM calls.")
    if fmt == "table":
        echo(f"prices: table {df.attrs.get('price_version')}")


@llm.command("budget")
@click.option("--run", "-r", help="The run whose spending [llm.budget] run = … limits.")
@click.option("--gate", is_flag=True, help="Exit with 1 when a budget is spent.")
@format_option("text", "json")
def budget_cmd(run, gate, fmt) -> None:
    """Spending against [llm.budget] in mlo.toml (today, this month, the run)."""
    from ..llm.spending import budget

    _open()
    status = budget(run=run)
    if fmt == "json":
        emit_json(status.to_dict())
    else:
        echo(str(status))
    if gate:
        status.raise_for_budget()


@llm.command("prices")
@click.argument("model", required=False)
@_FORMAT
def prices_cmd(model, fmt) -> None:
    """The price table in force (USD per million tokens), or the dated prices of MODEL."""
    from ..llm.pricing import prices

    df = prices(model)
    emit_frame(df, fmt, empty="No price for that model.")
    if fmt == "table":
        echo(f"price table {df.attrs.get('version')}")
