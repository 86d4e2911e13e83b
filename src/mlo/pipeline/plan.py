"""From stages to tasks: matrix fan-out, resolved parameters, and the cache key of each task.

A task is one notebook execution: a stage with one set of parameters (``train[C=0.1]``). Its cache key hashes
what decides its result: the notebook's code (cell types, sources and tags — not outputs, execution counts or
metadata), the resolved parameters, the kernel, the digests of its deps and the keys of the tasks it waits for.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput
from . import params as params_mod
from .spec import Pipeline, Stage

KEY_VERSION = 1


@dataclass
class Task:
    stage: Stage
    name: str
    params: dict[str, Any]
    upstream: list[str] = field(default_factory=list)  # task names
    kernel: str = "python3"
    source_digest: str = ""
    deps: list[str] | None = None  # the stage's, with {param} placeholders filled in
    outs: list[str] | None = None

    def __post_init__(self) -> None:
        if self.deps is None:
            self.deps = fill(self.stage.deps, self.params, self.stage.name)
        if self.outs is None:
            self.outs = fill(self.stage.outs, self.params, self.stage.name)

    @property
    def notebook(self) -> Path:
        return self.stage.notebook


def fill(paths: list[str], params: dict[str, Any], stage: str) -> list[str]:
    """Paths with ``{param}`` placeholders filled from the task's parameters (``models/depth-{max_depth}.pkl``),
    so the cells of a matrix write files of their own."""
    out = []
    for path in paths:
        try:
            out.append(path.format_map(params) if "{" in path else path)
        except (KeyError, IndexError, ValueError) as exc:
            raise InvalidInput(
                f"stage {stage!r}: path {path!r} names {exc} which is not one of its parameters"
            ) from None
    return out


def notebook_source_digest(nb: dict[str, Any]) -> str:
    """SHA-256 of the notebook's code: what changes the result, not what running it changes."""
    cells = [
        [c.get("cell_type"), c.get("source", ""), sorted(c["metadata"].get("tags") or [])]
        for c in nb["cells"]
    ]
    return hashlib.sha256(json.dumps(cells, ensure_ascii=False).encode()).hexdigest()


def _label(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def expand(pipeline: Pipeline, names: list[str], overrides: dict[str, dict[str, Any]]) -> list[Task]:
    """Tasks of the stages ``names`` (in run order), with ``overrides[stage]`` applied and checked."""
    for stage_name in overrides:
        if stage_name not in pipeline.stages:
            raise InvalidInput(f"-p {stage_name}.…: no stage {stage_name!r} in {pipeline.path.name}")
    tasks: list[Task] = []
    by_stage: dict[str, list[str]] = {}
    for name in names:
        stage = pipeline.stages[name]
        nb = params_mod.read_notebook(stage.notebook)
        declared = params_mod.defaults(nb)
        where = f"stage {name!r} ({stage.notebook.name})"
        if declared == {} and (stage.params or stage.matrix or overrides.get(name)):
            raise InvalidInput(
                f"{where} gets parameters but has no cell tagged 'parameters'; tag the cell that sets the defaults"
            )
        fixed = params_mod.check({**stage.params, **overrides.get(name, {})}, declared, where)
        axes = {k: v for k, v in stage.matrix.items() if k not in overrides.get(name, {})}
        for key, values in axes.items():
            for v in values:
                params_mod.check({key: v}, declared, f"{where} matrix")
        kernel = stage.kernel or nb["metadata"].get("kernelspec", {}).get("name") or "python3"
        digest = notebook_source_digest(nb)
        ups = [t for u in pipeline.upstream(name) if u in by_stage for t in by_stage[u]]
        combos = list(itertools.product(*axes.values())) if axes else [()]
        by_stage[name] = []
        for combo in combos:
            cell = dict(zip(axes, combo, strict=True))
            label = name + ("[" + ",".join(f"{k}={_label(v)}" for k, v in cell.items()) + "]" if cell else "")
            resolved = {**fixed, **params_mod.check(cell, declared, where)}
            tasks.append(Task(stage, label, resolved, ups, kernel, digest))
            by_stage[name].append(label)
    return tasks


def cache_key(task: Task, dep_digests: dict[str, str], upstream_keys: list[str]) -> str:
    doc = {
        "v": KEY_VERSION,
        "notebook": task.source_digest,
        "params": task.params,
        "kernel": task.kernel,
        "deps": dep_digests,
        "upstream": sorted(upstream_keys),
        "outs": task.outs,
    }
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()
