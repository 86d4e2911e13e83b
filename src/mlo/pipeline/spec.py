"""``pipeline.yaml``: stages of notebooks, their parameters, files and order — read and checked before anything runs.

```yaml
experiment: churn            # optional; runs go here (default: the pipeline file's folder name)
stages:
  prepare:  {notebook: notebooks/prepare.ipynb, outs: [data/train.parquet]}
  train:    {notebook: notebooks/train.ipynb, deps: [data/train.parquet], params: {C: 1.0},
             matrix: {C: [0.1, 1.0, 10.0]}, timeout: 600, retries: 1, kernel: python3}
  validate: {notebook: notebooks/validate.ipynb, needs: [train]}
```

A stage runs after the stages it ``needs`` and after the stages whose ``outs`` it ``deps`` on. Paths are relative
to the pipeline file's folder, which is also the working folder of every notebook.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath, PureWindowsPath
from typing import Any

import yaml

from ..errors import InvalidInput, NotFound
from ..names import control_character

STAGE_KEYS = {"notebook", "params", "deps", "outs", "needs", "matrix", "kernel", "timeout", "retries"}
TOP_KEYS = {"stages", "experiment"}
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*\Z")


@dataclass
class Stage:
    name: str
    notebook: Path
    params: dict[str, Any] = field(default_factory=dict)
    deps: list[str] = field(default_factory=list)
    outs: list[str] = field(default_factory=list)
    needs: list[str] = field(default_factory=list)
    matrix: dict[str, list[Any]] = field(default_factory=dict)
    kernel: str | None = None
    timeout: float | None = None
    retries: int = 0


@dataclass
class Pipeline:
    path: Path
    root: Path
    stages: dict[str, Stage]
    experiment: str

    def upstream(self, name: str) -> list[str]:
        """Stages that must finish before ``name``: its ``needs`` and the producers of its ``deps``."""
        stage = self.stages[name]
        producers = {out: s.name for s in self.stages.values() for out in s.outs}
        ups = list(stage.needs)
        for dep in stage.deps:
            p = producers.get(dep)
            if p is not None and p != name and p not in ups:
                ups.append(p)
        return ups

    def order(self) -> list[str]:
        """Stages in an order that respects ``upstream`` (file order among equals)."""
        done: list[str] = []
        visiting: set[str] = set()

        def visit(n: str, path: list[str]) -> None:
            if n in done:
                return
            if n in visiting:
                cycle = " → ".join(path[path.index(n) :] + [n])
                raise InvalidInput(f"pipeline stages form a cycle: {cycle}; remove one of these needs/deps")
            visiting.add(n)
            for u in self.upstream(n):
                visit(u, path + [n])
            visiting.discard(n)
            done.append(n)

        for n in self.stages:
            visit(n, [])
        return done

    def select(self, names: list[str]) -> list[str]:
        """The named stages and everything upstream of them, in run order."""
        for n in names:
            if n not in self.stages:
                raise InvalidInput(f"no stage {n!r} in {self.path.name}{_hint(n, self.stages)}")
        wanted: set[str] = set()
        todo = list(names)
        while todo:
            n = todo.pop()
            if n not in wanted:
                wanted.add(n)
                todo.extend(self.upstream(n))
        return [n for n in self.order() if n in wanted]


def _hint(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1)
    return f" — did you mean {close[0]!r}?" if close else ""


def _list_of_str(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidInput(f"{where} must be a list of paths or names, e.g. [data/train.parquet]")
    return list(value)


def _inside(out: str, where: str) -> str:
    """An out as a path relative to the project, refused when it would leave the project folder: a restored out
    is written there, so ``../../.bashrc`` or ``/etc/cron.d/x`` must never be one."""
    bad = control_character(out)
    if bad is not None:
        raise InvalidInput(f"{where}: out {out!r} holds the control character {bad!r}")
    p = PurePosixPath(out.replace("\\", "/"))
    if not out.strip() or p.is_absolute() or out.startswith("~") or PureWindowsPath(out).drive:
        raise InvalidInput(f"{where}: out {out!r} must be a path relative to the pipeline's folder")
    depth = 0
    for part in p.parts:
        depth += -1 if part == ".." else 0 if part == "." else 1
        if depth < 0:
            raise InvalidInput(f"{where}: out {out!r} leaves the project folder; outs stay inside it")
    if depth == 0:
        raise InvalidInput(
            f"{where}: out {out!r} names the project folder itself, not a file or folder in it"
        )
    return out


def load(path: str | Path = "pipeline.yaml") -> Pipeline:
    """Read and check a pipeline file."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"no pipeline file at {path}; create one (see docs/pipelines.md) or pass its path")
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise InvalidInput(f"{path.name} is not valid YAML{where}: {getattr(exc, 'problem', exc)}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), dict) or not doc["stages"]:
        raise InvalidInput(f"{path.name} needs a 'stages:' mapping of stage names to stages")
    for key in doc:
        if key not in TOP_KEYS:
            raise InvalidInput(f"{path.name}: unknown key {key!r}{_hint(key, TOP_KEYS)}")
    root = path.resolve().parent
    stages: dict[str, Stage] = {}
    for name, body in doc["stages"].items():
        name = str(name)
        where = f"{path.name}: stage {name!r}"
        if not _NAME.match(name):
            raise InvalidInput(f"{where}: stage names are letters, digits, '_', '-' and '.'")
        if not isinstance(body, dict):
            raise InvalidInput(f"{where} must be a mapping with at least 'notebook:'")
        for key in body:
            if key not in STAGE_KEYS:
                raise InvalidInput(f"{where}: unknown key {key!r}{_hint(key, STAGE_KEYS)}")
        nb = body.get("notebook")
        if not isinstance(nb, str) or not nb:
            raise InvalidInput(f"{where} needs 'notebook: path/to/notebook.ipynb'")
        if not (root / nb).is_file():
            raise NotFound(f"{where}: notebook {nb} does not exist (paths are relative to {root})")
        params = body.get("params") or {}
        matrix = body.get("matrix") or {}
        if not isinstance(params, dict):
            raise InvalidInput(f"{where}: params must be a mapping of name: value")
        if not isinstance(matrix, dict) or not all(isinstance(v, list) and v for v in matrix.values()):
            raise InvalidInput(f"{where}: matrix must map each parameter to a non-empty list of values")
        timeout = body.get("timeout")
        if timeout is not None and (not isinstance(timeout, (int, float)) or timeout <= 0):
            raise InvalidInput(f"{where}: timeout is a number of seconds > 0")
        retries = body.get("retries", 0)
        if not isinstance(retries, int) or retries < 0:
            raise InvalidInput(f"{where}: retries is a whole number >= 0")
        kernel = body.get("kernel")
        if kernel is not None and not isinstance(kernel, str):
            raise InvalidInput(f"{where}: kernel is a kernel name such as python3")
        stages[name] = Stage(
            name=name,
            notebook=(root / nb).resolve(),
            params={str(k): v for k, v in params.items()},
            deps=_list_of_str(body.get("deps"), f"{where}: deps"),
            outs=[_inside(o, where) for o in _list_of_str(body.get("outs"), f"{where}: outs")],
            needs=_list_of_str(body.get("needs"), f"{where}: needs"),
            matrix={str(k): list(v) for k, v in matrix.items()},
            kernel=kernel,
            timeout=float(timeout) if timeout is not None else None,
            retries=retries,
        )
    for stage in stages.values():
        for n in stage.needs:
            if n not in stages:
                raise InvalidInput(
                    f"{path.name}: stage {stage.name!r} needs {n!r}, which is not a stage{_hint(n, stages)}"
                )
    owners: dict[str, str] = {}
    for stage in stages.values():
        for out in stage.outs:
            if out in owners:
                raise InvalidInput(f"{path.name}: {out} is an out of both {owners[out]!r} and {stage.name!r}")
            owners[out] = stage.name
    experiment = doc.get("experiment") or root.name
    pipeline = Pipeline(path=path.resolve(), root=root, stages=stages, experiment=str(experiment))
    pipeline.order()  # refuses cycles now, before anything runs
    return pipeline
