"""Filling a request's feature columns for a model whose signature names feature views.

For each view the model reads, a request either sends the view's own inputs (``amount``, ``rate``): the columns are
computed from them by the registered transform, the very function that made the training frame; or it sends the
entity id (``customer_id``): the columns are read from the online table (:func:`mlo.features.materialize`). The
values a client sends for feature columns themselves are replaced, so a client cannot feed the model a feature
that no view computed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pandas as pd

from ..errors import InvalidInput, MloError
from .online import entity_key
from .views import FeatureView


class FeatureRequestError(MloError):
    """A request whose features cannot be filled: ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class _Use:
    view: FeatureView
    columns: tuple[str, ...]
    request_inputs: tuple[str, ...]  # what a request sends to have the features computed at request time


class FeatureFill:
    """The feature views of one model version, loaded once (their transforms too) when the version is."""

    def __init__(self, ws, specs: list[dict[str, Any]]):
        self.ws = ws
        uses = []
        for spec in specs:
            row = ws.features.get(spec["view"], int(spec["version"]))
            view = FeatureView._from_row(ws, row)
            view.transform  # noqa: B018  (load it now, not in the first request)
            inputs = (  # an aggregate is over the entity's history: a request's own rows cannot make one
                ()
                if view.aggregated
                else tuple(c for c in view.inputs if c not in (view.entity, view.timestamp))
            )
            uses.append(_Use(view, tuple(spec["columns"]), inputs))
        self.uses = uses

    def describe(self) -> list[dict[str, Any]]:
        return [
            {
                "view": u.view.name,
                "version": u.view.version,
                "entity": u.view.entity,
                "columns": list(u.columns),
            }
            for u in self.uses
        ]

    def log_types(self) -> dict[str, Any]:
        """The request columns the prediction log keeps besides the model's inputs: each view's entity and
        inputs, with their Arrow types."""
        from ..monitor.log import arrow_type
        from ..registry.signature import kind_of_name

        out: dict[str, Any] = {}
        for use in self.uses:
            for c in use.view.input_schema:
                if c["name"] in (use.view.entity, *use.request_inputs):
                    out.setdefault(c["name"], arrow_type(c["dtype"], kind_of_name(c["dtype"])))
        return out

    def logged(self, data: dict[str, list], n: int) -> dict[str, list]:
        return {c: data.get(c) or [None] * n for c in self.log_types()}

    def fill(self, data: dict[str, list], n: int) -> dict[str, list]:
        """``data`` (columns of the request) with every feature column filled in."""
        out = dict(data)
        for use in self.uses:
            view = use.view
            if use.request_inputs and all(c in data for c in use.request_inputs):
                values = self._compute(use, data, n)
            elif view.entity in data:
                values = self._look_up(use, data[view.entity])
            else:
                sends = ", ".join(use.request_inputs)
                raise FeatureRequestError(
                    400,
                    f"send {view.entity!r} (the entity of feature view {view.ref})"
                    + (f" or its inputs {sends}" if sends else ""),
                )
            out.update(values)
        return out

    def _compute(self, use: _Use, data: dict[str, list], n: int) -> dict[str, list]:
        view = use.view
        cols = {c: data[c] for c in use.request_inputs}
        if view.entity in data:
            cols[view.entity] = data[view.entity]
        frame = pd.DataFrame(cols)
        # the rows' time: as sent, else now (the features of a request are as of the request)
        when = data.get(view.timestamp)
        try:
            stamps = pd.to_datetime(
                pd.Series(when if when is not None else [pd.Timestamp.now("UTC")] * n), utc=True
            )
        except (ValueError, TypeError) as exc:
            raise FeatureRequestError(422, f"{view.timestamp!r} must hold ISO times: {exc}") from None
        dtype = next(c["dtype"] for c in view.input_schema if c["name"] == view.timestamp)
        frame[view.timestamp] = stamps.dt.tz_localize(None).astype(dtype).to_numpy()
        try:
            out = view.apply(frame)
        except InvalidInput as exc:
            raise FeatureRequestError(422, str(exc)) from None
        except Exception as exc:
            raise FeatureRequestError(
                422, f"feature view {view.ref} failed on the request's inputs: {type(exc).__name__}: {exc}"
            ) from None
        return {c: _plain_list(out[c]) for c in use.columns}

    def _look_up(self, use: _Use, ids: list) -> dict[str, list]:
        view = use.view
        bad = [i for i in ids if i is None or isinstance(i, (list, dict))]
        if bad:
            raise FeatureRequestError(422, f"{view.entity!r} must hold an id per row, got {bad[0]!r}")
        keys = [entity_key(i) for i in ids]
        found = self.ws.features.online(view.name, sorted(set(keys)))
        missing = [i for i, k in zip(ids, keys, strict=True) if k not in found]
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (" …" if len(missing) > 5 else "")
            raise FeatureRequestError(
                422,
                f"no online values of feature view {view.name} for {view.entity} {shown}: materialize them "
                "(mlo.features.materialize) or send the view's inputs",
            )
        stale = {found[k][0] for k in keys} - {view.version}
        if stale:
            raise FeatureRequestError(
                422,
                f"the online values of feature view {view.name} are from version {min(stale)}, and the model was "
                f"fit on version {view.version}: materialize {view.ref} (mlo.features.materialize(['{view.ref}']))",
            )
        docs = [json.loads(found[k][2]) for k in keys]
        return {c: [d.get(c) for d in docs] for c in use.columns}


def _plain_list(s: pd.Series) -> list:
    values = s.astype(object).where(s.notna(), None).tolist()
    return [v.item() if hasattr(v, "item") else v for v in values]
