"""What every ``mlo`` command prints, in one place: ``--format`` (``table``/``text``, ``csv``, ``json``), the one
table printer (:func:`mlo.report.text.table`), JSON that any tool reads, and text with the terminal's control
characters escaped, so a run name, tag or column holding an escape sequence is shown, never obeyed."""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from datetime import date, datetime
from typing import Any

import click

from ..report.text import clean, frame_text


def format_option(*choices: str, default: str | None = None, help: str | None = None):
    """``--format`` with these choices (the first is the default)."""
    default = default or choices[0]
    return click.option(
        "--format",
        "fmt",
        type=click.Choice(list(choices)),
        default=default,
        show_default=True,
        help=help or "How to print the result: " + ", ".join(choices) + ".",
    )


def echo(text: Any = "", err: bool = False, nl: bool = True) -> None:
    """Print text for a person: control characters escaped (newlines and tabs kept)."""
    click.echo(clean(text), err=err, nl=nl)


def _plain(value: Any) -> Any:
    """JSON-ready: NaN and infinities become null, times ISO 8601, numpy scalars plain numbers."""
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [_plain(v) for v in value]
    if isinstance(value, float):
        return None if math.isnan(value) or math.isinf(value) else value
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _plain(value.item())
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if value is None or isinstance(value, (str, int, bool)):
        return value
    try:
        import pandas as pd

        if pd.isna(value):
            return None
    except (TypeError, ValueError):
        pass
    return str(value)


def emit_json(value: Any) -> None:
    """Print ``value`` as JSON (strings escaped by JSON itself: no control character reaches the terminal)."""
    click.echo(json.dumps(_plain(value), indent=2, ensure_ascii=True))


def frame_records(df) -> list[dict]:
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


def emit_frame(df, fmt: str, text: Callable[[Any], str] | None = None, empty: str = "Nothing.") -> None:
    """A listing in ``fmt``: ``table`` (``text(df)``, or every column), ``csv`` or ``json`` (a list of records)."""
    if fmt == "json":
        click.echo(json.dumps(frame_records(df), indent=2, ensure_ascii=True))
    elif fmt == "csv":
        echo(df.to_csv(index=False), nl=False)
    else:
        echo(text(df) if text is not None else frame_text(df, empty=empty))
