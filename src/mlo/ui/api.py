"""The REST API over a workspace, free of any web framework: a request's path (below ``/mlo/api/``) and query
become an :class:`Answer` (status, headers, body). The Jupyter server extension (:mod:`mlo.jupyter.server`) and the
standalone ``mlo ui`` server (:mod:`mlo.ui.server`) are thin adapters over :func:`answer`; the static export
(:mod:`mlo.ui.export`) calls it too, so the three cannot drift apart.

    GET experiments
    GET runs?experiment=&where=&columns=a,b&order_by=&include=&offset=0&limit=100&total=
        (experiment, order_by and include may repeat); the count of matches stops at COUNT_UP_TO, or at
        mlo.toml's [ui] count_up_to ("total_exact": false) unless total=exact
    GET runs/<id>                         params, metrics, tags, artifacts, captured cells
    GET runs/<id>/artifacts/<path>        one artifact's bytes (only paths the run recorded);
        ?preview=table: the first rows of a CSV, TSV or Parquet artifact as JSON
    GET runs/<id>/metrics?key=&since_step=&max_points=   metric histories for charts (key may repeat;
        since_step: only later points, what a chart polling a running run asks for)
    GET diff?a=<run>&b=<run>              what differs: params, metrics, cells, environment, git
    GET compare?view=&experiment=&where=&runs=a,b&metric=&param=&group=&log_x=&axis=&log_axis=&brush=
        a comparison's chart data (:mod:`mlo.tracking.compare_charts`), the notebook widget's: view is choices,
        histories (of the ticked `runs`), scatter, parallel or importance (over the filtered runs), or brush
        (the runs inside parallel-coordinates brushes, given as JSON, as a `where` and a count)
    GET models[/<name>]                   versions, aliases (and a model's audit trail and card)
    GET snapshots[?name=]
    GET lineage?ref=
    GET models/<name>/<version>/card      a version's model card (HTML, sandboxed)
    GET reports?kind=&run=&offset=&limit= validation, drift and monitoring reports stored in the workspace
    GET reports/<id>                      one report's page (HTML, sandboxed)
    GET traces?run=&where=&name=&offset=0&limit=50   LLM traces, newest first, with totals and cost
    GET traces/<id>                       one trace: its span tree, with each span's input and output
    GET evals?offset=0&limit=100          stored LLM evaluations, newest first
    GET evals/compare?a=<id>&b=<id>       evaluation b against a: per scorer, and per example

Every error is a JSON body ``{"error": "<one line>", "status": N}``. An artifact is served with its own media type,
in a sandbox (``Content-Security-Policy: sandbox``: an HTML or SVG artifact runs no script and gets no origin) and
with ``X-Content-Type-Options: nosniff``.
"""

from __future__ import annotations

import json
import mimetypes
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

from .. import workspace
from ..errors import MloError, NotFound

MAX_LIMIT = 1000
COUNT_UP_TO = 10_000  # a runs page counts its matches this far unless asked for the exact count (total=exact)
MAX_QUERY = 8 * 1024  # characters of one query value: a `where` longer than this is a mistake or an attack
MAX_VALUES = 64  # values of one repeated query key
# artifacts are user content: no script, no origin; inline styles and images so an HTML report still reads
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)

Query = Mapping[str, Sequence[str]]


@dataclass
class Answer:
    """What the API answers: an HTTP status, headers and the body's bytes."""

    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Answer:
        body = json.dumps(value, default=str).encode()
        return cls(status, body, {"Content-Type": "application/json"})

    @classmethod
    def error(cls, status: int, message: str) -> Answer:
        return cls.json({"error": " ".join(str(message).split()), "status": status}, status)

    @property
    def data(self) -> Any:
        """The JSON body, decoded (for tests and the export)."""
        return json.loads(self.body)


class ApiError(Exception):
    """A request the API refuses: its HTTP status and one-line message."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class Args:
    """A request's query, with the checks every endpoint needs (sizes, whole numbers)."""

    def __init__(self, query: Query):
        self._query = query
        for key, values in query.items():
            if len(values) > MAX_VALUES:
                raise ApiError(400, f"{key!r} is given {len(values)} times; at most {MAX_VALUES}")
            if any(len(v) > MAX_QUERY for v in values):
                raise ApiError(414, f"the value of {key!r} is longer than {MAX_QUERY:,} characters")

    def get(self, key: str, default: str | None = None) -> str | None:
        values = self._query.get(key) or []
        return values[-1] if values else default

    def text(self, key: str) -> str | None:
        """The value, stripped; None when absent or blank."""
        value = (self.get(key) or "").strip()
        return value or None

    def all(self, key: str) -> list[str]:
        return [v for v in self._query.get(key) or [] if v.strip()]

    def whole(self, key: str, default: int | None) -> int | None:
        value = (self.get(key) or "").strip()
        if not value:
            return default
        try:
            return int(value)
        except ValueError:
            raise ApiError(400, f"{key} takes whole numbers, got {value[:40]!r}") from None

    def paging(self, default_limit: int) -> tuple[int, int]:
        offset = max(0, self.whole("offset", 0) or 0)
        limit = min(MAX_LIMIT, max(1, self.whole("limit", default_limit) or default_limit))
        return offset, limit


def frame_records(df) -> list[dict[str, Any]]:
    """A DataFrame as JSON records (NaN → null, times as ISO strings)."""
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


def _experiments(args: Args) -> Any:
    return workspace.current(create=False).runs.experiments()


def _runs(args: Args) -> Any:
    from ..tracking.query import runs

    offset, limit = args.paging(100)
    columns = [c.strip() for c in (args.get("columns") or "").split(",") if c.strip()] or None
    counting = (args.text("total") or "capped").lower()
    if counting not in ("capped", "exact"):
        raise ApiError(400, f"total takes 'exact' or 'capped', got {counting[:40]!r}")
    df = runs(
        experiment=args.all("experiment") or None,
        where=args.text("where"),
        columns=columns,
        order_by=args.all("order_by") or "start_time desc",
        include=args.all("include") or None,
        limit=limit,
        offset=offset,
        count_up_to=None if counting == "exact" else _count_up_to(),
    )
    return {
        "total": df.attrs["total"],
        "total_exact": df.attrs["total_exact"],
        "offset": offset,
        "limit": limit,
        "runs": frame_records(df),
    }


def _count_up_to() -> int:
    """Where a runs page stops counting: ``[ui] count_up_to`` in mlo.toml, else :data:`COUNT_UP_TO`."""
    return int((workspace.current(create=False).config.get("ui") or {}).get("count_up_to", COUNT_UP_TO))


def _run(args: Args, run_id: str) -> Any:
    from ..tracking.session import get_run

    return get_run(run_id).to_dict()


def _metrics(args: Args, run_id: str) -> Any:
    from ..tracking.series import MAX_POINTS, chart_series
    from ..tracking.session import get_run

    since_step = args.whole("since_step", None)
    max_points = args.whole("max_points", MAX_POINTS) or MAX_POINTS
    keys = args.all("key") or None
    return chart_series(get_run(run_id), keys, since_step, min(max(2, max_points), 10 * MAX_POINTS))


def _artifact(args: Args, run_id: str, path: str) -> Any:
    from ..tracking.session import get_run

    run = get_run(run_id)
    # only a path the run recorded, served from the blob store by its digest: no file-system path is built from
    # the request, so nothing outside the store can be reached (`../../etc/passwd` is just an unknown name)
    artifact = next((a for a in run.artifacts if a.path == path), None)
    if artifact is None:
        raise ApiError(404, f"run {run.id[:10]} has no artifact {path[:200]!r}")
    data = artifact.read_bytes()
    if args.get("preview") == "table":
        from ..tracking.preview import table_head

        return table_head(data, path)
    media = artifact.media_type or mimetypes.guess_type(path)[0] or ""
    if not _MEDIA_TYPE.match(media):
        media = "application/octet-stream"
    if media.startswith("text/") or media in ("image/svg+xml", "application/json"):
        media += "; charset=utf-8"
    return Answer(
        200,
        data,
        {
            "Content-Type": media,
            "Content-Security-Policy": ARTIFACT_CSP,
            "X-Content-Type-Options": "nosniff",
            "Content-Disposition": f"inline; filename*=UTF-8''{quote(Path(path).name)}",
        },
    )


def _diff(args: Args) -> Any:
    from ..tracking.run_diff import diff_runs
    from ..tracking.session import get_run

    a, b = args.text("a"), args.text("b")
    if not a or not b:
        raise ApiError(400, "give the two runs to diff: ?a=RUN&b=RUN (ids or id prefixes)")
    return diff_runs(get_run(a), get_run(b))


COMPARE_VIEWS = ("choices", "histories", "scatter", "parallel", "importance", "brush")


def _compare(args: Args) -> Any:
    from ..tracking import compare_charts as charts
    from ..tracking.brushing import brush_where
    from ..tracking.compare import Comparison

    view = args.text("view") or "choices"
    if view not in COMPARE_VIEWS:
        raise ApiError(400, f"view is one of {', '.join(COMPARE_VIEWS)}, got {view[:40]!r}")
    experiment = args.all("experiment") or None
    where = args.text("where")
    if view == "brush":
        try:
            brush = json.loads(args.get("brush") or "{}")
        except ValueError:
            raise ApiError(400, "brush takes JSON: {column: {lo, hi} or {values}, ...}") from None
        brushed = brush_where(brush)
        where = " and ".join(f"({w})" for w in (where, brushed) if w) or None
        cmp = Comparison(experiment=experiment, where=where)
        return {"kind": "brush", "where": brushed, "total": cmp.count, "runs": cmp.matching_ids()[:MAX_LIMIT]}
    runs = [r.strip() for value in args.all("runs") for r in value.split(",") if r.strip()]
    if len(runs) > MAX_VALUES:
        raise ApiError(400, f"at most {MAX_VALUES} runs to compare, got {len(runs)}")
    cmp = Comparison(experiment=experiment, where=where, selected=runs)
    if view == "choices":
        return {**charts.choices(cmp), "total": cmp.count}
    metric, param, group = args.text("metric"), args.text("param"), args.text("group")
    for name, value, known in (
        ("metric", metric, cmp.metrics),
        ("param", param, cmp.params),
        ("group", group, charts.choices(cmp)["groups"]),
    ):
        if value is not None and value not in known:
            shown = ", ".join(known[:20]) or "none"
            raise ApiError(400, f"no {name} {value[:80]!r} among these runs; there are: {shown}")
    metric = metric or (cmp.metrics[0] if cmp.metrics else None)
    if view == "histories":
        return charts.histories(cmp, metric, group)
    if view == "scatter":
        param = param or (cmp.differing() or cmp.params or [None])[0]
        log_x = (args.get("log_x") or "").lower() in ("1", "true", "yes")
        return charts.scatter(cmp, metric, param, group, log_x)
    if view == "parallel":
        return charts.parallel(cmp, metric, {"axes": args.all("axis") or None, "log": args.all("log_axis")})
    return charts.importance_of(cmp, metric)


def _models(args: Args, name: str | None = None) -> Any:
    from ..registry import audit, models

    versions = frame_records(models(name))
    if name is None:
        return {"versions": versions}
    if not versions:
        raise ApiError(404, f"no model named {name[:200]!r}")
    return {"name": name, "versions": versions, "audit": frame_records(audit(name))}


def _model_card(args: Args, name: str, version: str) -> Any:
    from ..registry import model_card

    if not version.isdigit():
        raise ApiError(404, f"a model version is a number, got {version[:40]!r}")
    card = model_card(name, int(version))
    return Answer(200, card._repr_html_().encode(), {"Content-Type": "text/html; charset=utf-8", **_SANDBOX})


# the stored reports a page can show, by kind: the class whose ``load(id)`` rebuilds one
_REPORTS = {
    "validation": ("..validate.report", "ValidationReport"),
    "drift": ("..drift.report", "DriftReport"),
    "monitor": ("..monitor.reporting", "MonitorReport"),
}


def _reports(args: Args) -> Any:
    kind = args.text("kind")
    if kind is not None and kind not in _REPORTS:
        raise ApiError(400, f"kind is one of {', '.join(_REPORTS)}, got {kind[:40]!r}")
    offset, limit = args.paging(100)
    ws = workspace.current(create=False)
    records = [r for r in ws.reports.list(kind=kind, run_id=args.text("run")) if r.kind in _REPORTS]
    rows = [
        {
            "id": r.id,
            "kind": r.kind,
            "subject": r.subject,
            "run_id": r.run_id,
            "passed": r.passed,
            "summary": r.summary,
            "created_at": r.created_at / 1e6,
        }
        for r in records[offset : offset + limit]
    ]
    return {"total": len(records), "offset": offset, "limit": limit, "reports": rows}


def _report(args: Args, report_id: str) -> Any:
    import importlib

    if not re.fullmatch(r"[0-9A-Za-z]{4,64}", report_id):
        raise ApiError(404, f"no report {report_id[:80]!r}: give at least 4 characters of its id")
    record = workspace.current(create=False).reports.get(report_id)
    if record.kind not in _REPORTS:
        raise ApiError(404, f"report {record.id} is a {record.kind} report, which has no page")
    module, name = _REPORTS[record.kind]
    report = getattr(importlib.import_module(module, __package__), name).load(record.id)
    page = report.to_html() if hasattr(report, "to_html") else report._repr_html_()
    return Answer(200, page.encode(), {"Content-Type": "text/html; charset=utf-8", **_SANDBOX})


def _snapshots(args: Args) -> Any:
    from ..data.snapshots import snapshots

    return {"snapshots": frame_records(snapshots(args.text("name")))}


def _lineage(args: Args) -> Any:
    from ..data.lineage import lineage

    ref = args.text("ref")
    if not ref:
        raise ApiError(400, "give ?ref= (a run id, snapshot:NAME[@V], model:NAME@ALIAS)")
    return lineage(ref).to_dict()


def _traces(args: Args) -> Any:
    from ..llm.query import traces

    offset, limit = args.paging(50)
    df = traces(args.text("where"), run=args.text("run"), name=args.text("name"), limit=limit, offset=offset)
    records = frame_records(df)
    for r in records:  # NaN (a call without a price) is not JSON: unpriced is null
        if r.get("cost_usd") is not None and r["cost_usd"] != r["cost_usd"]:
            r["cost_usd"] = None
    return {"total": df.attrs["total"], "offset": offset, "limit": limit, "traces": records}


def _trace(args: Args, trace_id: str) -> Any:
    from ..llm.query import get_trace

    if not re.fullmatch(r"[0-9A-Za-z]{4,64}", trace_id):  # an id or its prefix: no LIKE wildcards
        raise ApiError(404, f"no trace {trace_id[:80]!r}: give at least 4 characters of its id")
    return get_trace(trace_id).to_view()


def _evals(args: Args) -> Any:
    from ..llm.eval_api import list_evals

    offset, limit = args.paging(100)
    return list_evals(limit=limit, offset=offset)


def _eval_compare(args: Args) -> Any:
    from ..llm.eval_api import compare_evals_record

    a, b = args.get("a", ""), args.get("b", "")
    for ref in (a, b):
        if not re.fullmatch(r"[0-9A-Za-z]{4,64}", ref or ""):
            raise ApiError(400, "give two evaluation ids (at least 4 characters each) as a= and b=")
    return compare_evals_record(a, b)


_SANDBOX = {"Content-Security-Policy": ARTIFACT_CSP, "X-Content-Type-Options": "nosniff"}

# (pattern below /mlo/api/, endpoint): a pattern's groups are the endpoint's arguments after the query
ROUTES: list[tuple[str, Callable[..., Any]]] = [
    (r"experiments", _experiments),
    (r"runs", _runs),
    (r"runs/([^/]+)", _run),
    (r"runs/([^/]+)/metrics", _metrics),
    (r"runs/([^/]+)/artifacts/(.+)", _artifact),
    (r"diff", _diff),
    (r"compare", _compare),
    (r"models", _models),
    (r"models/([^/]+)", _models),
    (r"models/([^/]+)/([^/]+)/card", _model_card),
    (r"reports", _reports),
    (r"reports/([^/]+)", _report),
    (r"snapshots", _snapshots),
    (r"lineage", _lineage),
    (r"traces", _traces),
    (r"traces/([^/]+)", _trace),
    (r"evals", _evals),
    (r"evals/compare", _eval_compare),
]
_COMPILED = [(re.compile(pattern), endpoint) for pattern, endpoint in ROUTES]


def no_workspace(root: str | Path) -> Answer:
    return Answer.error(404, f"no mlo workspace at or above {root}: run `mlo init` there")


def answer(home: Path | None, path: str, query: Query, root: str | Path | None = None) -> Answer:
    """Answer ``GET /mlo/api/<path>?<query>`` for the workspace at ``home`` (None: there is none, under ``root``).

    ``path`` is already URL-decoded; ``query`` maps each key to its values. Nothing raises: every failure is an
    ``Answer`` with a 4xx/5xx status and a one-line JSON error.
    """
    for pattern, endpoint in _COMPILED:  # noqa: B007 (the match's endpoint is used below)
        match = pattern.fullmatch(path)
        if match:
            break
    else:
        return Answer.error(404, f"no API endpoint /mlo/api/{path[:200]}")
    if home is None or not Path(home).is_dir():
        return no_workspace(root if root is not None else Path.cwd())
    try:
        args = Args(query)
        with workspace.using(home):
            value = endpoint(args, *match.groups())
    except ApiError as exc:
        return Answer.error(exc.status, str(exc))
    except NotFound as exc:
        return Answer.error(404, str(exc))
    except MloError as exc:
        status = 503 if type(exc).__name__ in ("StoreFault", "StoreUnavailable") else 400
        return Answer.error(status, str(exc))
    return value if isinstance(value, Answer) else Answer.json(value)
