"""``mlo problem``, ``mlo status`` and ``mlo maturity``: the project's problem, where it stands against it, and its
maturity level measured from its records.

``mlo status --gate`` exits with 1 when an objective or constraint is broken (for CI); ``mlo maturity --min N``
exits with 1 below level N.
"""

from __future__ import annotations

import sys

import click

from . import main
from .output import echo, emit_json, format_option


@main.command("problem")
@format_option("text", "json")
def problem_cmd(fmt: str) -> None:
    """Show the problem in force ([problem] in mlo.toml): objective, target, guardrails, constraints."""
    from ..errors import NotFound
    from ..governance.problem import current

    p = current()
    if p is None:
        raise NotFound(
            'no [problem] in mlo.toml: add objective = "…" and target = { metric = "roc_auc", min = 0.8 }'
        )
    if fmt == "json":
        emit_json(p.to_dict())
        return
    echo(p.objective)
    if p.target:
        echo(f"  target      {p.target.describe()}")
    for g in p.guardrails:
        echo(f"  guardrail   {g} (tolerance {p.tolerance:g})")
    for key, value in p.constraints.items():
        echo(f"  constraint  {key} = {value}")
    if p.owner:
        echo(f"  owner       {p.owner}")


@main.command("status")
@click.option("--model", help="The registered model to judge (default: the problem's model).")
@click.option("--gate", is_flag=True, help="Exit with 1 when an objective or constraint is broken.")
@format_option("text", "json")
def status_cmd(model: str | None, gate: bool, fmt: str) -> None:
    """Each objective and constraint of the problem against the production model and the latest runs."""
    from ..governance.status import status

    s = status(model)
    if fmt == "json":
        emit_json(s.to_dict())
    else:
        echo(str(s))
    if gate and s.broken:
        echo(f"mlo: {len(s.broken)} broken: {', '.join(i.name for i in s.broken)}", err=True)
        sys.exit(1)


@main.command("maturity")
@click.option("--min", "minimum", type=click.IntRange(0, 3), help="Exit with 1 below this level.")
@format_option("text", "json")
def maturity_cmd(minimum: int | None, fmt: str) -> None:
    """The project's MLOps maturity level (0–3) from its own records, with the next steps."""
    from ..governance.maturity import maturity

    m = maturity()
    if fmt == "json":
        emit_json(m.to_dict())
    else:
        echo(str(m))
    if minimum is not None and m.level < minimum:
        sys.exit(1)
