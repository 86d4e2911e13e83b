"""``%mlo traces``, ``%%mlo prompt``, ``%mlo prompts``, ``%mlo costs`` and ``%mlo budget``: LLMOps in the
notebook. Thin adapters over :mod:`mlo.llm`."""

from __future__ import annotations

from IPython.core.error import UsageError

USAGE = """\
  %mlo traces [ID] [--where W] [--run RUN] [--limit N]
                                         LLM traces, newest first; with ID, that trace as a tree
  %%mlo prompt NAME [--model M] [--alias A] [--param k=v …]
                                         the cell body is the template ({{ variables }}); a new
                                         version when it changed, none when it did not
  %mlo prompts [NAME] | %mlo prompts diff OLD NEW
                                         prompt versions; what changed between two (support/1
                                         support@production)
  %mlo costs [--by day|model|prompt|run|trace|call] [--run RUN]
                                         what LLM calls cost (the price table in mlo.toml)
  %mlo budget [--gate]                   spending against [llm.budget]; --gate fails the cell
  %mlo eval APP DATA --scorer S [--scorer S …] [--repeats N] [--min scorer=V …]
                [--against PROMPT@ALIAS] [--gate]
                                         evaluate APP (a prompt ref or a function variable) on
                                         DATA (a variable or a snapshot ref); --gate fails the
                                         cell when a check fails
"""


class _View:
    """A DataFrame shown as mlo's traces table."""

    def __init__(self, df):
        self.df = df

    def _repr_html_(self) -> str:
        from ..llm.render import traces_html

        return traces_html(self.df)

    def __repr__(self) -> str:
        return repr(self.df)


def _traces(magics, args, cell):
    from ..llm.query import get_trace, traces
    from .magics import _parser

    a = _parser(
        "traces",
        (("id",), {"nargs": "?"}),
        (("--where", "-w"), {}),
        (("--run", "-r"), {}),
        (("--limit", "-n"), {"type": int, "default": 50}),
    ).parse_args(args)
    if a.id:
        return get_trace(a.id)
    return _View(traces(a.where, run=a.run, limit=a.limit))


def _prompt(magics, args, cell):
    from ..llm import prompts
    from .magics import _literal, _pairs, _parser

    a = _parser(
        "prompt",
        (("name",), {}),
        (("--model", "-m"), {}),
        (("--alias", "-a"), {}),
        (("--param", "-p"), {"action": "append", "default": []}),
        (("--description", "-d"), {}),
    ).parse_args(args)
    if cell is None or not cell.strip():
        raise UsageError(
            "%%mlo prompt needs a cell body: write %%mlo prompt NAME as the first line, the template below it"
        )
    params = {k: _literal(v) for k, v in _pairs(a.param, "prompt").items()}
    before = prompts.versions(a.name)["version"].max() if _exists(a.name) else None
    p = prompts.register(
        a.name, cell, model=a.model, params=params or None, alias=a.alias, description=a.description
    )
    if p.version == 0:
        print(f"prompt {a.name}: not registered while a run is being reproduced")
    elif before is not None and p.version <= before:
        print(f"prompt {p.ref} unchanged (no new version)")
    else:
        at = f" as @{a.alias}" if a.alias else ""
        print(f"registered prompt {p.ref}{at}; variables: {', '.join(p.variables) or 'none'}")
    return p


def _exists(name: str) -> bool:
    from ..errors import MloError
    from ..llm import prompts

    try:
        prompts.versions(name)
        return True
    except MloError:
        return False


def _prompts(magics, args, cell):
    from ..llm import prompts

    if args and args[0] == "diff":
        if len(args) != 3:
            raise UsageError("%mlo prompts diff OLD NEW, e.g. %mlo prompts diff support/1 support@production")
        return prompts.diff(args[1], args[2])
    if len(args) > 1:
        raise UsageError("%mlo prompts [NAME] lists prompt versions; %mlo prompts diff OLD NEW compares two")
    return prompts.versions(args[0] if args else None)


def _costs(magics, args, cell):
    from ..llm.spending import GROUPS, costs
    from .magics import _parser

    a = _parser(
        "costs",
        (("--by",), {"choices": list(GROUPS), "default": "day"}),
        (("--run", "-r"), {}),
        (("--since",), {}),
        (("--prompt", "-p"), {}),
    ).parse_args(args)
    return costs(a.by, run=a.run, since=a.since, prompt=a.prompt)


def _budget(magics, args, cell):
    from ..llm.spending import budget
    from .magics import _parser

    a = _parser("budget", (("--gate",), {"action": "store_true"}), (("--run", "-r"), {})).parse_args(args)
    return budget(run=a.run, gate=a.gate)


def _eval(magics, args, cell):
    from ..llm import checks
    from ..llm.evaluation import evaluate
    from .magics import _pairs, _parser

    a = _parser(
        "eval",
        (("app",), {}),
        (("data",), {}),
        (("--scorer", "-s"), {"action": "append", "default": []}),
        (("--repeats", "-n"), {"type": int, "default": 1}),
        (("--min",), {"action": "append", "default": []}),
        (("--against",), {}),
        (("--gate",), {"action": "store_true"}),
    ).parse_args(args)
    if not a.scorer:
        raise UsageError("%mlo eval needs at least one --scorer (exact, contains, similarity, no_pii, …)")
    ns = magics.shell.user_ns

    def resolve(name):
        return ns[name] if name.isidentifier() and name in ns else name

    gates = []
    for name, value in _pairs(a.min, "eval").items():
        try:
            gates.append(checks.threshold(name, float(value)))
        except ValueError:
            raise UsageError(f"%mlo eval --min {name}={value}: the bound must be a number") from None
    if a.against:
        gates.append(checks.no_regression(a.against))
    scorer_list = [resolve(s) for s in a.scorer]
    report = evaluate(resolve(a.app), resolve(a.data), scorer_list, repeats=a.repeats, checks=gates or None)
    if a.gate:
        report.raise_for_failures()
    return report


COMMANDS = {
    "eval": _eval,
    "traces": _traces,
    "prompt": _prompt,
    "prompts": _prompts,
    "costs": _costs,
    "budget": _budget,
}
