"""``%mlo compare``: compare runs in a widget."""

from __future__ import annotations

USAGE = """\
  %mlo compare [RUN …] [--experiment E] [--where FILTER] [--order-by COL] [--page-size N]
                                         compare runs: filter, sort, tick runs for their metric
                                         histories, param diff and parallel coordinates
"""


def _compare(magics, args, cell):
    from .magics import _parser
    from .widgets import compare

    a = _parser(
        "compare",
        (("runs",), {"nargs": "*"}),
        (("--experiment", "-e"), {"action": "append"}),
        (("--where", "-w"), {}),
        (("--order-by", "-o"), {}),
        (("--page-size", "-n"), {"type": int, "default": 25}),
    ).parse_args(args)
    return compare(
        a.runs or None,
        experiment=a.experiment[0] if a.experiment and len(a.experiment) == 1 else a.experiment,
        where=a.where,
        order_by=a.order_by,
        page_size=a.page_size,
    )


COMMANDS = {"compare": _compare}
