"""A run that keeps training while a browser test watches it: a point every 0.2 s, flushed at once, until a file
appears (or 90 s pass). It prints its run id first, so the test can open its page."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import sys, time
    from pathlib import Path
    import mlo

    stop = Path(sys.argv[1])
    with mlo.start_run("live-training", experiment=sys.argv[2]) as run:
        print(run.id, flush=True)
        step = 0
        deadline = time.monotonic() + 90
        while not stop.exists() and time.monotonic() < deadline:
            mlo.log_metric("loss", 1.0 / (step + 1), step=step)
            mlo.flush()
            step += 1
            time.sleep(0.2)
    """
)


def start_live_run(root, env, stop, experiment: str) -> subprocess.Popen:
    """Start the training process in ``root``; it stops once the file ``stop`` exists."""
    return subprocess.Popen(
        [sys.executable, "-c", SCRIPT, str(stop), experiment],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
