import subprocess

import mlo


def _git(cwd, *args):
    subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True)


def test_git_commit_and_dirty_state_with_diff(ws, tmp_path):
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "--allow-empty", "-m", "init")
    (tmp_path / "train.py").write_text("print(1)\n")
    _git(tmp_path, "add", "train.py")
    _git(tmp_path, "-c", "user.email=a@b", "-c", "user.name=a", "commit", "-q", "-m", "add")
    head = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=tmp_path, capture_output=True, text=True
    ).stdout.strip()
    with mlo.start_run() as clean:
        pass
    assert clean.git == {"commit": head, "branch": "main", "dirty": False, "diff_digest": None}
    assert clean.git_diff() == ""
    (tmp_path / "train.py").write_text("print(2)\n")
    with mlo.start_run() as dirty:
        pass
    assert dirty.git["dirty"] is True and dirty.git["commit"] == head
    assert "+print(2)" in dirty.git_diff()
    df = mlo.runs()
    assert set(df.git_commit) == {head}


def test_outside_git_there_is_no_git_state(ws):
    with mlo.start_run() as run:
        pass
    assert run.git is None


def test_environment_is_recorded_once_per_content(ws):
    with mlo.start_run() as a:
        pass
    with mlo.start_run() as b:
        pass
    env = a.env
    assert b.env == env  # same process, same environment
    assert env["python"].count(".") == 2
    assert "sqlalchemy" in env["packages"] and "pandas" in env["packages"]
    assert ws.runs.run_row(a.id)["env_digest"] == ws.runs.run_row(b.id)["env_digest"]
    assert a.user


def test_the_environment_lists_every_package_as_the_full_metadata_parser_reads_it():
    import json
    from importlib import metadata

    from mlo.tracking import capture

    expected = {}
    for dist in metadata.distributions():
        name = dist.metadata.get("Name")
        if name:
            expected[name.lower()] = dist.version
    packages = json.loads(capture.environment())["packages"]
    assert packages == dict(sorted(expected.items())) and "pyarrow" in packages
