"""What a run comparison shows, free of any notebook machinery: the runs matching a filter, sorted and paged,
the params that tell them apart, a selection, metric histories, a param diff and the best run by a metric.

The widget (:mod:`mlo.jupyter.widgets`) and the static HTML (:mod:`mlo.report.compare`) both draw from a
:class:`Comparison`. The listing is read once, projected to the base columns plus params and metrics (tags are
read only when a filter names them); filtering, sorting and paging then work on that frame in memory, so a
comparison of 10,000 runs stays responsive.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..errors import AmbiguousRef, InvalidInput, NotFound
from . import where as where_mod

BASE = ["run_id", "experiment", "name", "status", "start_time", "duration"]
MAX_KEY_PARAMS = 8
MAX_KEY_METRICS = 8
_LOWER_IS_BETTER = ("loss", "error", "err", "mse", "rmse", "mae", "mape", "logloss", "perplexity", "latency")


def lower_is_better(metric: str) -> bool:
    """Whether a metric name reads like a loss (``val_loss``, ``rmse``, ``error_rate``): the best run is the
    lowest one."""
    key = metric.removeprefix("metrics.").lower()
    words = key.replace("-", "_").replace(".", "_").replace("/", "_").split("_")
    return any(w in _LOWER_IS_BETTER for w in words)


@dataclass(frozen=True)
class Best:
    """The best run by a metric."""

    run_id: str
    name: str
    metric: str
    value: float
    mode: str  # "max" or "min"


class Comparison:
    """Runs to compare: a filter, an order, a page, a selection.

    Parameters
    ----------
    experiment : str or list of str, optional
        Only runs of these experiments.
    where : str, optional
        A filter in :mod:`mlo.tracking.where` syntax.
    selected : list of str, optional
        Run ids (or unique prefixes) selected to start with.
    page_size : int
        Rows per page of the run table.
    order_by : str or list of str, optional
        The order of the table, e.g. ``"metrics.acc desc"`` or ``["params.model", "metrics.acc desc"]``.
    """

    def __init__(
        self,
        experiment: str | Sequence[str] | None = None,
        where: str | None = None,
        selected: Iterable[str] = (),
        page_size: int = 25,
        order_by: str | Sequence[str] | None = None,
    ):
        if not isinstance(page_size, int) or page_size < 1:
            raise InvalidInput(f"page_size must be a positive integer, got {page_size!r}")
        self.experiment = experiment
        self.page_size = page_size
        self.where: str | None = None
        self.sort_column = "start_time"
        self.ascending = False
        self.then: list[tuple[str, bool]] = []  # further keys of order_by, after the sort column
        self.page = 0
        self._all = self._read()
        self.frame = self._sorted(self._all)
        self._differing: list[str] | None = None
        self.selected: list[str] = []
        if where:
            self.filter(where)
        orders = where_mod.parse_order(order_by)
        if orders:
            self.sort(*orders[0])
            missing = [c for c, _ in orders[1:] if c not in self.frame.columns]
            if missing:
                raise InvalidInput(f"cannot sort by {missing[0]!r}: no such column")
            self.then = orders[1:]
            self.frame = self._sorted(self.frame)
        self.select(selected)

    # -- reading ---------------------------------------------------------------------------------------------
    def _read(self, where: str | None = None, tags: bool = False) -> pd.DataFrame:
        from .query import runs

        columns = [*BASE, "parent_id", "params.*", "metrics.*", *(["tags.*"] if tags else [])]
        return runs(experiment=self.experiment, where=where, columns=columns)

    def refresh(self) -> None:
        """Read the runs again (new runs, finished ones), keeping the filter, order and selection."""
        self._all = self._read()
        self._apply(self.where)

    # -- filter, order, page ---------------------------------------------------------------------------------
    def filter(self, where: str | None) -> int:
        """Show only the runs matching ``where`` (None or "" shows all); returns how many match."""
        where = (where or "").strip() or None
        self._apply(where)
        self.where = where
        self.page = 0
        return len(self.frame)

    def _apply(self, where: str | None) -> None:
        if where is None:
            frame = self._all
        else:
            tree = where_mod.parse(where)
            if where_mod.columns_of(tree) <= set(self._all.columns) | set(where_mod.BASE_COLUMNS):
                missing = where_mod.columns_of(tree) - set(self._all.columns)
                base = self._all if not missing else self._all.assign(**{c: None for c in missing})
                frame = self._all[where_mod.evaluate(tree, base).to_numpy()]
            else:  # a key no listed run has, or a tag: let the store filter
                frame = self._read(where, tags=any(c.startswith("tags.") for c in where_mod.columns_of(tree)))
        self.frame = self._sorted(frame)
        self._differing = None

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Order the runs by ``column`` (ascending unless told; clicking the same column again flips it)."""
        column = where_mod.column_name(column) if column not in self.frame.columns else column
        if column not in self.frame.columns:
            raise InvalidInput(f"cannot sort by {column!r}: no such column")
        if ascending is None:
            ascending = not self.ascending if column == self.sort_column else column not in ("start_time",)
        self.sort_column, self.ascending = column, bool(ascending)
        self.frame = self._sorted(self.frame)
        self.page = 0

    def _sorted(self, frame: pd.DataFrame) -> pd.DataFrame:
        if self.sort_column not in frame.columns:
            return frame
        keys = [(self.sort_column, self.ascending)]
        keys += [(c, a) for c, a in self.then if c in frame.columns and c != self.sort_column]
        ordered = frame.sort_values(
            [c for c, _ in keys], ascending=[a for _, a in keys], na_position="last", kind="stable"
        )
        return _grouped(ordered)

    @property
    def pages(self) -> int:
        return max(1, math.ceil(len(self.frame) / self.page_size))

    def goto(self, page: int) -> None:
        self.page = min(max(0, int(page)), self.pages - 1)

    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page, with the key columns."""
        start = self.page * self.page_size
        page = self.frame.iloc[start : start + self.page_size][self.key_columns()]
        depth = self.frame.attrs.get("depth") or {}
        if depth and "name" in page.columns:  # a child run under its parent: indented, marked
            page = page.assign(
                name=[
                    f"{'  ' * (depth[r] - 1)}↳ {n}" if depth.get(r) else n
                    for r, n in zip(page["run_id"], page["name"], strict=True)
                ]
            )
        return page

    # -- what tells runs apart -------------------------------------------------------------------------------
    @property
    def params(self) -> list[str]:
        return [c for c in self.frame.columns if c.startswith("params.")]

    @property
    def metrics(self) -> list[str]:
        """The metric columns some shown run has; ``system.*`` ones last."""
        found = [c for c in self.frame.columns if c.startswith("metrics.") and self.frame[c].notna().any()]
        return sorted(found, key=lambda c: c.startswith("metrics.system."))

    def differing(self, frame: pd.DataFrame | None = None) -> list[str]:
        """The param columns whose value is not the same in every run of ``frame`` (the filtered runs)."""
        if frame is None:
            if self._differing is None:  # the shown runs changed: work it out again (sorting keeps it)
                self._differing = _differing(self.frame)
            return self._differing
        return _differing(frame)

    def key_columns(self) -> list[str]:
        """The columns of the run table: name, status, duration, the differing params first (then the
        others), and the metrics; the sorted column is always kept."""
        differing = self.differing()
        params = differing + [c for c in self.params if c not in differing]
        cols = [c for c in BASE if c in self.frame.columns]
        cols += params[: max(MAX_KEY_PARAMS, len(differing[:MAX_KEY_PARAMS]))]
        cols += self.metrics[:MAX_KEY_METRICS]
        if self.sort_column not in cols and self.sort_column in self.frame.columns:
            cols.append(self.sort_column)
        return cols

    # -- selection -------------------------------------------------------------------------------------------
    def select(self, run_ids: Iterable[str]) -> list[str]:
        """Select these runs: full ids, or the short ids the tables show (an id's end), or unique prefixes;
        returns the full ids."""
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        known = self._all["run_id"].tolist()
        chosen = []
        for ref in run_ids:
            ref = str(ref).strip().lower()
            matches = [r for r in known if r == ref]
            if not matches and len(ref) >= 4:
                matches = [r for r in known if r.endswith(ref) or r.startswith(ref)]
            if not matches:
                raise NotFound(f"no run {ref!r} among the runs compared")
            if len(matches) > 1:
                raise AmbiguousRef(f"run id {ref!r} matches several runs: give more characters")
            if matches[0] not in chosen:
                chosen.append(matches[0])
        self.selected = chosen
        return chosen

    def selection(self) -> pd.DataFrame:
        """The selected runs' rows (all columns), in the order they were selected."""
        if not self.selected:
            return self._all.iloc[0:0]
        by_id = self._all.set_index("run_id", drop=False)
        return by_id.loc[[r for r in self.selected if r in by_id.index]].reset_index(drop=True)

    def param_diff(self, run_ids: Sequence[str] | None = None, only_differing: bool = False) -> pd.DataFrame:
        """Params as rows, the runs as columns (labelled by name), and a ``differs`` column."""
        rows = self._rows(run_ids)
        params = [c for c in rows.columns if c.startswith("params.") and rows[c].notna().any()]
        differing = set(self.differing(rows))
        table = pd.DataFrame(
            {label: rows[params].iloc[i].tolist() for i, label in enumerate(_labels(rows))},
            index=[p.removeprefix("params.") for p in params],
        )
        table["differs"] = [p in differing for p in params]
        if only_differing:
            table = table[table["differs"]]
        return table

    def histories(self, keys: Sequence[str] | None = None, run_ids: Sequence[str] | None = None) -> dict:
        """``{metric: {run label: DataFrame(step, value)}}`` for the selected runs (every metric they logged,
        or ``keys``)."""
        from ..workspace import current
        from .session import flush

        rows = self._rows(run_ids)
        flush()
        store = current().runs
        wanted = [k.removeprefix("metrics.") for k in keys] if keys else None
        out: dict[str, dict[str, pd.DataFrame]] = {}
        for run_id, label in zip(rows["run_id"], _labels(rows), strict=True):
            for key in wanted or sorted(store.latest_metrics(run_id)):
                series = store.metric_series(run_id, key)
                if series is None:
                    continue
                steps, values, _ = series
                out.setdefault(key, {})[label] = pd.DataFrame({"step": steps, "value": values})
        return out

    def parallel(self, metric: str, run_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """The params that differ and ``metric``, one row per run (the selection, or every filtered run when
        nothing is selected), for a parallel-coordinates plot."""
        metric = _metric_column(metric)
        rows = self._rows(run_ids) if (run_ids or self.selected) else self.frame
        if metric not in rows.columns:
            raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
        params = self.differing(rows) or [c for c in rows.columns if c.startswith("params.")]
        out = rows[["run_id", "name", *params, metric]].copy()
        return out.reset_index(drop=True)

    def best(self, metric: str, mode: str | None = None) -> Best:
        """The filtered run with the highest ``metric`` (lowest for a loss-like name, or as ``mode`` says)."""
        metric = _metric_column(metric)
        if mode is None:
            mode = "min" if lower_is_better(metric) else "max"
        if mode not in ("min", "max"):
            raise InvalidInput(f"mode must be 'min' or 'max', got {mode!r}")
        if metric not in self.frame.columns or self.frame[metric].isna().all():
            raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
        values = self.frame[metric].to_numpy(dtype="float64")
        i = int(np.nanargmin(values) if mode == "min" else np.nanargmax(values))
        row = self.frame.iloc[i]
        return Best(row["run_id"], row["name"], metric, float(values[i]), mode)

    def _rows(self, run_ids: Sequence[str] | None) -> pd.DataFrame:
        if run_ids is None:
            if not self.selected:
                raise InvalidInput("select some runs first")
            return self.selection()
        saved = self.selected
        try:
            self.select(run_ids)
            return self.selection()
        finally:
            self.selected = saved


def _grouped(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` in the same order, except that child runs (a sweep's trials, a search's candidates, a
    pipeline's stages) follow their parent when it is listed too; ``attrs["depth"]`` has their depth."""
    if "parent_id" not in frame.columns or len(frame) < 2:
        return frame
    ids = frame["run_id"].tolist()
    parents = frame["parent_id"].tolist()
    listed = set(ids)
    children: dict[str, list[int]] = {}
    roots = []
    for i, parent in enumerate(parents):
        if isinstance(parent, str) and parent in listed:
            children.setdefault(parent, []).append(i)
        else:
            roots.append(i)
    if not children:
        return frame
    order: list[int] = []
    depth: dict[str, int] = {}
    stack = [(i, 0) for i in reversed(roots)]
    while stack:
        i, level = stack.pop()
        order.append(i)
        if level:
            depth[ids[i]] = level
        stack.extend((c, level + 1) for c in reversed(children.get(ids[i], [])))
    grouped = frame.iloc[order]
    grouped.attrs["depth"] = depth
    return grouped


def _differing(frame: pd.DataFrame) -> list[str]:
    out = []
    for c in (c for c in frame.columns if c.startswith("params.")):
        col = frame[c]
        present = col.dropna()
        if present.empty:
            continue
        if len(present) < len(col):
            out.append(c)
            continue
        try:
            distinct = present.nunique()
        except TypeError:  # unhashable values
            distinct = present.astype(str).nunique()
        if distinct > 1:
            out.append(c)
    return out


def _labels(rows: pd.DataFrame) -> list[str]:
    """Column labels for runs: their names, with a short id where names repeat or are missing."""
    from .short_ids import short_ids

    short = short_ids(rows["run_id"])
    names = [
        n if isinstance(n, str) and n else short[r] for n, r in zip(rows["name"], rows["run_id"], strict=True)
    ]
    counts = pd.Series(names).value_counts()
    return [f"{n} ({short[r]})" if counts[n] > 1 else n for n, r in zip(names, rows["run_id"], strict=True)]


def _metric_column(metric: str) -> str:
    if not isinstance(metric, str) or not metric.strip():
        raise InvalidInput("name a metric, e.g. 'acc' or 'metrics.acc'")
    return metric if metric.startswith("metrics.") else f"metrics.{metric}"
