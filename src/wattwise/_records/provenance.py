"""Where an energy figure comes from: which sensors measured it, which models estimated it.

One :class:`Provenance` is built from a window's or run's counted components and combined
across runs (a study's repeats, a search's trials); its one string form is what the
records' ``energy_source`` fields hold::

    measured (rapl-powercap, nvml-energy-counter)
    mixed: estimated (ram-0.3725-w-per-gb) + measured (rapl-powercap)
    none (no counted component)

Methods are listed in a fixed order and joined with `` + ``; a method's sensors are listed
once each, in the order they were first seen, joined with ``, ``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from wattwise._records.run import ComponentEnergy
from wattwise.meters._base import Method

__all__ = ["Provenance"]

NONE_TEXT = "none (no counted component)"
MIXED_PREFIX = "mixed: "
JOINER = " + "
# Joiners of strings written before Provenance existed ("mixed: a; b", "a | b").
_ANY_JOINER = re.compile(r" \+ |; | \| ")
_PART = re.compile(r"(?P<method>\w+) \((?P<sensors>[^()]*)\)")


def _merge(*groups: Iterable[str]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s for g in groups for s in g))


@dataclass(frozen=True)
class Provenance:
    """The sensors and models behind an energy figure, by method.

    Attributes:
        measured: sensors that measured part of it (``rapl-powercap``...).
        estimated: models that estimated part of it (``cpu-tdp-utilisation``...).
        other: parts of a parsed string that name neither method, kept verbatim.
    """

    measured: tuple[str, ...] = ()
    estimated: tuple[str, ...] = ()
    other: tuple[str, ...] = ()

    @classmethod
    def from_components(cls, components: Iterable[ComponentEnergy]) -> Provenance:
        """The provenance of a total: only counted components, which are what it adds up."""
        measured: list[str] = []
        estimated: list[str] = []
        for c in components:
            if c.counted:
                (measured if c.source.method is Method.MEASURED else estimated).append(
                    c.source.sensor
                )
        return cls(measured=_merge(measured), estimated=_merge(estimated))

    @classmethod
    def parse(cls, text: str | None) -> Provenance:
        """Read an ``energy_source`` string back (also the joiners of older releases).

        A part that is not ``<method> (<sensors>)`` is kept in ``other``, so nothing is lost.
        """
        text = (text or "").strip()
        if not text or text.startswith("none"):
            return cls()
        text = text.removeprefix(MIXED_PREFIX)
        measured: list[str] = []
        estimated: list[str] = []
        other: list[str] = []
        for part in _ANY_JOINER.split(text):
            part = part.strip().removeprefix(MIXED_PREFIX)
            m = _PART.fullmatch(part)
            sensors = [s for s in m["sensors"].split(", ") if s] if m else []
            if m and m["method"] == Method.MEASURED.value:
                measured.extend(sensors)
            elif m and m["method"] == Method.ESTIMATED.value:
                estimated.extend(sensors)
            elif part:
                other.append(part)
        return cls(_merge(measured), _merge(estimated), _merge(other))

    @classmethod
    def combine(cls, sources: Iterable[Provenance | str | None]) -> Provenance:
        """One provenance for figures from several runs: every sensor and model of each."""
        total = cls()
        for s in sources:
            total = total + (s if isinstance(s, Provenance) else cls.parse(s))
        return total

    def __add__(self, other: Provenance) -> Provenance:
        return Provenance(
            _merge(self.measured, other.measured),
            _merge(self.estimated, other.estimated),
            _merge(self.other, other.other),
        )

    @property
    def methods(self) -> tuple[Method, ...]:
        """The methods behind the figure, estimated first (the canonical order)."""
        found = {Method.ESTIMATED: self.estimated, Method.MEASURED: self.measured}
        return tuple(m for m in sorted(found) if found[m])

    @property
    def mixed(self) -> bool:
        """Whether more than one method (or an unrecognised part) contributed."""
        return len(self.methods) + len(self.other) > 1

    def __str__(self) -> str:
        found = {Method.ESTIMATED: self.estimated, Method.MEASURED: self.measured}
        parts = [f"{m.value} ({', '.join(found[m])})" for m in self.methods]
        parts.extend(self.other)
        if not parts:
            return NONE_TEXT
        return parts[0] if len(parts) == 1 else MIXED_PREFIX + JOINER.join(parts)
