"""Know the CPU when its brand string says little: cpuinfo's numbers resolved to a generation.

Hypervisors often report a bare family (``AMD EPYC``, ``Intel(R) Xeon(R) Processor``) and
clouds run custom parts the table does not list, but ``/proc/cpuinfo`` still gives the
vendor, ``cpu family``, ``model``, ``stepping`` and ``flags`` of the silicon. AMD family
19h model 11h is an EPYC 9004 "Genoa" (Zen 4); Intel family 6 model 207 (CFh) an
"Emerald Rapids" Xeon. The rules are the bundled ``data/cpu_generations.csv`` (each names
where its numbers come from: AMD's Processor Programming References, Intel's Software
Developer's Manual Vol. 4 Table 2-1, Linux's ``intel-family.h``); the first rule that
matches wins.

Each rule lists published parts of its generation, all rows of the CPU power table with
their own vendor source; their TDP / hardware threads give the generation's range of
W per logical CPU. The estimate uses the middle of that range, and the range's half-width
relative to it as the spread (docs/estimate-model.md, "Identified by cpuinfo").
"""

from __future__ import annotations

import functools
from collections.abc import Collection
from dataclasses import dataclass

from wattwise.meters._cpu_table import CpuSpec, cpu_table, normalise_brand
from wattwise.meters._cpuinfo import CpuInfo
from wattwise.meters._csv_table import load_table, parse_table

__all__ = [
    "CpuGeneration",
    "GenerationRule",
    "generation_rules",
    "identify_generation",
    "parse_rules",
]

_RULES_NAME = "cpu_generations.csv"
_COLUMNS = (
    "rule",
    "vendor_id",
    "family",
    "model_min",
    "model_max",
    "stepping_min",
    "stepping_max",
    "flags",
    "brand_word",
    "generation",
    "parts",
    "source",
)


@dataclass(frozen=True)
class GenerationRule:
    """One row of ``cpu_generations.csv``: which cpuinfo numbers mean which generation.

    Attributes:
        rule: the rule's name, e.g. ``"amd-19h-11h-genoa"``.
        vendor_id: cpuinfo's ``vendor_id`` it needs, e.g. ``"AuthenticAMD"``.
        family: ``cpu family`` it needs (decimal).
        model_min: lowest ``model`` it takes (decimal).
        model_max: highest ``model`` it takes (decimal).
        stepping_min: lowest ``stepping`` it takes, or None for any.
        stepping_max: highest ``stepping`` it takes, or None for any.
        flags: cpuinfo flags that must all be present (empty: none needed).
        brand_word: a word the brand must contain (``"epyc"``: the same die is sold as a
            desktop part), or ``""``.
        generation: the generation's name, e.g. ``"EPYC 9004 Genoa (Zen 4)"``.
        parts: the published parts (table models) whose figures give the range.
        source: where the family and model numbers come from.
    """

    rule: str
    vendor_id: str
    family: int
    model_min: int
    model_max: int
    stepping_min: int | None
    stepping_max: int | None
    flags: frozenset[str]
    brand_word: str
    generation: str
    parts: tuple[CpuSpec, ...]
    source: str

    def matches(self, cpu: CpuInfo, brand_words: Collection[str]) -> bool:
        """Whether ``cpu`` (with its brand's normalised words) falls under this rule."""
        if cpu.vendor_id != self.vendor_id or cpu.family != self.family or cpu.model is None:
            return False
        if not self.model_min <= cpu.model <= self.model_max:
            return False
        if self.stepping_min is not None or self.stepping_max is not None:
            low = self.stepping_min if self.stepping_min is not None else 0
            high = self.stepping_max if self.stepping_max is not None else low
            if cpu.stepping is None or not low <= cpu.stepping <= high:
                return False
        if not self.flags <= cpu.flags:
            return False
        return not self.brand_word or self.brand_word in brand_words

    def describe(self) -> str:
        """What the rule asks for, e.g. ``AuthenticAMD family 25 model 16-31, 'epyc' in brand``."""
        models = (
            str(self.model_min)
            if self.model_min == self.model_max
            else f"{self.model_min}-{self.model_max}"
        )
        text = f"{self.vendor_id} family {self.family} model {models}"
        if self.stepping_min is not None:
            text += f" stepping {self.stepping_min}-{self.stepping_max}"
        if self.flags:
            text += " with " + " ".join(sorted(self.flags))
        if self.brand_word:
            text += f", {self.brand_word!r} in brand"
        return text


def _w_per_thread(spec: CpuSpec) -> float:
    return spec.tdp_w / (spec.threads or spec.cores)


@dataclass(frozen=True)
class CpuGeneration:
    """A CPU identified by a rule: the generation and its range of power per logical CPU.

    Attributes:
        rule: the rule that matched.
        cpu: what cpuinfo said.
    """

    rule: GenerationRule
    cpu: CpuInfo

    @property
    def low_w_per_thread(self) -> float:
        """Lowest TDP / threads among the generation's parts. Units: W per logical CPU."""
        return min(_w_per_thread(p) for p in self.rule.parts)

    @property
    def high_w_per_thread(self) -> float:
        """Highest TDP / threads among the generation's parts. Units: W per logical CPU."""
        return max(_w_per_thread(p) for p in self.rule.parts)

    @property
    def w_per_thread(self) -> float:
        """The middle of the range, what one logical CPU is charged. Units: W."""
        return (self.low_w_per_thread + self.high_w_per_thread) / 2

    @property
    def spread(self) -> float:
        """Half the range relative to its middle (0 when every part agrees). Dimensionless."""
        low, high = self.low_w_per_thread, self.high_w_per_thread
        return (high - low) / (high + low)

    def detail(self) -> str:
        """One line: the rule, what cpuinfo said, the range and the parts it comes from."""
        parts = ", ".join(p.model for p in self.rule.parts)
        return (
            f"identified by cpuinfo rule {self.rule.rule} ({self.rule.describe()}; "
            f"{self.cpu.signature()}; {self.rule.source}): "
            f"{self.low_w_per_thread:.3g}-{self.high_w_per_thread:.3g} W per logical CPU "
            f"(TDP/threads of {len(self.rule.parts)} published parts: {parts}), "
            f"{self.w_per_thread:.3g} W used, spread {self.spread:.0%}"
        )


def _int(text: str, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{what} {text!r} is not a whole number") from None


def _parts(names: str) -> tuple[CpuSpec, ...]:
    by_model = {s.model: s for s in cpu_table()}
    parts: list[CpuSpec] = []
    for name in (n.strip() for n in names.split(";")):
        spec = by_model.get(name)
        if spec is None:
            raise ValueError(f"part {name!r} is not a model of cpu_power.csv")
        if spec.basis == "proxy":
            raise ValueError(f"part {name!r} is a proxy row, not a published part")
        parts.append(spec)
    if not parts:
        raise ValueError("no parts")
    return tuple(parts)


def _rule(record: dict[str, str]) -> GenerationRule:
    stepping_min = record["stepping_min"].strip()
    stepping_max = record["stepping_max"].strip()
    if bool(stepping_min) != bool(stepping_max):
        raise ValueError("give both stepping_min and stepping_max, or neither")
    rule = GenerationRule(
        rule=record["rule"],
        vendor_id=record["vendor_id"],
        family=_int(record["family"], "family"),
        model_min=_int(record["model_min"], "model_min"),
        model_max=_int(record["model_max"], "model_max"),
        stepping_min=_int(stepping_min, "stepping_min") if stepping_min else None,
        stepping_max=_int(stepping_max, "stepping_max") if stepping_max else None,
        flags=frozenset(record["flags"].split()),
        brand_word=record["brand_word"].strip().lower(),
        generation=record["generation"],
        parts=_parts(record["parts"]),
        source=record["source"],
    )
    if not rule.rule or not rule.vendor_id or not rule.generation or not rule.source:
        raise ValueError("rule, vendor_id, generation and source must not be empty")
    if rule.model_min > rule.model_max:
        raise ValueError("model_min is above model_max")
    return rule


def parse_rules(text: str, where: str) -> tuple[GenerationRule, ...]:
    """Parse the text of a rules file (comment lines start with ``#``).

    Raises:
        DataFileError: a malformed row, named by file and line.
    """
    return parse_table(text, where, _COLUMNS, _rule)


@functools.cache
def generation_rules() -> tuple[GenerationRule, ...]:
    """The bundled rules, in file order (the first that matches wins).

    Raises:
        DataFileError: the bundled file is malformed (a broken installation).
    """
    return load_table("wattwise.meters", _RULES_NAME, parse_rules)


def identify_generation(
    cpu: CpuInfo,
    brand: str = "",
    rules: tuple[GenerationRule, ...] | None = None,
) -> CpuGeneration | None:
    """The generation of a CPU from its cpuinfo numbers, or None when no rule matches.

    Args:
        cpu: what cpuinfo said (:func:`wattwise.meters._cpuinfo.read_cpuinfo`).
        brand: the brand string (some rules need a word of it, e.g. ``epyc``); default:
            cpuinfo's own ``model name``.
        rules: the rules to try; default: the bundled ones.
    """
    # QEMU's CPU models say "AMD EPYC-Genoa Processor": hyphens separate words here.
    words = set(normalise_brand(brand or cpu.model_name).replace("-", " ").split())
    for rule in generation_rules() if rules is None else rules:
        if rule.matches(cpu, words):
            return CpuGeneration(rule=rule, cpu=cpu)
    return None
