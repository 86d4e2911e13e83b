"""``%mlo monitor``: a model's monitoring report (drift, quality, latency, errors per window) as a cell output."""

from __future__ import annotations

USAGE = """\
  %mlo monitor NAME [--window 1h|1d|N rows] [--since 24h|DATE] [--version V]
                                         drift, quality, latency and errors of a served model
                                         per window of its prediction log
"""


def _monitor(magics, args, cell):
    from ..monitor.reporting import report
    from ..monitor.windows import parse_since
    from .magics import _parser

    a = _parser(
        "monitor",
        (("name",), {}),
        (("--window", "-w"), {}),
        (("--since",), {}),
        (("--until",), {}),
        (("--version", "-v"), {}),
    ).parse_args(args)
    return report(a.name, window=a.window, since=parse_since(a.since), until=a.until, version=a.version)


COMMANDS = {"monitor": _monitor}
