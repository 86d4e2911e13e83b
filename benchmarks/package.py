"""Package figures: the wheel's size and what an install of it takes, with no extras, with [lab] and with [dev].

Builds the wheel from this checkout (the JupyterLab panel must be built, or npm at hand), then installs it into a
fresh virtual environment per variant and measures its site-packages against an empty environment's.

    .venv/bin/python benchmarks/package.py            # about 5 minutes, most of it installing [dev]
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def size_of(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def site_packages(env: Path) -> Path:
    return next((env / "lib").glob("python3*/site-packages"))


def run(*args, **kw) -> None:
    subprocess.run([str(a) for a in args], check=True, capture_output=True, **kw)


def main() -> None:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("MLO_", "VIRTUAL_ENV"))}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", tmp / "dist", ROOT, env=clean)
        wheel = next((tmp / "dist").glob("*.whl"))
        print(f"wheel                 {wheel.name}: {wheel.stat().st_size / 1e3:,.0f} kB")
        run(sys.executable, "-m", "venv", tmp / "empty")
        base = size_of(site_packages(tmp / "empty"))
        for extra in ("", "[lab]", "[dev]"):
            env = tmp / f"env{extra.strip('[]') or '-plain'}"
            run(sys.executable, "-m", "venv", env)
            start = time.monotonic()
            run(env / "bin/python", "-m", "pip", "install", "-q", f"{wheel}{extra}", env=clean)
            seconds = time.monotonic() - start
            packages = subprocess.run(
                [env / "bin/python", "-m", "pip", "list", "--format", "freeze"],
                capture_output=True,
                text=True,
            ).stdout.count("\n")
            added = size_of(site_packages(env)) - base
            label = f"install {extra or 'no extras'}"
            print(
                f"{label:<21} {added / 1e6:,.0f} MB in {packages} packages ({seconds:.0f} s, from pip's cache)"
            )


if __name__ == "__main__":
    main()
