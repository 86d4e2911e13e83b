"""A JUnit XML report of a pipeline run, one test case per task, for CI systems that show test results."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .run import PipelineResult


def write_junit(result: PipelineResult, path: Path) -> Path:
    c = result.counts()
    suite = ET.Element(
        "testsuite",
        name=f"mlo pipeline {Path(result.file).name}",
        tests=str(len(result.tasks)),
        failures=str(c["gate"]),
        errors=str(c["error"]),
        skipped=str(c["skipped"]),
        time=f"{result.seconds:.3f}",
    )
    for t in result.tasks:
        case = ET.SubElement(
            suite, "testcase", classname=f"pipeline.{t.stage}", name=t.name, time=f"{t.seconds:.3f}"
        )
        if t.status == "gate":
            ET.SubElement(case, "failure", message=t.message, type="GateFailed").text = t.message
        elif t.status == "error":
            ET.SubElement(case, "error", message=t.message, type="error").text = t.message
        elif t.status == "skipped":
            ET.SubElement(case, "skipped", message=t.message)
        if t.status == "cached" or t.run_id or t.notebook:
            out = [t.message] if t.status == "cached" else []
            if t.run_id:
                out.append(f"run {t.run_id}")
            if t.notebook:
                out.append(f"executed notebook {t.notebook}")
            ET.SubElement(case, "system-out").text = "\n".join(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    root = ET.Element("testsuites")
    root.append(suite)
    ET.ElementTree(root).write(path, encoding="utf-8", xml_declaration=True)
    return path
