"""Canary routing: which deployment a request goes to.

A request goes to the canary with probability ``percent / 100``, drawn per request from a random generator
(seeded for reproducible tests). When the operator names a route-key header (``route_key="X-User-Id"``), a
request carrying it is routed by a hash of its value (an entity id) instead, so one user always lands on the
same side, and raising the share only moves users from stable to canary. A client never names a side: only the
operator can force one, from Python (``Service.predict(..., route="canary")``).
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInput

ROUTES = ("stable", "canary")


@dataclass(frozen=True)
class CanarySpec:
    """``NAME@ALIAS:PCT``: the reference the canary serves and the share of requests (0–100) it gets."""

    ref: str
    percent: float

    @classmethod
    def parse(cls, value: Any) -> CanarySpec:
        """From ``"churn@staging:10"`` (``"10%"`` works too), a ``(ref, percent)`` pair or a CanarySpec."""
        if isinstance(value, CanarySpec):
            return value
        if isinstance(value, tuple) and len(value) == 2:
            ref, pct = value
        elif isinstance(value, str) and ":" in value:
            ref, _, pct = value.strip().rpartition(":")
        else:
            raise InvalidInput(
                f"a canary is NAME@ALIAS:PCT, e.g. 'churn@staging:10' (10% of requests), got {value!r}"
            )
        if not isinstance(ref, str) or "@" not in ref and "/" not in ref:
            raise InvalidInput(
                f"the canary {value!r} names no version: use NAME@ALIAS:PCT, e.g. churn@staging:10"
            )
        text = str(pct).strip().rstrip("%").strip()
        try:
            percent = float(text)
        except ValueError:
            raise InvalidInput(
                f"the canary share {pct!r} is not a number: use a percentage from 0 to 100, "
                "e.g. churn@staging:10"
            ) from None
        if not 0 <= percent <= 100 or percent != percent:
            raise InvalidInput(f"the canary share must be between 0 and 100 (percent), got {text}")
        return cls(ref.strip(), percent)

    def __str__(self) -> str:
        return f"{self.ref}:{self.percent:g}"


class Router:
    """Chooses ``"stable"`` or ``"canary"`` for each request."""

    def __init__(self, percent: float = 0.0, seed: int | None = None):
        self.share = percent / 100.0
        self._rng = random.Random(seed)

    def choose(self, key: str | None = None) -> str:
        if self.share <= 0.0:
            return "stable"
        if self.share >= 1.0:
            return "canary"
        if key is not None:
            digest = hashlib.blake2b(
                key.encode(errors="replace"), digest_size=8, person=b"mlo-canary"
            ).digest()
            h = int.from_bytes(digest, "big") / 2.0**64
            return "canary" if h < self.share else "stable"
        return "canary" if self._rng.random() < self.share else "stable"
