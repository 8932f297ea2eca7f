"""Parsing of ``NAME[:OPTIONS]`` specs used by models, datasets and class lists."""

from __future__ import annotations

from wattwise._errors import ConfigError

__all__ = ["parse_classes", "parse_options", "split_spec"]


def split_spec(spec: str) -> tuple[str, str]:
    """Split ``NAME[:REST]`` at the first colon; the name is lower-cased."""
    name, _, rest = spec.strip().partition(":")
    if not name:
        raise ConfigError(f"empty name in {spec!r}")
    return name.lower(), rest


def parse_options(
    text: str, *, what: str, allowed: dict[str, type]
) -> dict[str, int | float | bool]:
    """Parse ``key=value,key=value`` against the allowed keys and their types.

    Args:
        text: the options, possibly empty.
        what: what the options are for, for error messages.
        allowed: key -> ``int``, ``float`` or ``bool``.

    Raises:
        ConfigError: an unknown key or a value of the wrong type.
    """
    out: dict[str, int | float | bool] = {}
    if not text.strip():
        return out
    for part in text.split(","):
        key, sep, value = part.partition("=")
        key = key.strip().lower()
        if not sep or key not in allowed:
            keys = ", ".join(f"{k}=<{t.__name__}>" for k, t in allowed.items()) or "none"
            raise ConfigError(f"bad option {part.strip()!r} for {what} (accepted: {keys})")
        kind = allowed[key]
        try:
            if kind is bool:
                if value.strip().lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(value)
                out[key] = value.strip().lower() in ("1", "true", "yes")
            elif kind is int:
                out[key] = int(value)
            else:
                out[key] = float(value)
        except ValueError:
            raise ConfigError(
                f"bad value {value!r} for {key} of {what} (expected {kind.__name__})"
            ) from None
    return out


def parse_classes(text: str) -> tuple[int, ...]:
    """Parse a class list: ``0-7``, ``0,2,5``, ``0-4,8``.

    The order is kept (it fixes which output row each class gets) and duplicates are
    refused.

    Raises:
        ConfigError: not a class list.
    """
    out: list[int] = []
    try:
        for part in text.split(","):
            lo, dash, hi = part.strip().partition("-")
            if dash:
                a, b = int(lo), int(hi)
                if b < a:
                    raise ValueError(part)
                out.extend(range(a, b + 1))
            else:
                out.append(int(lo))
    except ValueError:
        raise ConfigError(f"not a class list: {text!r} (use e.g. 0-7 or 0,2,5)") from None
    if any(c < 0 for c in out):
        raise ConfigError(f"class labels cannot be negative: {text!r}")
    if len(set(out)) != len(out):
        raise ConfigError(f"a class is listed twice in {text!r}")
    return tuple(out)
