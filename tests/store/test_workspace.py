"""Finding the workspace and reading its settings."""


def test_config_is_read_from_the_project_and_the_workspace(tmp_path, monkeypatch):
    """The project's mlo.toml (next to .mlo/, in git) holds policies; .mlo/mlo.toml holds local settings and wins."""
    from mlo import workspace

    (tmp_path / "mlo.toml").write_text(
        '[policy.production]\nvalidation = true\n[store]\nartifacts = "/nowhere"\n'
    )
    ws = workspace.init(tmp_path)
    (ws.home / "mlo.toml").write_text(f'[store]\nartifacts = "{tmp_path / "blobs"}"\n')
    monkeypatch.setenv("MLO_HOME", str(ws.home))
    workspace.reset_cache()
    ws = workspace.current()
    assert ws.config["policy"] == {"production": {"validation": True}}
    assert ws.artifacts_url == str(tmp_path / "blobs")


def test_config_typos_are_one_line_with_the_closest_name(tmp_path, monkeypatch):
    """A misspelt section or key would silently do nothing; it is refused when the workspace opens instead."""
    import subprocess
    import sys

    import pytest

    import mlo
    from mlo import workspace

    home = workspace.init(tmp_path).home
    monkeypatch.setenv("MLO_HOME", str(home))
    cases = [
        ("[registy]\ntrusted_types = []\n", "unknown section [registy] — did you mean 'registry'?"),
        (
            "[registry]\ntrusted_type = []\n",
            "unknown key 'trusted_type' in [registry] — did you mean 'trusted_types'?",
        ),
        ("[store]\nulr = 'sqlite:///x'\n", "unknown key 'ulr' in [store] — did you mean 'url'?"),
        ("[policy.production]\nvalidaton = true\n", "unknown key 'validaton' in [policy.production]"),
        ("[registry]\ntrusted_types = 'mypkg.T'\n", "registry.trusted_types must be a list of strings"),
        ("[registry]\ntrusted_flavors = ['pickle']\n", "unknown flavor 'pickle'"),
        ("registry = 3\n", "registry must be a table"),
        ("[ui]\ncount_up_to = 0\n", "ui.count_up_to must be a whole number of at least 1"),
        ("[monitor\n", "is not valid TOML"),
    ]
    for text, message in cases:
        for where in (home / "mlo.toml", tmp_path / "mlo.toml"):  # the workspace's file and the project's
            other = tmp_path / "mlo.toml" if where == home / "mlo.toml" else home / "mlo.toml"
            other.unlink(missing_ok=True)
            where.write_text(text)
            workspace.reset_cache()
            with pytest.raises(mlo.InvalidInput) as info:
                mlo.runs()
            assert message in str(info.value) and str(where) in str(info.value), (text, info.value)
            assert "\n" not in str(info.value)
    out = subprocess.run([sys.executable, "-m", "mlo", "runs"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1
    (tmp_path / "mlo.toml").write_text(
        '[store]\nartifacts = "blobs"\n[registry]\ntrusted_flavors = ["cloudpickle"]\n'
        '[policy.production]\nvalidation = { max_age_days = 7 }\nmodels = ["churn"]\n'
        '[monitor]\nwindow = "1h"\n'
    )
    (home / "mlo.toml").unlink(missing_ok=True)
    workspace.reset_cache()
    assert mlo.runs().empty  # every documented setting is known
