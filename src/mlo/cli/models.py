"""``mlo models``, ``mlo promote``, ``mlo rollback``, ``mlo audit`` and ``mlo card``: the model registry.

``mlo promote`` exits with 1 when the alias's policy refuses the version (a gate), 2 on bad input.
"""

from __future__ import annotations

import json

import click

from . import main


def _open():
    from .. import workspace

    workspace.current(create=False)


def _frame_out(df, fmt: str, text) -> None:
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", indent=2))
    else:
        click.echo(text(df))


_FORMAT = click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)


@main.command("models")
@click.argument("name", required=False)
@_FORMAT
def models_cmd(name: str | None, fmt: str) -> None:
    """List registered model versions (of NAME) with their aliases and run metrics."""
    from ..registry import models
    from ..report.models import models_text

    _open()
    _frame_out(models(name), fmt, models_text)


@main.command("promote")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@click.option("--reason", "-r", help="Why, for the audit log.")
@click.option(
    "--force", is_flag=True, help="Promote although the policy is not met (recorded as an override)."
)
def promote_cmd(name: str, version: str, alias: str, reason: str | None, force: bool) -> None:
    """Point ALIAS of model NAME at VERSION (a number or another alias) if the alias's policy is met.

    Exits with 1 when the policy refuses, listing the missing evidence.
    """
    from ..registry import promote

    _open()
    event = promote(name, version, alias, reason=reason, force=force)
    if event is None:
        click.echo(f"{name}@{alias} already points at version {version}")
        return
    if event.forced:
        click.echo(f"{name}@{alias} → v{event.to_version} (forced; overridden: {'; '.join(event.missing)})")
    else:
        evidence = f" (evidence: {', '.join(event.evidence)})" if event.evidence else ""
        click.echo(f"{name}@{alias} → v{event.to_version}{evidence}")


@main.command("rollback")
@click.argument("name")
@click.argument("alias")
@click.option("--reason", "-r", help="Why, for the audit log.")
def rollback_cmd(name: str, alias: str, reason: str | None) -> None:
    """Point ALIAS of model NAME back at the version it held before its latest change."""
    from ..registry import rollback

    _open()
    event = rollback(name, alias, reason=reason)
    target = "removed" if event.to_version is None else f"v{event.to_version}"
    was = "none" if event.from_version is None else f"v{event.from_version}"
    click.echo(f"{name}@{alias}: {was} → {target}")


@main.command("audit")
@click.argument("name", required=False)
@click.option("--limit", "-n", type=int, help="Only the latest N events.")
@_FORMAT
def audit_cmd(name: str | None, limit: int | None, fmt: str) -> None:
    """The audit log of the registry (of model NAME): registrations, alias changes, policy changes."""
    from ..registry import audit
    from ..report.models import audit_text

    _open()
    _frame_out(audit(name, limit=limit), fmt, audit_text)


@main.command("card")
@click.argument("name")
@click.argument("version", required=False)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False),
    help="Write to this file (.html or .md) instead of stdout.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["md", "html", "json"]), help="Format on stdout (default md)."
)
def card_cmd(name: str, version: str | None, output: str | None, fmt: str | None) -> None:
    """The model card of NAME VERSION (a number or an alias; or NAME as churn@production)."""
    from ..registry import model_card

    _open()
    card = model_card(name, version)
    if output:
        path = card.save(output)
        click.echo(f"wrote {path}")
        return
    if fmt == "html":
        click.echo(card.to_html(), nl=False)
    elif fmt == "json":
        click.echo(json.dumps(card.to_dict(), indent=2, default=str))
    else:
        click.echo(card.to_markdown(), nl=False)
