"""Notebook histories as people make them, each with the verdict ``mlo reproduce`` must give.

Every history is driven cell by cell through a real kernel (:class:`KernelSession`): cells run out of order,
edited and run again, failing, with data files changed or deleted between cells, local modules edited, the
extension reloaded. ``tests/pipeline/test_reproduce_histories.py`` runs them all as tests and
``benchmarks/reproduce.py`` counts how many verdicts come out right.
"""

from __future__ import annotations

import textwrap
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kernel_session import KernelSession

CSV = "x\n" + "".join(f"{i}\n" for i in range(1, 21))
CSV_CHANGED = "x\n" + "".join(f"{i * 10}\n" for i in range(1, 21))


@dataclass
class Step:
    kind: str  # cell | fail | write | delete | call
    text: str = ""
    cell_id: str | None = None
    path: str = ""
    fn: Callable | None = None


def cell(source: str, cell_id: str | None = None) -> Step:
    return Step("cell", textwrap.dedent(source).strip(), cell_id)


def fail(source: str, cell_id: str | None = None) -> Step:
    """A cell that raises (the history keeps it, with its error)."""
    return Step("fail", textwrap.dedent(source).strip(), cell_id)


def write(path: str, text: str) -> Step:
    return Step("write", text, path=path)


def delete(path: str) -> Step:
    return Step("delete", path=path)


@dataclass
class Scenario:
    name: str
    hazard: str  # what it exercises
    steps: list[Step]
    run: str  # the run to reproduce: a name, "name#2" for the second run of that name, "child:NAME"
    status: str  # the expected verdict
    causes: set[str] = field(default_factory=set)  # cause kinds the verdict must give
    files: dict[str, str] = field(default_factory=lambda: {"raw.csv": CSV})
    folder: str = "."  # where the notebook's kernel runs, inside the project
    kwargs: dict[str, Any] = field(default_factory=dict)  # passed to reproduce()


@dataclass
class Outcome:
    scenario: Scenario
    status: str
    causes: set[str]
    summary: str
    seconds: float
    overhead: float
    replayed: int
    history: int
    warnings: list[str]

    @property
    def right(self) -> bool:
        return self.status == self.scenario.status and self.scenario.causes <= self.causes


def play(scenario: Scenario, root: Path) -> Outcome:
    """Drive the scenario's history through a kernel in ``root`` (the workspace is MLO_HOME), reproduce its
    run, and return the verdict."""
    import mlo
    from mlo.pipeline.reproduce import reproduce

    for rel, text in scenario.files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    cwd = root / scenario.folder
    cwd.mkdir(parents=True, exist_ok=True)
    warnings: list[str] = []
    with KernelSession(cwd) as k:
        for step in scenario.steps:
            if step.kind == "cell":
                warnings += k.ok(step.text, cell_id=step.cell_id).warnings
            elif step.kind == "fail":
                r = k.run(step.text, cell_id=step.cell_id)
                assert r.status == "error", f"expected the cell to fail:\n{step.text}"
            elif step.kind == "write":
                (cwd / step.path).parent.mkdir(parents=True, exist_ok=True)
                (cwd / step.path).write_text(step.text)
            elif step.kind == "delete":
                (cwd / step.path).unlink()
            elif step.kind == "call":
                step.fn(k, cwd)
    run_id = find_run(scenario.run)
    t0 = time.perf_counter()
    rep = reproduce(run_id, **scenario.kwargs)
    seconds = time.perf_counter() - t0
    assert mlo.get_run(run_id).status in ("finished", "failed", "killed", "running")
    return Outcome(
        scenario,
        rep.status,
        {c.kind for c in rep.causes},
        rep.explain(),
        seconds,
        rep.seconds.get("overhead", 0.0),
        rep.cells.get("replayed", 0),
        rep.cells.get("history", 0),
        warnings,
    )


def find_run(selector: str) -> str:
    import mlo

    df = mlo.runs().sort_values("start_time")
    df = df[df["tags.mlo.reproduces"].isna()] if "tags.mlo.reproduces" in df else df
    if selector.startswith("child:"):
        df = df[df.parent_id.notna()]
        selector = selector[len("child:") :]
    name, _, nth = selector.partition("#")
    rows = df[df.name == name] if name != "*" else df
    assert len(rows), f"no run named {name!r}: {df.name.tolist()}"
    return rows.run_id.iloc[int(nth) - 1 if nth else -1]


def call(fn: Callable) -> Step:
    """Anything else a person does: ``fn(kernel_session, folder)``."""
    return Step("call", fn=fn)


def _run_with_parameters(k, folder: Path) -> None:
    """``mlo run`` of a notebook with papermill parameters; it logs a param of its own too."""
    from notebooks_on_disk import write_notebook

    from mlo.pipeline import run_notebook

    nb = write_notebook(
        folder / "score.ipynb",
        "import mlo, pandas as pd\ndf = pd.read_csv('raw.csv')",
        "mlo.log_param('rows', len(df))\nmlo.log_param('threshold', 99)\n"
        "mlo.log_metric('above', float((df.x * scale > 10).mean()))",
        params="scale = 1.0",
    )
    r = run_notebook(nb, {"scale": 2.0}, cwd=folder)
    assert r.status == "ok", r.message


# -- the histories ------------------------------------------------------------------------------------------------
LOAD = "import pandas as pd\n%load_ext mlo"
READ = "df = pd.read_csv('raw.csv')"
FIT = """
%%mlo run fit
scale = 2.0
m = float(df.x.mean()) * scale
%mlo metric mean=$m
"""

SCENARIOS: list[Scenario] = [
    Scenario(
        "clean", "a clean top-to-bottom history", [cell(LOAD), cell(READ), cell(FIT)], "fit", "reproduced"
    ),
    Scenario(
        "out-of-order",
        "cells run in another order than the notebook shows",
        [
            cell(LOAD, "c1"),
            cell("offset = 1.0", "c4"),
            cell(READ, "c2"),
            cell(
                "%%mlo run fit\nm = float(df.x.mean()) + offset\n%mlo metric mean=$m",
                "c5",
            ),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "re-executed-earlier-cell",
        "a cell re-run after a later one overwrote its variable",
        [
            cell(LOAD),
            cell("k = 1", "a"),
            cell("k = 2", "b"),
            cell("k = 1", "a"),
            cell(READ),
            cell("%%mlo run fit\nm = float(df.x.sum()) * k\n%mlo metric total=$m"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "edited-before-run",
        "a cell edited and re-run before the run",
        [
            cell(LOAD),
            cell(READ),
            cell("factor = 2", "p"),
            cell("factor = 3", "p"),
            cell("%%mlo run fit\nm = float(df.x.mean()) * factor\n%mlo metric mean=$m"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "edited-after-run",
        "a cell the run used, edited and re-run after it",
        [
            cell(LOAD),
            cell(READ),
            cell("factor = 2", "p"),
            cell("%%mlo run fit\nm = float(df.x.mean()) * factor\n%mlo metric mean=$m"),
            cell("factor = 5", "p"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "failed-cell-partial-effects",
        "a cell that failed after binding what the run uses",
        [
            cell(LOAD),
            cell(READ),
            fail("bonus = 10\nraise RuntimeError('flaky service')"),
            cell("%%mlo run fit\nm = float(df.x.mean()) + bonus\n%mlo metric mean=$m"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "failed-run",
        "a run that failed: it reproduces when it fails the same way",
        [
            cell(LOAD),
            cell(READ),
            fail("%%mlo run fit\nm = float(df.x.mean())\n%mlo metric mean=$m\nraise ValueError('diverged')"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "failed-run-then-fixed",
        "a failed run followed by a fixed one of the same name: the failed one is compared with its own replay",
        [
            cell(LOAD),
            cell(READ),
            fail("%%mlo run fit\nm = float(df.x.mean())\n%mlo metric mean=$m\nraise ValueError('diverged')"),
            cell("%%mlo run fit\nm = float(df.x.mean())\n%mlo metric mean=$m"),
        ],
        "fit#1",
        "reproduced",
    ),
    Scenario(
        "failed-run-fails-differently",
        "a failed run whose replay gets further: not the same failure",
        [
            cell(LOAD),
            cell(READ),
            cell("limit = 5"),
            fail(
                "%%mlo run fit\nm = float(df.x.mean())\n%mlo metric mean=$m\n"
                "if m > limit:\n    raise ValueError('too big')"
            ),
            cell("limit = 100"),
            cell("%%mlo run other\n%mlo metric v=1"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "data-changed-not-snapshotted",
        "the data file changed since the run and nothing kept it",
        [cell(LOAD), cell(READ), cell(FIT), write("raw.csv", CSV_CHANGED)],
        "fit",
        "different",
        {"input"},
    ),
    Scenario(
        "data-changed-frame-snapshotted",
        "the data file changed, but the frame read from it was snapshotted before the run",
        [
            cell(LOAD),
            cell(READ),
            cell("import mlo\nmlo.snapshot(df, 'raw')"),
            cell(FIT),
            write("raw.csv", CSV_CHANGED),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "data-deleted-frame-snapshotted-later",
        "the data file is gone; the frame was cleaned in a later cell and snapshotted inside the run",
        [
            cell(LOAD),
            cell(READ),
            cell("df = df[df.x > 2]"),
            cell(
                "%%mlo run fit\nimport mlo\nmlo.snapshot(df, 'clean')\nm = float(df.x.mean())\n"
                "%mlo metric mean=$m"
            ),
            delete("raw.csv"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "data-deleted-not-snapshotted",
        "the data file is gone and nothing kept it",
        [cell(LOAD), cell(READ), cell(FIT), delete("raw.csv")],
        "fit",
        "failed",
        {"missing-input"},
    ),
    Scenario(
        "file-snapshot-then-changed",
        "the file itself was snapshotted, then changed",
        [
            cell(LOAD),
            cell("%mlo snapshot raw.csv --name raw"),
            cell(READ),
            cell(FIT),
            write("raw.csv", CSV_CHANGED),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "data-beside-notebook-folder",
        "data read from ../data, outside the notebook's folder",
        [
            cell(LOAD),
            cell("df = pd.read_csv('../data/raw.csv')"),
            cell(FIT),
        ],
        "fit",
        "reproduced",
        files={"data/raw.csv": CSV},
        folder="notebooks",
    ),
    Scenario(
        "local-module-edited-after",
        "a local module imported by the run, edited on disk afterwards",
        [
            write("features.py", "def double(x):\n    return x * 2\n"),
            cell(LOAD),
            cell(READ),
            cell("from features import double"),
            cell("%%mlo run fit\nm = float(double(df.x).mean())\n%mlo metric mean=$m"),
            write("features.py", "def double(x):\n    return x * 3\n"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "local-module-on-sys-path",
        "a module from ../src put on sys.path by the notebook",
        [
            write("../src/feats.py", "def triple(x):\n    return x * 3\n"),
            cell(LOAD),
            cell("import sys\nsys.path.insert(0, '../src')"),
            cell("import feats"),
            cell("df = pd.read_csv('../raw.csv')"),
            cell("%%mlo run fit\nm = float(feats.triple(df.x).mean())\n%mlo metric mean=$m"),
        ],
        "fit",
        "reproduced",
        folder="nb",
    ),
    Scenario(
        "reload-extension",
        "%reload_ext mlo between the data and the run",
        [cell(LOAD), cell(READ), cell("%reload_ext mlo"), cell(FIT)],
        "fit",
        "reproduced",
    ),
    Scenario(
        "cells-before-load-ext",
        "data loaded before %load_ext mlo",
        [cell("import pandas as pd"), cell(READ), cell("bias = 0.5"), cell("%load_ext mlo"), cell(FIT)],
        "fit",
        "reproduced",
    ),
    Scenario(
        "nested-sweep",
        "a sweep of child runs in one cell: every child compared",
        [
            cell(LOAD),
            cell(READ),
            cell(
                """
                %%mlo run sweep
                import mlo
                for s in [1.0, 2.0, 3.0]:
                    with mlo.start_run(nested=True):
                        mlo.log_params({"scale": s})
                        mlo.log_metric("mean", float(df.x.mean()) * s)
                mlo.log_metric("best", float(df.x.mean()) * 3.0)
                """
            ),
        ],
        "sweep",
        "reproduced",
    ),
    Scenario(
        "child-of-sweep",
        "one child of a sweep, reproduced on its own",
        [
            cell(LOAD),
            cell(READ),
            cell(
                """
                %%mlo run sweep
                import mlo
                for s in [1.0, 2.0]:
                    with mlo.start_run(f"s={s}", nested=True):
                        mlo.log_metric("mean", float(df.x.mean()) * s)
                """
            ),
        ],
        "child:s=2.0",
        "reproduced",
    ),
    Scenario(
        "unnamed-interactive-run",
        "%mlo start with no name, cells, %mlo end",
        [
            cell(LOAD),
            cell(READ),
            cell("%mlo start"),
            cell("m = float(df.x.median())"),
            cell("%mlo metric median=$m"),
            cell("%mlo end"),
        ],
        "*",
        "reproduced",
    ),
    Scenario(
        "interactive-run-with-failure-inside",
        "a %mlo start run with a failed cell inside it",
        [
            cell(LOAD),
            cell(READ),
            cell("%mlo start explore"),
            fail("df.no_such_column"),
            cell("m = float(df.x.max())\n%mlo metric max=$m"),
            cell("%mlo end"),
        ],
        "explore",
        "reproduced",
    ),
    Scenario(
        "unseeded-randomness",
        "numpy's global generator used without a seed",
        [
            cell(LOAD),
            cell("import numpy as np"),
            cell("%%mlo run noisy\nv = float(np.random.rand(100).mean())\n%mlo metric v=$v"),
        ],
        "noisy",
        "different",
        {"unseeded"},
    ),
    Scenario(
        "seeded-with-draws-between",
        "a seed, then a draw in an unrelated cell, then the run: the draw is replayed too",
        [
            cell(LOAD),
            cell("import numpy as np\nnp.random.seed(7)"),
            cell("noise = np.random.rand(5)"),
            cell("%%mlo run noisy\nv = float(np.random.rand(100).mean())\n%mlo metric v=$v"),
        ],
        "noisy",
        "reproduced",
    ),
    Scenario(
        "unseeded-forest-twice",
        "a random forest without random_state, replayed twice",
        [
            cell(LOAD),
            cell(
                "import numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n"
                "X = np.random.RandomState(0).rand(200, 4)\ny = (X[:, 0] + X[:, 1] > 1).astype(int)"
            ),
            cell(
                "%%mlo run forest\nclf = RandomForestClassifier(n_estimators=5, max_depth=2).fit(X[:100], y[:100])\n"
                "acc = float(clf.predict_proba(X[100:])[:, 1].mean())\n%mlo metric p=$acc"
            ),
        ],
        "forest",
        "different",
        {"nondeterministic", "unseeded"},
        kwargs={"runs": 2},
    ),
    Scenario(
        "time-dependent",
        "a metric that depends on the clock",
        [cell(LOAD), cell("import time"), cell("%%mlo run clock\nt = time.time() % 1000\n%mlo metric t=$t")],
        "clock",
        "different",
        {"diverged"},
    ),
    Scenario(
        "slow-unrelated-cell",
        "a slow cell the run does not depend on is not replayed",
        [
            cell(LOAD),
            cell(READ),
            cell("import time\ntime.sleep(3)\nplot_done = True"),
            cell(FIT),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "in-place-mutation",
        "a column added in place in a separate cell",
        [
            cell(LOAD),
            cell(READ),
            cell("df['y'] = df.x * 2"),
            cell("df.head()"),
            cell("%%mlo run fit\nm = float(df.y.mean())\n%mlo metric mean=$m"),
        ],
        "fit",
        "reproduced",
    ),
    Scenario(
        "no-metrics",
        "a run that logged nothing to compare",
        [cell(LOAD), cell(READ), cell("%%mlo run look\nsummary = df.describe()")],
        "look",
        "nothing",
    ),
    Scenario(
        "other-data-version",
        "asked to run on another snapshot version: the metric differs, and the input says why",
        [
            cell(LOAD),
            cell("%mlo snapshot raw.csv --name raw"),
            cell(READ),
            cell(FIT),
            write("raw.csv", CSV_CHANGED),
            cell("%mlo snapshot raw.csv --name raw"),
        ],
        "fit",
        "different",
        {"input"},
        kwargs={"data": {"raw": "raw@2"}},
    ),
    Scenario(
        "registers-and-promotes",
        "a run that registers a model and moves an alias: the replay changes neither",
        [
            cell(LOAD),
            cell(
                "import numpy as np, mlo\nfrom sklearn.linear_model import LogisticRegression\n"
                "X = np.arange(40.0).reshape(-1, 2)\ny = (X[:, 0] > 20).astype(int)"
            ),
            cell(
                "%%mlo run train\nmodel = LogisticRegression().fit(X, y)\nacc = float(model.score(X, y))\n"
                "%mlo metric acc=$acc\nmv = mlo.register_model(model, 'clf')\nmlo.set_alias('clf', 'staging', mv.version)"
            ),
        ],
        "train",
        "reproduced",
    ),
    Scenario(
        "papermill-parameters",
        "a notebook run with papermill parameters that logs params of its own: only the declared ones go in",
        [call(_run_with_parameters)],
        "score",
        "reproduced",
    ),
    Scenario(
        "opaque-exec",
        "a variable made through exec(): everything before is replayed",
        [
            cell(LOAD),
            cell(READ),
            cell("exec('hidden = 4')"),
            cell("%%mlo run fit\nm = float(df.x.mean()) * hidden\n%mlo metric mean=$m"),
        ],
        "fit",
        "reproduced",
    ),
]
