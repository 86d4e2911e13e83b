"""``mlo models``, ``mlo promote``, ``mlo rollback``, ``mlo audit`` and ``mlo card``: the model registry.

``mlo promote`` exits with 1 when the alias's policy refuses the version (a gate), 2 on bad input.
"""

from __future__ import annotations

import click

from . import main
from .output import echo, emit_frame, emit_json, format_option


def _open():
    from .. import workspace

    workspace.current(create=False)


_FORMAT = format_option("table", "csv", "json")


@main.command("models")
@click.argument("name", required=False)
@_FORMAT
def models_cmd(name: str | None, fmt: str) -> None:
    """List registered model versions (of NAME) with their aliases and run metrics."""
    from ..registry import models
    from ..report.models import models_text

    _open()
    emit_frame(models(name), fmt, models_text)


@main.command("promote")
@click.argument("name")
@click.argument("version")
@click.argument("alias")
@click.option("--reason", "-r", help="Why, for the audit log.")
@click.option(
    "--force", is_flag=True, help="Promote although the policy is not met (recorded as an override)."
)
@format_option("text", "json")
def promote_cmd(name: str, version: str, alias: str, reason: str | None, force: bool, fmt: str) -> None:
    """Point ALIAS of model NAME at VERSION (a number or another alias) if the alias's policy is met.

    Exits with 1 when the policy refuses, listing the missing evidence.
    """
    from ..registry import promote

    _open()
    event = promote(name, version, alias, reason=reason, force=force)
    if fmt == "json":
        emit_json({"changed": event is not None, "event": event.to_dict() if event is not None else None})
        return
    if event is None:
        echo(f"{name}@{alias} already points at version {version}")
        return
    if event.forced:
        echo(f"{name}@{alias} → v{event.to_version} (forced; overridden: {'; '.join(event.missing)})")
    else:
        evidence = f" (evidence: {', '.join(event.evidence)})" if event.evidence else ""
        echo(f"{name}@{alias} → v{event.to_version}{evidence}")


@main.command("rollback")
@click.argument("name")
@click.argument("alias")
@click.option("--reason", "-r", help="Why, for the audit log.")
@format_option("text", "json")
def rollback_cmd(name: str, alias: str, reason: str | None, fmt: str) -> None:
    """Point ALIAS of model NAME back at the version it held before its latest change."""
    from ..registry import rollback

    _open()
    event = rollback(name, alias, reason=reason)
    if fmt == "json":
        emit_json(event.to_dict())
        return
    target = "removed" if event.to_version is None else f"v{event.to_version}"
    was = "none" if event.from_version is None else f"v{event.from_version}"
    echo(f"{name}@{alias}: {was} → {target}")


@main.command("audit")
@click.argument("name", required=False)
@click.option("--limit", "-n", type=int, help="Only the latest N events.")
@_FORMAT
def audit_cmd(name: str | None, limit: int | None, fmt: str) -> None:
    """The audit log of the registry (of model NAME): registrations, alias changes, policy changes."""
    from ..registry import audit
    from ..report.models import audit_text

    _open()
    emit_frame(audit(name, limit=limit), fmt, audit_text)


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
        echo(f"wrote {path}")
        return
    if fmt == "html":
        echo(card.to_html(), nl=False)
    elif fmt == "json":
        emit_json(card.to_dict())
    else:
        echo(card.to_markdown(), nl=False)
