"""The ``mlo`` command line: a thin click layer over the Python API (one module per capability).

Exit codes: 0 success, 1 a gate failed (validation, drift), 2 bad usage or input, 3 a store fault (the database
or the blob store is corrupt, unreachable, full or read-only, or its schema is newer than this mlo).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ..errors import MloError


class _Group(click.Group):
    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MloError as exc:
            click.echo(f"mlo: {exc}", err=True)
            sys.exit(exc.exit_code)
        except (
            OSError
        ) as exc:  # a full, read-only or failing disk outside the store (an output file, a checkout)
            import errno

            from ..store.faults import os_fault

            disk = {errno.ENOSPC, errno.EFBIG, errno.EROFS, errno.EIO, getattr(errno, "EDQUOT", -1)}
            err = os_fault(exc, exc.filename or "a file", "writing") if exc.errno in disk else None
            if err is None:
                raise
            click.echo(f"mlo: {err}", err=True)
            sys.exit(err.exit_code)


@click.group(cls=_Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="mlo-workbench", prog_name="mlo")
def main() -> None:
    """mlo: experiment tracking, data snapshots, models and notebook pipelines, from the notebook to CI."""


@main.command()
@click.argument("path", default=".", type=click.Path(file_okay=False))
def init(path: str) -> None:
    """Create (or open) a workspace in PATH/.mlo."""
    from .. import workspace

    ws = workspace.init(path)
    click.echo(f"mlo workspace at {ws.home}")


@main.command("runs")
@click.option("--experiment", "-e", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("--where", "-w", help="Filter, e.g. \"metrics.acc > 0.8 and params.model = 'rf'\".")
@click.option("--columns", "-c", help="Comma-separated columns to show (patterns like 'metrics.*' work).")
@click.option("--order-by", "-o", help="Column to sort by, e.g. 'metrics.acc desc'.")
@click.option("--limit", "-n", type=int, help="At most this many runs.")
@click.option(
    "--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table", show_default=True
)
def runs_cmd(experiment, where, columns, order_by, limit, fmt) -> None:
    """List runs with their params, metrics and status."""
    from .. import workspace
    from ..report.text import runs_text
    from ..tracking.query import runs

    workspace.current(create=False)
    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    df = runs(experiment=list(experiment) or None, where=where, columns=cols, order_by=order_by, limit=limit)
    if fmt == "csv":
        click.echo(df.to_csv(index=False), nl=False)
    elif fmt == "json":
        click.echo(df.to_json(orient="records", date_format="iso", indent=2))
    else:
        click.echo(runs_text(df, max_rows=None))


@main.command()
@click.argument("run_id")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.option("--cells", is_flag=True, help="Print the source of every captured cell.")
def show(run_id: str, fmt: str, cells: bool) -> None:
    """Show one run (a full id or a unique prefix)."""
    from .. import workspace
    from ..report.html import fmt_duration
    from ..tracking.session import get_run

    workspace.current(create=False)
    d = get_run(run_id).to_dict()
    if fmt == "json":
        click.echo(json.dumps(d, indent=2, default=str))
        return
    click.echo(f"{d['name']}  [{d['status']}]  run {d['id']}")
    click.echo(f"experiment  {d['experiment']}")
    click.echo(f"started     {d['start_time']}  ({fmt_duration(d['duration'])})")
    if d["source"]:
        click.echo(f"source      {d['source']}")
    if d["git"]:
        g = d["git"]
        click.echo(
            f"git         {g['commit']}{' (dirty)' if g['dirty'] else ''}{' on ' + g['branch'] if g['branch'] else ''}"
        )
    for title, values in (("params", d["params"]), ("metrics", d["metrics"]), ("tags", d["tags"])):
        if values:
            click.echo(f"{title}:")
            width = max(len(k) for k in values)
            for k, v in values.items():
                click.echo(f"  {k.ljust(width)}  {v}")
    if d["artifacts"]:
        click.echo("artifacts:")
        for a in d["artifacts"]:
            click.echo(f"  {a['path']}  ({a['size']} bytes, {a['digest'][:12]})")
    if d["cells"]:
        failed = sum(not c["success"] for c in d["cells"])
        click.echo(f"cells: {len(d['cells'])} captured" + (f", {failed} failed" if failed else ""))
        if cells:
            for c in d["cells"]:
                click.echo(f"--- In [{c['execution_count'] or ' '}]{'' if c['success'] else '  (failed)'}")
                click.echo(c["source"])


@main.command()
@click.option(
    "--dir",
    "directory",
    default="build/demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo workspace and executed notebooks go.",
)
@click.option(
    "--notebooks",
    default="notebooks",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The folder holding the example pipeline and its notebooks.",
)
def demo(directory: str, notebooks: str) -> None:
    """Run the example pipeline (prepare, train, validate, promote, monitor) end to end on the embedded store."""
    from ..demo import run_demo

    sys.exit(run_demo(Path(directory), Path(notebooks)))


# Command groups of the other capabilities live in their own modules, each adding to ``main``.
from . import data, drift, models, monitor, pipeline, serve, store  # noqa: E402,F401

if __name__ == "__main__":  # python -m mlo.cli
    main()
