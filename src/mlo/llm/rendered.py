"""Texts rendered from registered prompts, so that a call sending one is recorded with the prompt's version even
when it goes through a client mlo did not build (``openai.OpenAI(...)`` after ``mlo.llm.autolog()``)."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict

MAX_TEXTS = 4096
_texts: OrderedDict[str, str] = OrderedDict()
_lock = threading.Lock()


def _digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


def remember(text: str, ref: str) -> None:
    """``text`` was rendered from prompt version ``ref`` (``"support/3"``)."""
    key = _digest(text)
    with _lock:
        _texts[key] = ref
        _texts.move_to_end(key)
        while len(_texts) > MAX_TEXTS:
            _texts.popitem(last=False)


def prompt_of(texts: list[str]) -> str | None:
    """The prompt version that rendered one of ``texts`` (the first found), or None."""
    if not _texts:
        return None
    for text in texts:
        ref = _texts.get(_digest(text))
        if ref is not None:
            return ref
    return None


def clear() -> None:
    with _lock:
        _texts.clear()
