"""``mlo monitor NAME``, ``mlo monitor check`` and ``mlo monitor alerts``: production monitoring from a terminal,
cron or CI."""

from __future__ import annotations

import json
import sys

import click

from . import main
from .output import echo, emit_frame, emit_json, format_option


class _MonitorGroup(click.Group):
    """``mlo monitor NAME …`` runs the report; ``check`` and ``alerts`` are subcommands."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and not args[0].startswith("-"):
            args = ["report", *args]
        return super().parse_args(ctx, args)


@main.group("monitor", cls=_MonitorGroup, invoke_without_command=False)
def monitor_group() -> None:
    """Monitor served models: `mlo monitor NAME` (a report per window), `mlo monitor check` (alert rules),
    `mlo monitor alerts` (what fired)."""


_window = click.option(
    "--window",
    "-w",
    help="A duration (1h, 30min, 1d) or a record count (5000 rows); default from mlo.toml, else 1h.",
)
_since_opt = click.option(
    "--since", help="Only records since then: a duration back from now (24h, 7d) or a date."
)


@monitor_group.command("report")
@click.argument("name")
@_window
@_since_opt
@click.option("--until", help="Only records before this date/time.")
@click.option("--version", "-v", help="The version whose training data is the reference.")
@click.option("--reference", "-r", help="A snapshot to compare with instead of the training data.")
@click.option("--html", "html_path", type=click.Path(dir_okay=False), help="Also write the report as HTML.")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json", "csv"]), default="text", show_default=True
)
@click.option("--no-save", is_flag=True, help="Do not store the report in the workspace.")
def report_cmd(name, window, since, until, version, reference, html_path, fmt, no_save) -> None:
    """Drift, quality, latency and errors of model NAME per window of its prediction log."""
    from ..monitor.reporting import report
    from ..monitor.windows import parse_since

    rep = report(
        name,
        window=window,
        since=parse_since(since),
        until=until,
        version=version,
        reference=reference,
        save=not no_save,
    )
    if html_path:
        rep.to_html(html_path)
    if fmt == "json":
        emit_json(rep.to_dict())
    elif fmt == "csv":
        echo(rep.windows.to_csv(index=False), nl=False)
    else:
        echo(rep.to_text())
        if html_path:
            echo(f"report written to {html_path}")


@monitor_group.command("check")
@click.argument("names", nargs=-1)
@_window
@_since_opt
@click.option("--dry-run", "-n", is_flag=True, help="Say what would fire; run no action, store no alert.")
@format_option("text", "json")
def check_cmd(names, window, since, dry_run, fmt) -> None:
    """Run the alert rules of mlo.toml once (for cron or CI). Exit code 1 when an alert fires, 0 otherwise."""
    from ..monitor.alerts import check
    from ..monitor.windows import parse_since

    fired = check(list(names) or None, window=window, since=parse_since(since), dry_run=dry_run)
    if fmt == "json":
        emit_json({"dry_run": dry_run, "fired": [alert.to_dict() for alert in fired]})
    else:
        for alert in fired:
            echo(("would fire: " if dry_run else "") + str(alert))
        if not fired:
            echo("no alert")
    sys.exit(1 if fired else 0)


@monitor_group.command("alerts")
@click.argument("name", required=False)
@click.option("--limit", "-n", type=int, default=50, show_default=True)
@format_option("table", "csv", "json")
def alerts_cmd(name, limit, fmt) -> None:
    """Alerts that fired, newest first, with what their actions did."""
    from ..monitor.alerts import alerts
    from ..report.text import table

    def text(df):
        if df.empty:
            return "no alerts"
        rows = []
        for r in df.itertuples():
            done = ", ".join(f"{a['type']} {'ok' if a['ok'] else 'FAILED'}" for a in json.loads(r.actions))
            rows.append([f"{r.time:%Y-%m-%d %H:%M:%S}", r.model, r.rule, r.message, done])
        return table(["time", "model", "rule", "message", "actions"], rows)

    emit_frame(alerts(name, limit=limit), fmt, text)
