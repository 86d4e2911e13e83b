"""Rule-based safety detectors: personal data (PII) patterns, prompt-injection heuristics, blocklists and
refusals. Each detector returns the evidence it found (a list of :class:`Finding`), never a bare yes/no, so a
score or a guardrail decision can say why. They are plain regular expressions: microseconds per text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import InvalidInput


@dataclass(frozen=True)
class Finding:
    """One piece of evidence: what kind of thing was found, the matched text and where."""

    kind: str
    text: str
    start: int
    end: int

    def to_dict(self) -> dict:
        return {"kind": self.kind, "text": self.text, "start": self.start, "end": self.end}


def _luhn(digits: str) -> bool:
    total, odd = 0, False
    for ch in reversed(digits):
        d = int(ch)
        if odd:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        odd = not odd
    return total % 10 == 0


PII_PATTERNS: dict[str, re.Pattern] = {
    "email": re.compile(r"\b[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}\b"),
    "credit_card": re.compile(r"\b(?:\d[ -]?){12,18}\d\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b"),
    "us_ssn": re.compile(r"\b\d{3}-\d{2}-\d{4}\b"),
    "phone": re.compile(r"(?<![\w+])\+?\d{1,3}[ .-]?\(?\d{2,4}\)?[ .-]?\d{3,4}[ .-]?\d{3,4}\b"),
    "ipv4": re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b"),
}


def find_pii(text: str, kinds: list[str] | tuple[str, ...] | None = None) -> list[Finding]:
    """Personal data in ``text``: e-mail addresses, card numbers (Luhn-checked), IBANs, US SSNs, phone numbers
    and IPv4 addresses (``kinds`` picks some). Overlapping matches keep the first, longest kind in that order."""
    wanted = list(PII_PATTERNS) if kinds is None else list(kinds)
    unknown = [k for k in wanted if k not in PII_PATTERNS]
    if unknown:
        raise InvalidInput(f"unknown PII kind(s) {', '.join(unknown)}; use {', '.join(PII_PATTERNS)}")
    out: list[Finding] = []
    taken: list[tuple[int, int]] = []
    for kind in wanted:
        for m in PII_PATTERNS[kind].finditer(text):
            s, e = m.span()
            if any(s < te and ts < e for ts, te in taken):
                continue
            taken.append((s, e))
            if kind == "credit_card" and not _luhn(re.sub(r"\D", "", m.group())):
                continue  # a long number that is no card: not a phone number either
            out.append(Finding(kind, m.group(), s, e))
    return sorted(out, key=lambda f: f.start)


def redact(text: str, findings: list[Finding]) -> str:
    """``text`` with each finding replaced by ``[KIND]``."""
    out, last = [], 0
    for f in sorted(findings, key=lambda f: f.start):
        if f.start < last:
            continue
        out += [text[last : f.start], f"[{f.kind.upper()}]"]
        last = f.end
    return "".join(out) + text[last:]


INJECTION_PATTERNS: dict[str, re.Pattern] = {
    "ignore_instructions": re.compile(
        r"\b(?:ignore|disregard|forget|override)\b[^.\n]{0,40}\b(?:previous|prior|above|earlier|all|your|the)\b"
        r"[^.\n]{0,20}\b(?:instructions?|prompts?|rules|directions|guidelines)\b",
        re.I,
    ),
    "reveal_prompt": re.compile(
        r"\b(?:reveal|show|print|repeat|tell me|output|leak)\b[^.\n]{0,30}\b(?:system|hidden|initial|original)\s+"
        r"(?:prompt|instructions?|message)",
        re.I,
    ),
    "role_override": re.compile(
        r"\b(?:you are now|from now on,? you|act as|pretend (?:to be|you are)|developer mode|jailbreak|DAN)\b",
        re.I,
    ),
    "fake_delimiter": re.compile(
        r"(?:^|\n)\s*(?:\[/?(?:system|INST)\]|<\|?(?:im_start|system)\|?>|###\s*system)", re.I
    ),
}


def find_injection(text: str) -> list[Finding]:
    """Prompt-injection attempts in ``text``: "ignore previous instructions", asking for the system prompt, role
    overrides ("you are now", "developer mode") and fake chat delimiters. Heuristics: cheap, explainable, and
    meant to be paired with an evaluation of how often they miss."""
    out = []
    for kind, pattern in INJECTION_PATTERNS.items():
        for m in pattern.finditer(text):
            out.append(Finding(kind, m.group().strip(), m.start(), m.end()))
    return sorted(out, key=lambda f: f.start)


def blocklist_pattern(terms: list[str] | tuple[str, ...]) -> re.Pattern:
    """One compiled pattern matching any of ``terms`` as whole words, case-insensitively."""
    if isinstance(terms, str) or not terms or not all(isinstance(t, str) and t.strip() for t in terms):
        raise InvalidInput("a blocklist is a non-empty list of words or phrases")
    alternatives = "|".join(re.escape(t.strip()) for t in sorted(terms, key=len, reverse=True))
    return re.compile(rf"(?<!\w)(?:{alternatives})(?!\w)", re.I)


def find_blocked(text: str, pattern: re.Pattern) -> list[Finding]:
    return [Finding("blocked", m.group(), m.start(), m.end()) for m in pattern.finditer(text)]


REFUSAL = re.compile(
    r"\b(?:I(?:'m| am) (?:sorry|afraid)[^.]{0,40}\b(?:can(?:'|no)t|unable|not able)|"
    r"I (?:can(?:'|no)t|cannot|won't|will not|am unable to|am not able to) (?:help|assist|provide|do|answer|"
    r"comply|share|give)|as an AI(?: language model)?,? I|I'm not able to (?:help|assist|provide))",
    re.I,
)


def find_refusal(text: str) -> list[Finding]:
    """Phrases by which a model declines ("I'm sorry, but I can't …", "I cannot help with …")."""
    return [Finding("refusal", m.group(), m.start(), m.end()) for m in REFUSAL.finditer(text)]
