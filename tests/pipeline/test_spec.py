"""pipeline.yaml and parameters are checked before any kernel starts."""

import textwrap

import pytest

import mlo
from mlo.pipeline import load, run
from mlo.pipeline.params import defaults, read_notebook
from mlo.pipeline.plan import expand, notebook_source_digest


def yaml(tmp_path, text):
    p = tmp_path / "pipeline.yaml"
    p.write_text(textwrap.dedent(text))
    return p


def test_order_follows_needs_and_deps(project):
    p = load(project / "pipeline.yaml")
    assert p.order() == ["prepare", "train", "validate"]
    assert p.upstream("train") == ["prepare"]  # through the dep on prepare's out
    assert p.select(["train"]) == ["prepare", "train"]
    tasks = expand(p, p.order(), {})
    assert [t.name for t in tasks] == ["prepare", "train[C=0.5]", "train[C=2.0]", "validate"]
    assert tasks[1].params == {"C": 0.5} and tasks[3].upstream == ["train[C=0.5]", "train[C=2.0]"]
    # an override collapses its matrix axis
    tasks = expand(p, p.order(), {"train": {"C": 3}})
    assert [t.name for t in tasks][1:3] == ["train", "validate"] and tasks[1].params == {"C": 3.0}


@pytest.mark.parametrize(
    "text, error",
    [
        ("stages: {a: {notebok: nb/prepare.ipynb}}", "unknown key 'notebok' — did you mean 'notebook'?"),
        ("stages: {a: {notebook: nb/none.ipynb}}", "notebook nb/none.ipynb does not exist"),
        ("stages: {a: {notebook: nb/prepare.ipynb, needs: [b]}}", "needs 'b', which is not a stage"),
        (
            "stages: {a: {notebook: nb/prepare.ipynb, needs: [b]}, b: {notebook: nb/train.ipynb, needs: [a]}}",
            "cycle: a → b → a",
        ),
        ("stages: {a: {notebook: nb/prepare.ipynb, matrix: {rows: []}}}", "non-empty list"),
        ("stages: {a: {notebook: nb/prepare.ipynb, retries: -1}}", "retries"),
        (
            "stages: {a: {notebook: nb/prepare.ipynb, outs: [x]}, b: {notebook: nb/train.ipynb, outs: [x]}}",
            "x is an out of both 'a' and 'b'",
        ),
        ("stages: {'a b': {notebook: nb/prepare.ipynb}}", "stage names"),
        ("stages: [1, 2]", "needs a 'stages:' mapping"),
        ("stages: {a: {notebook: nb/prepare.ipynb}\n", "not valid YAML"),
        ("stage: {}", "needs a 'stages:' mapping"),
        ("stages: {a: {notebook: nb/prepare.ipynb, outs: [../outside.csv]}}", "leaves the project folder"),
        ("stages: {a: {notebook: nb/prepare.ipynb, outs: [data/../../x]}}", "leaves the project folder"),
        ("stages: {a: {notebook: nb/prepare.ipynb, outs: [/etc/cron.d/x]}}", "must be a path relative"),
        ("stages: {a: {notebook: nb/prepare.ipynb, outs: ['~/.bashrc']}}", "must be a path relative"),
        ("stages: {a: {notebook: nb/prepare.ipynb, outs: [data/..]}}", "names the project folder itself"),
        ('stages: {a: {notebook: nb/prepare.ipynb, outs: ["x\\ny"]}}', "control character"),
        ('stages: {"a\\n": {notebook: nb/prepare.ipynb}}', "stage names"),
    ],
)
def test_bad_pipeline_files_are_refused_with_what_to_fix(project, text, error):
    with pytest.raises(mlo.MloError) as exc:
        load(yaml(project, text))
    assert error in str(exc.value)


def test_parameters_are_checked_against_the_notebook_defaults(project):
    with pytest.raises(mlo.InvalidInput, match="no parameter 'c'; its parameters: C"):
        run(project / "pipeline.yaml", params=["train.c=1"], log=None)
    with pytest.raises(mlo.InvalidInput, match="'C' expects float like its default 1.0, got str 'high'"):
        run(project / "pipeline.yaml", params=["train.C=high"], log=None)
    with pytest.raises(mlo.InvalidInput, match="no stage 'trian'"):
        run(project / "pipeline.yaml", params={"trian.C": 1.0}, log=None)
    with pytest.raises(mlo.InvalidInput, match="write stage.param=value"):
        run(project / "pipeline.yaml", params=["C"], log=None)
    with pytest.raises(mlo.InvalidInput, match="no stage 'nope'"):
        run(project / "pipeline.yaml", stages=["nope"], log=None)
    assert mlo.runs().empty  # nothing started


def test_defaults_follow_literal_eval_and_the_digest_ignores_outputs(project):
    nb = read_notebook(project / "nb" / "train.ipynb")
    assert defaults(nb) == {"C": 1.0}
    before = notebook_source_digest(nb)
    nb["cells"][1]["outputs"] = [{"output_type": "stream", "name": "stdout", "text": "hi"}]
    nb["cells"][1]["execution_count"] = 7
    nb["cells"][1]["metadata"]["collapsed"] = True
    assert notebook_source_digest(nb) == before
    nb["cells"][1]["source"] += " "
    assert notebook_source_digest(nb) != before


def test_dry_run_lists_what_would_run(project, capsys):
    result = run(project / "pipeline.yaml", dry_run=True)
    assert [t.message for t in result.tasks] == ["to run"] * 4
    assert "▶ prepare" in capsys.readouterr().out
    assert mlo.runs().empty
