"""Screenshots the browser tests take for the docs (``make screenshots`` refreshes the ones in docs/images/)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "build" / "test-artifacts"
DOC_IMAGES = ROOT / "docs" / "images"


def docs_screenshot(target, name: str) -> Path:
    """Screenshot a page or an element: always into build/test-artifacts/, and into docs/images/ (where the docs
    embed it) when ``MLO_UPDATE_SCREENSHOTS=1``."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    target.screenshot(path=str(path))
    if os.environ.get("MLO_UPDATE_SCREENSHOTS") == "1":
        DOC_IMAGES.mkdir(parents=True, exist_ok=True)
        (DOC_IMAGES / name).write_bytes(path.read_bytes())
    return path
