import json

import pytest
import yaml

import mlo
from mlo.errors import InvalidInput


def test_log_artifact_file_and_folder(ws, tmp_path):
    f = tmp_path / "report.txt"
    f.write_text("hello")
    d = tmp_path / "plots"
    (d / "sub").mkdir(parents=True)
    (d / "a.csv").write_text("x\n1\n")
    (d / "sub" / "b.csv").write_text("x\n2\n")
    with mlo.start_run() as run:
        assert mlo.log_artifact(f) == ["report.txt"]
        assert mlo.log_artifact(f, "docs") == ["docs/report.txt"]
        assert mlo.log_artifact(d) == ["plots/a.csv", "plots/sub/b.csv"]
    paths = [a.path for a in run.artifacts]
    assert paths == ["docs/report.txt", "plots/a.csv", "plots/sub/b.csv", "report.txt"]
    art = run.artifact("report.txt")
    assert art.read_text() == "hello" and art.size == 5 and art.media_type == "text/plain"
    assert run.artifact("docs/report.txt").digest == art.digest  # stored once
    assert art.download(tmp_path / "copy.txt").read_text() == "hello"
    (tmp_path / "dl").mkdir()
    out = run.artifact("plots/sub/b.csv").download(tmp_path / "dl")
    assert out == tmp_path / "dl" / "plots" / "sub" / "b.csv" and out.read_text() == "x\n2\n"


def test_text_dict_yaml_and_figure(ws):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    ax.plot([0, 1], [0, 1])
    with mlo.start_run() as run:
        mlo.log_text("notes", "notes.md")
        mlo.log_dict({"a": 1, "b": [1, 2]}, "cfg/config.json")
        mlo.log_dict({"a": 1}, "cfg/config.yaml")
        mlo.log_figure(fig, "plots/roc.png")
        mlo.log_figure(fig, "plots/roc.svg")
    plt.close(fig)
    assert run.artifact("notes.md").read_text() == "notes"
    assert json.loads(run.artifact("cfg/config.json").read_text()) == {"a": 1, "b": [1, 2]}
    assert yaml.safe_load(run.artifact("cfg/config.yaml").read_text()) == {"a": 1}
    assert run.artifact("plots/roc.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert b"<svg" in run.artifact("plots/roc.svg").read_bytes()[:500]


@pytest.mark.parametrize("bad", ["../escape.txt", "/abs/path.txt", "a/../../b.txt", "~/x", ".", ""])
def test_artifact_paths_cannot_escape_the_run(ws, tmp_path, bad):
    with mlo.start_run() as run:
        with pytest.raises(InvalidInput, match="artifact path"):
            mlo.log_text("x", bad)
    assert run.artifacts == []


def test_artifact_errors(ws, tmp_path):
    with mlo.start_run():
        with pytest.raises(InvalidInput, match="no file or folder"):
            mlo.log_artifact(tmp_path / "missing.bin")
        with pytest.raises(InvalidInput, match="matplotlib Figure"):
            mlo.log_figure("not a figure", "x.png")
        with pytest.raises(InvalidInput, match="needs a str"):
            mlo.log_text(b"bytes", "x.txt")
