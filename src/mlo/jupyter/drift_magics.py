"""``%mlo drift REF CUR``: compare two datasets from the notebook; the report renders as the cell's output."""

from __future__ import annotations

USAGE = """\
  %mlo drift REF CUR [--columns A,B] [--method M] [--threshold T] [--prediction P]
                 [--target T] [--correction bonferroni|fdr_bh] [--profile] [--html FILE]
                 [--gate] [--no-save]
                                         drift of CUR against REF: each a DataFrame variable,
                                         a snapshot ref (train@3) or a .parquet/.csv path;
                                         --gate fails the cell on dataset drift
"""


def _resolve(ns: dict, name: str):
    """A variable of the notebook when there is one by that name, else the text (a snapshot ref or a path)."""
    return ns[name] if name.isidentifier() and name in ns else name


def _drift(magics, args, cell):
    from ..drift import drift
    from .magics import _parser

    a = _parser(
        "drift",
        (("reference",), {}),
        (("current",), {}),
        (("--columns", "-c"), {}),
        (("--method", "-m"), {"default": "auto"}),
        (("--threshold", "-t"), {"type": float}),
        (("--prediction", "-p"), {}),
        (("--target",), {}),
        (("--correction",), {"choices": ["bonferroni", "fdr_bh"]}),
        (("--profile",), {"action": "store_true"}),
        (("--html",), {}),
        (("--gate",), {"action": "store_true"}),
        (("--no-save",), {"action": "store_true"}),
    ).parse_args(args)
    ns = magics.shell.user_ns
    prediction = _resolve(ns, a.prediction) if a.prediction else None
    report = drift(
        _resolve(ns, a.reference),
        _resolve(ns, a.current),
        columns=[c.strip() for c in a.columns.split(",") if c.strip()] if a.columns else None,
        method=a.method,
        threshold=a.threshold,
        prediction=prediction,
        target=a.target,
        correction=a.correction,
        mode="profile" if a.profile else "exact",
        save=not a.no_save,
    )
    if a.html:
        report.to_html(a.html)
    if a.gate:
        report.raise_for_drift()
    return report


COMMANDS = {"drift": _drift}
