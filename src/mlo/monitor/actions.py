"""What an alert does: post to a webhook, run a command, retrain through a pipeline, or roll an alias back.

Each action returns a result ``{"type", "ok", "detail"}`` that the alert record keeps, so the alert log says
what was done and whether it worked; a rollback also writes the registry's own audit event. A webhook's detail
shows its scheme and host only, never its path, query, headers or secret (see :mod:`.webhooks`).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import webhooks

COMMAND_TIMEOUT = 3600.0
OUTPUT_TAIL = 2000


def run_action(action: dict[str, Any], alert: dict[str, Any], project: Path) -> dict[str, Any]:
    kind = action["type"]
    secrets: list[str] = []
    try:
        if kind == "webhook":
            hook = webhooks.resolve(action, str(alert.get("rule")))
            secrets = hook["secrets"]
            detail, ok = webhooks.send(hook, alert)
        elif kind == "command":
            detail, ok = _command(action["run"], alert, project, shell=True)
        elif kind == "retrain":
            detail, ok = _retrain(action, alert, project)
        else:
            detail, ok = _rollback(action, alert)
    except Exception as exc:  # an action that fails is reported in the alert, never lost or raised
        detail, ok = webhooks.scrub(f"{type(exc).__name__}: {exc}", secrets), False
    return {"type": kind, "ok": ok, "detail": detail}


def _env(alert: dict[str, Any]) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        MLO_ALERT_RULE=str(alert["rule"]),
        MLO_ALERT_MODEL=str(alert["model"]),
        MLO_ALERT_MESSAGE=str(alert["message"]),
    )
    return env


def _command(
    cmd: str | list[str], alert: dict[str, Any], project: Path, shell: bool, shown: str | None = None
) -> tuple[str, bool]:
    """Run in the project folder, the alert as JSON on stdin and in MLO_ALERT_* variables."""
    done = subprocess.run(
        cmd,
        shell=shell,
        cwd=project,
        env=_env(alert),
        input=json.dumps(alert, default=str),
        capture_output=True,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    out = (done.stdout + done.stderr).strip()[-OUTPUT_TAIL:]
    shown = shown or (cmd if isinstance(cmd, str) else " ".join(cmd))
    return f"`{shown}` exited {done.returncode}" + (f": {out}" if out else ""), done.returncode == 0


def _retrain(action: dict[str, Any], alert: dict[str, Any], project: Path) -> tuple[str, bool]:
    cmd = [sys.executable, "-m", "mlo", "pipeline", "run", action["pipeline"], "--quiet"]
    for stage in action.get("stages", []) or []:
        cmd += ["--stage", str(stage)]
    for key, value in (action.get("params") or {}).items():
        cmd += ["--param", f"{key}={value}"]
    if action.get("force"):
        cmd.append("--force")
    return _command(cmd, alert, project, shell=False, shown=" ".join(["mlo", *cmd[3:]]))


def _rollback(action: dict[str, Any], alert: dict[str, Any]) -> tuple[str, bool]:
    from ..registry import rollback

    name = action.get("model") or alert["model"]
    event = rollback(name, action["alias"], reason=f"alert {alert['rule']!r}: {alert['message']}")
    return f"{name}@{action['alias']}: v{event.from_version} → v{event.to_version}", True
