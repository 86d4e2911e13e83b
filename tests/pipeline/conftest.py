"""Pipelines of real notebooks in a temporary folder."""

from __future__ import annotations

import textwrap

import pytest
from notebooks_on_disk import PREPARE, TRAIN, VALIDATE, write_notebook


@pytest.fixture
def project(sqlite_ws, tmp_path):
    """prepare → train (matrix over C) → validate, on raw.csv."""
    (tmp_path / "raw.csv").write_text("x\n" + "".join(f"{i}\n" for i in range(50)))
    write_notebook(tmp_path / "nb" / "prepare.ipynb", PREPARE, params="rows = 40")
    write_notebook(tmp_path / "nb" / "train.ipynb", TRAIN, params="C = 1.0")
    write_notebook(tmp_path / "nb" / "validate.ipynb", VALIDATE, params="min_score = 0")
    (tmp_path / "pipeline.yaml").write_text(
        textwrap.dedent("""
        experiment: shop
        stages:
          prepare:
            notebook: nb/prepare.ipynb
            deps: [raw.csv]
            outs: [data/train.parquet]
          train:
            notebook: nb/train.ipynb
            deps: [data/train.parquet]
            matrix: {C: [0.5, 2.0]}
          validate:
            notebook: nb/validate.ipynb
            needs: [train]
        """)
    )
    return tmp_path
