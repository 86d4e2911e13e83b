"""The standalone ``mlo ui``: the single-page app (``mlo/ui/static/``) and the REST API of :mod:`mlo.ui.api`,
served by Starlette on uvicorn without JupyterLab, behind a token.

Why Starlette and uvicorn: they are already mlo's serving stack (the ``serve`` extra), so the UI reuses the
connection guard that ``mlo serve`` has (:mod:`mlo.serve.connections`: a header timeout that closes idle and
slow connections, a cap on open connections, a 431 for oversized request heads) instead of growing a second
one; tornado would come only with JupyterLab, which this server exists to do without.

Auth, like Jupyter's: the token once in the URL (``?token=``) sets an HttpOnly, SameSite=Strict cookie and the
browser is sent to the same page without it (so the token leaves the address bar and history); an API client may
send ``Authorization: token <t>`` (or ``Bearer <t>``). Tokens are compared in constant time. Without a valid one
every path answers 401 with a one-line JSON error.
"""

from __future__ import annotations

import hashlib
import hmac
import mimetypes
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from ..errors import InvalidInput
from .api import Answer, answer

COOKIE = "mlo_ui_token"
STATIC = "static"  # the built app, inside this package
# the page runs only its own script; styles inline because the charts set them; artifacts come in sandboxed frames
PAGE_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; "
    "frame-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
PAGE_HEADERS = {
    "Content-Security-Policy": PAGE_CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
UNAUTHORIZED = (
    "this mlo ui needs its token: open the URL `mlo ui` printed (…/?token=…) "
    "or send the header 'Authorization: token <token>'"
)


def static_dir() -> Path:
    """Where the built app is (``index.html``, ``app.js``, ``app.css``)."""
    return Path(str(resources.files("mlo.ui") / STATIC))


def built() -> bool:
    return (static_dir() / "app.js").is_file()


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()


def create_app(home: Path | None, token: str, root: str | Path | None = None):
    """The ASGI app serving the workspace at ``home`` behind ``token``."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import RedirectResponse, Response
    from starlette.routing import Route

    if not isinstance(token, str) or len(token.strip()) < 8:
        raise InvalidInput("mlo ui needs a token of at least 8 characters: it is never served without one")
    expected = _digest(token.strip())

    def presented(request: Request) -> str | None:
        header = request.headers.get("authorization", "")
        scheme, _, value = header.partition(" ")
        if scheme.lower() in ("token", "bearer") and value.strip():
            return value.strip()
        return request.query_params.get("token") or request.cookies.get(COOKIE)

    def allowed(request: Request) -> bool:
        given = presented(request)
        return given is not None and hmac.compare_digest(_digest(given), expected)

    def reply(a: Answer, extra: dict[str, str] | None = None) -> Response:
        return Response(a.body, a.status, headers={**a.headers, **(extra or {})})

    def refused(request: Request) -> Response:
        return reply(Answer.error(401, UNAUTHORIZED), {"WWW-Authenticate": 'Token realm="mlo ui"'})

    def with_cookie(request: Request) -> Response | None:
        """A page opened with ``?token=``: the cookie, and the same page again without the token in its URL."""
        if "token" not in request.query_params:
            return None
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + ("?" + urlencode(rest) if rest else "")
        response = RedirectResponse(target, status_code=303, headers={"Referrer-Policy": "no-referrer"})
        response.set_cookie(
            COOKIE,
            request.query_params["token"],
            httponly=True,
            samesite="strict",
            path="/",
            max_age=30 * 86400,
        )
        return response

    def page(request: Request) -> Response:
        if not allowed(request):
            return refused(request)
        redirect = with_cookie(request)
        if redirect is not None:
            return redirect
        index = static_dir() / "index.html"
        if not index.is_file():
            return reply(
                Answer.error(503, "the mlo ui app is not built in this install: run `make labextension`"),
            )
        return Response(
            index.read_bytes(), 200, headers={**PAGE_HEADERS, "Content-Type": "text/html; charset=utf-8"}
        )

    def static(request: Request) -> Response:
        if not allowed(request):
            return refused(request)
        name = request.path_params["name"]
        folder = static_dir()
        # only a file directly in the app's folder, by a plain name: no path is built from anything else
        files = {p.name: p for p in folder.iterdir() if p.is_file()} if folder.is_dir() else {}
        if name not in files or name.startswith("."):
            return reply(Answer.error(404, f"no file {name[:200]!r} in the mlo ui app"))
        media = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if media.startswith("text/") or media in ("application/javascript", "application/json"):
            media += "; charset=utf-8"
        return Response(
            files[name].read_bytes(),
            200,
            headers={"Content-Type": media, "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"},
        )

    def api(request: Request) -> Response:
        if not allowed(request):
            return refused(request)
        query: dict[str, list[str]] = {}
        for key, value in request.query_params.multi_items():
            if key != "token":
                query.setdefault(key, []).append(value)
        return reply(answer(home, request.path_params["path"], query, root=root))

    async def not_found(request: Request, exc: Any) -> Response:
        status = getattr(exc, "status_code", 500)
        message = {404: f"no page {request.url.path[:200]}", 405: "mlo ui only reads: use GET"}.get(
            status, "the mlo ui server failed; see its terminal"
        )
        return reply(Answer.error(status, message))

    routes = [
        Route("/", page),
        Route("/static/{name}", static),
        Route("/mlo/api/{path:path}", api),
    ]
    return Starlette(routes=routes, exception_handlers={404: not_found, 405: not_found, 500: not_found})


class UiServer:
    """``mlo ui`` on ``host:port`` (port 0: a free one), in the foreground (:meth:`run`) or a thread (tests)."""

    def __init__(
        self,
        home: Path | None,
        token: str,
        host: str = "127.0.0.1",
        port: int = 0,
        root=None,
        limits: Any = None,
    ):
        from ..serve.connections import descriptors_for, protocol_class
        from ..serve.limits import Limits
        from ..serve.server import bind, require

        require()
        self.home, self.host = home, host
        self.limits = descriptors_for(Limits.coerce(limits))
        self._protocol = protocol_class(self.limits)
        self._sock = bind(host, port)
        self.port = self._sock.getsockname()[1]
        self.app = create_app(home, token, root=root)
        self._server = None
        self._thread = None

    @property
    def url(self) -> str:
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        host = f"[{host}]" if ":" in host else host
        return f"http://{host}:{self.port}"

    def _make(self):
        import uvicorn

        config = uvicorn.Config(
            self.app,
            http=self._protocol,
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_keep_alive=self.limits.keep_alive,
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(config)
        return self._server

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM."""
        import signal

        def interrupt(signum, frame):
            raise KeyboardInterrupt

        previous = signal.signal(signal.SIGTERM, interrupt)
        try:
            self._make().run(sockets=[self._sock])
        except KeyboardInterrupt:
            pass
        finally:
            signal.signal(signal.SIGTERM, previous)
            self._sock.close()

    def start(self) -> UiServer:
        """Serve from a background thread; returns once requests are accepted."""
        import threading
        import time

        server = self._make()
        self._thread = threading.Thread(target=server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 30
        while not server.started and self._thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
        self._sock.close()
