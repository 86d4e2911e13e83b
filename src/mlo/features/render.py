"""A feature view in a notebook: what it computes, from which snapshot, and its transform's code."""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING

from ..report.html import STYLE, table

if TYPE_CHECKING:
    from .views import FeatureView


def view_html(view: FeatureView) -> str:
    meta = [
        f"by <code>{escape(view.entity)}</code> as of <code>{escape(view.timestamp)}</code>",
        f"from {escape(view.source.ref.removeprefix('snapshot:'))}",
        f"digest <code>{escape(view.digest[:16])}</code>",
    ]
    head = (
        f'<div class="mlo-h">Feature view {escape(view.ref)}</div><div class="mlo-m">{" · ".join(meta)}</div>'
    )
    if view.aggregated:
        outputs = table(
            ["feature", "dtype", "aggregate", "window"],
            [[c["name"], c["dtype"], f"{c['agg']['fn']}({c['agg']['of']})", f"({c['agg']['window']} before, as of]"]
             for c in view.output_schema],
        )  # fmt: skip
    else:
        outputs = table(["feature", "dtype"], [[c["name"], c["dtype"]] for c in view.output_schema])
    inputs = ", ".join(f"{c['name']} ({c['dtype']})" for c in view.input_schema)
    code = (
        f"<details><summary>transform</summary><pre>{escape(view.code)}</pre></details>" if view.code else ""
    )
    return f'{STYLE}<div>{head}{outputs}<div class="mlo-m">inputs: {escape(inputs)}</div>{code}</div>'
