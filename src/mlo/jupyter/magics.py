"""The ``%mlo`` magics: thin adapters over the Python API. Every ``MloError`` becomes a one-line ``UsageError``."""

from __future__ import annotations

import argparse
import ast
import difflib
import os
import shlex
import time
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, magics_class

from .. import workspace
from ..errors import GateFailed, MloError
from ..tracking import session
from . import cells
from .cells import CellRecorder

USAGE = """\
%mlo — track experiments from the notebook.

  %mlo init [PATH]                       create (or open) a workspace in PATH/.mlo (default: here)
  %mlo experiment NAME                   file the runs started from now on under NAME
  %mlo start [NAME] [--experiment E]     start a run; every cell until %mlo end is captured
  %mlo end [--status failed|killed]      end the active run (default status: finished)
  %%mlo run [NAME] [--experiment E] [--no-params]
                                         run this cell as one tracked run; top-level literal
                                         assignments (C = 1.0) are logged as params
  %mlo param k=v [k=v …]                 log params (values read as Python literals, else text)
  %mlo metric k=v [k=v …] [--step N]     log metrics (numbers only)
  %mlo runs [--experiment E | --all] [--where FILTER] [--order-by COL] [--limit N] [--include archived|deleted|all]
                                         show the runs of the current experiment (the one
                                         %mlo experiment set; every one with --all),
                                         e.g. --where "metrics.acc > 0.8"
{extra}  %mlo help                              this text

Python API: import mlo; mlo.runs(), mlo.get_run(id).cells, mlo.log_metric(...). Docs: docs/magics.md
"""


# Modules that add subcommands. Each defines ``COMMANDS = {name: handler}`` where ``handler(magics, args, cell)``
# gets the MloMagics instance, the argument words and the cell body (None for a line magic), and ``USAGE``: lines
# for the help text in the format above.
SUBCOMMAND_MODULES = (
    "mlo.jupyter.data_magics",
    "mlo.jupyter.model_magics",
    "mlo.jupyter.drift_magics",
    "mlo.jupyter.pipeline_magics",
    "mlo.jupyter.compare_magics",
    "mlo.jupyter.production_magics",
    "mlo.jupyter.lifecycle_magics",
    "mlo.jupyter.llm_magics",
    "mlo.jupyter.governance_magics",
    "mlo.jupyter.feature_magics",
)


def _extensions() -> tuple[dict[str, Any], str]:
    import importlib

    commands: dict[str, Any] = {}
    usage = ""
    for name in SUBCOMMAND_MODULES:
        mod = importlib.import_module(name)
        commands.update(mod.COMMANDS)
        usage += mod.USAGE
    return commands, usage


def usage() -> str:
    return USAGE.format(extra=_extensions()[1])


class _Parser(argparse.ArgumentParser):
    """argparse that reports errors as ``UsageError`` instead of exiting."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(f"%mlo {self.prog.split()[-1]}: {message}. See %mlo help")

    def exit(self, status: int = 0, message: str | None = None):  # type: ignore[override]
        raise UsageError(message or f"%mlo {self.prog}: see %mlo help")


CELL_COMMANDS = {"run", "note", "prompt", "problem"}


def _parser(name: str, *args: tuple[tuple, dict]) -> _Parser:
    p = _Parser(prog=f"%mlo {name}", add_help=False)
    for a, kw in args:
        p.add_argument(*a, **kw)
    return p


def _literal(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _pairs(items: list[str], what: str) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"%mlo {what}: expected key=value, got {item!r}")
        out[key] = value
    return out


def strip_comment(line: str) -> str:
    """The line without a trailing ``# comment`` (a ``#`` after whitespace, outside quotes), as in Python code:
    ``%mlo drift train live  # the new batch``. A ``#`` inside a word (``tag=#1``) stays."""
    quote = None
    for i, ch in enumerate(line):
        if quote:
            if ch == quote:
                quote = None
        elif ch in "'\"":
            quote = ch
        elif ch == "#" and (i == 0 or line[i - 1].isspace()):
            return line[:i]
    return line


def scope(a) -> str | list[str] | None:
    """The experiments a listing magic shows: ``--experiment``, else every one with ``--all``, else the
    current experiment (``%mlo experiment``), else every one."""
    if a.experiment:
        if getattr(a, "all", False):
            raise UsageError("give --experiment or --all, not both")
        return a.experiment[0] if len(a.experiment) == 1 else a.experiment
    if getattr(a, "all", False):
        return None
    return session.chosen_experiment()


def literal_assignments(code: str) -> dict[str, Any]:
    """Top-level ``name = <literal>`` assignments of a cell: the values the cell is parameterized by."""
    try:
        tree = ast.parse(code)
    except SyntaxError:
        return {}
    params: dict[str, Any] = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        else:
            continue
        try:
            params[target] = ast.literal_eval(value)
        except (ValueError, SyntaxError, TypeError):
            continue
    return params


@magics_class
class MloMagics(Magics):
    def __init__(self, shell, recorder: CellRecorder):
        super().__init__(shell)
        self.recorder = recorder
        self.commands = {
            "init": self._init,
            "experiment": self._experiment,
            "start": self._start,
            "end": self._end,
            "run": self._run,
            "param": self._param,
            "params": self._param,
            "metric": self._metric,
            "metrics": self._metric,
            "runs": self._runs,
            "help": self._help,
        }
        extra, _ = _extensions()
        for name, handler in extra.items():
            self.commands[name] = lambda args, cell, _h=handler: _h(self, args, cell)

    @line_cell_magic
    def mlo(self, line: str = "", cell: str | None = None):
        try:
            words = shlex.split(strip_comment(line))
        except ValueError as exc:
            raise UsageError(f"%mlo: cannot read the arguments ({exc})") from None
        if not words:
            return self._help([], None)
        command, rest = words[0], words[1:]
        handler = self.commands.get(command)
        if handler is None:
            close = difflib.get_close_matches(command, list(self.commands), n=1)
            hint = f" — did you mean {close[0]!r}?" if close else ""
            raise UsageError(f"%mlo: unknown command {command!r}{hint} See %mlo help")
        if cell is not None and command not in CELL_COMMANDS:
            raise UsageError(
                f"%%mlo {command} does not take a cell body; only %%mlo run, note, prompt and problem do"
            )
        try:
            return handler(rest, cell)
        except GateFailed:
            raise  # a gate is not a usage error: papermill and pipelines must see it as GateFailed
        except MloError as exc:
            raise UsageError(str(exc)) from None

    mlo.__doc__ = USAGE.format(extra="")

    # -- subcommands ------------------------------------------------------------------------------------------
    def _help(self, args, cell):
        print(usage())

    def _init(self, args, cell):
        a = _parser("init", (("path",), {"nargs": "?", "default": "."})).parse_args(args)
        ws = workspace.init(a.path)
        print(f"mlo workspace at {ws.home}")

    def _experiment(self, args, cell):
        a = _parser("experiment", (("name",), {})).parse_args(args)
        name = session.set_experiment(a.name)
        print(f"experiment: {name}")

    def _start(self, args, cell):
        a = _parser("start", (("name",), {"nargs": "?"}), (("--experiment", "-e"), {})).parse_args(args)
        run = session.start_run(a.name, a.experiment)
        print(f"run {run.name} ({run.id}) started in experiment {run.experiment}")

    def _end(self, args, cell):
        a = _parser(
            "end", (("--status",), {"default": "finished", "choices": ["finished", "failed", "killed"]})
        ).parse_args(args)
        run = session.active_run()
        if run is None:
            raise UsageError("%mlo end: no active run to end")
        session.end_run(a.status)
        print(f"run {run.name} ({run.id}) {a.status} after {run.duration:.1f} s")

    def _run(self, args, cell):
        a = _parser(
            "run",
            (("name",), {"nargs": "?"}),
            (("--experiment", "-e"), {}),
            (("--no-params",), {"action": "store_true"}),
        ).parse_args(args)
        if cell is None:
            raise UsageError(
                "%mlo run needs a cell body: write %%mlo run [NAME] as the first line of the cell"
            )
        active = session.active_run()
        if active is not None and not session.is_attached(active):
            raise UsageError(f"run {active.name!r} is already active: end it with %mlo end before %%mlo run")
        code = self.shell.transform_cell(cell)
        params = {} if a.no_params else literal_assignments(code)
        run = session.start_run(a.name, a.experiment, params=params)
        started = time.time()
        error = None
        with self.recorder.suspend():
            try:
                return self._execute(code)
            except BaseException as exc:
                error = exc
                raise
            finally:
                line = f"%%mlo run {' '.join(shlex.quote(w) for w in args)}".rstrip()
                try:
                    self.recorder.record_own(run, f"{line}\n{cell}", started, error)
                finally:
                    status = (
                        "finished"
                        if error is None
                        else ("killed" if isinstance(error, KeyboardInterrupt) else "failed")
                    )
                    session.end_run(status, run=run)

    def _execute(self, code: str):
        """Run transformed cell code in the user namespace; return the value of a trailing expression."""
        tree = ast.parse(code)
        last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
        filename = self.shell.compile.cache(code, self.shell.execution_count)
        ns = self.shell.user_ns
        exec(compile(tree, filename, "exec"), ns)  # noqa: S102 - executing the user's own cell is the point
        if last is not None:
            return eval(compile(ast.Expression(last.value), filename, "eval"), ns)  # noqa: S307
        return None

    def _param(self, args, cell):
        if not args:
            raise UsageError("%mlo param: give key=value pairs, e.g. %mlo param C=1.0 model=rf")
        session.log_params(
            {k: _literal(v) for k, v in _pairs(args, "param").items()}, run=self._require_run("param")
        )

    def _metric(self, args, cell):
        a = _parser("metric", (("pairs",), {"nargs": "+"}), (("--step",), {"type": int})).parse_args(args)
        values = {}
        for k, v in _pairs(a.pairs, "metric").items():
            try:
                values[k] = float(v)
            except ValueError:
                raise UsageError(f"%mlo metric: {k}={v!r} is not a number") from None
        self._require_run("metric")
        session.log_metrics(values, step=a.step)

    def _runs(self, args, cell):
        from ..report.runs import RunsView
        from ..tracking.query import runs

        a = _parser(
            "runs",
            (("--experiment", "-e"), {"action": "append"}),
            (("--all", "-a"), {"action": "store_true"}),
            (("--where", "-w"), {}),
            (("--order-by", "-o"), {"action": "append"}),
            (("--limit", "-n"), {"type": int, "default": 50}),
            (("--include",), {"action": "append"}),
        ).parse_args(args)
        df = runs(experiment=scope(a), where=a.where, order_by=a.order_by, include=a.include)
        return RunsView(df, max_rows=a.limit)

    def _require_run(self, what: str):
        run = session.active_run()
        if run is None:
            raise UsageError(f"%mlo {what}: no active run; start one with %mlo start or a %%mlo run cell")
        return run


def load_ipython_extension(shell) -> None:
    """Register the magics and the cell recorder; loading again replaces them (``%reload_ext mlo``). The kernel's
    execution history is kept across reloads, and cells run before the first load are recovered."""
    notebook = shell.user_ns.get("__session__")
    if notebook and not os.environ.get("MLO_NOTEBOOK"):
        os.environ["MLO_NOTEBOOK"] = str(notebook)
    cells.uninstall(shell)
    recorder = cells.install(shell)
    MloMagics.mlo.__doc__ = usage()
    shell.register_magics(MloMagics(shell, recorder))


def unload_ipython_extension(shell) -> None:
    cells.uninstall(shell)
