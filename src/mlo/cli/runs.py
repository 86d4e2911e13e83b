"""``mlo runs`` (list; ``delete``, ``archive``, ``restore``), ``mlo show``, ``mlo tag``, ``mlo note`` and
``mlo experiments`` (list; ``delete``, ``archive``, ``restore``)."""

from __future__ import annotations

import click

from ..store.addresses import short
from . import main
from .output import echo, emit_frame, emit_json, format_option

_include = click.option(
    "--include",
    "-i",
    multiple=True,
    type=click.Choice(["archived", "deleted", "reproductions", "all"]),
    help="Also list archived, deleted or reproduction runs (repeatable; 'all' for every kind).",
)


def _open():
    from .. import workspace

    return workspace.current(create=False)


class _ListingGroup(click.Group):
    """A group that lists when called without a subcommand (``mlo runs``, ``mlo runs -e churn``)."""

    def format_usage(self, ctx, formatter):
        formatter.write_usage(ctx.command_path, "[OPTIONS] | COMMAND [ARGS]...")


@main.group("runs", cls=_ListingGroup, invoke_without_command=True)
@click.option("--experiment", "-e", multiple=True, help="Only runs of this experiment (repeatable).")
@click.option("--where", "-w", help="Filter, e.g. \"metrics.acc > 0.8 and params.model = 'rf'\".")
@click.option("--columns", "-c", help="Comma-separated columns to show (patterns like 'metrics.*' work).")
@click.option(
    "--order-by", "-o", multiple=True, help="Column to sort by, e.g. 'metrics.acc desc' (repeatable)."
)
@click.option("--limit", "-n", type=int, help="At most this many runs.")
@_include
@format_option("table", "csv", "json")
@click.pass_context
def runs_group(ctx, experiment, where, columns, order_by, limit, include, fmt) -> None:
    """List runs with their params, metrics and status (short ids: a unique prefix of the id), or change
    their lifecycle: `mlo runs delete|archive|restore RUN…`."""
    if ctx.invoked_subcommand is not None:
        return
    ws = _open()
    if (
        not (experiment or where or columns or order_by)
        and (limit is None or limit >= 0)
        and not ws.runs.any_run()
    ):
        _no_runs(fmt, include)  # a new workspace answers without loading pandas
        return
    from ..report.text import runs_text
    from ..tracking.query import runs

    cols = [c.strip() for c in columns.split(",") if c.strip()] if columns else None
    df = runs(
        experiment=list(experiment) or None,
        where=where,
        columns=cols,
        order_by=list(order_by) or None,
        limit=limit,
        include=list(include) or None,
    )
    emit_frame(df, fmt, lambda d: runs_text(d, max_rows=None))


def _no_runs(fmt: str, include) -> None:
    """What ``emit_frame`` prints for the empty listing ``runs()`` returns, in each format."""
    if fmt == "json":
        emit_json([])
    elif fmt == "csv":
        from ..tracking.where import BASE_COLUMNS

        echo(",".join([*BASE_COLUMNS, *(["lifecycle"] if include else [])]))
    else:
        echo("No runs.")


def _lifecycle_command(group, verb: str, past: str, what: str):
    @group.command(verb)
    @click.argument("refs", nargs=-1, required=True)
    @format_option("text", "json")
    def command(refs, fmt) -> None:
        from ..tracking import lifecycle

        _open()
        if what == "run":
            changed = getattr(lifecycle, f"{verb}_run")(list(refs))
            if fmt == "json":
                emit_json({past: changed})
            else:
                echo(
                    f"{past} {len(changed)} run{'s' * (len(changed) != 1)}"
                    + "".join(f"\n  {i}" for i in changed)
                )
        else:
            changed = {name: getattr(lifecycle, f"{verb}_experiment")(name) for name in refs}
            if fmt == "json":
                emit_json({past: [n for n, c in changed.items() if c]})
            else:
                for name, c in changed.items():
                    echo(f"experiment {name}: {past}" if c else f"experiment {name}: already {past}")

    command.__doc__ = {
        "delete": f"Delete {what}s softly: out of listings, restorable until `mlo gc` purges them after the grace "
        "period."
        + (" A run's descendants (pipeline stages, nested runs) go with it." if what == "run" else ""),
        "archive": f"Archive {what}s: kept, but out of default listings (--include archived shows them).",
        "restore": f"Bring deleted or archived {what}s back to the default listings.",
    }[verb]
    return command


for _verb, _past in (("delete", "deleted"), ("archive", "archived"), ("restore", "restored")):
    _lifecycle_command(runs_group, _verb, _past, "run")


@main.group("experiments", cls=_ListingGroup, invoke_without_command=True)
@_include
@format_option("table", "csv", "json")
@click.pass_context
def experiments_group(ctx, include, fmt) -> None:
    """List experiments with how many runs each has and when the last one started, or change their
    lifecycle: `mlo experiments delete|archive|restore NAME…`."""
    if ctx.invoked_subcommand is not None:
        return
    from ..report.text import frame_text
    from ..tracking.lifecycle import experiments

    _open()
    df = experiments(include=list(include) or None)
    emit_frame(
        df,
        fmt,
        lambda d: frame_text(
            d, [c for c in d.columns if c not in ("id", "deleted_at")], empty="No experiments."
        ),
    )


for _verb, _past in (("delete", "deleted"), ("archive", "archived"), ("restore", "restored")):
    _lifecycle_command(experiments_group, _verb, _past, "experiment")


@main.command()
@click.argument("run_id")
@format_option("text", "json")
@click.option("--cells", is_flag=True, help="Print the source of every captured cell.")
def show(run_id: str, fmt: str, cells: bool) -> None:
    """Show one run (a full id or a unique prefix, as tables show it)."""
    from ..report.html import fmt_duration
    from ..tracking.session import get_run

    _open()
    d = get_run(run_id).to_dict()
    if fmt == "json":
        emit_json(d)
        return
    lifecycle = f"  ({d['lifecycle']})" if d["lifecycle"] != "active" else ""
    echo(f"{d['name']}  [{d['status']}]  run {d['id']}{lifecycle}")
    echo(f"experiment  {d['experiment']}")
    echo(f"started     {d['start_time']}  ({fmt_duration(d['duration'])})")
    if d["source"]:
        echo(f"source      {d['source']}")
    if d["git"]:
        g = d["git"]
        dirty = " (dirty)" if g["dirty"] else ""
        echo(f"git         {g['commit']}{dirty}{' on ' + g['branch'] if g['branch'] else ''}")
    if d["note"]:
        echo("note:\n" + "\n".join(f"  {line}" for line in d["note"].splitlines()))
    for title, values in (("params", d["params"]), ("metrics", d["metrics"]), ("tags", d["tags"])):
        if values:
            echo(f"{title}:")
            width = max(len(k) for k in values)
            for k, v in values.items():
                echo(f"  {k.ljust(width)}  {v}")
    if d["artifacts"]:
        echo("artifacts:")
        for a in d["artifacts"]:
            echo(f"  {a['path']}  ({a['size']} bytes, {short(a['digest'])})")
    if d["cells"]:
        failed = sum(not c["success"] for c in d["cells"])
        echo(f"cells: {len(d['cells'])} captured" + (f", {failed} failed" if failed else ""))
        if cells:
            for c in d["cells"]:
                echo(f"--- In [{c['execution_count'] or ' '}]{'' if c['success'] else '  (failed)'}")
                echo(c["source"])


@main.command("tag")
@click.argument("run_id")
@click.argument("pairs", nargs=-1, metavar="KEY=VALUE...")
@click.option("--remove", "-r", multiple=True, metavar="KEY", help="Remove this tag (repeatable).")
@format_option("text", "json")
def tag_cmd(run_id: str, pairs, remove, fmt: str) -> None:
    """Set tags (KEY=VALUE…) on a run, or remove them (--remove KEY)."""
    from ..errors import InvalidInput
    from ..tracking.session import get_run, set_tags

    _open()
    if not pairs and not remove:
        raise InvalidInput("give KEY=VALUE pairs or --remove KEY, e.g. mlo tag 01jx3k5b team=core")
    values = {}
    for item in pairs:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise InvalidInput(f"{item!r}: write KEY=VALUE, e.g. team=core")
        values[key] = value
    run = get_run(run_id)
    if values:
        set_tags(values, run=run)
    for key in remove:
        run._ws.runs.delete_tag(run.id, key)
    tags = run.tags
    if fmt == "json":
        emit_json({"run_id": run.id, "tags": tags})
    else:
        echo("\n".join(f"{k}={v}" for k, v in sorted(tags.items())) or "no tags")


@main.command("note")
@click.argument("run_id")
@click.argument("text", required=False)
@click.option("--file", "-f", "path", type=click.File("r"), help="Read the note from this file ('-': stdin).")
@format_option("text", "json")
def note_cmd(run_id: str, text: str | None, path, fmt: str) -> None:
    """Set the Markdown note of a run (TEXT, or --file), or print it when neither is given."""
    from ..errors import InvalidInput
    from ..tracking.lifecycle import set_note
    from ..tracking.session import get_run

    _open()
    run = get_run(run_id)
    if text is not None and path is not None:
        raise InvalidInput("give the note as TEXT or with --file, not both")
    if text is not None or path is not None:
        set_note(text if text is not None else path.read(), run=run)
    note = run.note
    if fmt == "json":
        emit_json({"run_id": run.id, "note": note})
    else:
        echo(note or "no note")
