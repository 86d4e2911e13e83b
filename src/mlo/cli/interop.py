"""``mlo import mlflow``: bring an MLflow tracking store's runs into the workspace (see
:mod:`mlo.interop.mlflow_import`)."""

from __future__ import annotations

import click

from . import main
from .output import echo, emit_json, format_option


@main.group("import")
def import_group() -> None:
    """Import runs from another tool's store."""


@import_group.command("mlflow")
@click.option(
    "--tracking-uri", required=True, help="The MLflow store: sqlite:///mlflow.db, ./mlruns, http://host:5000."
)
@click.option(
    "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable; default all)."
)
@click.option("--no-artifacts", is_flag=True, help="Copy runs without their artifacts.")
@format_option("text", "json")
def import_mlflow_cmd(tracking_uri: str, experiments: tuple[str, ...], no_artifacts: bool, fmt: str) -> None:
    """Copy MLflow experiments and runs (params, tags, full metric histories, artifacts) into this workspace.
    Runs imported before are skipped, so it can run again to pick up new ones."""
    from ..interop.mlflow_import import import_mlflow

    summary = import_mlflow(tracking_uri, list(experiments) or None, artifacts=not no_artifacts)
    if fmt == "json":
        emit_json(summary.to_dict())
    else:
        echo(str(summary))
