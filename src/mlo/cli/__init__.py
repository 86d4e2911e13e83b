"""The ``mlo`` command line: a thin click layer over the Python API (one module per capability).

Every command takes ``--format json`` (and ``table``/``csv`` where it lists); what it prints goes through
:mod:`mlo.cli.output`. Exit codes: 0 success, 1 a gate failed (validation, drift, an alert, a reproduction that
differs), 2 bad usage or input, 3 a store fault (the database or the blob store is corrupt, unreachable, full or
read-only, or its schema is newer than this mlo).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from ..errors import MloError
from .output import echo, emit_json, format_option


class _Group(click.Group):
    """The ``mlo`` group: a command's module is imported when the command is asked for (``mlo pipeline run``
    imports the pipeline module, not all thirteen), every module when all are listed (``mlo --help``)."""

    def get_command(self, ctx, cmd_name):
        if cmd_name not in self.commands:
            if cmd_name in COMMAND_MODULES:  # the usual case: the module is named after its group
                _load(cmd_name)
            if cmd_name not in self.commands:
                _load_all()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx):
        _load_all()
        return super().list_commands(ctx)

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except MloError as exc:
            echo(f"mlo: {exc}", err=True)
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
@format_option("text", "json")
def init(path: str, fmt: str) -> None:
    """Create (or open) a workspace in PATH/.mlo."""
    from .. import workspace

    ws = workspace.init(path)
    if fmt == "json":
        from ..workspace import _redact

        emit_json({"home": str(ws.home), "store": _redact(ws.store_url), "artifacts": ws.artifacts_url})
    else:
        echo(f"mlo workspace at {ws.home}")


@main.command()
@click.option(
    "--dir",
    "directory",
    default="mlo-demo",
    show_default=True,
    type=click.Path(file_okay=False),
    help="Where the demo workspace and executed notebooks go.",
)
@click.option(
    "--notebooks",
    type=click.Path(file_okay=False),
    help="A folder holding the example pipeline and its notebooks (default: the ones installed with mlo).",
)
@format_option("text", "json")
def demo(directory: str, notebooks: str | None, fmt: str) -> None:
    """Run the example pipeline (prepare, train, validate, promote, monitor) end to end on the embedded store."""
    from ..demo import run_demo

    log = (lambda text: echo(text, err=True)) if fmt == "json" else echo
    code = run_demo(Path(directory), Path(notebooks) if notebooks else None, log=log)
    if fmt == "json":
        home = Path(directory).resolve() / ".mlo"
        emit_json({"exit_code": code, "directory": str(Path(directory).resolve()), "workspace": str(home)})
    sys.exit(code)


# Command groups of the other capabilities live in their own modules, each adding to ``main``.
COMMAND_MODULES = (
    "data", "drift", "features", "governance", "interop", "llm", "models", "monitor", "pipeline", "runs", "serve",
    "store", "ui",
)  # fmt: skip


def _load(name: str) -> None:
    importlib.import_module(f"{__name__}.{name}")


def _load_all() -> None:
    for name in COMMAND_MODULES:
        _load(name)


if __name__ == "__main__":  # python -m mlo.cli
    main()
