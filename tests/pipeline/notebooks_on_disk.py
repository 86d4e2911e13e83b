"""Writing real notebooks for pipeline tests."""

from __future__ import annotations

import textwrap
from pathlib import Path

import nbformat


def write_notebook(path: Path, *cells: str, params: str | None = None) -> Path:
    """A notebook with an optional cell tagged ``parameters`` first."""
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    if params is not None:
        cell = nbformat.v4.new_code_cell(params)
        cell.metadata["tags"] = ["parameters"]
        nb.cells.append(cell)
    nb.cells.extend(nbformat.v4.new_code_cell(textwrap.dedent(c).strip()) for c in cells)
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


PREPARE = """
import os, pandas as pd
os.makedirs("data", exist_ok=True)
raw = pd.read_csv("raw.csv")
raw.assign(x2=raw.x * 2).head(rows).to_parquet("data/train.parquet")
"""

TRAIN = """
import mlo, pandas as pd
df = pd.read_parquet("data/train.parquet")
score = float(df.x2.mean()) * C
mlo.log_metric("score", score)
"""

VALIDATE = """
import mlo
run = mlo.runs(where="name like 'train%'").iloc[0]
if min_score > 0:
    raise mlo.GateFailed(f"score {run['metrics.score']:.1f} is below {min_score}")
"""
