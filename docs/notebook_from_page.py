"""Write a docs page as a notebook: prose as Markdown cells, ``python`` blocks as code cells, ``bash`` blocks as
``!`` shell lines, blocks the docs test skips as Markdown. ``make docs`` keeps ``notebooks/00-quickstart.ipynb``
in step with ``docs/quickstart.md``; the docs test checks that they match.

    python docs/notebook_from_page.py docs/quickstart.md notebooks/00-quickstart.ipynb
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

FENCE = re.compile(r"^```(\S*)\s*$")
MARK = re.compile(r"^<!--.*-->\s*$")


def notebook(page: Path) -> nbformat.NotebookNode:
    lines = page.read_text(encoding="utf-8").splitlines()
    cells: list = []
    prose: list[str] = []
    skip_next = False

    def flush_prose() -> None:
        text = "\n".join(prose).strip()
        if text:
            cells.append(nbformat.v4.new_markdown_cell(text))
        prose.clear()

    i = 0
    while i < len(lines):
        line = lines[i]
        if MARK.match(line.strip()):
            skip_next = skip_next or "skip:" in line
            i += 1
            continue
        m = FENCE.match(line)
        if not m:
            prose.append(line)
            i += 1
            continue
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        code = "\n".join(lines[i + 1 : j])
        lang = m.group(1)
        if skip_next or lang not in ("python", "bash"):
            prose.append("\n".join(lines[i : j + 1]))
        else:
            flush_prose()
            if lang == "bash":
                code = "\n".join(
                    f"!{c}" if c.strip() and not c.startswith("#") else c for c in code.splitlines()
                )
            cells.append(nbformat.v4.new_code_cell(code))
        skip_next = False
        i = j + 1
    flush_prose()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    for n, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{n:02d}"  # stable ids: the file changes only when the page does
    return nb


if __name__ == "__main__":
    source, target = Path(sys.argv[1]), Path(sys.argv[2])
    nbformat.write(notebook(source), target)
    print(f"wrote {target}")
