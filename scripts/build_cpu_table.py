"""Build wattwise's CPU power table, ``src/wattwise/meters/data/cpu_power.csv``.

Two kinds of rows go in:

* every CPU of the Green Algorithms table ``TDP_cpu.csv`` (Lannelongue, Grealey & Inouye,
  "Green Algorithms: Quantifying the Carbon Footprint of Computation", Advanced Science
  2021, doi:10.1002/advs.202100707; data folder ``data/latest`` at commit 30df2fe; licence
  CC BY 4.0), re-shaped into this project's columns with the credit kept on each row,
  plus each part's hardware threads (``GA_THREADS``, from the vendors' specifications:
  that table lists cores only);
* current server CPUs this script adds (AMD EPYC 7002/7003/9004/9005, Intel Xeon Scalable
  Skylake to Granite Rapids), each with the vendor's product specification it comes from,
  and custom cloud SKUs whose TDP the vendor does not publish, which borrow the figures of
  a named retail part (``basis=proxy``) and say so.

The output is deterministic: rows sorted by vendor and model, no timestamps, the input's
SHA-256 in the header. Run from the repository root::

    python scripts/build_cpu_table.py                     # default input and output
    python scripts/build_cpu_table.py PATH/TDP_cpu.csv -o OUT.csv
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import re
import sys
from dataclasses import dataclass, replace
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SOURCE = REPO_ROOT.parent / "shared" / "data" / "carbon" / "TDP_cpu.csv"
DEFAULT_OUTPUT = REPO_ROOT / "src" / "wattwise" / "meters" / "data" / "cpu_power.csv"

COLUMNS = (
    "model",
    "vendor",
    "tdp_w",
    "cores",
    "threads",
    "generation",
    "launch_year",
    "basis",
    "source",
    "note",
)

GA_CREDIT = (
    "Green Algorithms TDP_cpu.csv (Lannelongue, Grealey & Inouye 2021, "
    "doi:10.1002/advs.202100707; commit 30df2fe; CC BY 4.0)"
)
GA_ROW_CREDIT = "Green Algorithms (Lannelongue et al. 2021, CC BY 4.0)"
GA_HEADER = ("model", "TDP", "n_cores", "TDP_per_core", "Release_year", "source")

# The Green Algorithms rows this script names differently, and why.
GA_RENAMES = {
    # The row cites AMD's EPYC 7002 datasheet: it is the EPYC 7552.
    "AMD 7552": "EPYC 7552",
    # Spelling.
    "Rasberry Pi 4": "Raspberry Pi 4",
}
# "Any" is the calculator's per-core default for an unknown CPU (12 W/core), not a CPU; the
# estimate meter cites it for its own default instead of listing it as a model.
GA_SKIP = {"Any"}

# Hardware threads per package of every Green Algorithms row (its table lists cores only),
# from the vendor's product specification: AMD's product pages and specification list
# (https://www.amd.com/en/products/specifications/processors.html), Intel ARK
# (https://ark.intel.com), the Raspberry Pi 4 Model B specifications. Parts with SMT run 2
# threads per core; the exceptions are marked. Without these the estimate took the guest's
# threads per core, which VMs often report as 1 on SMT hosts (issue 12, item 7).
GA_THREADS: dict[str, int] = {
    # AMD EPYC, Ryzen, Athlon (Zen: SMT, 2 per core)
    "EPYC 7251": 16,
    "EPYC 7343": 32,
    "EPYC 7513": 64,
    "EPYC 7552": 96,
    "EPYC 7642": 96,
    "EPYC 7763": 128,
    "EPYC 7773X": 128,
    "EPYC 7H12": 128,
    "EPYC 7V73X": 128,
    "Athlon 3000G": 4,
    "Ryzen 3 3200U": 4,
    "Ryzen 5 1600": 12,
    "Ryzen 5 2600": 12,
    "Ryzen 5 3400G": 8,
    "Ryzen 5 3500U": 8,
    "Ryzen 5 3600": 12,
    "Ryzen 5 3600X": 12,
    "Ryzen 7 2700X": 16,
    "Ryzen 7 3700X": 16,
    "Ryzen 7 3800X": 16,
    "Ryzen 9 3900X": 24,
    "Ryzen 9 3950X": 32,
    "Ryzen Threadripper 2990WX": 64,
    "Ryzen Threadripper 3990X": 128,
    # AMD without SMT: Ryzen 3 2200G/3200G (SMT disabled), and the Bulldozer-family parts
    # (A8, A9, FX), whose "cores" are module halves with one thread each.
    "Ryzen 3 2200G": 4,
    "Ryzen 3 3200G": 4,
    "A8-7680": 4,
    "A9-9425 SoC": 2,
    "FX-6300": 6,
    "FX-8350": 8,
    # Intel Core with Hyper-Threading (2 per core)
    "Core i3-10100": 8,
    "Core i3-10300": 8,
    "Core i3-10320": 8,
    "Core i3-10350K": 8,
    "Core i5-10400": 12,
    "Core i5-10400F": 12,
    "Core i5-10500": 12,
    "Core i5-10600": 12,
    "Core i5-10600K": 12,
    "Core i5-1145G7": 8,
    "Core i7-10700": 16,
    "Core i7-10700K": 16,
    "Core i7-4790": 8,
    "Core i7-4930K": 12,
    "Core i7-6700K": 8,
    "Core i7-8700K": 12,
    "Core i9-10900K": 20,
    "Core i9-10900KF": 20,
    "Core i9-10900XE": 20,  # the i9-10900X's figures (165 W, 10 cores): Cascade Lake-X, HT
    "Core i9-10920XE": 24,  # the i9-10920X's figures (165 W, 12 cores): Cascade Lake-X, HT
    "Core i9-9900K": 16,
    # Intel Core without Hyper-Threading (1 per core)
    "Core 2 Quad Q6600": 4,
    "Core i3-9100": 4,
    "Core i3-9100F": 4,
    "Core i5-3570K": 4,
    "Core i5-4460": 4,
    "Core i5-9400": 6,
    "Core i5-9400F": 6,
    "Core i5-9600KF": 6,
    "Core i7-9700F": 8,
    "Core i7-9700K": 8,
    # Intel Core i9-12900K: 8 P-cores with HT + 8 E-cores without = 24 threads, 16 cores.
    "Core i9-12900K": 24,
    # Intel Xeon with Hyper-Threading (2 per core)
    "Xeon E5-2650 v2": 16,
    "Xeon E5-2660 v3": 20,
    "Xeon E5-2665": 16,
    "Xeon E5-2670": 16,
    "Xeon E5-2670 v2": 20,
    "Xeon E5-2680 v3": 24,
    "Xeon E5-2683 v4": 32,
    "Xeon E5-2690 v2": 20,
    "Xeon E5-2690 v3": 24,
    "Xeon E5-2695 v3": 28,
    "Xeon E5-2695 v4": 36,
    "Xeon E5-2697 v4": 36,
    "Xeon E5-2699 v3": 36,
    "Xeon E5-2699 v4": 44,
    "Xeon E5-4610 v4": 20,
    "Xeon E5-4620": 16,
    "Xeon E5-4650L": 16,
    "Xeon E7-4850 v2": 24,
    "Xeon E7-8867 v3": 32,
    "Xeon E7-8880 v4": 44,
    "Xeon Gold 6142": 32,
    "Xeon Gold 6148": 40,
    "Xeon Gold 6248": 40,
    "Xeon Gold 6252": 48,
    "Xeon L5640": 12,
    "Xeon Platinum 8260": 48,
    "Xeon Platinum 8268": 48,
    "Xeon Platinum 9282": 112,
    "Xeon X5660": 12,
    # Intel Xeon without Hyper-Threading
    "Xeon X3430": 4,
    # Xeon Phi 5110P: 4 hardware threads per core (60 cores, 240 threads).
    "Xeon Phi 5110P": 240,
    # Raspberry Pi 4 (BCM2711, 4 Cortex-A72, no SMT)
    "Raspberry Pi 4": 4,
}
THREADS_SPEC = {
    "AMD": "AMD product specifications (https://www.amd.com/en/products/specifications/processors.html)",
    "Intel": "Intel ARK product specifications (https://ark.intel.com)",
    "Raspberry Pi": (
        "Raspberry Pi 4 Model B specifications "
        "(https://www.raspberrypi.com/products/raspberry-pi-4-model-b/specifications/)"
    ),
}

AMD_SPEC = (
    "AMD product specifications, AMD EPYC {sku} "
    "(https://www.amd.com/en/products/specifications/server-processor.html)"
)
INTEL_SPEC = "Intel ARK product specifications, Intel Xeon {name} Processor (https://ark.intel.com)"


@dataclass(frozen=True)
class Row:
    """One row of the output table (all text, as written)."""

    model: str
    vendor: str
    tdp_w: str
    cores: str
    threads: str = ""
    generation: str = ""
    launch_year: str = ""
    basis: str = "vendor-spec"
    source: str = ""
    note: str = ""

    def values(self) -> list[str]:
        return [getattr(self, c) for c in COLUMNS]


def _amd(sku: str, tdp_w: int, cores: int, generation: str, year: int) -> Row:
    return Row(
        model=f"EPYC {sku}",
        vendor="AMD",
        tdp_w=str(tdp_w),
        cores=str(cores),
        threads=str(2 * cores),
        generation=generation,
        launch_year=str(year),
        source=AMD_SPEC.format(sku=sku),
    )


def _intel(
    name: str, tdp_w: int, cores: int, generation: str, year: int, threads_per_core: int = 2
) -> Row:
    return Row(
        model=f"Xeon {name}",
        vendor="Intel",
        tdp_w=str(tdp_w),
        cores=str(cores),
        threads=str(threads_per_core * cores),
        generation=generation,
        launch_year=str(year),
        source=INTEL_SPEC.format(name=name),
    )


NAPLES, ROME, MILAN, GENOA, BERGAMO, SIENA, TURIN = (
    "EPYC 7001 Naples (Zen)",
    "EPYC 7002 Rome (Zen 2)",
    "EPYC 7003 Milan (Zen 3)",
    "EPYC 9004 Genoa (Zen 4)",
    "EPYC 9004 Bergamo (Zen 4c)",
    "EPYC 8004 Siena (Zen 4c)",
    "EPYC 9005 Turin (Zen 5)",
)
SKL, CLX, CPX, ICX, SPR, EMR, GNR, SRF = (
    "Xeon Scalable 1st gen Skylake-SP",
    "Xeon Scalable 2nd gen Cascade Lake",
    "Xeon Scalable 3rd gen Cooper Lake",
    "Xeon Scalable 3rd gen Ice Lake-SP",
    "Xeon Scalable 4th gen Sapphire Rapids",
    "Xeon Scalable 5th gen Emerald Rapids",
    "Xeon 6 Granite Rapids (P-core)",
    "Xeon 6 Sierra Forest (E-core)",
)

# Default TDP (W) and core count from the vendor's specification of each part; all of
# these run two hardware threads per core except Sierra Forest (one). Parts the Green
# Algorithms table already lists (EPYC 7H12/7552/7642/7763/7513/7343, Xeon Platinum
# 8260/8268, Gold 6142/6148/6248/6252) are left to it.
ADDED: tuple[Row, ...] = (
    # AMD EPYC 7001 "Naples"
    _amd("7601", 180, 32, NAPLES, 2017),
    _amd("7551", 180, 32, NAPLES, 2017),
    _amd("7451", 180, 24, NAPLES, 2017),
    # AMD EPYC 7002 "Rome"
    _amd("7742", 225, 64, ROME, 2019),
    _amd("7702", 200, 64, ROME, 2019),
    _amd("7502", 180, 32, ROME, 2019),
    _amd("7452", 155, 32, ROME, 2019),
    _amd("7402", 180, 24, ROME, 2019),
    _amd("7302", 155, 16, ROME, 2019),
    # AMD EPYC 7003 "Milan"
    _amd("7713", 225, 64, MILAN, 2021),
    _amd("7663", 240, 56, MILAN, 2021),
    _amd("7643", 225, 48, MILAN, 2021),
    _amd("7543", 225, 32, MILAN, 2021),
    _amd("7443", 200, 24, MILAN, 2021),
    _amd("7313", 155, 16, MILAN, 2021),
    # AMD EPYC 9004 "Genoa" and "Bergamo"
    _amd("9654", 360, 96, GENOA, 2022),
    _amd("9554", 360, 64, GENOA, 2022),
    _amd("9454", 290, 48, GENOA, 2022),
    _amd("9354", 280, 32, GENOA, 2022),
    _amd("9334", 210, 32, GENOA, 2022),
    _amd("9254", 200, 24, GENOA, 2022),
    _amd("9124", 200, 16, GENOA, 2022),
    _amd("9754", 360, 128, BERGAMO, 2023),
    _amd("9734", 340, 112, BERGAMO, 2023),
    # AMD EPYC 8004 "Siena" (the Zen 4c die of Bergamo, CPU family 19h models A0h-AFh too)
    _amd("8534P", 200, 64, SIENA, 2023),
    _amd("8324P", 180, 32, SIENA, 2023),
    _amd("8024P", 90, 8, SIENA, 2023),
    # AMD EPYC 9005 "Turin"
    _amd("9965", 500, 192, TURIN, 2024),
    _amd("9755", 500, 128, TURIN, 2024),
    _amd("9655", 400, 96, TURIN, 2024),
    _amd("9555", 360, 64, TURIN, 2024),
    _amd("9455", 300, 48, TURIN, 2024),
    _amd("9355", 280, 32, TURIN, 2024),
    # Intel Xeon Scalable 1st gen "Skylake-SP"
    _intel("Platinum 8180", 205, 28, SKL, 2017),
    _intel("Platinum 8168", 205, 24, SKL, 2017),
    _intel("Platinum 8160", 150, 24, SKL, 2017),
    _intel("Gold 6154", 200, 18, SKL, 2017),
    # 2nd gen "Cascade Lake"
    _intel("Platinum 8280", 205, 28, CLX, 2019),
    _intel("Platinum 8276", 165, 28, CLX, 2019),
    _intel("Gold 6230", 125, 20, CLX, 2019),
    _intel("Gold 6248R", 205, 24, CLX, 2020),
    # 3rd gen "Cooper Lake" (4- and 8-socket parts)
    _intel("Platinum 8380H", 250, 28, CPX, 2020),
    _intel("Platinum 8376H", 205, 28, CPX, 2020),
    _intel("Gold 6348H", 165, 24, CPX, 2020),
    # 3rd gen "Ice Lake-SP"
    _intel("Platinum 8380", 270, 40, ICX, 2021),
    _intel("Platinum 8368", 270, 38, ICX, 2021),
    _intel("Platinum 8358", 250, 32, ICX, 2021),
    _intel("Gold 6348", 235, 28, ICX, 2021),
    _intel("Gold 6338", 205, 32, ICX, 2021),
    # 4th gen "Sapphire Rapids"
    _intel("Platinum 8490H", 350, 60, SPR, 2023),
    _intel("Platinum 8480+", 350, 56, SPR, 2023),
    _intel("Platinum 8468", 350, 48, SPR, 2023),
    _intel("Gold 6448Y", 225, 32, SPR, 2023),
    _intel("Gold 6430", 270, 32, SPR, 2023),
    # 5th gen "Emerald Rapids"
    _intel("Platinum 8592+", 350, 64, EMR, 2023),
    _intel("Platinum 8580", 350, 60, EMR, 2023),
    _intel("Gold 6548Y+", 250, 32, EMR, 2023),
    # Xeon 6 "Granite Rapids" (6900P)
    _intel("6980P", 500, 128, GNR, 2024),
    _intel("6972P", 500, 96, GNR, 2024),
    _intel("6960P", 500, 72, GNR, 2024),
    # Xeon 6 "Sierra Forest" (6700E): E-cores, one thread per core
    _intel("6780E", 330, 144, SRF, 2024, threads_per_core=1),
    _intel("6766E", 250, 144, SRF, 2024, threads_per_core=1),
)

# Custom cloud SKUs: (model, vendor, where it is deployed, retail part whose figures it
# borrows). Neither Intel nor AMD publishes a TDP for these parts; the retail part is the
# one of the same generation with the same core count, so the watts per hardware thread,
# which is what a VM's estimate depends on, should be close. The estimate meter gives
# these rows a wider uncertainty.
PROXIES: tuple[tuple[str, str, str, str], ...] = (
    ("Xeon Platinum 8175M", "Intel", "AWS", "Xeon Platinum 8168"),
    ("Xeon Platinum 8259CL", "Intel", "AWS", "Xeon Platinum 8260"),
    ("Xeon Platinum 8275CL", "Intel", "AWS", "Xeon Platinum 8268"),
    ("Xeon Platinum 8375C", "Intel", "AWS", "Xeon Platinum 8358"),
    ("Xeon Platinum 8488C", "Intel", "AWS", "Xeon Platinum 8468"),
    ("Xeon Platinum 8480C", "Intel", "NVIDIA DGX H100 and cloud GPU hosts", "Xeon Platinum 8480+"),
    ("EPYC 7B12", "AMD", "Google Cloud", "EPYC 7742"),
    ("EPYC 7B13", "AMD", "Google Cloud", "EPYC 7713"),
    ("EPYC 9B14", "AMD", "Google Cloud", "EPYC 9654"),
    ("EPYC 7R32", "AMD", "AWS", "EPYC 7642"),
    ("EPYC 7R13", "AMD", "AWS", "EPYC 7643"),
    ("EPYC 9R14", "AMD", "AWS", "EPYC 9654"),
    ("EPYC 7V12", "AMD", "Microsoft Azure", "EPYC 7742"),
    ("EPYC 7V13", "AMD", "Microsoft Azure", "EPYC 7763"),
)


def _vendor(model: str) -> str:
    """The vendor of a Green Algorithms model name (the table has no vendor column)."""
    first = model.split()[0].lower()
    if first in {"core", "xeon"}:
        return "Intel"
    if first in {"amd", "epyc", "ryzen", "athlon"} or re.match(r"(a\d+|fx)-", first):
        return "AMD"
    if first == "raspberry":
        return "Raspberry Pi"
    raise SystemExit(f"build_cpu_table: cannot tell the vendor of {model!r}; add a rule")


def _number(text: str, what: str, line: int) -> str:
    try:
        value = float(text)
    except ValueError:
        raise SystemExit(f"build_cpu_table: line {line}: {what} {text!r} is not a number") from None
    if value <= 0:
        raise SystemExit(f"build_cpu_table: line {line}: {what} {text!r} is not positive")
    return f"{value:g}"


def read_green_algorithms(text: str) -> list[Row]:
    """Rows of the Green Algorithms ``TDP_cpu.csv`` (first line units, header on the 2nd)."""
    lines = text.splitlines()
    if len(lines) < 3:
        raise SystemExit("build_cpu_table: the input has no data rows")
    reader = csv.DictReader(io.StringIO("\n".join(lines[1:])))
    missing = [c for c in GA_HEADER if c not in (reader.fieldnames or [])]
    if missing:
        raise SystemExit(f"build_cpu_table: input header lacks {missing} (is it TDP_cpu.csv?)")
    rows: list[Row] = []
    for line_no, record in enumerate(reader, start=3):
        raw = (record["model"] or "").strip()
        if not raw or raw in GA_SKIP:
            continue
        model = GA_RENAMES.get(raw, raw)
        vendor = _vendor(model)
        if vendor == "AMD" and model.startswith("AMD "):
            model = model[len("AMD ") :]
        original = (record["source"] or "").strip()
        note = f"renamed from {raw!r}" if model != raw and raw in GA_RENAMES else ""
        year = (record["Release_year"] or "").strip()
        threads = GA_THREADS.get(model)
        if threads is None:
            raise SystemExit(
                f"build_cpu_table: line {line_no}: no thread count for {model!r}; add it to "
                "GA_THREADS from the vendor's specification"
            )
        cores = _number(record["n_cores"], "n_cores", line_no)
        if threads < float(cores):
            raise SystemExit(f"build_cpu_table: {model!r}: {threads} threads < {cores} cores")
        rows.append(
            Row(
                model=model,
                vendor=vendor,
                tdp_w=_number(record["TDP"], "TDP", line_no),
                cores=cores,
                threads=str(threads),
                launch_year=year,
                basis="green-algorithms",
                source=(
                    f"{GA_ROW_CREDIT}; original source: {original or 'none given'}; "
                    f"threads: {THREADS_SPEC[vendor]}"
                ),
                note=note,
            )
        )
    stale = sorted(set(GA_THREADS) - {r.model for r in rows})
    if stale:
        raise SystemExit(f"build_cpu_table: GA_THREADS names parts not in the input: {stale}")
    return rows


def _key(model: str) -> str:
    return " ".join(model.lower().split())


def build_rows(ga_rows: list[Row]) -> list[Row]:
    """All output rows, checked for duplicates and sorted by vendor then model."""
    by_key: dict[str, Row] = {}
    for row in (*ga_rows, *ADDED):
        key = _key(row.model)
        if key in by_key:
            raise SystemExit(f"build_cpu_table: {row.model!r} is listed twice")
        by_key[key] = row
    for model, vendor, where, retail in PROXIES:
        target = by_key.get(_key(retail))
        if target is None:
            raise SystemExit(f"build_cpu_table: proxy {model!r} names unknown part {retail!r}")
        if _key(model) in by_key:
            raise SystemExit(f"build_cpu_table: {model!r} is listed twice")
        by_key[_key(model)] = replace(
            target,
            model=model,
            vendor=vendor,
            basis="proxy",
            source=target.source,
            note=(
                f"custom SKU ({where}); the vendor publishes no TDP for it; "
                f"figures of the retail {retail} (same generation, same core count)"
            ),
        )
    return sorted(by_key.values(), key=lambda r: (r.vendor.lower(), _key(r.model)))


def render(rows: list[Row], source_sha256: str) -> str:
    """The CSV text: a provenance comment, the header, the rows."""
    out = io.StringIO()
    out.write("# wattwise CPU power table: TDP (W), cores and hardware threads per package.\n")
    out.write("# Generated by scripts/build_cpu_table.py; edit the script, not this file.\n")
    out.write(f"# basis=green-algorithms rows: {GA_CREDIT}.\n")
    out.write(f"# Input TDP_cpu.csv sha256: {source_sha256}\n")
    out.write("# basis=vendor-spec rows: the vendor product specification named in 'source'.\n")
    out.write("# basis=proxy rows: custom cloud SKUs carrying a named retail part's figures.\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        writer.writerow(row.values())
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "source",
        nargs="?",
        type=Path,
        default=DEFAULT_SOURCE,
        help="Green Algorithms TDP_cpu.csv (default: ../shared/data/carbon/TDP_cpu.csv)",
    )
    parser.add_argument("-o", "--output", type=Path, default=DEFAULT_OUTPUT, help="CSV to write")
    args = parser.parse_args(argv)
    raw = args.source.read_bytes()
    rows = build_rows(read_green_algorithms(raw.decode("utf-8-sig")))
    text = render(rows, hashlib.sha256(raw).hexdigest())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(text, encoding="utf-8", newline="")
    print(f"wrote {len(rows)} CPUs to {args.output}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
