"""The Jupyter server extension: the REST API of :mod:`mlo.ui.api` under ``/mlo/api/``, for the JupyterLab panel
and anything else that speaks HTTP. Every handler requires Jupyter's authentication; the endpoints themselves
(what each answers, its errors, its limits) live in :mod:`mlo.ui.api`, shared with the standalone ``mlo ui``.

The workspace is ``MLO_HOME`` or the nearest ``.mlo/`` at or above the server's root folder, found per request
and in force for that request only: the API never changes the process's state (no ``MLO_HOME`` is set, so kernels
the server starts later still find their own workspace).
"""

from __future__ import annotations

import functools
import json
import os
from typing import Any
from urllib.parse import unquote

import tornado
from jupyter_server.base.handlers import APIHandler
from jupyter_server.utils import url_path_join

from .. import workspace
from ..errors import MloError, NotFound
from ..ui.api import ARTIFACT_CSP, MAX_LIMIT  # noqa: F401  (ARTIFACT_CSP: what an artifact is served with)
from ..ui.api import frame_records as _frame_records  # noqa: F401


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


def _paging(handler: APIHandler, default_limit: int) -> tuple[int, int]:
    try:
        offset = max(0, int(handler.get_argument("offset", "0")))
        limit = min(MAX_LIMIT, max(1, int(handler.get_argument("limit", str(default_limit)))))
    except ValueError:
        raise tornado.web.HTTPError(400, "offset and limit are whole numbers") from None
    return offset, limit


class ApiHandler(_MloHandler):
    """Every endpoint of :mod:`mlo.ui.api`: the request's path and query in, its answer out."""

    @tornado.web.authenticated
    def get(self, *groups):
        from ..ui.api import answer

        path = self.request.path[len(self.api_root) :]
        query = {
            k: [v.decode("utf-8", "replace") for v in vs] for k, vs in self.request.query_arguments.items()
        }
        reply = answer(self.mlo_home, unquote(path), query)
        self.set_status(reply.status)
        media = reply.headers.get("Content-Type", "application/json")
        for key, value in reply.headers.items():
            if key != "Content-Type":
                self.set_header(key, value)
        self.finish(reply.body, set_content_type=media)  # APIHandler would say JSON otherwise

    @property
    def api_root(self) -> str:
        return url_path_join(self.settings["base_url"], "mlo", "api") + "/"


def handlers(base_url: str) -> list[tuple[str, type]]:
    from ..ui.api import ROUTES

    api = url_path_join(base_url, "mlo", "api")
    return [(url_path_join(api, pattern), ApiHandler) for pattern, _ in ROUTES]


def _load_jupyter_server_extension(serverapp) -> None:
    web_app = serverapp.web_app
    web_app.add_handlers(".*$", handlers(web_app.settings["base_url"]))
    serverapp.log.info("mlo: REST API at %smlo/api/", web_app.settings["base_url"])
