"""``%mlo tag``, ``%mlo note``, ``%mlo experiments`` and ``%mlo delete|archive|restore``: annotate runs and keep
listings tidy."""

from __future__ import annotations

from IPython.core.error import UsageError

from ..tracking.short_ids import short_id, short_ids

USAGE = """\
  %mlo tag k=v [k=v …] [--run ID] [--remove KEY]
                                         set (or remove) tags of the active run or of run ID
  %mlo note TEXT [--run ID]  /  %%mlo note [--run ID]
                                         the Markdown note of the active run (or of run ID);
                                         as a cell magic the cell body is the note
  %mlo experiments [--include archived|deleted|all]
                                         list experiments with their run counts
  %mlo delete RUN … | --experiment NAME  delete softly (restorable; purged by mlo gc later)
  %mlo archive RUN … | --experiment NAME keep, but out of default listings
  %mlo restore RUN … | --experiment NAME bring deleted or archived runs/experiments back
"""


def _run_of(ref):
    from ..tracking import session

    if ref:
        return session.get_run(ref)
    run = session.active_run()
    if run is None:
        raise UsageError("no active run: pass --run ID (a run id or a unique prefix)")
    return run


def _tag(magics, args, cell):
    from ..tracking import session
    from .magics import _pairs, _parser

    a = _parser(
        "tag", (("pairs",), {"nargs": "*"}), (("--run", "-r"), {}), (("--remove",), {"action": "append"})
    ).parse_args(args)
    if not a.pairs and not a.remove:
        raise UsageError("%mlo tag: give key=value pairs (or --remove KEY), e.g. %mlo tag team=core")
    run = _run_of(a.run)
    if a.pairs:
        session.set_tags(_pairs(a.pairs, "tag"), run=run)
    for key in a.remove or []:
        run._ws.runs.delete_tag(run.id, key)
    print(f"tags of {run.name} ({short_id(run.id)}): {run.tags}")


def _note(magics, args, cell):
    from ..tracking.lifecycle import set_note
    from .magics import _parser

    a = _parser("note", (("text",), {"nargs": "*"}), (("--run", "-r"), {})).parse_args(args)
    text = cell if cell is not None else " ".join(a.text)
    if not text.strip():
        raise UsageError("%mlo note: write the note after it, or use %%mlo note with the note as the cell")
    run = _run_of(a.run)
    set_note(text, run=run)
    print(f"note of {run.name} ({short_id(run.id)}) set ({len(text.strip())} characters)")


def _experiments(magics, args, cell):
    from ..report.html import STYLE, table
    from ..tracking.lifecycle import experiments
    from .magics import _parser

    a = _parser("experiments", (("--include",), {"action": "append"})).parse_args(args)
    df = experiments(include=a.include)
    from IPython.display import HTML

    if df.empty:
        return HTML(STYLE + "<div class='mlo-m'>No experiments yet.</div>")
    cols = [c for c in df.columns if c != "id"]
    return HTML(STYLE + table(cols, df[cols].values.tolist(), numeric={cols.index("runs")}))


def _lifecycle(verb: str):
    def handler(magics, args, cell):
        from ..tracking import lifecycle
        from .magics import _parser

        a = _parser(
            verb, (("runs",), {"nargs": "*"}), (("--experiment", "-e"), {"action": "append"})
        ).parse_args(args)
        if bool(a.runs) == bool(a.experiment):
            raise UsageError(f"%mlo {verb}: name runs (ids or unique prefixes) or --experiment NAME")
        if a.experiment:
            for name in a.experiment:
                changed = getattr(lifecycle, f"{verb}_experiment")(name)
                print(f"experiment {name}: {_past(verb)}" if changed else f"experiment {name}: already so")
            return
        ids = getattr(lifecycle, f"{verb}_run")(a.runs)
        print(
            f"{_past(verb)} {len(ids)} run{'s' * (len(ids) != 1)}"
            + (f": {', '.join(short_ids(ids).values())}" if ids else "")
        )

    return handler


def _past(verb: str) -> str:
    return {"delete": "deleted", "archive": "archived", "restore": "restored"}[verb]


COMMANDS = {
    "tag": _tag,
    "tags": _tag,
    "note": _note,
    "experiments": _experiments,
    "delete": _lifecycle("delete"),
    "archive": _lifecycle("archive"),
    "restore": _lifecycle("restore"),
}
CELL = {"note"}
