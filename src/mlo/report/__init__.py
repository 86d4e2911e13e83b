"""Shared HTML rendering: small, self-contained tables and badges (no scripts, no external assets)."""
