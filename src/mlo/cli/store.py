"""``mlo doctor`` and ``mlo gc``: check a workspace, and remove what is safe to remove.

``mlo doctor`` exits with 3 when it finds a fault of the store (2 for invalid settings), 0 otherwise: warnings
(blobs nothing refers to, leftover temp files) are for ``mlo gc``, not faults.
"""

from __future__ import annotations

import json
import re
import sys

import click

from . import main

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """Seconds from ``"90"``, ``"90s"``, ``"30m"``, ``"24h"`` or ``"7d"``."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text or "")
    if m is None:
        raise click.BadParameter(f"{text!r} is not a duration: write e.g. 0, 90s, 30m, 24h or 7d")
    return float(m.group(1)) * _UNITS[m.group(2) or "s"]


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


@main.command("doctor")
@click.option(
    "--verify", is_flag=True, help="Also re-hash every blob against its digest (reads all the data)."
)
@click.option("--quick", is_flag=True, help="SQLite's quick_check instead of the full integrity_check.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def doctor_cmd(verify: bool, quick: bool, fmt: str) -> None:
    """Check the workspace without changing it: database integrity and schema, missing and unreferenced blobs,
    temp files left by killed writes, model versions against their audit records."""
    from ..store.doctor import examine

    report = examine(verify=verify, quick=quick)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
    else:
        click.echo(f"mlo doctor: {report.home}  (store {report.store}, blobs {report.artifacts})")
        for f in report.findings:
            level = {"ok": "ok", "warning": "warning", "fault": "FAULT"}[f.level]
            click.echo(f"  {level:<8} {f.check:<11} {f.message}")
            for d in f.details:
                click.echo(f"  {'':<8} {'':<11}   {d}")
        faults = sum(f.level == "fault" for f in report.findings)
        verdict = "healthy" if report.healthy else f"{faults} fault(s)"
        click.echo(f"{verdict} ({report.seconds:.2f} s)")
    sys.exit(report.exit_code)


@main.command("gc")
@click.option("--dry-run", "-n", is_flag=True, help="Only say what would be removed.")
@click.option(
    "--grace",
    default="24h",
    show_default=True,
    help="Keep blobs written more recently than this (their record may be on its way): 0, 30m, 24h, 7d.",
)
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
def gc_cmd(dry_run: bool, grace: str, fmt: str) -> None:
    """Remove temp files of writes that were cut short and blobs that no run, snapshot, report, model version
    or pipeline cache entry refers to. Safe while other processes write."""
    from .. import workspace
    from ..store.gc import collect

    seconds = parse_duration(grace)
    ws = workspace.current(create=False)
    report = collect(ws, grace=seconds, dry_run=dry_run)
    if fmt == "json":
        click.echo(json.dumps(report.to_dict(), indent=2))
        return
    verb = "would remove" if dry_run else "removed"
    for s in report.steps:
        kept = f"; kept {s.kept}" if s.kept else ""
        click.echo(f"  {s.name:<28} found {s.found}, {verb} {s.removed} ({_size(s.bytes)}){kept}")
    click.echo(f"mlo gc: {verb} {_size(report.removed_bytes)} in {report.seconds:.2f} s (grace {grace})")
