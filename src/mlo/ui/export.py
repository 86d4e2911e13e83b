"""``mlo ui --export DIR``: a static site of an experiment (or the whole workspace) that opens from ``file://`` and
works as a CI artifact with no server and no network: the ``mlo ui`` app, and every API answer its pages ask for,
rendered by :func:`mlo.ui.api.answer` into ``data/<hash>.js`` scripts (a ``file://`` page may load scripts
beside it, not fetch them).

The compare page's charts across the runs are written for the first ``MAX_COMPARE`` metrics: each one's
parallel coordinates and importance, and its scatter against each of the first ``MAX_COMPARE`` params.

What is left out, and said so on the page: filters (a ``where`` needs the store), and so brushing's count and
histories grouped by a param; the two-run diff for experiments of more than ``MAX_DIFF_RUNS`` runs (every pair is
written), artifacts larger than ``MAX_ARTIFACT`` and runs beyond ``MAX_RUNS``.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from itertools import combinations
from pathlib import Path
from typing import Any

from .. import workspace
from ..errors import InvalidInput, MloError, NotFound
from .api import Answer, answer
from .server import built, static_dir

MAX_RUNS = 2000
MAX_DIFF_RUNS = 12  # every pair of these is diffed ahead of time: 66 diffs
MAX_ARTIFACT = 1 << 20  # artifacts previewed inside the export (text, tables, images, HTML)
MAX_COMPARE = 8  # metrics (and params) whose compare charts are written
COMPARE_KEYS = ("experiment", "view", "metric", "param", "group", "log_x")


def compare_key(query: dict[str, list[str]]) -> str:
    """The key a ``compare`` answer is stored under (what the app's ``requestKey`` computes)."""
    parts = [f"{k}={query[k][-1]}" for k in COMPARE_KEYS if query.get(k) and query[k][-1]]
    return "compare?" + "&".join(parts)


def key_hash(key: str) -> str:
    """FNV-1a (32 bits) of the key as 8 hex digits: the data file's name (the app computes the same)."""
    value = 0x811C9DC5
    for byte in key.encode("utf-8"):
        value = ((value ^ byte) * 0x01000193) & 0xFFFFFFFF
    return f"{value:08x}"


def _script(key: str, reply: Answer) -> str:
    # JSON inside a script: "</" must not close the script tag early
    args = [
        key,
        reply.status,
        reply.headers.get("Content-Type", "application/json"),
        reply.body.decode("utf-8", "replace"),
    ]
    return "mloData(" + ", ".join(json.dumps(a).replace("</", "<\\/") for a in args) + ");\n"


def _requests(home: Path, experiment: str | None) -> Iterator[tuple[str, str, dict[str, list[str]]]]:
    """(key, API path, query) of every answer the export holds."""
    from ..tracking.session import get_run

    everything = {"limit": [str(MAX_RUNS)]}
    yield "experiments", "experiments", {}
    runs_query = {**everything, **({"experiment": [experiment]} if experiment else {})}
    yield "runs", "runs", runs_query
    yield "models", "models", {}
    yield "reports", "reports", {"limit": ["1000"]}
    yield "traces", "traces", {"limit": ["1000"]}
    with workspace.using(home):
        reply = answer(home, "runs", {**runs_query, "columns": ["run_id"]})
        ids = [r["run_id"] for r in reply.data["runs"]]
        for run_id in ids:
            yield f"runs/{run_id}", f"runs/{run_id}", {}
            yield f"runs/{run_id}/metrics", f"runs/{run_id}/metrics", {}
            for artifact in get_run(run_id).artifacts:
                if (artifact.size or 0) <= MAX_ARTIFACT:
                    path = f"runs/{run_id}/artifacts/{artifact.path}"
                    yield path, path, {}
                    if artifact.path.lower().endswith((".csv", ".tsv", ".parquet")):
                        yield f"{path}?preview=table", path, {"preview": ["table"]}
        yield from _compare_requests(home, experiment)
        if len(ids) <= MAX_DIFF_RUNS:
            for a, b in combinations(ids, 2):
                for x, y in ((a, b), (b, a)):
                    yield f"diff/{x}/{y}", "diff", {"a": [x], "b": [y]}
        for row in answer(home, "models", {}).data["versions"]:
            path = f"models/{row['name']}/{row['version']}/card"
            yield path, path, {}
        for row in answer(home, "reports", {"limit": ["1000"]}).data["reports"]:
            yield f"reports/{row['id']}", f"reports/{row['id']}", {}
        for row in answer(home, "traces", {"limit": ["1000"]}).data["traces"]:
            yield f"traces/{row['trace_id']}", f"traces/{row['trace_id']}", {}


def _compare_requests(home: Path, experiment: str | None) -> Iterator[tuple[str, str, dict[str, list[str]]]]:
    """The compare page's charts across the runs: asked for with no experiment (the runs page's "all") and, for
    an experiment's export, with it named."""
    scopes = [{}, *([{"experiment": [experiment]}] if experiment else [])]
    base = {"experiment": [experiment]} if experiment else {}
    choices = answer(home, "compare", {**base, "view": ["choices"]})
    if choices.status != 200:
        return
    metrics, params = choices.data["metrics"][:MAX_COMPARE], choices.data["params"][:MAX_COMPARE]
    queries: list[dict[str, list[str]]] = [{"view": ["choices"]}]
    for metric in metrics:
        for view in ("scatter", "parallel", "importance"):
            queries.append({"view": [view], "metric": [metric]})
        queries += [{"view": ["scatter"], "metric": [metric], "param": [p]} for p in params]
    for query in queries:
        for scope in scopes:
            asked = {**scope, **query}
            yield compare_key(asked), "compare", {**base, **query}


def export_site(dest: str | Path, experiment: str | None = None, home: Path | None = None) -> dict[str, Any]:
    """Write the static site of ``experiment`` (None: every experiment) to ``dest``; return what was written."""
    home = home or workspace.find_home()
    if home is None or not home.is_dir():
        raise NotFound("no mlo workspace here: run `mlo init` (or set MLO_HOME)")
    if not built():
        raise MloError("the mlo ui app is not built in this install: run `make labextension`")
    out = Path(dest)
    if out.exists() and not out.is_dir():
        raise InvalidInput(f"{out} is a file: --export takes a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise InvalidInput(f"{out} is a folder with other files in it: export into an empty or new folder")
    if experiment is not None:
        names = [e["name"] for e in answer(home, "experiments", {}).data]
        if experiment not in names:
            raise NotFound(f"no experiment {experiment!r}; experiments: {', '.join(names) or 'none yet'}")
    staging = out.with_name(out.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    (staging / "static").mkdir(parents=True)
    (staging / "data").mkdir()
    for name in ("app.js", "app.css"):
        shutil.copyfile(static_dir() / name, staging / "static" / name)
    page = (static_dir() / "index.html").read_text(encoding="utf-8")
    (staging / "index.html").write_text(
        page.replace('<html lang="en">', '<html lang="en" data-mlo-static>'), "utf-8"
    )
    written, runs = 0, 0
    for key, path, query in _requests(home, experiment):
        reply = answer(home, path, query)
        if reply.status != 200:
            continue  # e.g. a report kind with no page: the app says "not in this export"
        if key == "runs":
            runs = reply.data["total"]
            if not reply.data.get("total_exact", True):  # the page counted up to its cap: the export says all
                exact = {**query, "total": ["exact"], "limit": ["1"], "columns": ["run_id"]}
                runs = answer(home, path, exact).data["total"]
        if "/artifacts/" in key and not query:
            # the bytes as a file where the page's <img>/<iframe> looks (inside the export, whatever the path)
            target = (staging / "mlo" / "api" / path).resolve()
            if not target.is_relative_to(staging.resolve()):
                continue
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(reply.body)
            try:
                reply.body.decode("utf-8")
            except UnicodeDecodeError:
                continue  # an image or other bytes: the file above is what the page shows
        (staging / "data" / f"{key_hash(key)}.js").write_text(_script(key, reply), encoding="utf-8")
        written += 1
    # the whole site appears at once: an interrupted export leaves only the .partial folder
    if out.exists():
        shutil.rmtree(out)
    staging.rename(out)
    return {
        "path": str(out.resolve()),
        "index": str((out / "index.html").resolve()),
        "runs": runs,
        "answers": written,
    }
