"""Running the app with uvicorn: in a background thread (``mlo.serve`` in notebooks and tests) or in the
foreground (``mlo serve``), on a socket bound before uvicorn starts so ``port=0`` tells its port at once."""

from __future__ import annotations

import html
import logging
import os
import signal
import socket
import threading
import time
from typing import Any

from ..errors import InvalidInput, MloError
from .auth import Auth, is_loopback
from .limits import Limits
from .service import Service

log = logging.getLogger("mlo.serve")

STARTUP_TIMEOUT = 30.0
RESOURCE_INTERVAL = 5.0  # seconds between samples of the process (see mlo.monitor.resources)


def require() -> None:
    """Raise a one-line error when the serving extras are not installed."""
    try:
        import starlette  # noqa: F401
        import uvicorn  # noqa: F401
    except ImportError:
        raise MloError("serving needs Starlette and uvicorn: pip install 'mlo-workbench[serve]'") from None


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one)."""
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        raise InvalidInput(f"port must be a number from 0 to 65535 (0: any free port), got {port!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP matters: asyncio turns Nagle off (TCP_NODELAY) only on sockets that say they are TCP;
    # with Nagle on, a response sent as headers + body waits for the client's delayed ACK (~40 ms a request)
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name == "posix":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(1024)
        return sock
    except OSError as exc:
        sock.close()
        raise InvalidInput(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); choose another port "
            "(port 0 picks a free one)"
        ) from None


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


class Server:
    """A model server: what :func:`mlo.serve` returns.

    Attributes
    ----------
    url, host, port : str, str, int
        Where it listens (``http://127.0.0.1:8000``).
    service : Service
        What it serves; ``service.stable.current`` is the deployment taking stable traffic now.
    auth, limits : Auth, Limits
        Who may call it and what one client may cost it (see :mod:`mlo.serve.auth`, :mod:`mlo.serve.limits`).
    """

    def __init__(
        self,
        service: Service,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        access_log: bool = False,
        auth: Auth | None = None,
        limits: Any = None,
        route_key: str | None = None,
    ):
        require()
        from .connections import descriptors_for, protocol_class
        from .limits import tune_allocator
        from .ratelimit import install

        if route_key is not None and (not isinstance(route_key, str) or not route_key.strip()):
            raise InvalidInput(f"route_key= names a request header, e.g. 'X-User-Id', got {route_key!r}")
        self.service = service
        self.host = host
        self.auth = Auth.coerce(auth)
        self.limits = descriptors_for(Limits.coerce(limits))
        self.route_key = route_key.strip() if route_key else None
        self._protocol = protocol_class(self.limits)
        install()
        tune_allocator()
        self._sock = bind(host, port)
        self.port = self._sock.getsockname()[1]
        self.access_log = access_log
        if not self.auth.enabled and not is_loopback(host):
            log.warning(
                "serving on %s without a token: anyone who can reach port %d can predict and send labels; "
                "set MLO_SERVE_TOKEN or --token-file (see docs/security.md)",
                host,
                self.port,
            )
        self._uvicorn = None
        self._sampler = None
        self.sample_every = RESOURCE_INTERVAL
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._stopped = False

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def running(self) -> bool:
        return self._uvicorn is not None and not self._stopped

    def _make(self, *, threaded: bool):
        import uvicorn

        from .app import create_app

        extra: dict[str, Any] = {"log_config": None} if threaded else {}  # leave a notebook's logging alone
        if hasattr(self.service, "chat"):  # a prompt served as a chat endpoint
            from .prompt_app import create_prompt_app

            app = create_prompt_app(
                self.service, auth=self.auth, limits=self.limits, route_key=self.route_key
            )
        else:
            app = create_app(
                self.service,
                auth=self.auth,
                limits=self.limits,
                route_key=self.route_key,
                connections=self._protocol.stats,
            )
        config = uvicorn.Config(
            app,
            http=self._protocol,
            log_level="warning",
            access_log=self.access_log,
            lifespan="off",
            timeout_graceful_shutdown=10,
            timeout_keep_alive=self.limits.keep_alive,
            **extra,
        )
        self._uvicorn = uvicorn.Server(config)
        if self.service.logger is not None and self._sampler is None:  # what serving costs, beside the log
            from ..monitor.resources import ResourceSampler

            names = [slot.name for slot in self.service.slots]
            self._sampler = ResourceSampler(
                self.service.ws.home, names, lambda: app.in_progress, self.service.served, self.sample_every
            ).start()
        return self._uvicorn

    def start(self) -> Server:
        """Serve from a background thread; returns once requests are accepted."""
        if self._thread is not None:
            return self
        server = self._make(threaded=True)

        def run() -> None:
            try:
                server.run(sockets=[self._sock])
            except BaseException as exc:  # uvicorn exits with SystemExit when startup fails
                self._error = exc

        self._thread = threading.Thread(target=run, name=f"mlo-serve-{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise MloError(f"the server on {self.url} did not start ({self._error or 'timed out'})")
            time.sleep(0.005)
        return self

    def run(self) -> None:
        """Serve in the foreground until Ctrl-C (or SIGTERM); then stop cleanly and write the log."""
        server = self._make(threaded=False)
        # uvicorn shuts down gracefully on SIGINT/SIGTERM, then raises the signal again with the handler it
        # found: for SIGTERM that must not be the default (killing the process before the log is written)
        main = threading.current_thread() is threading.main_thread()
        previous = signal.signal(signal.SIGTERM, _interrupt) if main else None
        try:
            server.run(sockets=[self._sock])
        except KeyboardInterrupt:
            pass
        finally:
            if main:
                signal.signal(signal.SIGTERM, previous)
            self._stopped = True
            self._close()

    def stop(self, timeout: float = 15.0) -> None:
        """Stop accepting requests, let those in flight finish, stop following aliases, write the log."""
        if self._stopped:
            return
        self._stopped = True
        if self._uvicorn is not None:
            self._uvicorn.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._uvicorn is not None:
                self._uvicorn.force_exit = True
                self._thread.join(5)
        self._close()

    def _close(self) -> None:
        try:
            if self._sampler is not None:
                self._sampler.stop()
            self._sock.close()
        finally:
            self.service.close()

    def metadata(self) -> dict[str, Any]:
        """What ``GET /metadata`` answers."""
        return self.service.metadata()

    def flush(self) -> int:
        """Write the prediction records still buffered (the log is written every second anyway), so that a
        report made right now sees every request answered so far; returns how many were written."""
        logger = self.service.logger
        return 0 if logger is None else logger.flush()

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"<mlo Server {self.service.describe()} at {self.url} ({state})>"

    def _repr_html_(self) -> str:
        state = "running" if self.running else "stopped"
        rows = [
            ("serves", self.service.describe()),
            ("at", f"{self.url} ({state})"),
            (
                "endpoints",
                "POST /v1/chat/completions, GET /v1/models, GET /health, GET /metadata"
                if hasattr(self.service, "chat")
                else "POST /predict, POST /labels, GET /health, GET /metadata",
            ),
            ("auth", self.auth.describe()),
            (
                "log",
                "mlo.monitor.read_log(" + repr(self.service.stable.name) + ")"
                if self.service.logger
                else "the traces (mlo.traces())"
                if hasattr(self.service, "chat")
                else "off",
            ),
        ]
        body = "".join(
            f"<tr><th style='text-align:left;padding-right:1em'>{html.escape(k)}</th>"
            f"<td style='text-align:left'><code>{html.escape(v)}</code></td></tr>"
            for k, v in rows
        )
        return f"<table>{body}</table>"
