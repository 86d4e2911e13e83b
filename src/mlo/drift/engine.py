"""``mlo.drift``: resolve what to compare, compare every column (in threads), decide, store and link."""

from __future__ import annotations

import math
import os
import time
import warnings
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd

from ..errors import InvalidInput
from . import inputs, mergeable
from .compare import ColumnComparison, Spec, apply_correction, with_missing_column
from .mergeable import DatasetSketch, is_dask_frame
from .methods import get_method
from .report import ColumnResult, DriftReport
from .statistics import CORRECTIONS

MODES = ("exact", "profile")  # and "sketch", chosen by the inputs (Dask DataFrames, sketches)
PROGRESS_CELLS = 20_000_000  # show a progress bar by default when reference + current hold this many values
THREADS_MIN_ROWS = 20_000  # below this many rows, columns are compared one after the other


def drift(
    reference: Any,
    current: Any,
    columns: list[str] | None = None,
    method: str | Mapping[str, str] = "auto",
    threshold: float | Mapping[str, float] | None = None,
    prediction: Any = None,
    target: str | None = None,
    correction: str | None = None,
    *,
    mode: str = "exact",
    drift_share: float = 0.5,
    missing_threshold: float | None = 0.05,
    multivariate: bool = False,
    progress: bool | None = None,
    save: bool = True,
    accuracy: float | None = None,
) -> DriftReport:
    """Compare ``current`` data with a ``reference`` column by column and decide whether the dataset drifted.

    Parameters
    ----------
    reference, current : DataFrame, snapshot ref (``"train"``, ``"train@3"``, ``"snapshot:train@3"``), Snapshot,
        or a path to a .parquet/.csv file. The reference may also be a list of column profiles. Either side may be
        a Dask DataFrame or a :class:`~mlo.drift.mergeable.DatasetSketch` (``mlo.drift.sketch(data)``): both sides
        are then compared through mergeable sketches, computed per partition (on the active ``dask.distributed``
        client when there is one), with the error bound of each approximate statistic in the report.
    columns : list of str, optional
        Columns to compare (default: every column of the reference, less ``prediction`` and ``target``).
    method : str or dict, default "auto"
        ``"auto"`` picks per column (see :mod:`mlo.drift.methods`); a name (ks, chisquare, z, wasserstein,
        jensenshannon, psi, hellinger, kl, anderson) applies to every column it fits; a dict maps columns to
        methods (others stay automatic).
    threshold : float or dict, optional
        The p-value level (tests) or distance (distances) of drift; default per method.
    prediction : str, model or (reference, current) pair, optional
        The model's outputs to check for drift: a column present on both sides, a fitted model (its
        ``predict_proba`` or ``predict`` is applied to both sides), or two array-likes.
    target : str, optional
        A target column present on both sides, reported as target drift.
    correction : {"bonferroni", "fdr_bh"}, optional
        Multiple-testing correction of the p-values of the feature tests.
    mode : {"exact", "profile"}, default "exact"
        ``"profile"`` compares with the reference snapshot's stored profile instead of loading its rows; the
        report says which statistics are then approximate.
    drift_share : float, default 0.5
        The dataset drifted when at least this share of the compared feature columns drifted.
    missing_threshold : float or None, default 0.05
        A column also drifts when its share of missing values moves by at least this much (and significantly);
        None compares distributions only.
    multivariate : bool, default False
        Also train a domain classifier telling reference rows from current rows (see
        :mod:`mlo.drift.multivariate`); it catches joint changes no single column shows.
    progress : bool, optional
        Show a progress bar (tqdm); by default only on large data.
    save : bool, default True
        Store the report in the workspace, linked to the snapshots and the active run.
    accuracy : float, optional
        Relative accuracy of the sketches when comparing Dask DataFrames or sketches (default 0.001, or that of a
        sketch given as a side); see :mod:`mlo.drift.mergeable`.

    Returns
    -------
    DriftReport
    """
    started = time.perf_counter()
    spec = _check_args(method, threshold, correction, mode, drift_share, missing_threshold)
    if is_sketch_input(reference) or is_sketch_input(current):
        if mode == "profile":
            raise InvalidInput(
                "mode='profile' compares with a snapshot's profile; Dask data and sketches use neither"
            )
        if multivariate:
            raise InvalidInput(
                "multivariate=True needs rows in memory; Dask data and sketches are compared per column"
            )
        if prediction is not None and not isinstance(prediction, str):
            raise InvalidInput(
                "with Dask data or sketches, prediction must be the name of a column present on both sides"
            )
        mode = "sketch"
        ref, cur, cur_frame = _sketch_sides(reference, current, columns, prediction, target, accuracy)
    else:
        if accuracy is not None:
            raise InvalidInput(
                "accuracy= applies to Dask DataFrames and sketches; in-memory data compares exactly"
            )
        ref = inputs.resolve(reference, "reference")
        cur = inputs.resolve(current, "current")
        if ref.frame is None and ref._load is None:
            mode = "profile"  # a bare profile
        if mode == "profile" and not ref.profile:
            raise InvalidInput(
                "mode='profile' needs a snapshot (or a list of column profiles) as the reference"
            )
        if cur.frame is None and cur._load is None:
            raise InvalidInput(
                "the current data must be rows (a DataFrame, a snapshot or a file), not a profile"
            )
        if mode == "exact":
            ref.load()
        cur_frame = cur.load()

    planned = _plan(ref, cur_frame, columns, prediction, target, mode, spec)
    jobs = [p for p in planned if not isinstance(p, ColumnResult)]
    acc = ref.sketch.accuracy if mode == "sketch" else None
    done = iter(_run_jobs(jobs, spec, progress, ref, cur_frame, acc))
    results = [p if isinstance(p, ColumnResult) else next(done) for p in planned]
    apply_correction(results, correction)

    multi = None
    if multivariate:
        if mode == "profile":
            raise InvalidInput("multivariate=True needs the reference rows: use mode='exact'")
        from .multivariate import domain_classifier

        feature_names = [
            r.column for r in results if r.role == "feature" and r.status not in ("missing_column",)
        ]
        multi = domain_classifier(ref.frame, cur_frame, feature_names)

    current_side = cur.to_dict()
    ref_names = set(ref.columns)
    new_columns = [c for c in cur.columns if c not in ref_names and c not in (target, prediction)]
    if new_columns:
        current_side["new_columns"] = new_columns
    report = DriftReport(
        results=results,
        reference=ref.to_dict(),
        current=current_side,
        drift_share=drift_share,
        mode=mode,
        correction=correction,
        multivariate=multi,
        created_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
    )
    report.seconds = round(time.perf_counter() - started, 4)
    if save:
        _save(report, ref, cur)
    return report


def _check_args(method, threshold, correction, mode, drift_share, missing_threshold) -> Spec:
    if isinstance(method, Mapping):
        for m in method.values():
            if m not in (None, "auto"):
                get_method(m)
        method = dict(method)
    elif not isinstance(method, str):
        raise InvalidInput("method must be 'auto', a method name, or a dict {column: method}")
    elif method != "auto":
        get_method(method)
    if isinstance(threshold, Mapping):
        threshold = {k: float(v) for k, v in threshold.items()}
    elif threshold is not None and not isinstance(threshold, (int, float)):
        raise InvalidInput("threshold must be a number or a dict {column: number}")
    if correction is not None and (not isinstance(correction, str) or correction not in CORRECTIONS):
        raise InvalidInput(
            f"unknown correction {correction!r}; use one of: {', '.join(CORRECTIONS)} (or None)"
        )
    if not isinstance(mode, str) or mode not in MODES:
        raise InvalidInput(f"unknown mode {mode!r}; use 'exact' or 'profile'")
    if isinstance(drift_share, bool) or not isinstance(drift_share, (int, float)) or not 0 < drift_share <= 1:
        raise InvalidInput(f"drift_share must be in (0, 1], got {drift_share!r}")
    if missing_threshold is not None and (
        isinstance(missing_threshold, bool)
        or not isinstance(missing_threshold, (int, float))
        or not 0 <= missing_threshold <= 1
    ):
        raise InvalidInput(f"missing_threshold must be in [0, 1] or None, got {missing_threshold!r}")
    return Spec(method=method, threshold=threshold, missing_threshold=missing_threshold)


def _plan(ref: inputs.Source, cur: pd.DataFrame, columns, prediction, target, mode, spec: Spec):
    """In report order: (name, role, reference side, current series) for each comparison to run, or the
    :class:`ColumnResult` of a column whose outcome is known up front (absent on one side)."""
    ref_cols = ref.columns
    cur_cols = [str(c) for c in cur.columns]
    if target is not None and not isinstance(target, str):
        raise InvalidInput(f"target must be a column name, got {type(target).__name__} {target!r:.40}")
    if columns is not None and not isinstance(columns, str):
        if not isinstance(columns, (list, tuple, pd.Index)) or not all(
            isinstance(c, (str, int)) and not isinstance(c, bool) for c in columns
        ):
            raise InvalidInput(f"columns must be a list of column names, got {columns!r:.60}")
    profiles = {p["name"]: p for p in ref.profile or []}
    special = {x for x in (target, prediction if isinstance(prediction, str) else None) if x is not None}

    def ref_side(name):
        if mode == "sketch":
            return ref.sketch[name]
        return profiles[name] if mode == "profile" else ref.frame[name]

    if columns is None:
        names = [c for c in ref_cols if c not in special]
    else:
        if isinstance(columns, str):
            columns = [columns]
        names = [str(c) for c in columns]
        unknown = [c for c in names if c not in ref_cols and c not in cur_cols]
        if unknown:
            raise InvalidInput(
                f"columns not in the reference nor the current data: {', '.join(map(repr, unknown))}"
            )
    compared = set(names) | special | ({"prediction"} if prediction is not None else set())
    for arg, given in (("method", spec.method), ("threshold", spec.threshold)):
        if isinstance(given, dict):
            stray = [k for k in given if k not in compared]
            if stray:
                raise InvalidInput(
                    f"{arg} given for {', '.join(map(repr, stray))}, which is not compared; "
                    f"compared columns: {', '.join(sorted(compared))[:200]}"
                )
    planned: list = []
    for name in names:
        if name not in ref_cols:
            planned.append(
                ColumnResult(
                    column=name, kind="?", status="skipped", note="not in the reference", rows_cur=len(cur)
                )
            )
        elif name not in cur_cols:
            planned.append(with_missing_column(name, "feature", ref.rows or 0))
        else:
            planned.append((name, "feature", ref_side(name), cur[name]))

    for role, value in (("target", target), ("prediction", prediction)):
        if value is None:
            continue
        if isinstance(value, str):
            missing = [
                side
                for side, cols in (("reference", ref_cols), ("current data", cur_cols))
                if value not in cols
            ]
            if missing:
                raise InvalidInput(f"{role} column {value!r} is not in the {' and the '.join(missing)}")
            planned.append((value, role, ref_side(value), cur[value]))
        elif role == "prediction":
            ref_pred, cur_pred = _predictions(value, ref, cur, names, mode)
            planned.append(("prediction", role, ref_pred, cur_pred))
        else:
            raise InvalidInput("target must be the name of a column present on both sides")
    return planned


def _predictions(value, ref: inputs.Source, cur: pd.DataFrame, names: list[str], mode: str):
    if mode == "sketch":
        raise InvalidInput(
            "with Dask data or sketches, prediction must be the name of a column present on both sides"
        )
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return _as_series(value[0]), _as_series(value[1])
    if hasattr(value, "predict") or hasattr(value, "predict_proba"):
        if mode == "profile":
            raise InvalidInput("a model's predictions need the reference rows: use mode='exact'")
        features = list(getattr(value, "feature_names_in_", names))
        return _predict(value, ref.frame[features]), _predict(value, cur[features])
    raise InvalidInput(
        "prediction must be a column name, a fitted model, or a (reference, current) pair of arrays"
    )


def _as_series(values) -> pd.Series:
    s = values if isinstance(values, pd.Series) else pd.Series(np.asarray(values).ravel())
    return s.reset_index(drop=True).rename("prediction")


def _predict(model, X: pd.DataFrame) -> pd.Series:
    if hasattr(model, "predict_proba"):
        proba = np.asarray(model.predict_proba(X))
        if proba.ndim == 2 and proba.shape[1] == 2:
            return pd.Series(proba[:, 1], name="prediction")
        classes = getattr(model, "classes_", np.arange(proba.shape[1]))
        return pd.Series(np.asarray(classes)[proba.argmax(axis=1)], name="prediction").astype("category")
    return _as_series(model.predict(X))


def _run_jobs(
    jobs, spec: Spec, progress: bool | None, ref: inputs.Source, cur, accuracy: float | None = None
) -> list:
    rows = (ref.rows or 0) + len(cur)
    # comparing sketches takes milliseconds a column, whatever the rows: no bar unless asked for
    cells = 0 if accuracy is not None else rows * len(jobs)
    bar = _progress_bar(progress, cells, len(jobs))
    extra = {} if accuracy is None else {"accuracy": accuracy}
    run = [ColumnComparison(name, role, r, c, spec, **extra) for name, role, r, c in jobs]
    try:
        if len(run) > 1 and rows >= THREADS_MIN_ROWS and (os.cpu_count() or 1) > 1:
            with ThreadPoolExecutor(max_workers=min(4, os.cpu_count() or 1)) as pool:
                futures = [pool.submit(c.run) for c in run]
                out = []
                for f in futures:
                    out.append(f.result())
                    if bar is not None:
                        bar.update(1)
                return out
        out = []
        for c in run:
            out.append(c.run())
            if bar is not None:
                bar.update(1)
        return out
    finally:
        if bar is not None:
            bar.close()


def _progress_bar(progress: bool | None, cells: int, total: int):
    if progress is False or total == 0 or (progress is None and cells < PROGRESS_CELLS):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="drift", unit="col", leave=False)


def is_sketch_input(obj: Any) -> bool:
    """A Dask DataFrame or a sketch: compared through mergeable sketches."""
    return isinstance(obj, DatasetSketch) or is_dask_frame(obj)


def _sketch_sides(reference, current, columns, prediction, target, accuracy):
    """Both sides as :class:`~mlo.drift.mergeable.DatasetSketch` (Dask sides computed in one go), wrapped as
    sources; the current side's sketch is returned as the current data."""
    given = [x.accuracy for x in (reference, current) if isinstance(x, DatasetSketch)]
    if accuracy is not None:
        accuracy = mergeable._check_accuracy(accuracy)
        if any(a != accuracy for a in given):
            raise InvalidInput(f"accuracy={accuracy:g} differs from that of the sketch given ({given[0]:g})")
    elif given:
        if len(set(given)) > 1:
            raise InvalidInput(
                f"the two sketches have different accuracy ({given[0]:g}, {given[1]:g}); make both alike"
            )
        accuracy = given[0]
    else:
        accuracy = mergeable.ACCURACY
    wanted = None
    if columns is not None:
        names = [columns] if isinstance(columns, str) else list(columns)
        extra = [x for x in (target, prediction) if isinstance(x, str)]
        wanted = [str(c) for c in names] + extra

    sources: list = []
    frames: list = []  # (source, pandas or Dask frame) still to sketch
    for obj, what in ((reference, "reference"), (current, "current")):
        if isinstance(obj, DatasetSketch):
            sources.append(inputs.Source(label="sketch", sketch=obj, rows=obj.rows))
            continue
        if is_dask_frame(obj):
            src = inputs.Source(label=f"Dask DataFrame ({obj.npartitions} partitions)")
        else:
            src = inputs.resolve(obj, what)
            if src.frame is None and src._load is None:
                raise InvalidInput(
                    f"{what}: a profile cannot be compared with Dask data or a sketch; give rows"
                )
            obj, src.frame = src.load(), None  # the rows are not kept: the comparison reads the sketch
        if wanted is not None:
            keep = set(wanted)
            obj = obj[[c for c in obj.columns if str(c) in keep]]
        frames.append((src, obj))
        sources.append(src)

    # both sides' buckets share their centres: a sketch's given, else the reference's means
    given_sketch = next((x for x in (reference, current) if isinstance(x, DatasetSketch)), None)
    if given_sketch is not None:
        centers = given_sketch.centers
    elif frames:
        first = frames[0][1]
        centers = mergeable._resolve_centers("mean", first)
    dask_frames = [(src, f) for src, f in frames if is_dask_frame(f)]
    for src, f in frames:
        if not is_dask_frame(f):
            src.sketch = mergeable.sketch_frame(f, None, accuracy, centers)
    if dask_frames:
        from .distributed import sketch_many

        computed = sketch_many([f for _, f in dask_frames], None, accuracy, centers)
        for (src, _), sk in zip(dask_frames, computed, strict=True):
            src.sketch = sk
    for src, _ in frames:
        src.rows = src.sketch.rows
    ref, cur = sources
    return ref, cur, cur.sketch


def _save(report: DriftReport, ref: inputs.Source, cur: inputs.Source) -> None:
    from .. import workspace
    from ..tracking import session

    run = session.active_run()
    ws = run._ws if run is not None else workspace.current()
    report.id = ws.reports.save(
        "drift",
        report.summary(),
        report.to_dict(),
        subject=cur.node,
        run_id=run.id if run is not None else None,
        passed=report.passed,
    )
    node = f"report:{report.id}"
    edges = []
    if ref.node:
        edges.append((ref.node, node, "reference"))
    if cur.node:
        edges.append((cur.node, node, "current"))
    if run is not None:
        edges.append((f"run:{run.id}", node, "report"))
    if edges:
        ws.lineage.link(edges)
    if run is not None:
        share = report.share_drifted
        session.log_metrics(
            {
                "drift.share_drifted": share if math.isfinite(share) else 0.0,
                "drift.n_drifted": report.n_drifted,
            }
        )
