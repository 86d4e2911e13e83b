"""The code blocks of README.md and docs/*.md, as the docs-examples test runs them.

A fenced block is code when its language is ``python`` (run in a real IPython shell, so ``%mlo`` magics work),
``bash`` (run by bash in the page's folder) or a file's content. An HTML comment on the line before the fence
says more:

    <!-- continue -->          this block shares the state (variables, folder, workspace) of the block before it;
                               without it a block starts from nothing, as a reader pasting it into a new notebook
    <!-- file: pipeline.yaml -->  the block is that file: it is written into the page's folder
    <!-- skip: why -->         shown, not run here (an install from the network, a server that runs until ^C);
                               the reason says what runs it instead

Blocks in ``text`` are output or grammar samples, not code. ``python tests/docs/docs_blocks.py`` prints the counts.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CODE = {"python", "bash"}
FENCE = re.compile(r"^```(\S*)\s*$")
MARK = re.compile(r"^<!--\s*(continue|file:\s*(?P<file>\S+)|skip:\s*(?P<why>.+?))\s*-->\s*$")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    code: str
    continues: bool = False
    file: str | None = None
    skip: str | None = None

    @property
    def runs(self) -> bool:
        return self.skip is None and (self.lang in CODE or self.file is not None)

    def __str__(self) -> str:
        return f"{self.page}:{self.line}"


def pages() -> list[Path]:
    return [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


def blocks(page: Path) -> list[Block]:
    lines = page.read_text(encoding="utf-8").splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        lang, start = m.group(1).lower(), i
        j = i + 1
        while j < len(lines) and lines[j].rstrip() != "```":
            j += 1
        block = Block(page.relative_to(ROOT).as_posix(), start + 1, lang, "\n".join(lines[i + 1 : j]) + "\n")
        k = start - 1
        while k >= 0 and (mark := MARK.match(lines[k].strip())):
            if mark.group(1) == "continue":
                block.continues = True
            elif mark.group("file"):
                block.file = mark.group("file")
            else:
                block.skip = mark.group("why")
            k -= 1
        out.append(block)
        i = j + 1
    return out


def groups(page: Path) -> list[list[Block]]:
    """The page's runnable blocks in runs of shared state: a block that does not continue starts a new one."""
    out: list[list[Block]] = []
    for b in blocks(page):
        if not b.runs:
            continue
        if b.continues and out:
            out[-1].append(b)
        else:
            out.append([b])
    return out


def counts() -> dict[str, int]:
    every = [b for p in pages() for b in blocks(p)]
    code = [b for b in every if b.lang != "text"]
    return {
        "code blocks": len(code),
        "run": sum(b.runs for b in code),
        "skipped": sum(b.skip is not None for b in code),
        "output samples": len(every) - len(code),
    }


if __name__ == "__main__":
    c = counts()
    print(f"docs code blocks that run: {c['run']} of {c['code blocks']}")
    for p in pages():
        for b in blocks(p):
            if b.skip:
                print(f"  skipped {b}: {b.skip}")
    print(f"output samples (text blocks, not code): {c['output samples']}")
    sys.exit(0)
