"""Notebook parameters: the defaults in the cell tagged ``parameters``, and overrides checked against them.

Values follow ``ast.literal_eval``: what a user writes after ``-p stage.key=`` is read as a Python literal when it
is one (``0.5``, ``[1, 2]``, ``'rf'``, ``None``) and as text otherwise. An override must name a parameter the
notebook declares and have the type of its default (an int where a float is expected is fine; a ``None`` default
takes anything), so a typo fails before a kernel starts, not an hour into a run.
"""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

from ..errors import InvalidInput


def read_notebook(path: Path) -> dict[str, Any]:
    """The notebook as plain JSON with every cell's source as one string (no nbformat import: planning a
    cached pipeline must stay fast)."""
    try:
        nb = json.loads(Path(path).read_text(encoding="utf-8"))
        cells = nb["cells"]
        for cell in cells:
            if isinstance(cell.get("source"), list):
                cell["source"] = "".join(cell["source"])
            cell.setdefault("metadata", {})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InvalidInput(f"{path} is not a readable notebook: {exc}") from None
    nb.setdefault("metadata", {})
    return nb


def parameters_cell(nb: dict[str, Any]) -> int | None:
    for i, cell in enumerate(nb["cells"]):
        if cell.get("cell_type") == "code" and "parameters" in (cell["metadata"].get("tags") or []):
            return i
    return None


def defaults(nb: dict[str, Any]) -> dict[str, Any]:
    """``name = literal`` assignments of the parameters cell (others are ignored: they are not parameters)."""
    i = parameters_cell(nb)
    if i is None:
        return {}
    try:
        tree = ast.parse(nb["cells"][i]["source"])
    except SyntaxError as exc:
        raise InvalidInput(f"the parameters cell does not parse: {exc.msg} (line {exc.lineno})") from None
    out: dict[str, Any] = {}
    for node in tree.body:
        target = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        if target is None:
            continue
        try:
            out[target] = ast.literal_eval(value)
        except ValueError:
            out[target] = _NotLiteral(ast.unparse(value))
    return out


class _NotLiteral:
    """A default computed by code: any override type is accepted."""

    def __init__(self, text: str):
        self.text = text

    def __repr__(self) -> str:
        return self.text


def parse_value(text: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


def _type_ok(default: Any, value: Any) -> bool:
    if default is None or isinstance(default, _NotLiteral) or value is None:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)):
        return isinstance(value, (list, tuple))
    return isinstance(value, type(default))


def check(overrides: dict[str, Any], declared: dict[str, Any], where: str) -> dict[str, Any]:
    """Overrides checked against the declared defaults; returns them (ints given for floats become floats)."""
    out: dict[str, Any] = {}
    for key, value in overrides.items():
        if key not in declared:
            known = ", ".join(sorted(declared)) or "none (tag a cell 'parameters')"
            raise InvalidInput(f"{where}: the notebook has no parameter {key!r}; its parameters: {known}")
        default = declared[key]
        if not _type_ok(default, value):
            raise InvalidInput(
                f"{where}: parameter {key!r} expects {type(default).__name__} like its default {default!r}, "
                f"got {type(value).__name__} {value!r}"
            )
        if isinstance(default, float) and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        try:
            json.dumps(value)
        except TypeError:
            raise InvalidInput(f"{where}: parameter {key!r} = {value!r} is not JSON-able") from None
        out[key] = value
    return out
