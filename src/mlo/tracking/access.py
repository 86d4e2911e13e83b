"""Which files a cell opens, seen through Python's audit events (``open``), so a run knows the data it read
without being told. Only files opened through Python are seen (pandas' CSV reader, ``open``, ``numpy.load``);
readers that open files in C++ (pyarrow's Parquet reader) are found instead by the paths a cell names.

The audit hook is installed once per process and costs one attribute check per ``open`` while no cell is being
recorded. Files of the Python installation, of the workspace and under ``/proc``, ``/sys`` and ``/dev`` are
ignored, as are Python sources and compiled modules (local modules are captured by content instead).
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager

_IGNORED_SUFFIXES = (".py", ".pyc", ".pyi", ".so", ".pth", ".dist-info", ".egg-info", ".ipynb")
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC


class _Collector:
    def __init__(self) -> None:
        self.active = False
        self.reads: set[str] = set()
        self.writes: set[str] = set()
        self.ignored: tuple[str, ...] = ()


_collector = _Collector()
_installed = False
_install_lock = threading.Lock()


def _hook(event: str, args: tuple) -> None:
    c = _collector
    if not c.active or event != "open":
        return
    try:
        path, mode, flags = args
        if not isinstance(path, (str, bytes, os.PathLike)):
            return  # a file descriptor
        path = os.fsdecode(os.fspath(path))
        if path.endswith(_IGNORED_SUFFIXES) or path.startswith(c.ignored):
            return
        path = os.path.abspath(path)
        if "/." in path or path.startswith(c.ignored):  # caches and settings (~/.cache, ~/.ipython, .mlo)
            return
        writing = (
            any(ch in mode for ch in "wax+") if isinstance(mode, str) else bool((flags or 0) & _WRITE_FLAGS)
        )
        (c.writes if writing else c.reads).add(path)
    except Exception:  # never break the user's open()
        return


def install(ignore: tuple[str, ...] = ()) -> None:
    """Install the audit hook (once per process); ``ignore`` adds path prefixes never to report."""
    global _installed
    with _install_lock:
        prefixes = {
            sys.prefix,
            sys.base_prefix,
            sys.exec_prefix,
            "/proc/",
            "/sys/",
            "/dev/",
            "/usr/",
            "/etc/",
            "/lib/",
            "/lib64/",
            "/var/lib/",
            *ignore,
        }
        _collector.ignored = tuple(sorted(p for p in prefixes if p))
        if not _installed:
            sys.addaudithook(_hook)
            _installed = True


def start() -> None:
    """Collect the files opened from now on."""
    _collector.reads, _collector.writes = set(), set()
    _collector.active = True


@contextmanager
def unobserved():
    """What mlo itself reads and writes inside (restoring a reproduction's files) is not the user's cell's."""
    was = _collector.active
    _collector.active = False
    try:
        yield
    finally:
        _collector.active = was


def stop() -> tuple[set[str], set[str]]:
    """Stop collecting; the files read (that still exist) and written since :func:`start`."""
    c = _collector
    c.active = False
    reads, writes = c.reads, c.writes
    c.reads, c.writes = set(), set()
    return {p for p in reads if os.path.isfile(p)}, writes
