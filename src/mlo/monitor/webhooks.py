"""Webhook actions: checked when the rules load, sent over http(s) only, signed when given a secret, and never
echoing a secret into an alert record, a log or an error message.

```toml
actions = [{ type = "webhook", url = "${SLACK_WEBHOOK_URL}", secret = "${MLO_HOOK_SECRET}",
             headers = { Authorization = "Bearer ${HOOK_TOKEN}" }, timeout = 10 }]
```

``${NAME}`` in ``url``, ``secret`` and header values is read from the environment when the rules load, so
secrets stay out of ``mlo.toml``. With ``secret``, the body is signed: ``X-MLO-Signature: sha256=<hex>``, the
HMAC-SHA256 of the body under the secret. Only ``http`` and ``https`` URLs are accepted, and a redirect to any
other scheme is refused.

What an alert shows of a webhook is its scheme and host (``https://hooks.slack.com/…``): the path, query and
credentials of a URL often are the secret (Slack, Teams and Discord URLs are), so they are never shown; neither
are header values or the secret. Any text an action returns is scrubbed of them too.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from ..errors import InvalidInput

TIMEOUT = 10.0
KEYS = {"type", "url", "secret", "headers", "timeout"}
_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _expand(value: str, rule: str, what: str) -> str:
    def sub(m: re.Match) -> str:
        found = os.environ.get(m.group(1))
        if found is None:
            raise InvalidInput(
                f"monitor rule {rule!r}: the webhook {what} names ${{{m.group(1)}}}, which is not set"
            )
        return found

    return _VAR.sub(sub, value)


def shown_url(url: str) -> str:
    """``scheme://host[:port]`` and ``/…`` when there is more: what an alert or a message may show of a URL."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "(a URL that cannot be read)"
    more = "/…" if parts.path.strip("/") or parts.query or parts.fragment or parts.username else ""
    return f"{parts.scheme}://{host}{port}{more}"


def resolve(action: dict[str, Any], rule: str) -> dict[str, Any]:
    """A webhook action checked and ready to send: ``url``, ``secret``, ``headers``, ``timeout``, and
    ``secrets`` (every string that must never be shown). A mistake is a one-line error that shows no secret."""
    unknown = sorted(set(action) - KEYS)
    if unknown:
        import difflib

        hint = difflib.get_close_matches(unknown[0], sorted(KEYS), 1)
        raise InvalidInput(
            f"monitor rule {rule!r}: a webhook action has no key {unknown[0]!r}"
            + (f"; did you mean {hint[0]!r}?" if hint else "")
            + f" (keys: {', '.join(sorted(KEYS - {'type'}))})"
        )
    raw = action.get("url")
    if not isinstance(raw, str) or not raw.strip():
        raise InvalidInput(f'monitor rule {rule!r}: a webhook action needs url = "…"')
    url = _expand(raw.strip(), rule, "url")
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        scheme = parts.scheme or "no scheme"
        raise InvalidInput(
            f"monitor rule {rule!r}: a webhook url must be http:// or https:// with a host, got {scheme}:"
        )
    secrets = [s for s in (parts.username, parts.password, parts.path.strip("/"), parts.query) if s]
    secrets.append(url)
    basic = None
    if parts.username is not None:  # user:password@host becomes Basic authentication, as a browser does
        import base64

        pair = f"{unquote(parts.username)}:{unquote(parts.password or '')}"
        basic = "Basic " + base64.b64encode(pair.encode()).decode()
        host = parts.netloc.rpartition("@")[2]
        url = urlunsplit((parts.scheme, host, parts.path, parts.query, parts.fragment))
        secrets.append(basic)
    secret = action.get("secret")
    if secret is not None:
        if not isinstance(secret, str) or not secret:
            raise InvalidInput(f"monitor rule {rule!r}: a webhook secret is a non-empty string")
        secret = _expand(secret, rule, "secret")
        secrets.append(secret)
    headers = action.get("headers") or {}
    if not isinstance(headers, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in headers.items()
    ):
        raise InvalidInput(
            f'monitor rule {rule!r}: webhook headers is a table of strings, e.g. {{ X-Team = "ml" }}'
        )
    resolved_headers = {}
    for name, value in headers.items():
        if any(c in name + value for c in "\r\n\0"):
            raise InvalidInput(f"monitor rule {rule!r}: the webhook header {name!r} holds a line break")
        resolved_headers[name] = _expand(value, rule, f"header {name}")
        secrets.append(resolved_headers[name])
    if basic is not None:
        resolved_headers.setdefault("Authorization", basic)
    timeout = action.get("timeout", TIMEOUT)
    if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout <= 300:
        raise InvalidInput(f"monitor rule {rule!r}: a webhook timeout is a number of seconds up to 300")
    secrets = sorted({s for s in secrets if len(s) >= 4}, key=len, reverse=True)
    return {
        "url": url,
        "shown": shown_url(url),
        "secret": secret,
        "headers": resolved_headers,
        "timeout": float(timeout),
        "secrets": secrets,
    }


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with every secret replaced by ``***``."""
    for s in secrets:
        text = text.replace(s, "***")
    return text


class _HttpOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):  # type: ignore[override]
        if urlsplit(newurl).scheme.lower() not in ("http", "https"):
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-http(s) URL refused", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    """An opener that speaks http and https only (no file://, ftp:// or data: handlers)."""
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.HTTPHandler(),
        urllib.request.HTTPSHandler(),
        urllib.request.HTTPDefaultErrorHandler(),
        _HttpOnlyRedirects(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


def send(hook: dict[str, Any], alert: dict[str, Any]) -> tuple[str, bool]:
    """POST the alert as JSON; ``(detail, ok)`` with the detail free of secrets."""
    body = json.dumps({"source": "mlo", **alert}, default=str).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "mlo-webhook", **hook["headers"]}
    if hook["secret"]:
        digest = hmac.new(hook["secret"].encode(), body, hashlib.sha256).hexdigest()
        headers["X-MLO-Signature"] = f"sha256={digest}"
    request = urllib.request.Request(hook["url"], data=body, method="POST", headers=headers)
    shown = hook["shown"]
    try:
        with _opener().open(request, timeout=hook["timeout"]) as response:
            detail, ok = f"POST {shown} → {response.status}", 200 <= response.status < 300
    except urllib.error.HTTPError as exc:
        detail, ok = f"POST {shown} → {exc.code}", False
    except (urllib.error.URLError, OSError, ValueError) as exc:
        detail, ok = f"POST {shown} failed: {getattr(exc, 'reason', exc)}", False
    return scrub(detail, hook["secrets"]), ok
