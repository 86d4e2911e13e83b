"""``mlo serve NAME@ALIAS``: serve a registered model over HTTP in the foreground, until Ctrl-C.

Tokens (``--token-file``, ``MLO_SERVE_TOKEN``), the canary's route key and the limits one client may use are
options here; docs/security.md says what each one protects.
"""

from __future__ import annotations

import logging

import click

from . import main
from .output import format_option


@main.command("serve")
@click.argument("ref", metavar="NAME@ALIAS | prompt:NAME@ALIAS")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on (0.0.0.0: all).")
@click.option(
    "--port",
    "-p",
    default=8000,
    show_default=True,
    type=click.IntRange(0, 65535),
    help="0 picks a free port.",
)
@click.option(
    "--canary",
    metavar="NAME@ALIAS:PCT",
    help="Send PCT percent of requests to this version, e.g. churn@staging:10.",
)
@click.option("--no-log", is_flag=True, help="Do not log predictions (mlo.monitor.read_log reads the log).")
@click.option(
    "--poll",
    default=1.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds between checks of the aliases (a moved alias is swapped in); 0: never.",
)
@click.option("--access-log", is_flag=True, help="Print a line per request.")
@click.option(
    "--token-file",
    type=click.Path(dir_okay=False),
    help="Tokens requests must send (Authorization: Bearer …), one per line with its scopes "
    "(predict, labels). MLO_SERVE_TOKEN gives one token for every scope.",
)
@click.option(
    "--route-key",
    metavar="HEADER",
    help="Route canary traffic by the hash of this request header (a user or session id), so one user stays "
    "on one side. Off: each request is drawn at random.",
)
@click.option("--max-body", default="4MB", show_default=True, help="Largest request body (413 above).")
@click.option(
    "--max-rows", default=10_000, show_default=True, type=click.IntRange(min=1), help="Rows per request."
)
@click.option("--max-depth", default=32, show_default=True, type=click.IntRange(min=1), help="JSON nesting.")
@click.option(
    "--max-concurrency",
    default=64,
    show_default=True,
    type=click.IntRange(min=1),
    help="Requests processed at once (503 above; /health apart).",
)
@click.option(
    "--max-connections",
    default=4096,
    show_default=True,
    type=click.IntRange(min=1),
    help="Open connections (the longest-idle one is closed to make room).",
)
@click.option(
    "--header-timeout",
    default=10.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to send a request's headers.",
)
@click.option(
    "--body-timeout",
    default=30.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds to send a request's body (408 after).",
)
@click.option(
    "--keep-alive",
    default=5.0,
    show_default=True,
    type=click.FloatRange(min=0, min_open=True),
    help="Seconds an idle kept-alive connection stays open.",
)
@click.option(
    "--backend",
    metavar="URL",
    help="For prompt:NAME@ALIAS: the OpenAI-compatible endpoint that answers (http://127.0.0.1:8080/v1).",
)
@click.option(
    "--guardrails", metavar="NAME", help="For a prompt: the guardrail policy [guardrails.NAME] of mlo.toml."
)
@click.option("--model", metavar="MODEL", help="For a prompt that names no model: the backend's model.")
@format_option("text", "json", help="json: print one JSON line with the URL when the server listens.")
def serve_cmd(
    ref: str,
    host: str,
    port: int,
    canary: str | None,
    no_log: bool,
    poll: float,
    access_log: bool,
    token_file: str | None,
    route_key: str | None,
    max_body: str,
    max_rows: int,
    max_depth: int,
    max_concurrency: int,
    max_connections: int,
    header_timeout: float,
    body_timeout: float,
    keep_alive: float,
    backend: str | None,
    guardrails: str | None,
    model: str | None,
    fmt: str,
) -> None:
    """Serve model NAME@ALIAS (or NAME@vN) over HTTP: POST /predict, POST /labels, GET /health, GET /metadata.

    The alias is followed: promote or roll back from anywhere and the server swaps versions without failing a
    request. Stop with Ctrl-C; the prediction log is written before exit.

    prompt:NAME@ALIAS --backend URL serves a prompt version as an OpenAI-compatible chat endpoint
    (POST /v1/chat/completions): rendered, checked by --guardrails, answered by the backend, traced and priced.
    """
    from .. import workspace
    from ..errors import InvalidInput
    from ..serve.auth import Auth
    from ..serve.limits import Limits
    from ..serve.server import Server, require
    from ..serve.service import Service

    workspace.current(create=False)
    require()
    auth = Auth.configure(token_file=token_file)
    limits = Limits(
        max_body=max_body,
        max_rows=max_rows,
        max_depth=max_depth,
        max_concurrency=max_concurrency,
        max_connections=max_connections,
        header_timeout=header_timeout,
        body_timeout=body_timeout,
        keep_alive=keep_alive,
    )
    # in the foreground, say on stderr when a model fails or a version is swapped (a notebook's server stays quiet)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("mlo: %(message)s"))
    logging.getLogger("mlo.serve").addHandler(handler)
    logging.getLogger("mlo.serve").setLevel(logging.INFO)
    if ref.startswith("prompt:"):
        from ..serve.prompt_service import PromptService

        if not backend:
            raise InvalidInput(
                "serving a prompt needs --backend URL, the OpenAI-compatible endpoint that answers"
            )
        service = PromptService(
            ref, backend=backend, canary=canary, guardrails=guardrails, model=model, poll=poll
        )
    elif backend or guardrails or model:
        raise InvalidInput("--backend, --guardrails and --model are for prompts: mlo serve prompt:NAME@ALIAS")
    else:
        service = Service(ref, canary=canary, log=not no_log, poll=poll)
    try:
        server = Server(
            service, host, port, access_log=access_log, auth=auth, limits=limits, route_key=route_key
        )
    except BaseException:
        service.close()
        raise
    if fmt == "json":
        import json
        import sys

        click.echo(json.dumps({"url": server.url, "serving": service.describe()}))
        sys.stdout.flush()
    guard = "token required" if auth.enabled else "no token"
    click.echo(f"mlo: serving {service.describe()} at {server.url} ({guard}; Ctrl-C to stop)", err=True)
    server.run()
    logger = service.logger
    if logger is not None:
        click.echo(
            f"mlo: stopped; {logger.records_written} predictions logged to {service.ws.home / 'monitor'}",
            err=True,
        )
    else:
        click.echo("mlo: stopped", err=True)
