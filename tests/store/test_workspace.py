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
