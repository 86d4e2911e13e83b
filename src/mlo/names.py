"""The names users give things (experiments, runs, params, metrics, tags, models, snapshots, aliases): text that is
shown in tables, terminals and URLs, so it must hold no control characters — no NUL (which PostgreSQL cannot store
in text), no newline or tab (which break tables and logs), no escape (which steers a terminal), no invisible bidi
override (which makes one name look like another)."""

from __future__ import annotations

from typing import Any

from .errors import InvalidInput

MAX_LENGTH = 255
# U+200E/F marks, U+202A-E embeddings and overrides, U+2066-9 isolates: they reorder what a terminal shows
_BIDI = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def control_character(text: str) -> str | None:
    """The first control character in ``text`` (C0, DEL, C1 or a bidi control), or None."""
    for ch in text:
        o = ord(ch)
        if o < 0x20 or 0x7F <= o <= 0x9F or ch in _BIDI:
            return ch
    return None


def check_label(value: Any, what: str, *, max_length: int = MAX_LENGTH) -> str:
    """``value`` as a name: a non-empty string of at most ``max_length`` characters with no control character.
    ``what`` names it in the error ("experiment name", "tag name", …). Surrounding spaces are removed; a
    control character anywhere, even a trailing newline, is refused."""
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, got {type(value).__name__} {value!r}")
    bad = control_character(value)
    if bad is not None:
        raise InvalidInput(
            f"{what} {value[:40]!r} holds the control character {bad!r}: use printable characters"
        )
    text = value.strip(" ")
    if not text:
        raise InvalidInput(f"{what} must be a non-empty string")
    if len(text) > max_length:
        raise InvalidInput(f"{what} {text[:40]!r}… is longer than {max_length} characters")
    return text


def check_text(value: str, what: str) -> str:
    """Free text stored as given (a tag value, a description): only NUL is refused, which no database stores."""
    if "\x00" in value:
        raise InvalidInput(f"{what} holds a NUL character ('\\x00'), which cannot be stored: remove it")
    return value
