"""MQTT topic levels made from data (ward codes, pseudonyms).

A ward named `A+E` or `Theatre #2` would make a publish topic with MQTT
wildcards, which paho refuses (and a `/` would add a level). Each value is
percent-encoded (RFC 3986 style) for `+`, `#`, `/`, `%`, `$` at the start,
NUL and control characters, so every ward has exactly one topic level and
subscribers decode it with `urllib.parse.unquote`. Plain codes (`ICU`,
`W2`) are unchanged.
"""

from __future__ import annotations

from typing import Final

_UNSAFE: Final = frozenset("+#/%") | {chr(c) for c in range(0x20)} | {"\x7f"}


def topic_level(value: str) -> str:
    """`value` as one safe MQTT topic level (never empty, never a wildcard)."""
    if not value:
        return "unknown"
    out = "".join(f"%{ord(ch):02X}" if ch in _UNSAFE else ch for ch in value)
    # A leading $ marks broker topics ($SYS): a subscription to # skips them.
    return "%24" + out[1:] if out.startswith("$") else out


def format_topic(template: str, **levels: str) -> str:
    """Fill a topic template such as `care/{ward}/alerts`, each value one level."""
    return template.format(**{name: topic_level(value) for name, value in levels.items()})
