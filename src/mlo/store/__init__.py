"""The only I/O layer: metadata (SQLAlchemy Core on SQLite or PostgreSQL) and content-addressed blobs."""
