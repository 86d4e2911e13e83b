"""Disks that fail for real, for the store-fault tests: a small tmpfs that fills up, a read-only bind mount.

Both need root (CI runs as root). Without it, a full disk is a file size limit (``RLIMIT_FSIZE``) in the child
process, and a read-only workspace is ``chmod -w``, which a non-root user cannot write through.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

IS_ROOT = os.geteuid() == 0


def _mount(*args: str) -> bool:
    return subprocess.run(["mount", *args], capture_output=True, timeout=30).returncode == 0


def _umount(path: Path) -> None:
    if subprocess.run(["umount", str(path)], capture_output=True, timeout=30).returncode != 0:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, timeout=30)


@contextmanager
def small_disk(path: Path, size_mb: int = 16) -> Iterator[Callable[[], None] | None]:
    """``path`` on a tmpfs of ``size_mb`` when root can mount one; yields a function that fills it to the last
    byte (None when no mount was possible: use :func:`file_size_limit` instead)."""
    path.mkdir(parents=True, exist_ok=True)
    if not (IS_ROOT and _mount("-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(path))):
        yield None
        return

    def fill() -> None:
        with open(path / "filler", "wb", buffering=0) as fh:
            block = b"\0" * (1 << 16)
            try:
                for _ in range(size_mb * 32):  # bounded: the tmpfs is size_mb
                    fh.write(block)
            except OSError:
                pass
            try:  # the last bytes, one at a time, so nothing is left
                for _ in range(1 << 16):
                    fh.write(b"\0")
            except OSError:
                pass

    try:
        yield fill
    finally:
        _umount(path)


def file_size_limit(limit_bytes: int) -> Callable[[], None]:
    """A ``preexec_fn`` that caps the size of any file the child writes (writes past it fail with EFBIG)."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


@contextmanager
def read_only(path: Path) -> Iterator[str]:
    """``path`` made read-only: a read-only bind mount onto itself (root), else ``chmod -w`` on it and its
    files. Yields how ("mount" or "chmod")."""
    if IS_ROOT:
        if _mount("--bind", str(path), str(path)):
            if _mount("-o", "remount,ro,bind", str(path)):
                try:
                    yield "mount"
                finally:
                    _umount(path)
                return
            _umount(path)
    modes = {}
    for p in [path, *path.rglob("*")]:
        modes[p] = p.stat().st_mode
        p.chmod(modes[p] & ~0o222)
    try:
        yield "chmod"
    finally:
        for p, mode in modes.items():
            p.chmod(mode)
