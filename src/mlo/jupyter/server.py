"""The Jupyter server extension: a read-only REST API over the workspace, under ``/mlo/api/``, for the JupyterLab
panel and anything else that speaks HTTP. Every handler requires Jupyter's authentication.

The workspace is ``MLO_HOME`` or the nearest ``.mlo/`` at or above the server's root folder, found per request
and in force for that request only: the API never changes the process's state (no ``MLO_HOME`` is set, so kernels
the server starts later still find their own workspace). An artifact is served with its own media type, in a
sandbox (``Content-Security-Policy: sandbox``: an HTML or SVG artifact runs no script and gets no origin) and
with ``X-Content-Type-Options: nosniff``.

    GET /mlo/api/experiments
    GET /mlo/api/runs?experiment=&where=&columns=a,b&order_by=&include=&offset=0&limit=100
        (experiment, order_by and include may repeat)
    GET /mlo/api/runs/<id>                         params, metrics, tags, artifacts, captured cells
    GET /mlo/api/runs/<id>/artifacts/<path>        one artifact's bytes (only paths the run recorded);
        ?preview=table: the first rows of a CSV, TSV or Parquet artifact as JSON
    GET /mlo/api/runs/<id>/metrics?key=&since_step=&max_points=   metric histories for charts (key may repeat;
        since_step: only later points, what a chart polling a running run asks for)
    GET /mlo/api/diff?a=<run>&b=<run>              what differs: params, metrics, cells, environment, git
    GET /mlo/api/models[/<name>]                   versions, aliases (and a model's audit trail)
    GET /mlo/api/snapshots[?name=]
    GET /mlo/api/lineage?ref=
    GET /mlo/api/traces?run=&where=&name=&offset=0&limit=50   LLM traces, newest first, with totals and cost
    GET /mlo/api/traces/<id>                       one trace: its span tree, with each span's input and output
"""

from __future__ import annotations

import functools
import json
import mimetypes
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote

import tornado
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import workspace
from ..errors import MloError, NotFound

MAX_LIMIT = 1000
# artifacts are user content: no script, no origin; inline styles and images so an HTML report still reads
ARTIFACT_CSP = (
    "sandbox; default-src 'none'; img-src 'self' data:; style-src 'unsafe-inline'; frame-ancestors 'self'"
)
_MEDIA_TYPE = re.compile(r"^[a-z0-9][a-z0-9!#$&^_.+-]*/[a-z0-9][a-z0-9!#$&^_.+-]*$", re.I)


def _frame_records(df) -> list[dict[str, Any]]:
    return json.loads(df.to_json(orient="records", date_format="iso", default_handler=str))


class _MloHandler(APIHandler):
    """JSON in, JSON out; an ``MloError`` becomes a 4xx with its one-line message."""

    async def prepare(self):
        await super().prepare()
        root = self.settings.get("server_root_dir") or os.getcwd()
        home = workspace.find_home(root)
        if home is None or not home.is_dir():
            raise tornado.web.HTTPError(404, f"no mlo workspace at or above {root}: run `mlo init` there")
        self.mlo_home = home

    def _send(self, value: Any) -> None:
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(value, default=str))

    def _call(self, fn, *args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except NotFound as exc:
            raise tornado.web.HTTPError(404, str(exc)) from None
        except MloError as exc:
            raise tornado.web.HTTPError(400, str(exc)) from None

    def write_error(self, status_code: int, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message, "status": status_code}))


def in_workspace(method):
    """Run a handler method with the request's workspace in force for it alone (see :func:`workspace.using`)."""

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with workspace.using(self.mlo_home):
            return method(self, *args, **kwargs)

    return wrapper


class ExperimentsHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        ws = workspace.current(create=False)
        self._send(self._call(ws.runs.experiments))


def _paging(handler: APIHandler, default_limit: int) -> tuple[int, int]:
    try:
        offset = max(0, int(handler.get_argument("offset", "0")))
        limit = min(MAX_LIMIT, max(1, int(handler.get_argument("limit", str(default_limit)))))
    except ValueError:
        raise tornado.web.HTTPError(400, "offset and limit are whole numbers") from None
    return offset, limit


class RunsHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..tracking.query import runs

        arg = self.get_argument
        offset, limit = _paging(self, 100)
        columns = [c.strip() for c in arg("columns", "").split(",") if c.strip()] or None
        experiments = self.get_arguments("experiment") or None
        df = self._call(
            runs,
            experiment=experiments,
            where=arg("where", None) or None,
            columns=columns,
            order_by=[o for o in self.get_arguments("order_by") if o.strip()] or "start_time desc",
            include=self.get_arguments("include") or None,
            limit=limit,
            offset=offset,
        )
        self._send({"total": df.attrs["total"], "offset": offset, "limit": limit, "runs": _frame_records(df)})


class RunHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self, run_id: str):
        from ..tracking.session import get_run

        run = self._call(get_run, run_id)
        self._send(run.to_dict())


class MetricsHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self, run_id: str):
        from ..tracking.series import MAX_POINTS, chart_series
        from ..tracking.session import get_run

        try:
            since = self.get_argument("since_step", "")
            since_step = int(since) if since.strip() else None
            max_points = int(self.get_argument("max_points", str(MAX_POINTS)))
        except ValueError:
            raise tornado.web.HTTPError(400, "since_step and max_points are whole numbers") from None
        keys = [k for k in self.get_arguments("key") if k.strip()] or None
        run = self._call(get_run, run_id)
        self._send(self._call(chart_series, run, keys, since_step, min(max_points, 10 * MAX_POINTS)))


class ArtifactHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self, run_id: str, path: str):
        from ..tracking.session import get_run

        run = self._call(get_run, run_id)
        # only a path the run recorded, served from the blob store by its digest: no file-system path is built
        # from the request, so nothing outside the store can be reached
        artifact = next((a for a in run.artifacts if a.path == path), None)
        if artifact is None:
            raise tornado.web.HTTPError(404, f"run {run.id[:10]} has no artifact {path!r}")
        data = self._call(artifact.read_bytes)
        if self.get_argument("preview", "") == "table":
            from ..tracking.preview import table_head

            self._send(self._call(table_head, data, path))
            return
        media = artifact.media_type or mimetypes.guess_type(path)[0] or ""
        if not _MEDIA_TYPE.match(media):
            media = "application/octet-stream"
        if media.startswith("text/") or media in ("image/svg+xml", "application/json"):
            media += "; charset=utf-8"
        self.set_header("Content-Security-Policy", ARTIFACT_CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Content-Disposition", f"inline; filename*=UTF-8''{quote(Path(path).name)}")
        self.finish(data, set_content_type=media)


class DiffHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..tracking.run_diff import diff_runs
        from ..tracking.session import get_run

        a, b = self.get_argument("a", ""), self.get_argument("b", "")
        if not a or not b:
            raise tornado.web.HTTPError(400, "give the two runs to diff: ?a=RUN&b=RUN (ids or id prefixes)")
        self._send(self._call(diff_runs, self._call(get_run, a), self._call(get_run, b)))


class ModelsHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self, name: str | None = None):
        from ..registry import audit, models

        versions = _frame_records(self._call(models, name))
        if name is None:
            self._send({"versions": versions})
            return
        if not versions:
            raise tornado.web.HTTPError(404, f"no model named {name!r}")
        self._send({"name": name, "versions": versions, "audit": _frame_records(self._call(audit, name))})


class SnapshotsHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..data.snapshots import snapshots

        self._send({"snapshots": _frame_records(self._call(snapshots, self.get_argument("name", None)))})


class LineageHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..data.lineage import lineage

        ref = self.get_argument("ref", "")
        if not ref:
            raise tornado.web.HTTPError(400, "give ?ref= (a run id, snapshot:NAME[@V], model:NAME@ALIAS)")
        self._send(self._call(lineage, ref).to_dict())


class TracesHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..llm.query import traces

        offset, limit = _paging(self, 50)
        df = self._call(
            traces,
            self.get_argument("where", None) or None,
            run=self.get_argument("run", None) or None,
            name=self.get_argument("name", None) or None,
            limit=limit,
            offset=offset,
        )
        records = _frame_records(df)
        for r in records:  # NaN (a call without a price) is not JSON: unpriced is null
            if r.get("cost_usd") is not None and r["cost_usd"] != r["cost_usd"]:
                r["cost_usd"] = None
        self._send({"total": df.attrs["total"], "offset": offset, "limit": limit, "traces": records})


class TraceHandler(_MloHandler):
    @tornado.web.authenticated
    @in_workspace
    def get(self, trace_id: str):
        from ..llm.query import get_trace

        if not re.fullmatch(r"[0-9A-Za-z]{4,64}", trace_id):  # an id or its prefix: no LIKE wildcards
            raise tornado.web.HTTPError(404, f"no trace {trace_id!r}: give at least 4 characters of its id")
        trace = self._call(get_trace, trace_id)
        self._send(self._call(trace.to_view))


def handlers(base_url: str) -> list[tuple[str, type]]:
    api = url_path_join(base_url, "mlo", "api")
    return [
        (url_path_join(api, "experiments"), ExperimentsHandler),
        (url_path_join(api, "runs"), RunsHandler),
        (url_path_join(api, "runs", r"([^/]+)"), RunHandler),
        (url_path_join(api, "runs", r"([^/]+)", "metrics"), MetricsHandler),
        (url_path_join(api, "runs", r"([^/]+)", "artifacts", r"(.+)"), ArtifactHandler),
        (url_path_join(api, "diff"), DiffHandler),
        (url_path_join(api, "models"), ModelsHandler),
        (url_path_join(api, "models", r"([^/]+)"), ModelsHandler),
        (url_path_join(api, "snapshots"), SnapshotsHandler),
        (url_path_join(api, "lineage"), LineageHandler),
        (url_path_join(api, "traces"), TracesHandler),
        (url_path_join(api, "traces", r"([^/]+)"), TraceHandler),
        (url_path_join(api, "evals"), EvalsHandler),
        (url_path_join(api, "evals", "compare"), EvalCompareHandler),
    ]


def _load_jupyter_server_extension(serverapp) -> None:
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("mlo: REST API at %smlo/api/", web_app.settings["base_url"])


class EvalsHandler(_MloHandler):
    """``GET /mlo/api/evals?offset=&limit=``: stored LLM evaluations, newest first (:mod:`mlo.llm.eval_api`)."""

    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..llm.eval_api import list_evals

        offset, limit = _paging(self, 100)
        self._send(self._call(list_evals, limit=limit, offset=offset))


class EvalCompareHandler(_MloHandler):
    """``GET /mlo/api/evals/compare?a=ID&b=ID``: evaluation b against a, per scorer and per example."""

    @tornado.web.authenticated
    @in_workspace
    def get(self):
        from ..llm.eval_api import compare_evals_record

        a, b = self.get_argument("a", ""), self.get_argument("b", "")
        for ref in (a, b):
            if not re.fullmatch(r"[0-9A-Za-z]{4,64}", ref):
                raise tornado.web.HTTPError(
                    400, "give two evaluation ids (at least 4 characters each) as a= and b="
                )
        self._send(self._call(compare_evals_record, a, b))
