"""Serving registered models over HTTP, with a canary, alias following and a prediction log.

``mlo.serve("churn@production")`` starts a server in the background and returns a :class:`Server`;
``mlo serve churn@production`` runs one in the foreground. Modules: :mod:`.service` (the core: deployments,
predicting, logging), :mod:`.inputs` (request bodies and their values), :mod:`.labels` (issued ids, labels once
each), :mod:`.routing` (canary), :mod:`.app` (Starlette), :mod:`.guard` (tokens, limits: the door),
:mod:`.auth`, :mod:`.limits`, :mod:`.connections` (header timeout, connection cap), :mod:`.ratelimit` (logs a
client cannot flood), :mod:`.server` (uvicorn). docs/security.md tells the security model.
"""

from __future__ import annotations

import inspect
import sys
import types
from typing import TYPE_CHECKING, Any

from ..errors import InvalidInput

if TYPE_CHECKING:
    from .server import Server

__all__ = ["serve"]


def serve(
    ref: Any,
    port: int = 0,
    canary: Any = None,
    host: str = "127.0.0.1",
    log: bool = True,
    *,
    poll: float = 1.0,
    seed: int | None = None,
    token: str | None = None,
    token_file: Any = None,
    limits: Any = None,
    route_key: str | None = None,
    backend: str | None = None,
    guardrails: Any = None,
    model: str | None = None,
) -> Server:
    """Serve a registered model over HTTP from a background thread — or a prompt version as an OpenAI-compatible
    chat endpoint (``"prompt:support@production"`` with ``backend=``).

    Parameters
    ----------
    ref : str or ModelVersion
        ``"churn@production"`` serves the version the alias points at and follows the alias: when it moves
        (``mlo.promote``, ``mlo.rollback``, ``mlo.set_alias`` from any process), the new version is loaded
        in the background and swapped in without failing a request. ``"churn@v3"`` or ``"churn/3"`` pins a
        version.
    port : int
        0 picks a free port (see ``.port``).
    canary : str, optional
        ``"churn@staging:10"``: 10% of requests go to ``churn@staging`` (also followed). The response header
        ``X-MLO-Route`` says which side answered; clients cannot choose it.
    host : str
        The interface to listen on; ``"0.0.0.0"`` for every interface (set a token then: it warns without).
    log : bool
        Log every prediction with its inputs and latency (read with ``mlo.monitor.read_log(name)``).
    poll : float
        Seconds between checks of the aliases (0: never re-read them).
    seed : int, optional
        Seed of the canary's random split, for reproducible tests.
    token : str, optional
        A bearer token every request but ``/health`` must send (``Authorization: Bearer <token>``), for every
        scope; ``MLO_SERVE_TOKEN`` gives one too. See docs/security.md.
    token_file : path, optional
        A file of tokens, one per line with its scopes (``predict``, ``labels``).
    limits : dict or Limits, optional
        Limits to change from their defaults, e.g. ``{"max_body": "16MB", "max_rows": 50_000}`` (see
        :class:`mlo.serve.limits.Limits`; None turns one off).
    route_key : str, optional
        A request header (e.g. ``"X-User-Id"``) whose value picks the canary side by its hash, so one user
        always lands on the same side. Off by default: each request is drawn at random.
    backend : str, optional
        For a prompt: the OpenAI-compatible endpoint that answers (``http://127.0.0.1:8080/v1``).
    guardrails : str, dict or Guardrails, optional
        For a prompt: the guardrail policy (``[guardrails.NAME]`` in ``mlo.toml``) applied to every request.
    model : str, optional
        For a prompt that names no model: the backend's model.

    Returns
    -------
    Server
        ``.url``, ``.port``, ``.stop()``; a context manager (``with mlo.serve(...) as srv:``).
    """
    from .auth import Auth
    from .server import Server, require
    from .service import Service

    require()
    auth = Auth.configure(token, token_file)
    if isinstance(ref, str) and ref.startswith("prompt:"):
        from .prompt_service import PromptService

        if backend is None:
            raise InvalidInput("serving a prompt needs backend=, the OpenAI-compatible endpoint that answers")
        service = PromptService(
            ref, backend=backend, canary=canary, guardrails=guardrails, model=model, poll=poll, seed=seed
        )
    elif backend is not None or guardrails is not None:
        raise InvalidInput("backend= and guardrails= are for prompts: serve 'prompt:NAME@ALIAS'")
    else:
        service = Service(ref, canary=canary, log=log, poll=poll, seed=seed)
    try:
        server = Server(service, host, port, auth=auth, limits=limits, route_key=route_key)
    except BaseException:
        service.close()
        raise
    return server.start()


class _CallablePackage(types.ModuleType):
    """``mlo.serve`` names both this package and the function. Importing a ``mlo.serve.*`` module first (as
    the CLI does) binds the package to ``mlo.serve``; calling the package runs :func:`serve`, so
    ``mlo.serve(...)`` works whichever of the two the name holds."""

    def __call__(self, *args, **kwargs) -> Server:
        return serve(*args, **kwargs)


_package = sys.modules[__name__]
_package.__class__ = _CallablePackage
_package.__signature__ = inspect.signature(serve)
