"""``%mlo problem``, ``%%mlo problem``, ``%mlo status`` and ``%mlo maturity``: the problem the project set out to
solve, where it stands against it, and its maturity level."""

from __future__ import annotations

from IPython.core.error import UsageError

USAGE = """\
  %mlo problem                           the problem in force ([problem] in mlo.toml, or this session's)
  %%mlo problem                          the cell body (the keys of [problem], in TOML) is this session's
                                         problem; %mlo problem --clear goes back to mlo.toml
  %mlo status [--model NAME]             each objective and constraint against production: met, at risk,
                                         broken or unknown, with its evidence
  %mlo maturity                          the maturity level (0–3) from the records, with the next steps
"""


def _problem(magics, args, cell):
    from ..governance.problem import current, problem
    from .magics import _parser

    a = _parser("problem", (("--clear",), {"action": "store_true"})).parse_args(args)
    if a.clear:
        in_force = problem(clear=True)
        print("back to [problem] of mlo.toml" if in_force is not None else "no problem is defined now")
        return in_force
    if cell is not None:
        import tomllib

        try:
            table = tomllib.loads(cell)
        except tomllib.TOMLDecodeError as exc:
            raise UsageError(f"%%mlo problem: the cell is not valid TOML ({exc})") from None
        table = table.get("problem", table)  # a pasted [problem] section works too
        if not isinstance(table, dict) or not table:
            raise UsageError('%%mlo problem: write the keys of [problem] in the cell, e.g. objective = "…"')
        return problem(**table)
    found = current()
    if found is None:
        raise UsageError(
            "no problem is defined: add [problem] to mlo.toml, or write it in a %%mlo problem cell "
            '(objective = "…" and target = { metric = "roc_auc", min = 0.8 })'
        )
    return found


def _status(magics, args, cell):
    from ..governance.status import status
    from .magics import _parser

    a = _parser("status", (("--model",), {})).parse_args(args)
    return status(a.model)


def _maturity(magics, args, cell):
    from ..governance.maturity import maturity
    from .magics import _parser

    _parser("maturity").parse_args(args)
    return maturity()


COMMANDS = {"problem": _problem, "status": _status, "maturity": _maturity}
CELL = {"problem"}
