"""Parsing of human durations such as ``30s``, ``4h``, ``1h30m``, ``250ms``."""

from __future__ import annotations

import re

from wattwise._errors import ConfigError

__all__ = ["parse_duration_s"]

_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "min": 60.0, "h": 3600.0, "d": 86400.0}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|min|s|m|h|d)")


def parse_duration_s(text: str) -> float:
    """Parse a duration into seconds.

    A bare number is seconds. Parts may be combined: ``1h30m``.

    Raises:
        ConfigError: the text is not a duration (the message shows the accepted forms).
    """
    t = text.strip().lower().replace(" ", "")
    try:
        value = float(t)
    except ValueError:
        pos, total = 0, 0.0
        for m in _PART.finditer(t):
            if m.start() != pos:
                break
            total += float(m.group(1)) * _UNIT_S[m.group(2)]
            pos = m.end()
        if pos != len(t) or not t:
            raise ConfigError(
                f"not a duration: {text!r} (use e.g. 30s, 5m, 4h, 1h30m, 250ms)"
            ) from None
        value = total
    if value < 0:
        raise ConfigError(f"a duration cannot be negative: {text!r}")
    return value
