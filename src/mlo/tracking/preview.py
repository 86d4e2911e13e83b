"""The head of a tabular artifact (CSV, TSV, Parquet) as plain records for a preview: its columns, its first rows
and, when it is cheap to know, its total number of rows. Values are JSON-ready (NaN and missing as None, other
non-JSON values as text)."""

from __future__ import annotations

import io
import json
import math
from pathlib import PurePosixPath
from typing import Any

from ..errors import InvalidInput

TABLE_SUFFIXES = {".csv": ",", ".tsv": "\t", ".parquet": None}
HEAD_ROWS = 20


def is_table(path: str) -> bool:
    return PurePosixPath(path).suffix.lower() in TABLE_SUFFIXES


def _cell(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    if isinstance(value, (bool, int, float, str)):
        return value
    try:
        json.dumps(value)
        return value
    except (TypeError, ValueError):
        return str(value)


def table_head(data: bytes, path: str, rows: int = HEAD_ROWS) -> dict[str, Any]:
    """``{"columns", "rows", "rows_total"}`` of the first ``rows`` rows of a CSV, TSV or Parquet file's bytes
    (``rows_total`` is None for text files, which would have to be read whole to count)."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in TABLE_SUFFIXES:
        raise InvalidInput(f"{path!r} is not a table to preview: give a .csv, .tsv or .parquet artifact")
    import pandas as pd

    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            file = pq.ParquetFile(io.BytesIO(data))
            total = file.metadata.num_rows
            batch = next(file.iter_batches(batch_size=rows), None)
            frame = batch.to_pandas() if batch is not None else file.schema_arrow.empty_table().to_pandas()
        else:
            total = None
            frame = pd.read_csv(io.BytesIO(data), sep=TABLE_SUFFIXES[suffix], nrows=rows)
    except Exception as exc:  # a malformed file is the user's content, not a fault of the server
        raise InvalidInput(f"cannot read {path!r} as a table: {str(exc).splitlines()[0][:200]}") from None
    frame = frame.head(rows)
    return {
        "columns": [str(c) for c in frame.columns],
        "rows": [[_cell(v) for v in row] for row in frame.astype(object).itertuples(index=False)],
        "rows_total": total,
    }
