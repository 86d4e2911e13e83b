"""JupyterLab's theme for browser tests: switch it through the settings API, and read how light a colour is."""

from __future__ import annotations

import json
import urllib.request


def set_theme(lab, theme: str) -> None:
    """Make ``theme`` ("JupyterLab Dark", "JupyterLab Light") the theme of every page the lab serves next."""
    request = urllib.request.Request(
        f"{lab.url}/lab/api/settings/@jupyterlab/apputils-extension:themes",
        data=json.dumps({"raw": json.dumps({"theme": theme})}).encode(),
        method="PUT",
        headers={"Authorization": f"token {lab.token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 204


def luminance(page, color: str) -> float:
    """The relative luminance (0 black, 1 white) of a CSS colour, as the page resolves it."""
    return page.evaluate(
        """c => { const d = document.createElement('div'); d.style.color = c; document.body.appendChild(d);
        const [r, g, b] = getComputedStyle(d).color.match(/\\d+(\\.\\d+)?/g).map(Number); d.remove();
        return (0.2126 * r + 0.7152 * g + 0.0722 * b) / 255 }""",
        color,
    )
