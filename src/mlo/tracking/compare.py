"""What a run comparison shows, free of any notebook machinery: the runs matching a filter, sorted and paged,
the params that tell them apart, a selection, metric histories, a param diff and the best run by a metric.

The widget (:mod:`mlo.jupyter.widgets`) and the static HTML (:mod:`mlo.report.compare`) both draw from a
:class:`Comparison`. Up to :data:`EAGER_RUNS` runs the listing is read once, projected to the base columns plus
params and metrics (tags are read only when a filter names them), and filtering, sorting and paging work on that
frame in memory (a sweep's trials stay under it in any order). Beyond that the comparison is lazy: each page comes
from the store (``runs(limit=, offset=, where=, order_by=)``, filtered, ordered and counted in SQL), the params that
differ are those of the shown page, and the whole listing is read only when something asks for it, so the first
view of 100,000 runs costs one page.
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
EAGER_RUNS = 2_000  # up to this many runs the listing is read whole; beyond, pages come from the store
SAMPLE_RUNS = 20_000  # scatter, importance and grouping of a lazy comparison: a fixed-seed sample beyond this
MAX_KEY_PARAMS = 8
MAX_KEY_METRICS = 8
MAX_LINES = 2_000  # parallel coordinates of a lazy comparison: the best runs by the metric
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
        self.selected: list[str] = []
        self._differing: list[str] | None = None
        self._metrics: list[str] | None = None
        where = (where or "").strip() or None
        if where is not None:
            where_mod.parse(where)  # a malformed filter fails here, before anything is read
        self.where = where
        orders = where_mod.parse_order(order_by)
        if orders:
            (self.sort_column, self.ascending), self.then = orders[0], orders[1:]
        self._start()
        self.select(selected)

    # -- reading ---------------------------------------------------------------------------------------------
    def _start(self) -> None:
        """Count the runs (one cheap query); read them whole when there are few, else only the first page,
        filtered, ordered and counted by the store (lazy)."""
        from .query import runs

        self._ids: list[str] | None = None
        self._frame = self._all = None
        self._differing = self._metrics = None
        self.page = 0
        self.count_all = int(runs(experiment=self.experiment, columns=["run_id"], limit=1).attrs["total"])
        self.lazy = self.count_all > EAGER_RUNS
        if self.lazy:
            try:
                self._load_page()
            except InvalidInput as exc:
                raise InvalidInput(str(exc).replace("cannot order by", "cannot sort by")) from None
            return
        self._all = self._read(tags=True)
        tags = [c for c in self._all.columns if c.startswith("tags.")]
        self._page = self._all[["run_id", *tags]].iloc[: self.page_size]  # the tags a view offers to group by
        self._all = self._all.drop(columns=tags)
        self._frame = self._sorted(self._apply_filter(self.where))
        missing = [c for c, _ in [(self.sort_column, True), *self.then] if c not in self._frame.columns]
        if missing:
            raise InvalidInput(f"cannot sort by {missing[0]!r}: no such column")
        self.count = len(self._frame)

    def _read(self, where: str | None = None, tags: bool = False, **page) -> pd.DataFrame:
        from .query import runs

        columns = [*BASE, "parent_id", "params.*", "metrics.*", *(["tags.*"] if tags else [])]
        return runs(experiment=self.experiment, where=where, columns=columns, **page)

    def _orders(self) -> list[str]:
        keys = [(self.sort_column, self.ascending)] + [(c, a) for c, a in self.then if c != self.sort_column]
        return [f"{c} {'asc' if a else 'desc'}" for c, a in keys]

    def _load_page(self) -> None:
        """A lazy comparison's current page, filtered, ordered and counted by the store (with its tags, so a
        view can offer to group by them)."""
        page = self._read(
            self.where,
            tags=True,
            order_by=self._orders(),
            limit=self.page_size,
            offset=self.page * self.page_size,
        )
        self.count = int(page.attrs["total"])
        self._page = _grouped(page)
        self._differing = self._metrics = None

    def refresh(self) -> None:
        """Read the runs again (new runs, finished ones), keeping the filter, order and selection."""
        page = self.page
        self._start()
        self.goto(page)

    @property
    def frame(self) -> pd.DataFrame:
        """Every run that matches the filter, in the table's order (a lazy comparison reads it now, once)."""
        if self._frame is None:
            self._frame = _grouped(self._read(self.where, order_by=self._orders()))
        return self._frame

    # -- filter, order, page ---------------------------------------------------------------------------------
    def filter(self, where: str | None) -> int:
        """Show only the runs matching ``where`` (None or "" shows all); returns how many match."""
        where = (where or "").strip() or None
        if where is not None:
            where_mod.parse(where)  # a malformed filter fails here, before anything changes
        saved = (self.where, self.page)
        self.where, self.page = where, 0
        try:
            self._apply(where)
        except InvalidInput:
            self.where, self.page = saved
            raise
        return self.count

    def _apply(self, where: str | None) -> None:
        if self.lazy:
            self._frame = None
            self._load_page()
            return
        self._frame = self._sorted(self._apply_filter(where))
        self.count = len(self._frame)
        self._differing = self._metrics = None

    def _apply_filter(self, where: str | None) -> pd.DataFrame:
        if where is None:
            return self._all
        tree = where_mod.parse(where)
        if where_mod.columns_of(tree) <= set(self._all.columns) | set(where_mod.BASE_COLUMNS):
            missing = where_mod.columns_of(tree) - set(self._all.columns)
            base = self._all if not missing else self._all.assign(**{c: None for c in missing})
            return self._all[where_mod.evaluate(tree, base).to_numpy()]
        # a key no listed run has, or a tag: let the store filter
        return self._read(where, tags=any(c.startswith("tags.") for c in where_mod.columns_of(tree)))

    def sort(self, column: str, ascending: bool | None = None) -> None:
        """Order the runs by ``column`` (ascending unless told; clicking the same column again flips it)."""
        known = self._page.columns if self.lazy else self.frame.columns
        column = where_mod.column_name(column) if column not in known else column
        if not self.lazy and column not in known:
            raise InvalidInput(f"cannot sort by {column!r}: no such column")
        if ascending is None:
            ascending = not self.ascending if column == self.sort_column else column not in ("start_time",)
        saved = (self.sort_column, self.ascending, self.page)
        self.sort_column, self.ascending, self.page = column, bool(ascending), 0
        if not self.lazy:
            self._frame = self._sorted(self._frame)
            return
        self._frame = None
        try:
            self._load_page()
        except InvalidInput:
            self.sort_column, self.ascending, self.page = saved
            raise InvalidInput(f"cannot sort by {column!r}: no such column") from None

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
        return max(1, math.ceil(self.count / self.page_size))

    def goto(self, page: int) -> None:
        page = min(max(0, int(page)), self.pages - 1)
        if self.lazy and page != self.page:
            self.page = page
            self._load_page()
        self.page = page

    def rows(self, offset: int, limit: int, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """``limit`` rows from row ``offset`` of the table (the key columns, or ``columns``), for a view that
        scrolls rather than pages; a lazy comparison reads just them (the current page is at hand)."""
        offset, limit = max(0, int(offset)), max(0, int(limit))
        if not self.lazy:
            rows = self.frame.iloc[offset : offset + limit]
        elif offset == self.page * self.page_size and limit <= self.page_size:
            rows = self._page.iloc[:limit]
        else:
            rows = _grouped(self._read(self.where, order_by=self._orders(), limit=limit, offset=offset))
        return self._labelled(rows.reindex(columns=list(columns or self.key_columns())), rows)

    def tag_columns(self) -> list[str]:
        """The tag columns of the first page of runs (read with it), e.g. to offer grouping by a tag."""
        return [c for c in self._page.columns if c.startswith("tags.")]

    def table_columns(self) -> list[str]:
        """Every column a table of the shown runs can offer: the key columns first, then the other params
        and metrics (for a column chooser)."""
        keys = self.key_columns()
        return keys + [c for c in [*self.params, *self.metrics] if c not in keys]

    def page_frame(self) -> pd.DataFrame:
        """The rows of the current page, with the key columns."""
        if self.lazy:
            rows = self._page
        else:
            start = self.page * self.page_size
            rows = self.frame.iloc[start : start + self.page_size]
        return self._labelled(rows[self.key_columns()], rows)

    def _labelled(self, page: pd.DataFrame, rows: pd.DataFrame) -> pd.DataFrame:
        depth = (self._frame if self._frame is not None else rows).attrs.get("depth") or {}
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
    def _shown(self) -> pd.DataFrame:
        """The runs the key columns and the differing params are worked out on: every filtered run, or the
        shown page of a lazy comparison."""
        return self._page if self.lazy else self.frame

    @property
    def params(self) -> list[str]:
        return [c for c in self._shown.columns if c.startswith("params.")]

    @property
    def metrics(self) -> list[str]:
        """The metric columns some shown run has; ``system.*`` ones last."""
        if self._metrics is None:  # the shown runs changed: work it out again
            shown = self._shown
            found = [c for c in shown.columns if c.startswith("metrics.") and shown[c].notna().any()]
            self._metrics = sorted(found, key=lambda c: c.startswith("metrics.system."))
        return self._metrics

    def differing(self, frame: pd.DataFrame | None = None) -> list[str]:
        """The param columns whose value is not the same in every run of ``frame`` (the filtered runs, or the
        shown page of a lazy comparison)."""
        if frame is None:
            if self._differing is None:  # the shown runs changed: work it out again (sorting keeps it)
                self._differing = _differing(self._shown)
            return self._differing
        return _differing(frame)

    def key_columns(self) -> list[str]:
        """The columns of the run table: name, status, duration, the differing params first (then the
        others), and the metrics; the sorted column is always kept."""
        shown = self._shown
        differing = self.differing()
        params = differing + [c for c in self.params if c not in differing]
        cols = [c for c in BASE if c in shown.columns]
        cols += params[: max(MAX_KEY_PARAMS, len(differing[:MAX_KEY_PARAMS]))]
        cols += self.metrics[:MAX_KEY_METRICS]
        if self.sort_column not in cols and self.sort_column in shown.columns:
            cols.append(self.sort_column)
        return cols

    # -- selection -------------------------------------------------------------------------------------------
    def _known_ids(self) -> list[str]:
        if not self.lazy:
            return self._all["run_id"].tolist()
        if self._ids is None:
            from .query import runs

            self._ids = runs(experiment=self.experiment, columns=["run_id"])["run_id"].tolist()
        return self._ids

    def select(self, run_ids: Iterable[str]) -> list[str]:
        """Select these runs: full ids, or the short ids the tables show (an id's end), or unique prefixes;
        returns the full ids."""
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        run_ids = list(run_ids)
        known = self._known_ids() if run_ids else []
        exact = set(known) if len(run_ids) > 8 else None
        chosen = []
        for ref in run_ids:
            ref = str(ref).strip().lower()
            matches = [ref] if (exact is not None and ref in exact) else [r for r in known if r == ref]
            if not matches and len(ref) >= 4:
                matches = [r for r in known if r.endswith(ref) or r.startswith(ref)]
            if not matches:
                raise NotFound(f"no run {ref!r} among the runs compared")
            if len(matches) > 1:
                raise AmbiguousRef(f"run id {ref!r} matches several runs: give more characters")
            chosen.append(matches[0])
        self.selected = list(dict.fromkeys(chosen))
        return self.selected

    def matching_ids(self) -> list[str]:
        """The ids of every run that matches the filter, in the table's order ("select all matching")."""
        if not self.lazy:
            return self.frame["run_id"].tolist()
        from .query import runs

        return runs(
            experiment=self.experiment, where=self.where, columns=["run_id"], order_by=self._orders()
        )["run_id"].tolist()

    def selection(self) -> pd.DataFrame:
        """The selected runs' rows (all columns), in the order they were selected."""
        if not self.lazy:
            if not self.selected:
                return self._all.iloc[0:0]
            by_id = self._all.set_index("run_id", drop=False)
            return by_id.loc[[r for r in self.selected if r in by_id.index]].reset_index(drop=True)
        if not self.selected:
            return self._page.iloc[0:0]
        found = []
        for i in range(0, len(self.selected), 500):
            chunk = self.selected[i : i + 500]
            listed = ", ".join(f"'{r}'" for r in chunk)
            found.append(self._read(f"run_id in ({listed})", limit=len(chunk)))
        rows = pd.concat(found, ignore_index=True) if len(found) > 1 else found[0]
        by_id = rows.set_index("run_id", drop=False)
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
        return {
            key: {label: frame[["step", "value"]] for label, (_rid, frame) in series.items()}
            for key, series in self.histories_by_run(keys, run_ids).items()
        }

    def histories_by_run(
        self, keys: Sequence[str] | None = None, run_ids: Sequence[str] | None = None
    ) -> dict[str, dict[str, tuple[str, pd.DataFrame]]]:
        """``{metric: {run label: (run id, DataFrame(step, value, time))}}``: :meth:`histories` with the run
        ids (for stable colours and grouping) and each point's time in seconds since the epoch."""
        from ..workspace import current
        from .session import flush

        rows = self._rows(run_ids)
        flush()
        store = current().runs
        wanted = [k.removeprefix("metrics.") for k in keys] if keys else None
        out: dict[str, dict[str, tuple[str, pd.DataFrame]]] = {}
        for run_id, label in zip(rows["run_id"], _labels(rows), strict=True):
            for key in wanted or sorted(store.latest_metrics(run_id)):
                series = store.metric_series(run_id, key)
                if series is None:
                    continue
                steps, values, times = series
                frame = pd.DataFrame({"step": steps, "value": values, "time": _seconds(times)})
                out.setdefault(key, {})[label] = (run_id, frame)
        return out

    def parallel(
        self, metric: str, run_ids: Sequence[str] | None = None, params: Sequence[str] | None = None
    ) -> pd.DataFrame:
        """The params that differ (or ``params``) and ``metric``, one row per run (the selection, or every
        filtered run when nothing is selected; a lazy comparison's best :data:`MAX_LINES` by the metric), for a
        parallel-coordinates plot. Runs that lack a param keep their row, with the value missing."""
        metric = _metric_column(metric)
        if run_ids or self.selected:
            rows = self._rows(run_ids)
        elif self.lazy:
            order = f"{metric} {'asc' if lower_is_better(metric) else 'desc'}"
            rows = self._read(self.where, order_by=order, limit=MAX_LINES)
        else:
            rows = self.frame
        if metric not in rows.columns:
            raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
        if params is None:
            params = self.differing(rows) or [c for c in rows.columns if c.startswith("params.")]
        else:
            params = [_param_column(p) for p in params]
            rows = rows.assign(**{p: None for p in params if p not in rows.columns})
        out = rows[["run_id", "name", *params, metric]].copy()
        return out.reset_index(drop=True)

    def sample(self, columns: Sequence[str] = ("params.*", "metrics.*", "tags.*")) -> pd.DataFrame:
        """The filtered runs (``run_id``, ``name`` and ``columns``) for scatter plots, importance and grouping;
        a lazy comparison reads just these columns and keeps a fixed-seed sample of :data:`SAMPLE_RUNS`."""
        from .query import runs

        wanted = ["run_id", "name", *columns]
        frame = runs(experiment=self.experiment, where=self.where, columns=wanted)
        if len(frame) > SAMPLE_RUNS:
            frame = frame.sample(SAMPLE_RUNS, random_state=0).sort_index()
        return frame.reset_index(drop=True)

    def best(self, metric: str, mode: str | None = None) -> Best:
        """The filtered run with the highest ``metric`` (lowest for a loss-like name, or as ``mode`` says)."""
        metric = _metric_column(metric)
        if mode is None:
            mode = "min" if lower_is_better(metric) else "max"
        if mode not in ("min", "max"):
            raise InvalidInput(f"mode must be 'min' or 'max', got {mode!r}")
        if self.lazy:
            from .query import runs

            try:
                top = runs(
                    experiment=self.experiment,
                    where=self.where,
                    columns=["run_id", "name", metric],
                    order_by=f"{metric} {'asc' if mode == 'min' else 'desc'}",
                    limit=1,
                )
            except InvalidInput:
                top = pd.DataFrame()
            if top.empty or metric not in top.columns or pd.isna(top[metric].iloc[0]):
                raise InvalidInput(f"no run here logged {metric.removeprefix('metrics.')!r}")
            row = top.iloc[0]
            return Best(row["run_id"], row["name"], metric, float(row[metric]), mode)
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


def _param_column(param: str) -> str:
    if not isinstance(param, str) or not param.strip():
        raise InvalidInput("name a param, e.g. 'lr' or 'params.lr'")
    return param if param.startswith(("params.", "tags.", "metrics.")) else f"params.{param}"


def _seconds(times) -> np.ndarray:
    """Point times as the store keeps them (microseconds since the epoch) → seconds."""
    return np.asarray(times, dtype="float64") / 1e6
