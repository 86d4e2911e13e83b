"""The ``model`` kind of lineage node: ``model:churn@production`` / ``model:churn/3`` → ``model:churn/3``."""

from __future__ import annotations

from typing import Any

from sqlalchemy import and_, or_, select

from ..store import schema as s
from .versions import resolve


def resolve_node(ws, text: str) -> str:
    """``"churn@production"``, ``"churn/3"``, ``"churn@latest"`` → ``"model:churn/3"``."""
    row = resolve(ws, text)
    return f"model:{row.name}/{row.version}"


def describe_nodes(ws, ids: list[str]) -> dict[str, dict[str, Any]]:
    """``{"churn/3": {"label": "churn v3", "detail": …, "attrs": {…}}}`` for node ids after ``model:``."""
    wanted: list[tuple[str, int]] = []
    for key in ids:
        name, _, version = key.rpartition("/")
        if name and version.isdigit():
            wanted.append((name, int(version)))
    if not wanted:
        return {}
    mv, al = s.model_versions, s.model_aliases
    cond = or_(*[and_(mv.c.name == n, mv.c.version == v) for n, v in wanted])
    out: dict[str, dict[str, Any]] = {}
    with ws.db.read() as conn:
        rows = conn.execute(
            select(
                mv.c.name,
                mv.c.version,
                mv.c.flavor,
                mv.c.blob,
                mv.c.model_class,
                mv.c.run_id,
                mv.c.created_at,
            ).where(cond)
        ).all()
        names = sorted({n for n, _ in wanted})
        aliases: dict[tuple[str, int], list[str]] = {}
        for n, a, v in conn.execute(select(al.c.name, al.c.alias, al.c.version).where(al.c.name.in_(names))):
            aliases.setdefault((n, v), []).append(a)
    for r in rows:
        held = sorted(aliases.get((r.name, r.version), []))
        detail = r.model_class.rsplit(".", 1)[-1] + (" · @" + ", @".join(held) if held else "")
        out[f"{r.name}/{r.version}"] = {
            "label": f"{r.name} v{r.version}",
            "detail": detail,
            "attrs": {
                "name": r.name,
                "version": r.version,
                "aliases": held,
                "flavor": r.flavor,
                "digest": r.blob,
                "model_class": r.model_class,
                "run_id": r.run_id,
                "created_at": r.created_at,
            },
        }
    return out


def register() -> None:
    """Teach ``mlo.lineage`` the model kind (when the lineage module is there)."""
    try:
        from ..data.lineage import register_kind
    except ImportError:
        return
    register_kind("model", resolve=resolve_node, describe=describe_nodes)


register()  # importing this module is enough: mlo.data.lineage can import it to learn the kind
