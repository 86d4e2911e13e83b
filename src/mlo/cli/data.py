"""``mlo snapshot``, ``mlo snapshots``, ``mlo restore`` and ``mlo lineage``."""

from __future__ import annotations

from pathlib import Path

import click

from ..store.addresses import short
from . import main
from .output import echo, emit_frame, emit_json, format_option


def _open():
    from .. import workspace

    workspace.current(create=False)


@main.command("snapshot")
@click.argument("path", type=click.Path(exists=True))
@click.option("--name", "-n", help="Snapshot name (default: the file or folder name).")
@format_option("text", "json")
def snapshot_cmd(path: str, name: str | None, fmt: str) -> None:
    """Snapshot a file or folder (a data file, a directory of images, …) as a new version."""
    from ..data.snapshots import snapshot

    snap = snapshot(path, name or Path(path).resolve().name.replace(" ", "_"))
    if fmt == "json":
        emit_json(snap.to_dict())
    else:
        echo(f"{snap.ref}  {snap.kind}  {short(snap.digest)}  {snap.nbytes:,} bytes")


@main.command("snapshots")
@click.argument("name", required=False)
@format_option("table", "csv", "json")
def snapshots_cmd(name: str | None, fmt: str) -> None:
    """List snapshot versions (of NAME)."""
    from ..data.snapshots import snapshots
    from ..report.text import frame_text

    _open()
    df = snapshots(name)

    def text(df):
        if df.empty:
            return "no snapshots yet: mlo.snapshot(df, 'name') in Python, or mlo snapshot PATH"
        show = df.assign(
            digest=df["digest"].map(short), created_at=df["created_at"].dt.strftime("%Y-%m-%d %H:%M")
        )
        if "run_id" in show.columns:
            from ..tracking.short_ids import short_ids

            prefixes = short_ids(show["run_id"])
            show["run_id"] = [prefixes.get(r, "") if isinstance(r, str) else "" for r in show["run_id"]]
        return frame_text(show, [c for c in show.columns if c != "id"])

    emit_frame(df, fmt, text)


@main.command("restore")
@click.argument("ref")
@click.option("--to", "dest", type=click.Path(), help="Where to write it (default: .mlo/checkouts/NAME@V).")
@format_option("text", "json")
def restore_cmd(ref: str, dest: str | None, fmt: str) -> None:
    """Write a snapshot back to disk: a file or folder as it was, a table as Parquet."""
    from ..data.snapshots import get_snapshot

    _open()
    snap = get_snapshot(ref)
    if snap.kind in ("file", "folder"):
        out = snap.load(to=dest)
    else:
        from .. import workspace

        ws = workspace.current(create=False)
        ext = ".npy" if snap.format == "npy" else ".parquet"
        out = Path(dest) if dest else ws.home / "checkouts" / f"{snap.name}@{snap.version}{ext}"
        ws.blobs.copy_to(snap.blob, out)
    if fmt == "json":
        emit_json({"snapshot": snap.ref, "path": str(out)})
    else:
        echo(str(out))


@main.command("lineage")
@click.argument("ref")
@click.option("--depth", "-d", type=int, help="Follow at most this many edges each way.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "dot", "json", "svg", "html"]),
    default="text",
    show_default=True,
)
@click.option(
    "--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of printing."
)
def lineage_cmd(ref: str, depth: int | None, fmt: str, output: str | None) -> None:
    """Show what REF came from and what came of it (REF: run id, snapshot:NAME[@V], model:NAME@ALIAS)."""
    from ..data.lineage import lineage

    _open()
    lin = lineage(ref, depth=depth)
    text = {
        "text": lin.to_text,
        "dot": lin.to_dot,
        "json": lin.to_json,
        "svg": lin.to_svg,
        "html": lambda: "<!doctype html><meta charset=utf-8>" + lin._repr_html_(),
    }[fmt]()
    if output:
        Path(output).write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")
        echo(f"wrote {output}")
    else:
        echo(text)
