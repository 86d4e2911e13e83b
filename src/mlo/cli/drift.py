"""``mlo drift REF CUR``: drift of CUR against REF from the terminal or CI; exit code 1 when it drifted."""

from __future__ import annotations

import sys

import click

from . import main
from .output import echo, emit_json, format_option


@main.command("drift")
@click.argument("reference")
@click.argument("current")
@click.option("--columns", "-c", help="Comma-separated columns to compare (default: all).")
@click.option("--method", "-m", default="auto", show_default=True, help="A drift method for every column.")
@click.option(
    "--threshold", "-t", type=float, help="Drift threshold (p-value or distance; default per method)."
)
@click.option("--target", help="Target column, reported as target drift.")
@click.option(
    "--prediction", "-p", help="Prediction column, reported as prediction drift (part of the gate)."
)
@click.option(
    "--correction", type=click.Choice(["bonferroni", "fdr_bh"]), help="Multiple-testing correction."
)
@click.option(
    "--drift-share",
    type=float,
    default=0.5,
    show_default=True,
    help="Share of drifted columns that makes dataset drift.",
)
@click.option(
    "--profile", is_flag=True, help="Compare with REF's stored profile instead of loading its rows."
)
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write the report as HTML.")
@format_option("text", "json")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json.")
@click.option("--no-save", is_flag=True, help="Do not store the report in the workspace.")
def drift_cmd(
    reference,
    current,
    columns,
    method,
    threshold,
    target,
    prediction,
    correction,
    drift_share,
    profile,
    html_path,
    fmt,
    as_json,
    no_save,
) -> None:
    """Compare CURRENT with REFERENCE, each a snapshot ref (train, train@3) or a .parquet/.csv file.

    Exit code 0 without drift, 1 on dataset (or prediction) drift, 2 on bad input.
    """
    from ..drift import drift

    report = drift(
        reference,
        current,
        columns=[c.strip() for c in columns.split(",") if c.strip()] if columns else None,
        method=method,
        threshold=threshold,
        prediction=prediction,
        target=target,
        correction=correction,
        mode="profile" if profile else "exact",
        drift_share=drift_share,
        save=not no_save,
    )
    if html_path:
        report.to_html(html_path)
    if as_json or fmt == "json":
        emit_json(report.to_dict())
    else:
        echo(report.to_text())
        if html_path:
            echo(f"html       {html_path}")
    if not report.passed:
        from ..errors import GateFailed

        sys.exit(GateFailed.exit_code)
