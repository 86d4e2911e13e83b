"""``mlo pipeline run``, ``mlo run NB.ipynb`` and ``mlo reproduce RUN``."""

from __future__ import annotations

import sys

import click

from . import main
from .output import echo, emit_json, format_option


@main.group("pipeline")
def pipeline_group() -> None:
    """Run notebook pipelines (pipeline.yaml)."""


@pipeline_group.command("run")
@click.argument("file", default="pipeline.yaml", type=click.Path(dir_okay=False))
@click.option(
    "--stage", "-s", "stages", multiple=True, help="Only this stage and what it needs (repeatable)."
)
@click.option(
    "--jobs", "-j", type=click.IntRange(min=1), default=1, show_default=True, help="Tasks side by side."
)
@click.option("--force", "-f", is_flag=True, help="Execute even unchanged (cached) tasks.")
@click.option("--dry-run", "-n", is_flag=True, help="Show what would run and what is cached; run nothing.")
@click.option(
    "-p", "--param", "params", multiple=True, metavar="STAGE.KEY=VALUE", help="Override a parameter."
)
@click.option("--executor", default="local", show_default=True, help="local, dask, or dask://host:port.")
@click.option("--junit", type=click.Path(dir_okay=False), help="Write a JUnit XML report here.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the summary line.")
@format_option("text", "json", help="text: progress and a summary; json: the result (progress on stderr).")
def pipeline_run(file, stages, jobs, force, dry_run, params, executor, junit, quiet, fmt) -> None:
    """Run the pipeline in FILE. Exit code 0 passed, 1 a gate failed, 2 an error."""
    from ..pipeline.run import run

    progress_log = (lambda text: echo(text, err=True)) if fmt == "json" else echo
    result = run(
        file,
        stages=list(stages) or None,
        jobs=jobs,
        force=force,
        dry_run=dry_run,
        params=list(params),
        executor=executor,
        junit=junit,
        log=None if quiet else progress_log,
        progress=None if quiet else sys.stderr.isatty(),
    )
    if fmt == "json":
        emit_json(result.to_dict())
    elif quiet:
        echo(result.summary())
    failed = [t for t in result.tasks if t.failed]
    for t in failed:
        echo(
            f"mlo: {t.name}: {t.message}" + (f" (executed notebook: {t.notebook})" if t.notebook else ""),
            err=True,
        )
    sys.exit(result.exit_code)


@main.command("run")
@click.argument("notebook", type=click.Path(exists=True, dir_okay=False))
@click.option(
    "-p", "--param", "params", nargs=2, multiple=True, metavar="KEY VALUE", help="A parameter (repeatable)."
)
@click.option("--experiment", "-e", help="Experiment of the run.")
@click.option("--name", help="Run name (default: the notebook's name).")
@click.option("--kernel", help="Kernel name (default: the notebook's).")
@click.option("--timeout", type=float, help="Seconds a cell may run.")
@format_option("text", "json")
def run_cmd(notebook, params, experiment, name, kernel, timeout, fmt) -> None:
    """Execute NOTEBOOK with papermill as a tracked run. Exit code 0 passed, 1 a gate failed, 2 an error."""
    from ..pipeline.params import parse_value
    from ..pipeline.run import run_notebook

    values = {k: parse_value(v) for k, v in params}
    r = run_notebook(notebook, values, experiment=experiment, name=name, kernel=kernel, timeout=timeout)
    if fmt == "json":
        emit_json(r.to_dict())
    else:
        echo(f"{'✓' if r.status == 'ok' else '✗'} {r.name}  run {r.run_id}  {r.seconds:.1f} s")
        if r.notebook:
            echo(f"executed notebook: {r.notebook}")
    if r.failed:
        echo(f"mlo: {r.message}", err=True)
        sys.exit(1 if r.status == "gate" else 2)


@main.command("reproduce")
@click.argument("run_id")
@click.option("--rtol", type=float, default=1e-6, show_default=True, help="Relative tolerance per metric.")
@click.option("--atol", type=float, default=1e-9, show_default=True, help="Absolute tolerance per metric.")
@click.option("--data", "data", multiple=True, metavar="NAME=REF", help="Run on another snapshot version.")
@click.option("--timeout", type=float, help="Seconds a cell may run.")
@click.option(
    "--runs",
    type=click.IntRange(1, 10),
    default=1,
    show_default=True,
    help="Replay N times (2 finds nondeterminism).",
)
@click.option("--keep", is_flag=True, help="Keep the replay folder.")
@format_option("text", "json")
@click.option("--json", "as_json", is_flag=True, hidden=True, help="Same as --format json.")
def reproduce_cmd(run_id, rtol, atol, data, timeout, runs, keep, fmt, as_json) -> None:
    """Replay what made RUN_ID in a fresh kernel on the same inputs and compare status, params and metrics.

    Exit 0 when it reproduced, 1 when it did not (or had nothing to compare), 2 when it cannot be rebuilt.
    """
    from ..errors import InvalidInput
    from ..pipeline.reproduce import reproduce

    swaps = {}
    for item in data:
        name, sep, ref = item.partition("=")
        if not sep:
            raise InvalidInput(f"--data {item!r}: write NAME=REF, e.g. --data train=train@3")
        swaps[name] = ref
    rep = reproduce(run_id, rtol=rtol, atol=atol, data=swaps, timeout=timeout, runs=runs, keep=keep)
    if fmt == "json" or as_json:
        emit_json(rep.to_dict())
        sys.exit(rep.exit_code)
    many = len(rep.runs) > 1
    for r in rep.runs:
        if many:
            echo(f"{'✓' if r.match else '✗'} {r.name} ({r.original[:10]})")
        for c in r.checks:
            if c.kind == "status" and c.match:
                continue
            mark = "✓" if c.match else "✗"
            key = c.key if c.kind in ("metric", "status", "error") else f"params.{c.key}"
            echo(f"{'    ' if many else '  '}{mark} {key:<24} {c.original!r:>14} → {c.reproduced!r}")
    echo(rep.summary(), err=rep.status == "error")
    for c in rep.causes:
        echo(f"  - {c.message}")
        if c.fix:
            echo(f"    fix: {c.fix}")
    for n in rep.notes:
        echo(f"  · {n}")
    if rep.reproduction:
        echo(f"replay: run {rep.reproduction}")
    sys.exit(rep.exit_code)
