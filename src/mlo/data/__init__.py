"""Data snapshots (content-hashed, versioned, profiled) and the lineage graph that connects them to runs and
models."""
