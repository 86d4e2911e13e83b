"""``%mlo serve`` and ``%mlo monitor``: serve a model from the notebook, and its monitoring report (drift, quality,
latency, errors per window) as a cell output."""

from __future__ import annotations

USAGE = """\
  %mlo serve NAME@ALIAS [--port P] [--canary NAME@ALIAS:PCT] [--no-log]
                                         serve a model over HTTP from this kernel (returns the
                                         server: .url, .stop())
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


def _serve(magics, args, cell):
    from ..serve import serve
    from .magics import _parser

    a = _parser(
        "serve",
        (("ref",), {}),
        (("--port", "-p"), {"type": int, "default": 0}),
        (("--canary", "-c"), {}),
        (("--no-log",), {"action": "store_true"}),
    ).parse_args(args)
    return serve(a.ref, port=a.port, canary=a.canary, log=not a.no_log)


COMMANDS = {"serve": _serve, "monitor": _monitor}
