"""The kernel's history as the cell recorder keeps it, in a real IPython shell: kept across %reload_ext,
recovered from before %load_ext, started again after %reset, and what each cell leaves behind."""

from __future__ import annotations

import mlo
from mlo.jupyter.cells import history_of


def sources(shell):
    return [c.source for c in history_of(shell.ip).cells]


def test_reload_keeps_the_history_and_reset_starts_a_new_one(shell, tmp_path):
    shell.run("a = 1")
    shell.run("b = a + 1")
    shell.run("%reload_ext mlo")
    shell.run("c = b")
    assert sources(shell)[-4:] == ["a = 1", "b = a + 1", "%reload_ext mlo", "c = b"]
    shell.run("%reset -f")
    shell.run("d = 4")
    assert sources(shell) == ["d = 4"]
    # unloaded, reset, loaded again: the cells before the reset are not recovered either
    shell.ip.run_cell("%unload_ext mlo")
    shell.ip.reset(new_session=False)
    shell.run("e = 5")
    shell.run("%load_ext mlo")
    shell.run("f = e")
    assert sources(shell) == ["e = 5", "%load_ext mlo", "f = e"]
    assert history_of(shell.ip).cells[0].recovered and history_of(shell.ip).cells[0].success is None


def test_a_cell_keeps_its_files_randomness_fingerprints_and_failure(shell, tmp_path):
    (tmp_path / "data.csv").write_text("x\n1\n2\n")
    shell.run("import numpy as np, pandas as pd")
    shell.run("df = pd.read_csv('data.csv')")
    shell.run("noise = np.random.rand(3)")
    shell.run("df.to_csv('out.csv')")
    shell.fails("half = 1\nraise ValueError('later')")
    h = history_of(shell.ip)
    read, rng, wrote, failed = h.cells[-4:]
    assert list(read.reads) == [str(tmp_path / "data.csv")] and read.reads[str(tmp_path / "data.csv")].digest
    assert read.fingerprints["df"]["size"] == [2, 1] and not read.rng
    assert rng.rng and rng.fingerprints["noise"]["dtype"] == "float64"
    assert wrote.writes == [str(tmp_path / "out.csv")]
    assert failed.success is False and failed.error == "ValueError: later"
    assert shell.run("half") == 1  # what it bound before failing is there, and the history says so


def test_register_after_the_run_cell_links_the_run(shell):
    shell.run(
        "from sklearn.linear_model import LogisticRegression\nX = [[0.0], [1.0], [2.0], [3.0]]\ny = [0, 0, 1, 1]"
    )
    shell.run("%%mlo run fit\nmodel = LogisticRegression().fit(X, y)\n%mlo metric acc=1.0")
    shell.run("%mlo register model --name m")
    run_id = mlo.runs(where="name = 'fit'").run_id[0]
    assert mlo.get_model_version("m/1").run_id == run_id
    shell.run("model = LogisticRegression().fit(X, y)")  # refit outside any run: no run made it
    shell.run("import mlo\nmv = mlo.register_model(model, 'm')")
    assert shell.run("mv.run_id") is None
