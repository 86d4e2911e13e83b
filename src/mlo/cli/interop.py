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
@click.option("--no-models", is_flag=True, help="Leave the registered models out.")
@click.option(
    "--trust-models",
    is_flag=True,
    help="Load model files that may run code (pickles): only from a store you trust.",
)
@format_option("text", "json")
def import_mlflow_cmd(
    tracking_uri: str,
    experiments: tuple[str, ...],
    no_artifacts: bool,
    no_models: bool,
    trust_models: bool,
    fmt: str,
) -> None:
    """Copy MLflow experiments and runs (params, tags, full metric histories, artifacts) and registered models
    (versions, aliases) into this workspace. What was imported before is skipped, so it can run again to pick
    up what is new."""
    from ..interop.mlflow_import import import_mlflow

    summary = import_mlflow(
        tracking_uri,
        list(experiments) or None,
        artifacts=not no_artifacts,
        models=not no_models,
        trust_models=trust_models,
    )
    if fmt == "json":
        emit_json(summary.to_dict())
    else:
        echo(str(summary))


@main.group("export")
def export_group() -> None:
    """Export runs and models to another tool's store."""


@export_group.command("mlflow")
@click.option(
    "--tracking-uri", required=True, help="The MLflow store: sqlite:///mlflow.db, http://host:5000."
)
@click.option(
    "--experiment", "experiments", multiple=True, help="Only this experiment (repeatable; default all)."
)
@click.option("--no-artifacts", is_flag=True, help="Write runs without their artifacts.")
@click.option("--no-models", is_flag=True, help="Leave the registered models out.")
@format_option("text", "json")
def export_mlflow_cmd(
    tracking_uri: str, experiments: tuple[str, ...], no_artifacts: bool, no_models: bool, fmt: str
) -> None:
    """Write this workspace's runs (params, tags, metric histories, artifacts) and scikit-learn model versions
    (MLmodel format, with their aliases) into an MLflow store. What was exported before is skipped."""
    from ..interop.mlflow_export import export_mlflow

    summary = export_mlflow(
        tracking_uri, list(experiments) or None, artifacts=not no_artifacts, models=not no_models
    )
    if fmt == "json":
        emit_json(summary.to_dict())
    else:
        echo(str(summary))


@export_group.command("otlp")
@click.option(
    "--endpoint",
    help="The OTLP/HTTP endpoint, e.g. http://localhost:4318 (default OTEL_EXPORTER_OTLP_ENDPOINT).",
)
@click.option(
    "--what",
    type=click.Choice(["runs", "traces", "all"]),
    default="all",
    show_default=True,
    help="Runs (pipeline stages as children of their pipeline run), LLM traces, or both.",
)
@click.option("--experiment", "experiments", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("--since", help="Only traces that started since then (an ISO date or time).")
@format_option("text", "json")
def export_otlp_cmd(endpoint, what, experiments, since, fmt) -> None:
    """Send runs and LLM traces to a tracing backend as OpenTelemetry spans (OTLP/HTTP)."""
    from .. import workspace
    from ..otlp import export_runs, export_traces

    workspace.current(create=False)
    out = {}
    if what in ("runs", "all"):
        out["runs"] = export_runs(endpoint, list(experiments) or None)
    if what in ("traces", "all"):
        out["traces"] = export_traces(endpoint, since=since)
    if fmt == "json":
        emit_json({k: v.to_dict() for k, v in out.items()})
    else:
        for k, v in out.items():
            echo(f"{k}: {v}")
