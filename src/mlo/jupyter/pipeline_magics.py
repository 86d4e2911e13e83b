"""``%mlo reproduce RUN``: replay what made a run and show the verdict, where it diverged and the fix."""

from __future__ import annotations

USAGE = """\
  %mlo reproduce RUN [--rtol R] [--data NAME=REF] [--runs N]
                                         replay what made RUN in a fresh kernel on the same
                                         data; compare status, params and metrics, and say
                                         why when they differ (--runs 2: nondeterminism)
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
        (("--runs",), {"type": int, "default": 1}),
        (("--timeout",), {"type": float}),
    ).parse_args(args)
    swaps = {}
    for item in a.data:
        name, sep, ref = item.partition("=")
        if not sep:
            raise UsageError(f"%mlo reproduce: --data {item!r}: write NAME=REF")
        swaps[name] = ref
    from ..pipeline import reproduce as reproduce_api

    return reproduce_api.reproduce(
        a.run, rtol=a.rtol, atol=a.atol, data=swaps, runs=a.runs, timeout=a.timeout
    )


COMMANDS = {"reproduce": _reproduce}
