"""CPU identification by cpuinfo numbers (issue 19 §1): the parser, the rules, the estimate.

The cpuinfo texts under ``tests/data/cpuinfo`` are in the kernel's format:
``xeon-generic-family6-model207.txt`` is this development VM's own ``/proc/cpuinfo`` (two
processors); the others carry the numbers such machines report (the issue's "AMD EPYC"
VM: family 25 model 17; QEMU's ``EPYC-Genoa``, ``Cascadelake-Server`` and ``Cooperlake``
models; Azure's EPYC 9V74 and Google Cloud's Xeon Platinum 8481C custom parts; a
Threadripper 7980X, whose die is Genoa's; an AWS Graviton3, an Arm part).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests._cli import wattwise

from wattwise._errors import DataFileError
from wattwise.meters._cpu_identify import generation_rules, identify_generation, parse_rules
from wattwise.meters._cpu_table import cpu_table
from wattwise.meters._cpuinfo import CPUINFO_ENV, CpuInfo, parse_cpuinfo, read_cpuinfo
from wattwise.meters._estimate import (
    CPU_TDP_ENV,
    DEFAULT_W_PER_THREAD,
    UNCERTAINTY_CPU_KNOWN,
    UNCERTAINTY_CPU_UNKNOWN,
    CpuTimes,
    EstimateMeter,
)

CPUINFO = Path(__file__).resolve().parent / "data" / "cpuinfo"


def _meter(cpuinfo: Path, **kwargs: object) -> EstimateMeter:
    options: dict[str, object] = {
        "cpuinfo": cpuinfo,
        "visible_cpus": 2,
        "include_ram": False,
        "environ": {},
        "cpu_times": lambda: CpuTimes(busy_s=0.0, total_s=1.0),
    }
    options.update(kwargs)
    return EstimateMeter(**options)  # type: ignore[arg-type]


def _per_thread(*parts: tuple[float, int]) -> tuple[float, float]:
    """Middle and half-range/middle of TDP/threads over parts, written out independently."""
    values = [tdp / threads for tdp, threads in parts]
    low, high = min(values), max(values)
    return (low + high) / 2, (high - low) / (high + low)


# -- the parser --------------------------------------------------------------------------


def test_this_vms_cpuinfo_parses_to_its_numbers() -> None:
    info = read_cpuinfo(CPUINFO / "xeon-generic-family6-model207.txt")
    assert (info.vendor_id, info.family, info.model, info.stepping) == ("GenuineIntel", 6, 207, 2)
    assert info.model_name == "Intel(R) Xeon(R) Processor"
    assert {"avx512f", "amx_tile", "hypervisor"} <= info.flags
    assert info.signature() == "GenuineIntel family 6 (6h) model 207 (CFh) stepping 2"


def test_arm_cpuinfo_and_a_missing_file_give_no_x86_numbers(tmp_path: Path) -> None:
    arm = read_cpuinfo(CPUINFO / "graviton3-arm64.txt")
    assert (arm.vendor_id, arm.family, arm.model, arm.model_name) == ("", None, None, "")
    assert read_cpuinfo(tmp_path / "missing") == CpuInfo()


_WORD = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789_", min_size=1, max_size=12)
_NAME = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs", "Zl", "Zp")),
    max_size=40,
).map(str.strip)


@given(
    vendor=st.sampled_from(["GenuineIntel", "AuthenticAMD", "HygonGenuine"]),
    family=st.integers(0, 255),
    model=st.integers(0, 255),
    stepping=st.integers(0, 15),
    flags=st.frozensets(_WORD, max_size=30),
    name=_NAME,
    processors=st.integers(1, 4),
    pad=st.sampled_from(["\t", "\t\t", " ", ""]),
)
def test_parser_reads_back_what_the_kernel_format_writes(
    vendor: str,
    family: int,
    model: int,
    stepping: int,
    flags: frozenset[str],
    name: str,
    processors: int,
    pad: str,
) -> None:
    block = (
        f"vendor_id{pad}: {vendor}\ncpu family{pad}: {family}\nmodel{pad}: {model}\n"
        f"model name{pad}: {name}\nstepping{pad}: {stepping}\nflags{pad}: {' '.join(flags)}\n"
    )
    # Later processors differ: only the first block's numbers count.
    text = "".join(
        f"processor{pad}: {i}\n{block if i == 0 else block.replace(vendor, 'Other')}\n"
        for i in range(processors)
    )
    info = parse_cpuinfo(text)
    assert (info.vendor_id, info.family, info.model, info.stepping) == (
        vendor,
        family,
        model,
        stepping,
    )
    assert info.flags == flags
    assert info.model_name == name


@given(st.text(max_size=400))
def test_parser_never_raises_on_any_text(text: str) -> None:
    info = parse_cpuinfo(text)
    assert isinstance(info, CpuInfo)
    identify_generation(info)  # nor does identification


# -- the rules ---------------------------------------------------------------------------


def test_every_rule_is_sourced_and_built_from_published_parts() -> None:
    rules = generation_rules()
    assert len({r.rule for r in rules}) == len(rules)
    table = {s.model: s for s in cpu_table()}
    for rule in rules:
        assert rule.source and rule.parts, rule.rule
        for part in rule.parts:
            assert table[part.model] == part
            assert part.basis in ("vendor-spec", "green-algorithms"), part
            assert "amd.com" in part.source or "intel.com" in part.source, part
            # A labelled part belongs to the rule's generation.
            if part.generation:
                assert part.generation.split(" (")[0].split()[-1] in rule.generation, (
                    rule.rule,
                    part.model,
                )


@pytest.mark.parametrize(
    ("fixture", "rule", "parts"),
    [
        # Genoa: EPYC 9654 (360 W / 192) up to EPYC 9124 (200 W / 32).
        ("epyc-generic-family25-model17.txt", "amd-19h-11h-genoa", [(360, 192), (200, 32)]),
        ("epyc-genoa-qemu.txt", "amd-19h-11h-genoa", [(360, 192), (200, 32)]),
        # Custom cloud parts the table does not list: Azure's EPYC 9V74, GCP's 8481C.
        ("epyc-9v74-azure.txt", "amd-19h-11h-genoa", [(360, 192), (200, 32)]),
        # Sapphire Rapids: 8490H (350 W / 120) up to Gold 6430 (270 W / 64).
        ("xeon-8481c-gcp.txt", "intel-6-143-sapphire-rapids", [(350, 120), (270, 64)]),
        # Emerald Rapids (this VM): 8592+ (350 W / 128) up to Gold 6548Y+ (250 W / 64).
        (
            "xeon-generic-family6-model207.txt",
            "intel-6-207-emerald-rapids",
            [(350, 128), (250, 64)],
        ),
        # Cascade Lake by stepping 6: 8276 (165 W / 56) up to 6248R (205 W / 48).
        ("xeon-cascadelake-qemu.txt", "intel-6-85-s5-7-cascade-lake", [(165, 56), (205, 48)]),
        # Cooper Lake by stepping 10: Gold 6348H (165 W / 48) up to 8380H (250 W / 56).
        ("xeon-cooperlake-qemu.txt", "intel-6-85-s10-11-cooper-lake", [(165, 48), (250, 56)]),
    ],
)
def test_generic_and_custom_brands_resolve_to_their_generation(
    fixture: str, rule: str, parts: list[tuple[float, int]]
) -> None:
    meter = _meter(CPUINFO / fixture)
    components = meter.start(0.0)
    model = meter.cpu_model
    assert model is not None and model.generation is not None
    assert model.spec is None and meter.hint is None
    assert model.generation.rule.rule == rule
    middle, spread = _per_thread(*parts)
    # The extremes named above are the range's: the middle and spread follow from them.
    assert model.max_power_w == pytest.approx(2 * middle)
    assert model.generation.spread == pytest.approx(spread)
    assert model.relative_uncertainty == pytest.approx(math.hypot(UNCERTAINTY_CPU_KNOWN, spread))
    detail = components[0].source.detail
    assert f"cpuinfo rule {rule}" in detail
    assert model.generation.cpu.signature() in detail
    assert all(p.model in detail for p in model.generation.rule.parts)
    assert components[0].relative_uncertainty == model.relative_uncertainty
    assert rule in meter.probe().reason


def test_flags_decide_model_85_when_the_stepping_is_unknown() -> None:
    base = CpuInfo(vendor_id="GenuineIntel", family=6, model=85, model_name="Intel Xeon Processor")
    bf16 = identify_generation(replace(base, flags=frozenset({"avx512_vnni", "avx512_bf16"})))
    vnni = identify_generation(replace(base, flags=frozenset({"avx512_vnni"})))
    neither = identify_generation(replace(base, flags=frozenset({"avx512f"})))
    skylake = identify_generation(replace(base, stepping=4))
    assert bf16 is not None and bf16.rule.rule == "intel-6-85-bf16-cooper-lake"
    assert vnni is not None and vnni.rule.rule == "intel-6-85-vnni-cascade-lake"
    assert neither is None  # Skylake-SP or not: no stepping, no flag says
    assert skylake is not None and skylake.rule.rule == "intel-6-85-s0-4-skylake-sp"


@pytest.mark.parametrize(
    ("fixture", "brand_in_hint"),
    [
        # The Genoa die sold as a Threadripper: not an EPYC, so no server rule applies.
        ("threadripper-7980x.txt", "AMD Ryzen Threadripper 7980X 64-Cores"),
        ("graviton3-arm64.txt", "(no brand string)"),
    ],
)
def test_no_rule_keeps_the_default_and_the_hint(fixture: str, brand_in_hint: str) -> None:
    meter = _meter(CPUINFO / fixture)
    meter.start(0.0)
    model = meter.cpu_model
    assert model is not None and model.generation is None and model.spec is None
    assert model.max_power_w == pytest.approx(2 * DEFAULT_W_PER_THREAD)
    assert model.relative_uncertainty == UNCERTAINTY_CPU_UNKNOWN
    assert meter.hint is not None and brand_in_hint in meter.hint
    assert "not in the power table" in meter.probe().reason


def test_a_brand_in_the_table_and_a_given_tdp_win_over_the_rule(tmp_path: Path) -> None:
    genoa = (CPUINFO / "epyc-generic-family25-model17.txt").read_text()
    named = tmp_path / "cpuinfo"
    named.write_text(genoa.replace("model name\t: AMD EPYC\n", "model name\t: AMD EPYC 9654\n"))
    meter = _meter(named)
    meter.start(0.0)
    assert meter.cpu_model is not None and meter.cpu_model.generation is None
    assert meter.cpu_model.spec is not None and meter.cpu_model.spec.model == "EPYC 9654"
    given = _meter(CPUINFO / "epyc-generic-family25-model17.txt", environ={CPU_TDP_ENV: "360"})
    given.start(0.0)
    assert given.cpu_model is not None and given.cpu_model.tdp_w == 360
    assert "cpuinfo rule" not in given.cpu_model.detail()


def test_a_given_brand_reads_no_cpuinfo_unless_one_is_named() -> None:
    # The brand alone: nothing identifies it, the default applies (tests rely on this).
    alone = EstimateMeter(cpu_brand="AMD EPYC", visible_cpus=2, include_ram=False, environ={})
    alone.start(0.0)
    assert alone.cpu_model is not None and alone.cpu_model.generation is None
    path = str(CPUINFO / "epyc-generic-family25-model17.txt")
    named = EstimateMeter(
        cpu_brand="AMD EPYC", visible_cpus=2, include_ram=False, environ={CPUINFO_ENV: path}
    )
    named.start(0.0)
    assert named.cpu_model is not None and named.cpu_model.generation is not None


def test_a_malformed_rules_file_names_its_line() -> None:
    header = (
        "rule,vendor_id,family,model_min,model_max,stepping_min,stepping_max,flags,"
        "brand_word,generation,parts,source"
    )
    good = "r,AuthenticAMD,25,16,31,,,,epyc,Genoa,EPYC 9654,PPR"
    assert parse_rules(f"# c\n{header}\n{good}\n", "g.csv")[0].parts[0].model == "EPYC 9654"
    with pytest.raises(DataFileError, match=r"g\.csv:4: part 'EPYC 9999' is not a model"):
        parse_rules(f"# c\n{header}\n{good}\n{good.replace('9654', '9999')}\n", "g.csv")
    with pytest.raises(DataFileError, match=r"g\.csv:2: part 'EPYC 9B14' is a proxy"):
        parse_rules(f"{header}\n{good.replace('9654', '9B14')}\n", "g.csv")
    with pytest.raises(DataFileError, match="not a whole number"):
        parse_rules(f"{header}\n{good.replace(',25,', ',x,')}\n", "g.csv")
    with pytest.raises(DataFileError, match="unexpected columns"):
        parse_rules("rule,family\nr,1\n", "g.csv")


# -- the command line --------------------------------------------------------------------


@pytest.mark.slow
def test_meters_shows_the_matched_rule_for_an_injected_cpuinfo(child_env: dict[str, str]) -> None:
    genoa = str(CPUINFO / "epyc-generic-family25-model17.txt")
    proc = wattwise(dict(child_env, **{CPUINFO_ENV: genoa}), "meters", "--json")
    assert proc.returncode == 0, proc.stderr
    estimate = next(m for m in json.loads(proc.stdout)["meters"] if m["meter"] == "estimate")
    assert "EPYC 9004 Genoa (Zen 4)" in estimate["reason"]
    assert "cpuinfo rule amd-19h-11h-genoa" in estimate["reason"]
    assert "AuthenticAMD family 25 (19h) model 17 (11h)" in estimate["reason"]
    text = wattwise(dict(child_env, **{CPUINFO_ENV: genoa}), "meters")
    assert text.returncode == 0 and "amd-19h-11h-genoa" in text.stdout.replace("\n", "")
    arm = str(CPUINFO / "graviton3-arm64.txt")
    unknown = wattwise(dict(child_env, **{CPUINFO_ENV: arm}), "meters", "--json")
    reason = next(m for m in json.loads(unknown.stdout)["meters"] if m["meter"] == "estimate")
    assert "not in the power table" in reason["reason"], reason


def test_the_docs_list_every_rule_with_its_range() -> None:
    docs = (Path(__file__).resolve().parent.parent / "docs" / "estimate-model.md").read_text()
    for rule in generation_rules():
        found = identify_generation(
            CpuInfo(
                vendor_id=rule.vendor_id,
                family=rule.family,
                model=rule.model_min,
                stepping=rule.stepping_min,
                flags=rule.flags,
                model_name=rule.brand_word,
            )
        )
        assert found is not None, rule.rule
        row = f"| `{rule.rule}` |"
        assert row in docs, f"docs/estimate-model.md lacks rule {rule.rule}"
        line = next(ln for ln in docs.splitlines() if ln.startswith(row))
        if found.rule == rule:  # (a flag rule shadowed by a stepping rule is listed too)
            low, high = found.low_w_per_thread, found.high_w_per_thread
            assert f"| {low:.2f}-{high:.2f} |" in line, line
