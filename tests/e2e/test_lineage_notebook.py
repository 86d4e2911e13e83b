"""Snapshots and lineage recorded by a real notebook executed with papermill, read back here."""

from __future__ import annotations

from test_kernel_capture import execute, notebook

import mlo


def test_lineage_through_a_papermill_run(sqlite_ws, tmp_path):
    (tmp_path / "raw.csv").write_text(
        "age,plan,churn\n" + "".join(f"{20 + i % 50},{'ab'[i % 2]},{i % 3 == 0}\n" for i in range(300))
    )
    execute(
        tmp_path,
        notebook(
            "%load_ext mlo\nimport mlo, pandas as pd",
            "%mlo snapshot raw.csv --name raw-file",
            "df = pd.read_csv('raw.csv')\n%mlo snapshot df --name customers",
            "%%mlo run features\nfeatures = df.assign(old=df.age > 50)\nmlo.snapshot(features, 'features', role='output')",
            "train = mlo.load_snapshot('features')",
            "%%mlo run fit\nrate = float(train.churn.mean())\n%mlo metric rate=0.33",
        ),
    )
    fit = mlo.runs(where="name = 'fit'").iloc[0]
    lin = mlo.lineage(fit.run_id)
    up = sorted(n.label for n in lin.upstream())
    # fit loaded features (in memory, not in a run); features came from the 'features' run, which read the
    # two snapshots taken before it
    assert up == ["customers@1", "features", "features@1", "raw-file@1"], up
    pd_frame = mlo.load_snapshot("customers")
    assert len(pd_frame) == 300 and list(pd_frame.columns) == ["age", "plan", "churn"]
    # the same digest from the kernel's process and this one
    import pandas as pd

    assert mlo.snapshot(pd.read_csv(tmp_path / "raw.csv"), "customers").version == 1
