"""Who may call a model server: bearer tokens with scopes.

Tokens come from ``MLO_SERVE_TOKEN`` (one token, every scope), ``token=`` in Python, and a token file
(``--token-file``, ``token_file=``), one token per line with the scopes it grants::

    # mlo serve tokens: TOKEN [SCOPE,SCOPE]   (no scopes: every scope)
    3q2+7bQ…Vw   predict
    Zk9xM…0e     labels

Scopes: ``predict`` (``POST /predict``) and ``labels`` (``POST /labels``); ``GET /metadata`` takes any valid
token. With no token configured the server is open (fine on loopback; it warns when it listens further). With
tokens, a request says ``Authorization: Bearer <token>``; a missing or unknown token is a 401, a token without the
scope a 403, and ``GET /health`` answers anyone, but only with ``{"status": "ok"}``.

Tokens are compared in constant time: the presented token's SHA-256 against every stored digest, with no early
exit, so timing tells nothing about which token or how much of it matched.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import InvalidInput

log = logging.getLogger("mlo.serve")

SCOPES = ("predict", "labels")
TOKEN_ENV = "MLO_SERVE_TOKEN"
MIN_LENGTH = 16
_MAKE = "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"


def _check_token(token: str, where: str) -> str:
    token = token.strip()
    if len(token) < MIN_LENGTH:
        raise InvalidInput(f"{where}: a token must be at least {MIN_LENGTH} characters; {_MAKE}")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise InvalidInput(f"{where}: a token cannot hold spaces or control characters; {_MAKE}")
    return token


def _scopes(text: str, where: str) -> frozenset[str]:
    scopes = frozenset(s.strip() for s in text.split(",") if s.strip())
    unknown = sorted(scopes - set(SCOPES))
    if unknown:
        raise InvalidInput(f"{where}: unknown scope {', '.join(unknown)}; scopes are {', '.join(SCOPES)}")
    return scopes


def read_token_file(path: str | os.PathLike) -> list[tuple[str, frozenset[str]]]:
    """``(token, scopes)`` per line of a token file; a mistake is a one-line error naming the line."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
        mode = p.stat().st_mode
    except FileNotFoundError:
        raise InvalidInput(f"no token file {p}; write one token per line (see docs/security.md)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"cannot read the token file {p} ({exc})") from None
    if os.name == "posix" and mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("the token file %s can be read by other users; chmod 600 it", p)
    out = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        where = f"{p}, line {number}"
        parts = line.split(None, 1)
        token = _check_token(parts[0], where)
        scopes = _scopes(parts[1], where) if len(parts) > 1 else frozenset(SCOPES)
        out.append((token, scopes))
    if not out:
        raise InvalidInput(f"the token file {p} holds no token; write one per line: TOKEN [predict|labels]")
    return out


@dataclass(frozen=True)
class Auth:
    """The tokens a server accepts (none: it is open to whoever reaches it)."""

    _digests: tuple[tuple[bytes, frozenset[str]], ...] = field(default=(), repr=False)

    @classmethod
    def from_tokens(cls, tokens: Iterable[tuple[str, Iterable[str]]]) -> Auth:
        seen: dict[bytes, frozenset[str]] = {}
        for token, scopes in tokens:
            digest = hashlib.sha256(token.encode()).digest()
            seen[digest] = seen.get(digest, frozenset()) | frozenset(scopes)
        return cls(tuple(seen.items()))

    @classmethod
    def configure(
        cls, token: str | None = None, token_file: str | os.PathLike | None = None, *, env: bool = True
    ) -> Auth:
        """Tokens from ``token`` (every scope), ``token_file`` and, with ``env``, ``MLO_SERVE_TOKEN``."""
        tokens: list[tuple[str, frozenset[str]]] = []
        if token is not None:
            if not isinstance(token, str):
                raise InvalidInput(f"token= takes a string, got {type(token).__name__}")
            tokens.append((_check_token(token, "token="), frozenset(SCOPES)))
        if token_file is not None:
            tokens.extend(read_token_file(token_file))
        from_env = os.environ.get(TOKEN_ENV) if env else None
        if from_env:
            tokens.append((_check_token(from_env, TOKEN_ENV), frozenset(SCOPES)))
        return cls.from_tokens(tokens)

    @classmethod
    def coerce(cls, value: Any) -> Auth:
        if value is None:
            return cls.configure()
        if isinstance(value, Auth):
            return value
        raise InvalidInput(f"auth= takes an Auth (see mlo.serve.auth), got {type(value).__name__}")

    @property
    def enabled(self) -> bool:
        return bool(self._digests)

    @property
    def scopes(self) -> list[list[str]]:
        """The scopes of each token (what ``/metadata``-free diagnostics may show; never the tokens)."""
        return [sorted(s) for _, s in self._digests]

    def check(self, authorization: str | None) -> frozenset[str] | None:
        """The scopes of the token in an ``Authorization`` header value, or None when it names no known token."""
        if not authorization:
            return None
        scheme, _, token = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return None
        digest = hashlib.sha256(token.strip().encode()).digest()
        granted: frozenset[str] | None = None
        for known, scopes in self._digests:  # every digest is compared: no early exit
            if hmac.compare_digest(known, digest):
                granted = scopes
        return granted

    def describe(self) -> str:
        if not self.enabled:
            return "no token (open to anyone who reaches it)"
        n = len(self._digests)
        return (
            f"{n} token{'s' if n > 1 else ''} (scopes: " + "; ".join(",".join(s) for s in self.scopes) + ")"
        )


def is_loopback(host: str) -> bool:
    """Whether ``host`` only accepts connections from this machine."""
    import ipaddress

    if host in ("localhost", "localhost.localdomain"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
