"""%mlo snapshot, %mlo snapshots and %mlo lineage through a real IPython shell."""

import pandas as pd
from IPython.core.error import UsageError

import mlo


def test_snapshot_a_variable_and_see_its_lineage(shell, tmp_path):
    shell.run("import pandas as pd\ndf = pd.DataFrame({'a': [1, 2, 3], 'b': ['x', 'y', 'z']})")
    snap = shell.run("%mlo snapshot df")
    assert isinstance(snap, mlo.Snapshot) and snap.name == "df" and snap.version == 1
    assert "Snapshot df@1" in snap._repr_html_()
    assert shell.run("%mlo snapshot df --name customers").name == "customers"

    shell.run("%%mlo run fit\ntotal = int(df.a.sum())")  # names no input: the data in memory is its input
    run = mlo.runs().iloc[0]
    lin = shell.run(f"%mlo lineage {run.run_id}")
    assert sorted(n.label for n in lin.upstream()) == ["customers@1", "df@1"]
    assert "<svg" in lin._repr_html_()

    listing = shell.run("%mlo snapshots")
    assert isinstance(listing, pd.DataFrame) and list(listing.name) == ["customers", "df"]
    assert list(shell.run("%mlo snapshots df").name) == ["df"]

    (tmp_path / "raw.csv").write_text("a,b\n1,2\n")
    assert shell.run(f"%mlo snapshot {tmp_path / 'raw.csv'}").name == "raw.csv"
    shell.run("%mlo start scoring")
    out = shell.run("%mlo snapshot df --name scored --role output")
    shell.run("%mlo end")
    assert mlo.lineage(out.ref).upstream()[0].label == "scoring"


def test_bad_input_is_a_one_line_usage_error(shell):
    for line, fragment in (
        ("%mlo snapshot nothing_here", "no variable or path named 'nothing_here'"),
        ("%mlo snapshot", "the following arguments are required: var"),
        ("x = {'a': 1}\n%mlo snapshot x", "cannot snapshot a builtins.dict"),
        (
            "import pandas as pd\nbad = pd.DataFrame({'c': [1, 'a']}, dtype=object)\n%mlo snapshot bad",
            "column 'c'",
        ),
        ("%mlo lineage nope", "no snapshot named 'nope'"),
        ("%mlo lineage dataset:x", "unknown lineage node kind"),
    ):
        err = shell.fails(line)
        assert isinstance(err, UsageError), (line, err)
        assert fragment in str(err) and "\n" not in str(err).strip(), (line, str(err))
    assert mlo.snapshots().empty


def test_help_lists_the_data_commands(shell, capsys):
    shell.run("%mlo help")
    out = capsys.readouterr().out
    assert "%mlo snapshot VAR" in out and "%mlo lineage REF" in out and "%mlo runs" in out
