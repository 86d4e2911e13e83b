"""Plain-text tables for the benchmark scripts (imported by them; they run with this folder on sys.path)."""

from __future__ import annotations


def verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def print_table(header: list[str], rows: list[list[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
