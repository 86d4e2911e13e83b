"""Notebook pipelines: papermill-executed stages with parameters, a content-hash run cache, gates, parallel and
Dask execution, and reproduction of past runs. ``mlo.pipeline.run("pipeline.yaml")``."""

from .run import PipelineResult, run, run_notebook
from .spec import Pipeline, Stage, load

__all__ = ["Pipeline", "PipelineResult", "Stage", "load", "run", "run_notebook"]
