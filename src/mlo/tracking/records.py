"""Plain records read back from a run: artifacts and captured cells."""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any


def to_datetime(us: int | None) -> datetime | None:
    return None if us is None else datetime.fromtimestamp(us / 1e6, tz=timezone.utc)


@dataclass(frozen=True)
class Cell:
    """One notebook cell executed while a run was active."""

    seq: int
    source: str
    execution_count: int | None
    success: bool
    duration: float
    started_at: datetime
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["started_at"] = self.started_at.isoformat()
        return d


@dataclass(frozen=True)
class Artifact:
    """A file logged to a run, stored by content digest in the blob store."""

    path: str
    digest: str
    size: int
    media_type: str | None
    created_at: datetime
    _blobs: Any = None

    def read_bytes(self) -> bytes:
        """The artifact's bytes, verified against its digest."""
        return self._blobs.get_bytes(self.digest)

    def read_text(self, encoding: str = "utf-8") -> str:
        return self.read_bytes().decode(encoding)

    def download(self, dest: str | os.PathLike) -> Path:
        """Copy the artifact to ``dest`` (a file path, or a folder to put it in under its own path)."""
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / self.path
        return self._blobs.copy_to(self.digest, dest)

    def to_dict(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "digest": self.digest,
            "size": self.size,
            "media_type": self.media_type,
            "created_at": self.created_at.isoformat(),
        }
