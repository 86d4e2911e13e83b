"""``%mlo snapshot``, ``%mlo snapshots`` and ``%mlo lineage``: data snapshots and the lineage graph."""

from __future__ import annotations

import os

from IPython.core.error import UsageError

USAGE = """\
  %mlo snapshot VAR [--name N] [--role input|output]
                                         snapshot a DataFrame/array variable (or a file or
                                         folder path) as a new version of N (default: VAR)
  %mlo snapshots [NAME]                  list snapshot versions
  %mlo lineage REF [--depth N]           draw what REF came from and what came of it; REF is
                                         a run id, snapshot:NAME[@V] or model:NAME@ALIAS
"""


def _snapshot(magics, args, cell):
    from .magics import _parser

    a = _parser(
        "snapshot",
        (("var",), {}),
        (("--name", "-n"), {}),
        (("--role",), {"default": "input", "choices": ["input", "output"]}),
    ).parse_args(args)
    ns = magics.shell.user_ns
    if a.var in ns:
        obj = ns[a.var]
        name = a.name or a.var
    elif os.path.exists(a.var):
        obj = a.var
        name = a.name or os.path.basename(os.path.normpath(a.var)).replace(" ", "_")
    else:
        raise UsageError(f"%mlo snapshot: no variable or path named {a.var!r}")
    from ..data import snapshots as snapshots_api

    return snapshots_api.snapshot(obj, name, role=a.role)


def _snapshots(magics, args, cell):
    from .magics import _parser

    a = _parser("snapshots", (("name",), {"nargs": "?"})).parse_args(args)
    from ..data import snapshots as snapshots_api

    return snapshots_api.snapshots(a.name)


def _lineage(magics, args, cell):
    from .magics import _parser

    a = _parser("lineage", (("ref",), {}), (("--depth", "-d"), {"type": int})).parse_args(args)
    from ..data import lineage as lineage_api

    return lineage_api.lineage(a.ref, depth=a.depth)


COMMANDS = {"snapshot": _snapshot, "snapshots": _snapshots, "lineage": _lineage}
