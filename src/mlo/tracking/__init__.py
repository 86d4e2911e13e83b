"""Run tracking: runs, params, metrics, artifacts, captured cells, environment and git state."""
