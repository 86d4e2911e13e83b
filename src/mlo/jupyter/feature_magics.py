"""``%mlo features`` and ``%mlo materialize``: feature views and their online values."""

from __future__ import annotations

USAGE = """\
  %mlo features [NAME]                   list feature views (every version of NAME) with the
                                         snapshot each reads; %mlo lineage feature:NAME@V draws it
  %mlo materialize [VIEW ...] [--as-of T]
                                         write each entity's latest feature values to the
                                         online table serving reads (default: every view)
"""


def _features(magics, args, cell):
    from ..features.views import feature_views
    from .magics import _parser

    a = _parser("features", (("name",), {"nargs": "?"})).parse_args(args)
    return feature_views(a.name)


def _materialize(magics, args, cell):
    from ..features.online import materialize
    from .magics import _parser

    a = _parser("materialize", (("views",), {"nargs": "*"}), (("--as-of",), {"dest": "as_of"})).parse_args(
        args
    )
    return materialize(a.views or None, as_of=a.as_of)


COMMANDS = {"features": _features, "materialize": _materialize}
