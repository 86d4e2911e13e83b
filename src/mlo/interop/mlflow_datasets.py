"""MLflow dataset inputs (``mlflow.log_input``) into mlo lineage, as part of ``mlo import mlflow``.

MLflow records a dataset as metadata — a name, a digest, a source, a schema, a profile — not its rows. So:

* when the source is a file this machine can read (a ``local`` source, or a ``file://`` URI, ending in ``.csv``,
  ``.parquet`` or ``.json``/``.jsonl``), the rows are read and kept as an mlo **snapshot** named after the
  dataset, with a lineage edge snapshot → run (``input``), as if the run had read the snapshot;
* otherwise it becomes a **reference**: a lineage node ``dataset:mlflow/<name>@<digest>`` → run (``input``), and
  the run's tag ``mlo.dataset.<name>`` keeps what MLflow knew (digest, source type and source, schema, profile,
  context), so the lineage says what the run read, and where it was, even without the rows.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

_READERS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".json": "json", ".jsonl": "json"}


def _local_path(source_type: str, source: str) -> Path | None:
    try:
        doc = json.loads(source)
    except ValueError:
        return None
    uri = doc.get("uri") or doc.get("path") or doc.get("url") if isinstance(doc, dict) else None
    if not isinstance(uri, str):
        return None
    if uri.startswith("file://"):
        path = Path(unquote(urlparse(uri).path))
    elif source_type == "local" or "://" not in uri:
        path = Path(uri)
    else:
        return None
    return path if path.suffix.lower() in _READERS and path.is_file() else None


def _read(path: Path):
    import pandas as pd

    kind = _READERS[path.suffix.lower()]
    if kind == "csv":
        return pd.read_csv(path)
    if kind == "parquet":
        return pd.read_parquet(path)
    return pd.read_json(path, lines=path.suffix.lower() == ".jsonl")


def import_inputs(ws, run, mlo_run_id: str) -> dict[str, int]:
    """Record the dataset inputs of one MLflow run against the mlo run; counts of snapshots and references."""
    from ..data.snapshots import snapshot
    from ..tracking.session import get_run

    counts = {"snapshots": 0, "references": 0}
    inputs = getattr(getattr(run, "inputs", None), "dataset_inputs", None) or []
    edges, tags = [], {}
    for di in inputs:
        ds = di.dataset
        context = next((t.value for t in di.tags or [] if t.key == "mlflow.data.context"), None)
        path = _local_path(ds.source_type or "", ds.source or "")
        if path is not None:
            try:  # the snapshot links itself to the run as its input
                snapshot(_read(path), _name(ds.name), run=get_run(mlo_run_id))
            except Exception:  # unreadable after all: keep the reference
                pass
            else:
                counts["snapshots"] += 1
                continue
        edges.append((f"dataset:mlflow/{ds.name}@{ds.digest}", f"run:{mlo_run_id}", "input"))
        tags[f"mlo.dataset.{ds.name}"] = json.dumps(
            {
                "digest": ds.digest,
                "source_type": ds.source_type,
                "source": _maybe_json(ds.source),
                "schema": _maybe_json(ds.schema),
                "profile": _maybe_json(ds.profile),
                "context": context,
            },
            ensure_ascii=False,
        )
        counts["references"] += 1
    if edges:
        ws.lineage.link(edges)
    if tags:
        ws.runs.set_tags(mlo_run_id, tags)
    return counts


def _name(name: str) -> str:
    """A snapshot name (letters, digits, ``_ - .``) from an MLflow dataset's name."""
    return re.sub(r"[^\w.-]+", "-", name or "dataset").strip("-") or "dataset"


def _maybe_json(text: Any) -> Any:
    if not isinstance(text, str):
        return text
    try:
        return json.loads(text)
    except ValueError:
        return text
