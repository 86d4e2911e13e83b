"""What a run captures about where it ran: git state, the Python environment, the notebook or script, the owner
process (for detecting runs left open by a crash)."""

from __future__ import annotations

import functools
import getpass
import json
import os
import platform
import socket
import subprocess
import sys
from pathlib import Path

GIT_TIMEOUT = 10.0
MAX_DIFF_BYTES = 20 * 1024 * 1024


@functools.cache
def owner() -> str:
    """``host:pid:start`` of this process; a pid alone is reused by the OS, the start time is not."""
    return owner_of(os.getpid())


def owner_of(pid: int) -> str:
    import psutil  # here: a stage's kernel that samples nothing never needs it

    start = int(psutil.Process(pid).create_time() * 1000)
    return f"{socket.gethostname()}:{pid}:{start}"


def owner_alive(owner_id: str) -> bool | None:
    """True/False when ``owner_id`` is a process of this host; None when it belongs to another host."""
    try:
        host, pid_s, start_s = owner_id.rsplit(":", 2)
        pid, start = int(pid_s), int(start_s)
    except ValueError:
        return None
    if host != socket.gethostname():
        return None
    import psutil

    try:
        proc = psutil.Process(pid)
        return int(proc.create_time() * 1000) == start and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


@functools.cache
def user() -> str | None:
    try:
        return getpass.getuser()
    except Exception:  # no user name in some containers
        return None


def source_path() -> str | None:
    """The notebook or script this process runs, when it can be told."""
    for var in ("MLO_NOTEBOOK", "JPY_SESSION_NAME"):
        if os.environ.get(var):
            return os.environ[var]
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if path and not path.endswith(("ipykernel_launcher.py", "__main__.py")) and Path(path).is_file():
        return str(Path(path).resolve())
    return None


def git_state(cwd: str | os.PathLike | None = None) -> dict | None:
    """Commit, branch, dirty flag and ``git diff HEAD`` (bytes) of the repository around ``cwd``, or None."""
    cwd = str(cwd or os.getcwd())
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "LC_ALL": "C"}
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD", "--abbrev-ref", "HEAD"],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env=env,
        )
        if head.returncode != 0:
            return None
        commit, branch = (head.stdout.decode().split() + [None, None])[:2]
        diff = subprocess.run(
            ["git", "diff", "HEAD", "--binary", "--no-color", "--no-ext-diff"],
            cwd=cwd,
            capture_output=True,
            timeout=GIT_TIMEOUT,
            env=env,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    patch = diff.stdout if diff.returncode == 0 else b""
    return {
        "commit": commit,
        "branch": None if branch == "HEAD" else branch,
        "dirty": bool(patch),
        "diff": patch if len(patch) <= MAX_DIFF_BYTES else None,
    }


def _name_version(dist) -> tuple[str | None, str | None]:
    """A distribution's ``Name`` and ``Version`` from the head of its metadata file: what ``dist.metadata`` gives,
    without parsing the whole file as an e-mail message (ten times the time over a few hundred packages, which a
    cached pipeline re-run waits for at exit)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    name = version = None
    for line in text.splitlines():
        if not line:  # the headers end at the first empty line
            break
        if name is None and line.startswith("Name:"):
            name = line[5:].strip()
        elif version is None and line.startswith("Version:"):
            version = line[8:].strip()
    return name or None, version


@functools.cache
def environment() -> bytes:
    """The environment as canonical JSON bytes: python, platform, installed packages (cached per process)."""
    from importlib import metadata

    packages = {}
    for dist in metadata.distributions():
        name, version = _name_version(dist)
        if name:
            packages[name.lower()] = version
    env = {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "executable": sys.executable,
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "packages": dict(sorted(packages.items())),
    }
    return json.dumps(env, sort_keys=True, separators=(",", ":")).encode()
