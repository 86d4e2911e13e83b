"""``%mlo compare``: compare runs in a widget."""

from __future__ import annotations

USAGE = """\
  %mlo compare [RUN …] [--experiment E | --all] [--where FILTER] [--order-by COL] [--page-size N]
                                         compare the runs of the current experiment (every one
                                         with --all): filter, sort, tick runs for their metric
                                         histories, param diff and parallel coordinates
"""


def _compare(magics, args, cell):
    from .magics import _parser, scope
    from .widgets import compare

    a = _parser(
        "compare",
        (("runs",), {"nargs": "*"}),
        (("--experiment", "-e"), {"action": "append"}),
        (("--all", "-a"), {"action": "store_true"}),
        (("--where", "-w"), {}),
        (("--order-by", "-o"), {"action": "append"}),
        (("--page-size", "-n"), {"type": int, "default": 25}),
    ).parse_args(args)
    # runs named by id are compared wherever they are; otherwise the current experiment's
    experiment = scope(a) if not a.runs or a.experiment or a.all else None
    return compare(
        a.runs or None,
        experiment=experiment,
        where=a.where,
        order_by=a.order_by,
        page_size=a.page_size,
    )


COMMANDS = {"compare": _compare}
