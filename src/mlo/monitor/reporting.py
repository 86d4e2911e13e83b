"""``mlo.monitor.report(name)``: a model's prediction log, window by window.

Per window: input drift against the model's training data (the drift engine, column by column), prediction drift
against the model's predictions on that data, the missing-value and unseen-category rates, quality where labels
have arrived, latency percentiles, the error rate, and the canary against the stable version. The result is a
:class:`MonitorReport`, stored in the workspace (kind ``monitor``) and linked to the model version.
"""

from __future__ import annotations

import hashlib
import math
import os
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from .. import workspace
from ..errors import InvalidInput, MloError
from . import windows as W
from .log import FEATURE_PREFIX, _to_us, model_folder, read_log

REFERENCE_ROWS = 50_000  # training rows compared with each window (a fixed-seed sample above that)
MAX_WINDOWS = 500
MAX_CATEGORIES = 10_000  # a column with more distinct values is not treated as categorical for unseen values


@dataclass
class MonitorReport:
    """What a model saw and did, window by window.

    Attributes
    ----------
    model : str
        The registered model.
    version : int or None
        The version whose training data is the reference (and whose predictions on it are the reference
        predictions).
    windows : pandas.DataFrame
        A row per window, oldest first: ``start, end, n, versions, drift_share, dataset_drift, drifted,
        prediction_drift, missing_rate, unseen_rate, labeled, accuracy`` (or ``mae, rmse``), ``latency_p50,
        latency_p95, latency_p99, error_rate``, and when a canary served, ``canary_*``/``stable_*`` figures and
        ``canary_worse``.
    """

    model: str
    version: int | None
    window: str
    reference: str
    windows: pd.DataFrame
    task: str = "classification"
    notes: list[str] = field(default_factory=list)
    rows: int = 0
    id: str | None = None
    created_at: str | None = None
    seconds: float | None = None

    @property
    def latest(self) -> dict[str, Any]:
        """The newest window's figures ({} when the log is empty)."""
        return {} if self.windows.empty else self.windows.iloc[-1].to_dict()

    def summary(self) -> dict[str, Any]:
        last = self.latest
        return {
            "model": self.model,
            "version": self.version,
            "window": self.window,
            "windows": len(self.windows),
            "rows": self.rows,
            "reference": self.reference,
            "latest": {k: _plain(v) for k, v in last.items()},
        }

    def to_dict(self) -> dict[str, Any]:
        frame = self.windows.copy()
        for c in ("start", "end"):
            if c in frame:
                frame[c] = frame[c].map(lambda t: t.isoformat())
        return {
            "model": self.model,
            "version": self.version,
            "window": self.window,
            "reference": self.reference,
            "task": self.task,
            "notes": list(self.notes),
            "rows": self.rows,
            "windows": [{k: _plain(v) for k, v in r.items()} for r in frame.to_dict("records")],
            "id": self.id,
            "created_at": self.created_at,
            "seconds": self.seconds,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorReport:
        frame = pd.DataFrame(d["windows"])
        for c in ("start", "end"):
            if c in frame:
                frame[c] = pd.to_datetime(frame[c], utc=True)
        return cls(
            model=d["model"],
            version=d["version"],
            window=d["window"],
            reference=d["reference"],
            windows=frame,
            task=d.get("task", "classification"),
            notes=list(d.get("notes", [])),
            rows=d.get("rows", 0),
            id=d.get("id"),
            created_at=d.get("created_at"),
            seconds=d.get("seconds"),
        )

    @classmethod
    def load(cls, report_id: str) -> MonitorReport:
        """A stored monitoring report, by id or unique id prefix."""
        _, payload = workspace.current(create=False).reports.load(report_id, "monitor")
        return cls.from_dict(payload)

    def to_html(self, path: str | os.PathLike | None = None) -> str:
        """A standalone page; written to ``path`` when given."""
        from ..report.html import write_text
        from ..report.monitor import monitor_page

        html = monitor_page(self)
        if path is not None:
            write_text(path, html)
        return html

    def _repr_html_(self) -> str:
        from ..report.monitor import monitor_html

        return monitor_html(self)

    def to_text(self) -> str:
        from ..report.monitor import monitor_text

        return monitor_text(self)

    def __repr__(self) -> str:
        last = self.latest
        state = ""
        if last:
            state = f", latest: {last['n']} records, drift share {last.get('drift_share', float('nan')):.0%}"
        return f"<MonitorReport {self.model} v{self.version}: {len(self.windows)} windows of {self.window}{state}>"


def _plain(v: Any) -> Any:
    if isinstance(v, (np.bool_,)):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, (float, np.floating)):
        return None if math.isnan(v) else float(v)
    if isinstance(v, pd.Timestamp):
        return v.isoformat()
    if v is pd.NA or v is pd.NaT:
        return None
    return v


# -- the reference ------------------------------------------------------------------------------------------------
@dataclass
class Reference:
    data: pd.DataFrame | None  # training features, as the log names them (without the f. prefix)
    predictions: pd.Series | None
    description: str
    categories: dict[str, set]


def _version_for(ws, name: str, log: pd.DataFrame, version: Any):
    from ..registry import get_model_version

    if version is not None:
        return get_model_version(name, version)
    served = log.loc[log["route"] != "canary", "version"] if "route" in log else log["version"]
    served = served.dropna()
    if not served.empty:
        return get_model_version(name, int(served.iloc[-1]))  # the stable version serving now
    try:
        return get_model_version(name)
    except MloError:
        return None


def _training_snapshot(ws, mv, features: list[str]):
    """The input snapshot of the version's run whose columns cover the most logged features (newest on ties)."""
    from ..data.snapshots import Snapshot

    if mv is None or not mv.run_id:
        return None
    best, best_cover = None, 0
    for snap_id in ws.models.run_inputs(mv.run_id):
        try:
            snap = Snapshot(ws, ws.snapshots.get(snap_id))
        except MloError:
            continue
        names = {p["name"] for p in snap.profile}
        cover = len(names & set(features))
        if cover >= best_cover and cover > 0:
            best, best_cover = snap, cover
    return best


def resolve_reference(ws, mv, reference: Any, features: list[str]) -> Reference:
    from ..data.snapshots import Snapshot, get_snapshot

    label = snap = None
    if reference is None:
        snap = _training_snapshot(ws, mv, features)
        if snap is None:
            return Reference(None, None, "the first window (no training snapshot recorded)", {})
        data, label = snap.load(), f"{snap.ref} (training data of {mv.ref})"
    elif isinstance(reference, pd.DataFrame):
        data, label = reference, "the given DataFrame"
    else:
        snap = reference if isinstance(reference, Snapshot) else get_snapshot(str(reference))
        data, label = snap.load(), snap.ref
    if not isinstance(data, pd.DataFrame):
        raise InvalidInput(
            f"the reference must be tabular data (a DataFrame snapshot), got {type(data).__name__}"
        )
    cols = [c for c in features if c in data.columns]
    if not cols:
        raise InvalidInput(
            f"the reference ({label}) has none of the logged features ({', '.join(features[:8])}); "
            "pass reference= with the model's training data"
        )
    if len(data) > REFERENCE_ROWS:
        data = data.sample(REFERENCE_ROWS, random_state=0)
    data = data[cols].reset_index(drop=True)
    categories = {}
    for c in cols:
        col = data[c]
        if (
            col.dtype == object
            or isinstance(col.dtype, pd.CategoricalDtype)
            or pd.api.types.is_string_dtype(col)
        ):
            values = set(col.dropna().astype(str).unique())
            if len(values) <= MAX_CATEGORIES:
                categories[c] = values
    predictions = None
    if mv is not None:
        sig = mv.signature
        inputs = sig.names if sig is not None and sig.type == "frame" and sig.names else list(data.columns)
        if all(c in data.columns for c in inputs):
            predictions = _reference_predictions(ws, mv, snap, data[inputs])
    return Reference(data, predictions, label, categories)


def _reference_predictions(ws, mv, snap, X: pd.DataFrame) -> pd.Series | None:
    """The version's predictions on its reference rows. They never change for a model version and a reference,
    so they are kept beside the log (``<model>/reference/``), keyed by the version's digest and the reference's
    (a snapshot's id, or a digest of the given rows): loading a model costs more than the whole report."""
    if snap is not None:
        ref_digest = snap.id
    else:
        ref_digest = hashlib.sha256(
            pd.util.hash_pandas_object(X, index=False).to_numpy().tobytes()
        ).hexdigest()
    key = hashlib.sha256(f"{mv.digest}|{ref_digest}|{len(X)}|{','.join(X.columns)}".encode()).hexdigest()[:16]
    cache = model_folder(mv.name, ws.home) / "reference" / f"v{mv.version}-{key}.parquet"
    if cache.is_file():
        try:
            return pd.read_parquet(cache)["prediction"]
        except Exception:  # unreadable: compute it again
            pass
    try:
        model = mv.load(enforce=False)
        predictions = W.point_predictions(pd.Series(np.asarray(model.predict(X)).tolist()))
    except Exception:  # the model cannot score its training columns: no reference predictions
        return None
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.tmp")
        pd.DataFrame({"prediction": predictions}).to_parquet(tmp)
        os.replace(tmp, cache)
    except Exception:  # a cache that cannot be written only costs time
        pass
    return predictions


# -- the report ---------------------------------------------------------------------------------------------------
def report(
    name: str,
    window: Any = None,
    since: Any = None,
    until: Any = None,
    *,
    version: Any = None,
    reference: Any = None,
    save: bool = True,
) -> MonitorReport:
    """Monitor model ``name`` from its prediction log, window by window.

    Parameters
    ----------
    name : str
        A registered model; ``"NAME@ALIAS"`` or ``"NAME@vN"`` also picks the reference version.
    window : str or int, optional
        ``"1h"``, ``"30min"``, ``"1d"``, ``"5000 rows"``; default ``[monitor] window`` of mlo.toml, else ``"1h"``.
    since, until : datetime, str or timedelta, optional
        Only records in ``[since, until)``; a timedelta counts back from now.
    version : int or str, optional
        The version whose training data is the reference (default: the stable version serving last).
    reference : DataFrame or snapshot ref, optional
        Compare with this data instead of the version's training snapshot.
    save : bool
        Keep the report in the workspace (kind ``monitor``), linked to the model version.
    """
    started = time.perf_counter()
    ws = workspace.current(create=False)
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput("name the model to monitor, e.g. mlo.monitor.report('churn')")
    if "@" in name:
        name, _, pick = name.partition("@")
        version = version if version is not None else pick
    config = (ws.config.get("monitor") or {}) if isinstance(ws.config.get("monitor"), dict) else {}
    win = W.parse_window(window if window is not None else config.get("window", "1h"))

    lo = None if since is None else _to_us(since, "since")
    hi = None if until is None else _to_us(until, "until")
    sc = _open_scan(ws.home, name, win, lo, hi)
    if sc is None:
        rows_n, mv, baseline, task, notes, rows, spans = _in_memory(
            ws, name, win, since, until, version, reference
        )
    else:
        try:
            rows_n, mv, baseline, task, notes, rows, spans = _out_of_core(ws, sc, name, version, reference)
        finally:
            sc.close()
    _add_resources(ws.home, name, spans, rows)
    frame = pd.DataFrame(rows)
    result = MonitorReport(
        model=name,
        version=None if mv is None else mv.version,
        window=win.label,
        reference=baseline.description,
        windows=frame,
        task=task,
        notes=notes,
        rows=rows_n,
        seconds=time.perf_counter() - started,
    )
    if save:
        _save(ws, result, mv)
    return result


def _open_scan(home, name: str, win, lo, hi):
    """The out-of-core pass over the log (:mod:`.scan`), or None: an empty log, a log that needs the in-memory
    path, or no DuckDB."""
    try:
        from . import scan
    except ImportError:  # pragma: no cover - duckdb is a dependency
        return None
    from .log import _sync

    _sync(home, name)  # a log on object storage: fetch the files this machine lacks
    return scan.open_scan(model_folder(name, home), win, lo, hi, MAX_WINDOWS)


def _in_memory(ws, name, win, since, until, version, reference):
    """The report's windows from the whole log read into memory (logs the scan cannot read exactly)."""
    log = read_log(name, since=since, until=until)
    notes: list[str] = []
    refused = W.refused_input(log)
    if refused.any():
        notes.append(
            f"{int(refused.sum())} records of input a server refused (logged by an older version) left out"
        )
        log = log[~refused].reset_index(drop=True)
    mv = _version_for(ws, name, log, version)
    features = W.features_of(log)
    ref = resolve_reference(ws, mv, reference, features) if features else Reference(None, None, "none", {})
    _note_dropped(ref, features, notes)
    parts = W.cut(log, win)
    if len(parts) > MAX_WINDOWS:
        notes.append(
            f"{len(parts) - MAX_WINDOWS} older windows left out (at most {MAX_WINDOWS}); narrow since="
        )
        parts = parts[-MAX_WINDOWS:]
    task = W.task_of(log["label"], W.point_predictions(log["prediction"])) if len(log) else "classification"
    baseline = ref
    if ref.data is None and parts:  # no training data: the first window is the reference
        baseline = _first_window_reference(parts[0][2][parts[0][2]["error"].isna()], features, ref)
    rows = [_window_row(start, end, frame, baseline, features, task) for start, end, frame in parts]
    return len(log), mv, baseline, task, notes, rows, [(start, end) for start, end, _ in parts]


def _out_of_core(ws, sc, name, version, reference):
    """The report's windows from DuckDB's aggregates and per-window samples (:mod:`.scan`)."""
    from ..registry import get_model_version

    notes: list[str] = []
    if sc.refused:
        notes.append(f"{sc.refused} records of input a server refused (logged by an older version) left out")
    if version is not None:
        mv = get_model_version(name, version)
    elif sc.last_version is not None:
        mv = get_model_version(name, sc.last_version)
    else:
        try:
            mv = get_model_version(name)
        except MloError:
            mv = None
    features = sc.features
    ref = resolve_reference(ws, mv, reference, features) if features else Reference(None, None, "none", {})
    _note_dropped(ref, features, notes)
    if sc.dropped_windows:
        notes.append(f"{sc.dropped_windows} older windows left out (at most {MAX_WINDOWS}); narrow since=")
    task = sc.task if sc.rows else "classification"
    samples = {}
    baseline = ref
    if ref.data is None and sc.windows:  # no training data: the first window is the reference
        samples[0] = sc.sample(sc.windows[0])
        baseline = _first_window_reference(samples[0], features, ref)
    rows = []
    for i, w in enumerate(sc.windows):
        ok = samples.pop(i) if i in samples else sc.sample(w) if w.ok else None
        rows.append(_scanned_row(w, ok, baseline, features, task))
    return sc.rows, mv, baseline, task, notes, rows, [(w.start, w.end) for w in sc.windows]


def _note_dropped(ref: Reference, features: list[str], notes: list[str]) -> None:
    if ref.data is not None:
        dropped = [f for f in features if f not in ref.data.columns]
        if dropped:
            notes.append(f"not in the reference, so not compared: {', '.join(dropped)}")


def _first_window_reference(ok: pd.DataFrame, features: list[str], ref: Reference) -> Reference:
    data = pd.DataFrame({f: ok[FEATURE_PREFIX + f].to_numpy() for f in features})
    return Reference(data, W.point_predictions(ok["prediction"]).reset_index(drop=True), ref.description, {})


def _add_resources(home, name: str, parts, rows: list[dict]) -> None:
    """Throughput from the log, and what the server sampled of its process (:mod:`.resources`), per window."""
    from . import resources

    if not parts:
        return
    us = [
        (int(pd.Timestamp(start).value // 1000), int(pd.Timestamp(end).value // 1000)) for start, end in parts
    ]
    samples = resources.read(home, name, us[0][0], us[-1][1])
    now_us = time.time_ns() // 1000
    for (lo, hi), row in zip(us, rows, strict=True):
        seconds = (min(hi, now_us) - lo) / 1e6  # the newest window may still be under way
        row["rows_per_s"] = row["n"] / seconds if seconds > 0 else math.nan
        row.update(resources.window_figures(samples, lo, hi))


def _window_row(start, end, frame: pd.DataFrame, ref: Reference, features: list[str], task: str) -> dict:
    ok = frame[frame["error"].isna()]
    row: dict[str, Any] = {
        "start": start,
        "end": end,
        "n": len(frame),
        "versions": ",".join(str(int(v)) for v in sorted(frame["version"].dropna().unique())),
    }
    row.update(_input_figures(ok, ref, features))
    q = W.quality(frame["label"], W.point_predictions(frame["prediction"]), task)
    row["labeled"] = q.pop("labeled")
    row.update(q)
    lat = frame["latency_ms"].dropna().to_numpy(dtype="float64")
    for p in (50, 95, 99):
        row[f"latency_p{p}"] = float(np.percentile(lat, p)) if len(lat) else math.nan
    row["error_rate"] = float(frame["error"].notna().mean()) if len(frame) else 0.0
    row.update(W.canary_verdict(frame, task))
    return row


def _scanned_row(w, ok: pd.DataFrame | None, ref: Reference, features: list[str], task: str) -> dict:
    """:func:`_window_row` from a window's aggregates (exact) and its sample (drift and unseen values)."""
    from .scan import quality_of

    t = w.figures
    n = int(t["n"])
    row: dict[str, Any] = {
        "start": w.start,
        "end": w.end,
        "n": n,
        "versions": ",".join(str(int(v)) for v in (t["versions"] or [])),
    }
    if ok is None:
        ok = pd.DataFrame({**{FEATURE_PREFIX + f: [] for f in features}, "prediction": []})
    row.update(_input_figures(ok, ref, features))
    cells = w.ok * len(features)
    row["missing_rate"] = float(t["missing"]) / cells if cells else 0.0
    q = quality_of(t, task)
    row["labeled"] = q.pop("labeled")
    row.update(q)
    lat = t["lat"] or [math.nan] * 3
    for p, v in zip((50, 95, 99), lat, strict=True):
        row[f"latency_p{p}"] = math.nan if v is None else float(v)
    row["error_rate"] = int(t["errors"]) / n if n else 0.0
    routes = {}
    for name in ("canary", "stable"):
        r = w.routes.get(name)
        if r is None:
            routes[name] = {"n": 0, "errors": 0, "latency_p95": math.nan}
            continue
        lat = r["lat"]
        routes[name] = {
            "n": int(r["n"]),
            "errors": int(r["errors"]),
            "latency_p95": math.nan if not lat or lat[1] is None else float(lat[1]),
            **quality_of(r, task),
        }
    row.update(W.canary_decision(routes))
    return row


def _input_figures(ok: pd.DataFrame, ref: Reference, features: list[str]) -> dict[str, Any]:
    """Drift against the reference, the missing-value and unseen-category rates of a window's records without an
    error."""
    from ..drift import drift

    row: dict[str, Any] = {}
    cur = pd.DataFrame({f: ok[FEATURE_PREFIX + f].to_numpy() for f in features})
    preds = W.point_predictions(ok["prediction"]).reset_index(drop=True)
    compared = [f for f in features if ref.data is not None and f in ref.data.columns]
    row.update(drift_share=math.nan, dataset_drift=None, drifted="", prediction_drift=None)
    if compared and len(cur):
        pair = None
        if ref.predictions is not None and preds.notna().any():
            pair = (ref.predictions, preds)
        try:
            rep = drift(ref.data[compared], cur[compared], prediction=pair, save=False, progress=False)
            row.update(
                drift_share=rep.share_drifted,
                dataset_drift=rep.dataset_drift,
                drifted=", ".join(rep.drifted_columns),
                prediction_drift=rep.prediction_drift,
            )
        except MloError as exc:
            row["drifted"] = f"(not compared: {exc})"
    cells = cur.size
    row["missing_rate"] = float(cur.isna().to_numpy().sum() / cells) if cells else 0.0
    row["unseen_rate"] = W.unseen_rate(ok, ref.categories)
    return row


def _save(ws, result: MonitorReport, mv) -> None:
    subject = mv.node if mv is not None else f"model:{result.model}"
    last = result.latest
    passed = None
    if last:
        passed = not (last.get("dataset_drift") or last.get("prediction_drift") or last.get("canary_worse"))
    result.id = ws.reports.save("monitor", result.summary(), result.to_dict(), subject=subject, passed=passed)
    result.created_at = pd.Timestamp.now(tz="UTC").isoformat(timespec="seconds")
    if mv is not None:
        ws.lineage.link([(mv.node, f"report:{result.id}", "monitor")])
