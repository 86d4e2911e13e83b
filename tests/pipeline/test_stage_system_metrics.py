"""A pipeline stage's system metrics are sampled by its own kernel, into the stage's run."""

from __future__ import annotations

from notebooks_on_disk import write_notebook

import mlo
from mlo.pipeline import run


def test_a_pipeline_stage_is_sampled_in_its_kernel(sqlite_ws, tmp_path, monkeypatch):
    monkeypatch.delenv("MLO_SYSTEM_METRICS", raising=False)  # on, as by default
    monkeypatch.setenv("MLO_SYSTEM_METRICS_INTERVAL", "0.2")  # the kernel reads it from its environment
    write_notebook(
        tmp_path / "busy.ipynb",
        "import time\nstart = time.process_time()\nwhile time.process_time() - start < 1.0:\n    pass",
    )
    (tmp_path / "pipeline.yaml").write_text("stages:\n  busy:\n    notebook: busy.ipynb\n")
    result = run(tmp_path / "pipeline.yaml", log=None)
    assert result.exit_code == 0, result.tasks
    stage = mlo.get_run(result.tasks[0].run_id)
    cpu = stage.history("system.cpu_percent")
    # the kernel's second of CPU in its busy cell, sampled by the kernel (each sample: % over the time since the
    # one before)
    times = [stage.start_time.timestamp(), *(t.timestamp() for t in cpu.timestamp)]
    accounted = sum(v / 100 * (b - a) for v, a, b in zip(cpu.value, times, times[1:], strict=False))
    assert len(cpu) >= 3 and accounted > 0.9
