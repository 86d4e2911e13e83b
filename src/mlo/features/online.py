"""Online values: the latest features per entity, in the store's database, for serving.

:func:`materialize` computes, per view, each entity's latest feature row (at or before ``as_of``), or its
aggregates as of then, with the code that makes training frames (:mod:`.pointintime`), and replaces the view's rows of the online table in one transaction: a reader sees the old set or the new one, never a
mix, and a materialization killed half-way leaves the old set. :func:`lookup` reads them by entity id.
"""

from __future__ import annotations

import json
import math
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput
from . import aggregates
from .pointintime import latest, locate
from .rows import view_index
from .views import FeatureView, get_feature_view


def entity_key(value: Any) -> str:
    """The online table's text form of an entity id: ``42``, ``42.0`` (a whole float) and ``"42"`` are one
    entity."""
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (np.integer, int)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isfinite(value) and float(value).is_integer():
            return str(int(value))
        return repr(float(value))
    return str(value)


def _plain(v: Any) -> Any:
    if v is None or v is pd.NA or v is pd.NaT:
        return None
    if isinstance(v, np.generic):
        v = v.item()
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, (pd.Timestamp, datetime)):
        return v.isoformat()
    return v


def _as_us(t: Any) -> int | None:
    if t is None:
        return None
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1000)


def materialize(features: Any = None, *, as_of: Any = None) -> dict[str, int]:
    """Write each entity's latest feature values to the online table that serving reads.

    Parameters
    ----------
    features : list, optional
        Feature views (``"spend"``, ``"spend@2"`` or :class:`FeatureView`); default: the latest version of
        every view.
    as_of : datetime or str, optional
        Use only source rows at or before this time (default: all). Aggregate views compute their windows as of
        this time (default: now), as a training row at that time would.

    Returns
    -------
    dict
        ``{view name: entities written}``.
    """
    ws = workspace.current()
    if features is None:
        views = [get_feature_view(n) for n in ws.features.names()]
    else:
        if isinstance(features, (str, FeatureView)):
            features = [features]
        views = [get_feature_view(f) for f in features]
    try:
        cutoff = _as_us(as_of)
    except (ValueError, TypeError):
        raise InvalidInput(f"as_of must be a datetime or an ISO date, got {as_of!r}") from None
    now = _as_us(pd.Timestamp.now("UTC"))
    done: dict[str, int] = {}
    for view in views:
        at = cutoff if cutoff is not None or not view.aggregated else now  # a window ends somewhere: now
        done[view.name] = ws.features.replace_online(
            view.name, view.version, view._row.snapshot_id, at, _latest_rows(view, at)
        )
    return done


def _latest_rows(view: FeatureView, cutoff: int | None):
    """(entity, event time, features JSON) of each entity with a feature row at or before ``cutoff``: the latest
    row's values, or for an aggregate view the aggregates as of ``cutoff``, by the very code a training frame
    uses for a row at that time."""
    index = view_index(view, view.event_columns, block=not view.aggregated)
    keys = np.asarray(index.keys, dtype=object) if index.keys.dtype == object else index.keys.to_numpy()
    at = np.full(len(keys), cutoff if cutoff is not None else np.iinfo(np.int64).max, dtype=np.int64)
    where = locate(index, keys, at, view.entity)
    cols = view.features
    if view.aggregated:
        values = aggregates.compute(index, where, view.aggregations, cols)
        dtypes = {c["name"]: c["dtype"] for c in view.output_schema}
        values = {c: values[c].astype(dtypes[c], copy=False) for c in cols}
        event_times = at
    else:
        values = latest(index, where, cols)
        event_times = index.times[np.maximum(where.upto - 1, 0)] if len(index.times) else at
    lists: dict[str, list] = {}
    for name, v in values.items():
        if isinstance(name, tuple):  # float columns side by side
            lists.update({n: v[:, i].tolist() for i, n in enumerate(name)})
        else:
            lists[name] = v.tolist() if isinstance(v, np.ndarray) else v.to_pylist()
    for i in np.flatnonzero(where.upto > where.start):
        doc = {c: _plain(lists[c][i]) for c in cols}
        yield entity_key(keys[i]), int(event_times[i]), json.dumps(doc, separators=(",", ":"))


def lookup(view: Any, entities: Any) -> pd.DataFrame:
    """The online values of ``view`` for ``entities`` (ids), in their order: the entity column, the features
    (cast to the view's output types) and ``_found`` (False where the entity has no online value)."""
    fv = get_feature_view(view) if not isinstance(view, FeatureView) else view
    if isinstance(entities, (str, int, np.integer)):
        entities = [entities]
    ids = list(entities)
    keys = [entity_key(e) for e in ids]
    ws = fv._ws
    found = ws.features.online(fv.name, sorted(set(keys)))
    return frame_of(fv, ids, keys, found)


def frame_of(fv: FeatureView, ids: list, keys: list[str], found: dict) -> pd.DataFrame:
    cols = fv.features
    data = {c: [] for c in cols}
    hit = []
    for k in keys:
        got = found.get(k)
        doc = json.loads(got[2]) if got is not None else {}
        hit.append(got is not None)
        for c in cols:
            data[c].append(doc.get(c))
    out = pd.DataFrame({fv.entity: ids, **data})
    for c in fv.output_schema:
        if all(hit) or out[c["name"]].notna().all():  # a missing value keeps an int or bool column as read
            try:
                out[c["name"]] = out[c["name"]].astype(c["dtype"])
            except (TypeError, ValueError):
                pass
    out["_found"] = hit
    return out
