"""What Linux's ``/proc/cpuinfo`` says about the CPU: vendor, family, model, stepping, flags.

The x86 fields are those of the first processor's block (every logical CPU of one machine
repeats them); the brand is ``model name`` on x86, ``Model`` (the board) or ``Hardware``
on Arm kernels that give no ``model name``. Numbers are printed in decimal by the kernel
(``cpu family : 25`` is AMD family 19h).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

__all__ = [
    "CPUINFO_ENV",
    "DEFAULT_CPUINFO",
    "CpuInfo",
    "cpuinfo_path",
    "parse_cpuinfo",
    "read_cpuinfo",
]

#: Environment variable naming another cpuinfo file to read instead of ``/proc/cpuinfo``
#: (to estimate for the machine a recorded cpuinfo describes, and for tests).
CPUINFO_ENV: Final = "WATTWISE_CPUINFO"
DEFAULT_CPUINFO: Final = Path("/proc/cpuinfo")

_BRAND_FIELDS = ("model name", "Model", "Hardware")


@dataclass(frozen=True)
class CpuInfo:
    """The first processor of a cpuinfo file; empty fields where the file says nothing.

    Attributes:
        vendor_id: ``GenuineIntel``, ``AuthenticAMD``, ``HygonGenuine``, or ``""``.
        family: ``cpu family`` (decimal), or None.
        model: ``model`` (decimal), or None.
        stepping: ``stepping`` (decimal), or None.
        flags: the ``flags`` words (``avx512f``, ``hypervisor``, ...).
        model_name: the brand: ``model name``, else ``Model`` or ``Hardware``; or ``""``.
    """

    vendor_id: str = ""
    family: int | None = None
    model: int | None = None
    stepping: int | None = None
    flags: frozenset[str] = frozenset()
    model_name: str = ""

    def signature(self) -> str:
        """The identification in words, e.g. ``AuthenticAMD family 25 (19h) model 17 (11h)``."""
        parts = [self.vendor_id or "unknown vendor"]
        for name, value in (("family", self.family), ("model", self.model)):
            if value is not None:
                parts.append(f"{name} {value} ({value:X}h)")
        if self.stepping is not None:
            parts.append(f"stepping {self.stepping}")
        return " ".join(parts)


def _int_or_none(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def _first_block(lines: list[str]) -> dict[str, str]:
    fields: dict[str, str] = {}
    for line in lines:
        if not line.strip():
            if fields:
                break  # the first processor's block is enough
            continue
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def _brand(lines: list[str]) -> str:
    # Arm kernels put "Model" (the board) in a block of its own after the processors.
    for field in _BRAND_FIELDS:
        for line in lines:
            key, sep, value = line.partition(":")
            if sep and key.strip() == field and value.strip():
                return value.strip()
    return ""


def parse_cpuinfo(text: str) -> CpuInfo:
    """Parse the text of a cpuinfo file; never raises (what it cannot read stays empty)."""
    lines = text.splitlines()
    fields = _first_block(lines)
    return CpuInfo(
        vendor_id=fields.get("vendor_id", ""),
        family=_int_or_none(fields.get("cpu family")),
        model=_int_or_none(fields.get("model")),
        stepping=_int_or_none(fields.get("stepping")),
        flags=frozenset(fields.get("flags", "").split()),
        model_name=_brand(lines),
    )


def read_cpuinfo(path: str | os.PathLike[str] = DEFAULT_CPUINFO) -> CpuInfo:
    """The :class:`CpuInfo` of a cpuinfo file; empty when it cannot be read."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo()
    return parse_cpuinfo(text)


def cpuinfo_path(environ: Mapping[str, str]) -> Path | None:
    """The cpuinfo file :data:`CPUINFO_ENV` names, or None when it is unset or empty."""
    raw = environ.get(CPUINFO_ENV, "").strip()
    return Path(raw) if raw else None
