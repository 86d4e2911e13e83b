"""Which blobs the records refer to: what ``mlo gc`` must keep and what ``mlo doctor`` checks is there.

Records name blobs in these places: run artifacts, a run's environment and ``git diff``, snapshots (and, for a
folder snapshot, every file its manifest lists), report payloads, model versions, and the pipeline stage cache
(the outs it restores and the executed notebook), LLM trace spans (what a call sent and received), and feature
views (the stored transform). A module that stores a blob digest anywhere else must add it
here, or ``mlo gc`` will take the blob for garbage.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator

from sqlalchemy import inspect, select
from sqlalchemy.engine import Connection

from . import schema as s

Referrer = str  # e.g. "artifact roc.png of run 01j…", "model churn/3"


def _rows(conn: Connection, *columns) -> Iterator[tuple]:
    """Rows of ``columns`` (of one table) whose last column, the digest, is set."""
    yield from conn.execute(select(*columns).where(columns[-1].isnot(None)))


def references(
    conn: Connection, read_blob: Callable[[str], bytes] | None = None
) -> tuple[dict[str, Referrer], list[str]]:
    """``({digest: the first record that refers to it}, problems)`` for every blob that a record refers to.

    ``read_blob(digest)`` reads a folder snapshot's manifest, whose files are referred to as well; a manifest
    that cannot be read is listed in ``problems`` (its files then stay unknown). Tables that an older schema
    lacks are skipped."""
    tables = set(inspect(conn).get_table_names())
    refs: dict[str, Referrer] = {}
    problems: list[str] = []

    def add(digest: str | None, referrer: str) -> None:
        if digest and digest not in refs:
            refs[digest] = referrer

    if "artifacts" in tables:
        for run_id, path, digest in _rows(
            conn, s.artifacts.c.run_id, s.artifacts.c.path, s.artifacts.c.digest
        ):
            add(digest, f"artifact {path} of run {run_id}")
    if "runs" in tables:
        for run_id, digest in _rows(conn, s.runs.c.id, s.runs.c.env_digest):
            add(digest, f"environment of run {run_id}")
        for run_id, digest in _rows(conn, s.runs.c.id, s.runs.c.git_diff_digest):
            add(digest, f"git diff of run {run_id}")
    if "model_versions" in tables:
        t = s.model_versions
        for name, version, digest in _rows(conn, t.c.name, t.c.version, t.c.blob):
            add(digest, f"model {name}/{version}")
    if "reports" in tables:
        for report_id, kind, digest in _rows(conn, s.reports.c.id, s.reports.c.kind, s.reports.c.payload):
            add(digest, f"{kind} report {report_id}")
    if "llm_spans" in tables:
        t = s.llm_spans
        for trace_id, name, digest in _rows(conn, t.c.trace_id, t.c.name, t.c.input_blob):
            add(digest, f"input of span {name} in trace {trace_id}")
        for trace_id, name, digest in _rows(conn, t.c.trace_id, t.c.name, t.c.output_blob):
            add(digest, f"output of span {name} in trace {trace_id}")
    if "feature_views" in tables:
        t = s.feature_views
        for name, version, digest in _rows(conn, t.c.name, t.c.version, t.c.blob):
            add(digest, f"transform of feature view {name}@{version}")
    manifests: list[tuple[str, str]] = []
    if "snapshots" in tables:
        t = s.snapshots
        for name, version, fmt, digest in _rows(conn, t.c.name, t.c.version, t.c.format, t.c.blob):
            add(digest, f"snapshot {name}@{version}")
            if fmt == "manifest":
                manifests.append((digest, f"{name}@{version}"))
    if "stage_cache" in tables:
        t = s.stage_cache
        for stage, outs, notebook in conn.execute(select(t.c.stage, t.c.outs, t.c.notebook)):
            add(notebook, f"executed notebook of stage {stage} (pipeline cache)")
            for out in json.loads(outs or "[]"):
                add(out.get("blob"), f"out {out.get('path')} of stage {stage} (pipeline cache)")
                if out.get("kind") == "folder" and out.get("blob"):
                    manifests.append((out["blob"], f"out {out.get('path')} of stage {stage}"))
    if read_blob is not None:
        seen: set[str] = set()
        for digest, label in manifests:
            if digest in seen:
                continue
            seen.add(digest)
            try:
                files = json.loads(read_blob(digest))["files"]
            except Exception as exc:  # missing or damaged: reported, and its files are unknown
                problems.append(f"the manifest of folder snapshot {label} cannot be read ({exc})")
                continue
            for rel, _size, file_digest in files:
                add(file_digest, f"file {rel} of folder snapshot {label}")
    return refs, problems
