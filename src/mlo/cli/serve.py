"""``mlo serve NAME@ALIAS``: serve a registered model over HTTP in the foreground, until Ctrl-C."""

from __future__ import annotations

import logging

import click

from . import main
from .output import format_option


@main.command("serve")
@click.argument("ref", metavar="NAME@ALIAS")
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
@format_option("text", "json", help="json: print one JSON line with the URL when the server listens.")
def serve_cmd(
    ref: str, host: str, port: int, canary: str | None, no_log: bool, poll: float, access_log: bool, fmt: str
) -> None:
    """Serve model NAME@ALIAS (or NAME@vN) over HTTP: POST /predict, POST /labels, GET /health, GET /metadata.

    The alias is followed: promote or roll back from anywhere and the server swaps versions without failing a
    request. Stop with Ctrl-C; the prediction log is written before exit.
    """
    from .. import workspace
    from ..serve.server import Server, require
    from ..serve.service import Service

    workspace.current(create=False)
    require()
    # in the foreground, say on stderr when a model fails or a version is swapped (a notebook's server stays quiet)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("mlo: %(message)s"))
    logging.getLogger("mlo.serve").addHandler(handler)
    logging.getLogger("mlo.serve").setLevel(logging.INFO)
    service = Service(ref, canary=canary, log=not no_log, poll=poll)
    try:
        server = Server(service, host, port, access_log=access_log)
    except BaseException:
        service.close()
        raise
    if fmt == "json":
        import json
        import sys

        click.echo(json.dumps({"url": server.url, "serving": service.describe()}))
        sys.stdout.flush()
    click.echo(f"mlo: serving {service.describe()} at {server.url} (Ctrl-C to stop)", err=True)
    server.run()
    logger = service.logger
    if logger is not None:
        click.echo(
            f"mlo: stopped; {logger.records_written} predictions logged to {service.ws.home / 'monitor'}",
            err=True,
        )
    else:
        click.echo("mlo: stopped", err=True)
