"""``%mlo reproduce RUN``: re-execute the notebook behind a run and compare its metrics."""

from __future__ import annotations

from ..pipeline import reproduce as reproduce_api

USAGE = """\
  %mlo reproduce RUN [--rtol R] [--data NAME=REF]
                                         re-run RUN's notebook in a fresh kernel on the same
                                         data and compare its metrics
"""


def _reproduce(magics, args, cell):
    from IPython.core.error import UsageError

    from .magics import _parser

    a = _parser(
        "reproduce",
        (("run",), {}),
        (("--rtol",), {"type": float, "default": 1e-6}),
        (("--atol",), {"type": float, "default": 1e-9}),
        (("--data",), {"action": "append", "default": []}),
    ).parse_args(args)
    swaps = {}
    for item in a.data:
        name, sep, ref = item.partition("=")
        if not sep:
            raise UsageError(f"%mlo reproduce: --data {item!r}: write NAME=REF")
        swaps[name] = ref
    return reproduce_api.reproduce(a.run, rtol=a.rtol, atol=a.atol, data=swaps)


COMMANDS = {"reproduce": _reproduce}
