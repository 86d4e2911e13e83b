"""``mlo features`` and ``mlo materialize``: feature views and their online values."""

from __future__ import annotations

import click

from . import main
from .output import echo, emit_frame, emit_json, format_option


@main.command("features")
@click.argument("name", required=False)
@format_option("table", "csv", "json")
def features_cmd(name: str | None, fmt: str) -> None:
    """List feature view versions (of NAME) with the snapshot each reads."""
    from .. import workspace
    from ..features.views import feature_views
    from ..report.text import frame_text

    workspace.current(create=False)
    df = feature_views(name)

    def text(df):
        if df.empty:
            return "no feature views yet: define one with @mlo.feature(...) in Python (docs/features.md)"
        show = df.assign(
            digest=df["digest"].str[:12], created_at=df["created_at"].dt.strftime("%Y-%m-%d %H:%M")
        )
        return frame_text(show, [c for c in show.columns if c != "id"])

    emit_frame(df, fmt, text)


@main.command("materialize")
@click.argument("views", nargs=-1)
@click.option("--as-of", "as_of", help="Use only source rows at or before this time (ISO date or time).")
@format_option("text", "json")
def materialize_cmd(views: tuple[str, ...], as_of: str | None, fmt: str) -> None:
    """Write each entity's latest feature values (of VIEWS, default all) to the online table serving reads."""
    from .. import workspace
    from ..features.online import materialize

    workspace.current(create=False)
    done = materialize(list(views) or None, as_of=as_of)
    if fmt == "json":
        emit_json(done)
    else:
        for view, n in done.items():
            echo(f"{view}: {n:,} entities")
