"""%mlo tag, %mlo note / %%mlo note, %mlo experiments and %mlo delete|archive|restore in a real shell."""

from __future__ import annotations

import mlo


def test_tags_notes_and_lifecycle_from_magics(shell):
    shell.run("%mlo experiment churn")
    shell.run("%mlo start first")
    shell.run("%mlo tag team=core stage=dev")
    shell.run("%%mlo note\n## Idea\nTry *balanced* weights.")
    shell.run("%mlo end")
    run = mlo.get_run(mlo.runs()["run_id"].iloc[0])
    assert run.tags == {"team": "core", "stage": "dev"}
    assert run.note == "## Idea\nTry *balanced* weights."
    shell.run(f"%mlo tag --run {run.id[:14]} --remove stage")
    shell.run(f"%mlo note --run {run.id[:14]} shorter note")
    assert run.tags == {"team": "core"} and run.note == "shorter note"

    err = shell.fails("%mlo tag k=v")  # no active run, no --run
    assert "no active run" in str(err)
    html = shell.run("%mlo experiments").data
    assert "churn" in html
    shell.run(f"%mlo delete {run.id[:14]}")
    assert shell.run("%mlo runs").df.empty
    assert len(shell.run("%mlo runs --include deleted").df) == 1
    shell.run(f"%mlo restore {run.id[:14]}")
    shell.run("%mlo archive --experiment churn")
    assert "churn" not in shell.run("%mlo experiments").data
    assert "churn" in shell.run("%mlo experiments --include archived").data
    err = shell.fails("%mlo delete")
    assert "name runs" in str(err)
