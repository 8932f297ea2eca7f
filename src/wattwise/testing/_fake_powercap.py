"""A real powercap sysfs tree on disk whose RAPL counters a test can drive.

:class:`FakePowercap` lays out files and links the way Linux does, so the code under test
walks a genuine directory tree, follows genuine symlinks and hits genuine read errors::

    <base>/devices/virtual/powercap/intel-rapl/                  control type
    <base>/devices/virtual/powercap/intel-rapl/intel-rapl:0/     package-0
    <base>/devices/virtual/powercap/intel-rapl/intel-rapl:0/intel-rapl:0:0/   core
    <base>/class/powercap/intel-rapl       -> ../../devices/virtual/powercap/intel-rapl
    <base>/class/powercap/intel-rapl:0     -> ../../devices/.../intel-rapl:0
    <base>/class/powercap/intel-rapl:0:0   -> ../../devices/.../intel-rapl:0/intel-rapl:0:0

Each zone directory holds ``name``, ``energy_uj``, ``max_energy_range_uj``, ``enabled``,
``uevent``, ``constraint_N_{name,power_limit_uw,time_window_us,max_power_uw}``, a ``power/``
directory, and ``device`` and ``subsystem`` links back up the tree, as sysfs does. Pass
:attr:`FakePowercap.root` wherever ``/sys/class/powercap`` would go.

Example::

    fake = FakePowercap(tmp_path)
    package = fake.add_socket(max_power_w=125.0, dram=True)
    meter = RaplMeter(root=fake.root)
    meter.start(now_s=0.0)
    fake.advance(package, 12.5)          # J
    meter.read(now_s=1.0)                # cpu:package-0 reports 12.5 J

Counters are kept in memory and written to disk atomically (a temporary file renamed over
``energy_uj``), so a reader in another thread sees the old value or the new one, never a
half-written file, as with the kernel's sysfs.

Multi-die packages come in two kinds, and :meth:`FakePowercap.add_multi_die_socket` builds
either: *mirrored* dies (AMD Zen 1 and some Zen 2 parts, e.g. Threadripper 1950X), where
every ``package-N-die-M`` zone shows the one socket-wide counter, and *independent* dies
(Intel Cascade Lake AP), each with its own counter. A mirrored zone's ``energy_uj`` is a
link to the first die's file, so every zone shows the same value at every instant, as
reads of one MSR do; :meth:`FakePowercap.advance` on any of them moves that one counter,
and the failure methods (``make_unreadable``...) act on that one counter's file.

Why one module of ~550 lines: it is one simulated sysfs tree, :class:`FakePowercap`, and
the thread that drives it; every method writes the same files under the same lock.
"""

from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Literal

__all__ = [
    "DEFAULT_DRAM_RANGE_UJ",
    "DEFAULT_PACKAGE_RANGE_UJ",
    "FakePowercap",
    "PowerDriver",
]

#: ``max_energy_range_uj`` of a package zone on a typical Intel CPU (2^32 ticks of 61 µJ).
DEFAULT_PACKAGE_RANGE_UJ = 262_143_328_850
#: ``max_energy_range_uj`` of a server dram zone (2^32 ticks of 15.3 µJ).
DEFAULT_DRAM_RANGE_UJ = 65_712_999_613

_UJ_PER_J = 1_000_000
_CONSTRAINT_NAMES = ("long_term", "short_term", "peak_power")
_State = Literal["ok", "unreadable", "empty"]


@dataclass
class _FakeZone:
    zone_id: str
    directory: Path  # the real directory under devices/virtual/powercap
    range_uj: int
    offset_uj: int  # counter value when nothing had been advanced
    advanced_uj: int = 0  # every µJ advance() ever added, wraps not subtracted
    residual_uj: float = 0.0  # sub-µJ remainder carried to the next advance
    state: _State = "ok"
    mode: int = 0o444  # permission bits of energy_uj
    children: int = 0

    @property
    def counter_uj(self) -> int:
        # The counter shows 0..range_uj inclusive, then starts again at 0.
        return (self.offset_uj + self.advanced_uj) % (self.range_uj + 1)

    @property
    def energy_path(self) -> Path:
        return self.directory / "energy_uj"

    @property
    def hidden_path(self) -> Path:
        return self.directory / ".energy_uj.hidden"


class FakePowercap:
    """A powercap sysfs tree under ``base`` whose RAPL counters tests advance.

    Zones are named by their sysfs directory (``"intel-rapl:0"``, ``"intel-rapl:0:2"``,
    ``"intel-rapl-mmio:0"``): the ``add_*`` methods return that id and every other method
    takes it. Thread-safe: a :class:`PowerDriver` may advance counters while a meter reads.

    Args:
        base: an existing directory; the tree is created inside it.
    """

    def __init__(self, base: str | Path) -> None:
        self.base = Path(base)
        self._devices = self.base / "devices" / "virtual" / "powercap"
        self._class = self.base / "class" / "powercap"
        self._devices.mkdir(parents=True, exist_ok=True)
        self._class.mkdir(parents=True, exist_ok=True)
        self._zones: dict[str, _FakeZone] = {}
        self._mirrors: dict[str, str] = {}  # zone id -> the zone whose counter it shows
        self._top_level: dict[str, int] = {}  # control type -> zones created at top level
        self._sockets = 0
        self._lock = threading.RLock()

    @property
    def root(self) -> Path:
        """The directory that stands for ``/sys/class/powercap``."""
        return self._class

    # -- building the tree --------------------------------------------------------------

    def add_zone(
        self,
        name: str,
        *,
        parent: str | None = None,
        control_type: str = "intel-rapl",
        max_energy_range_uj: int | None = None,
        max_power_w: float | Sequence[float] | None = None,
        energy_uj: int = 0,
        mirror_of: str | None = None,
    ) -> str:
        """Create one zone and return its id.

        Args:
            name: the content of its ``name`` file: ``package-0``, ``dram``, ``psys``...
            parent: the id of the parent zone for a subzone; None for a top-level zone.
            control_type: the control type of a top-level zone (``intel-rapl``,
                ``intel-rapl-mmio``); a subzone takes its parent's.
            max_energy_range_uj: the largest value the counter shows, in µJ. Default:
                :data:`DEFAULT_PACKAGE_RANGE_UJ`, or the mirrored zone's.
            max_power_w: the ``constraint_N_max_power_uw`` of each constraint, in W; one
                number gives one constraint (``long_term``); None gives a zone without
                constraints, as on AMD CPUs. 0 writes 0, as some firmware does.
            energy_uj: the counter's first value, in µJ.
            mirror_of: a zone whose counter this zone shows (one counter, two zones);
                its ``energy_uj`` is then a link to that zone's, and ``energy_uj`` must be 0.

        Returns:
            The zone id, e.g. ``"intel-rapl:0:2"``.
        """
        with self._lock:
            owner = self._owner(mirror_of) if mirror_of is not None else None
            if max_energy_range_uj is None:
                max_energy_range_uj = owner.range_uj if owner else DEFAULT_PACKAGE_RANGE_UJ
            if owner is not None and (max_energy_range_uj != owner.range_uj or energy_uj):
                raise ValueError("a mirrored zone shows its twin's counter: same range, no value")
            if not 0 <= energy_uj <= max_energy_range_uj:
                raise ValueError(f"energy_uj {energy_uj} outside 0..{max_energy_range_uj}")
            if parent is None:
                index = self._top_level.get(control_type, 0)
                self._top_level[control_type] = index + 1
                zone_id = f"{control_type}:{index}"
                control_dir = self._control_dir(control_type)
                directory = control_dir / zone_id
            else:
                up = self._zones[parent]
                zone_id = f"{parent}:{up.children}"
                up.children += 1
                directory = up.directory / zone_id
            directory.mkdir()
            (directory / "power").mkdir()
            _write(directory / "power" / "control", "auto\n")
            _write(directory / "name", f"{name}\n")
            _write(directory / "max_energy_range_uj", f"{max_energy_range_uj}\n")
            _write(directory / "enabled", "1\n", mode=0o644)
            _write(directory / "uevent", "")
            powers: Sequence[float]
            if max_power_w is None:
                powers = ()
            elif isinstance(max_power_w, int | float):
                powers = (max_power_w,)
            else:
                powers = max_power_w
            for i, watts in enumerate(powers):
                uw = round(watts * _UJ_PER_J)
                label = _CONSTRAINT_NAMES[i] if i < len(_CONSTRAINT_NAMES) else f"limit_{i}"
                _write(directory / f"constraint_{i}_name", f"{label}\n")
                _write(directory / f"constraint_{i}_max_power_uw", f"{uw}\n")
                _write(directory / f"constraint_{i}_power_limit_uw", f"{uw}\n", mode=0o644)
                _write(directory / f"constraint_{i}_time_window_us", "27983872\n", mode=0o644)
            _relative_link(directory / "device", directory.parent)
            _relative_link(directory / "subsystem", self._class)
            _relative_link(self._class / zone_id, directory)
            zone = _FakeZone(
                zone_id=zone_id,
                directory=directory,
                range_uj=max_energy_range_uj,
                offset_uj=energy_uj,
            )
            self._zones[zone_id] = zone
            if owner is not None:
                self._mirrors[zone_id] = owner.zone_id
                _relative_link(zone.energy_path, owner.energy_path)
            else:
                self._write_counter(zone)
            return zone_id

    def add_socket(
        self,
        *,
        max_power_w: float | Sequence[float] | None = 125.0,
        dram: bool = True,
        core: bool = True,
        uncore: bool = False,
        max_energy_range_uj: int = DEFAULT_PACKAGE_RANGE_UJ,
        dram_max_energy_range_uj: int = DEFAULT_DRAM_RANGE_UJ,
        dram_max_power_w: float | None = None,
    ) -> str:
        """Add the next CPU socket: a ``package-N`` zone with its subzones, as Intel does.

        Subzones are created in the kernel's order: ``core``, ``uncore``, ``dram``. For an
        AMD-like socket pass ``max_power_w=None, dram=False`` (package and core only, no
        power-limit constraints).

        Args:
            max_power_w: the package's constraint max powers, in W (None: no constraints).
            dram: add a ``dram`` subzone.
            core: add a ``core`` subzone (same range and constraints as the package).
            uncore: add an ``uncore`` subzone.
            max_energy_range_uj: range of the package, core and uncore counters, in µJ.
            dram_max_energy_range_uj: range of the dram counter, in µJ.
            dram_max_power_w: the dram zone's constraint max power, in W (None: none).

        Returns:
            The package zone's id.
        """
        with self._lock:
            socket = self._sockets
            self._sockets += 1
            package = self.add_zone(
                f"package-{socket}",
                max_energy_range_uj=max_energy_range_uj,
                max_power_w=max_power_w,
            )
            if core:
                self.add_zone(
                    "core",
                    parent=package,
                    max_energy_range_uj=max_energy_range_uj,
                    max_power_w=max_power_w,
                )
            if uncore:
                self.add_zone("uncore", parent=package, max_energy_range_uj=max_energy_range_uj)
            if dram:
                self.add_zone(
                    "dram",
                    parent=package,
                    max_energy_range_uj=dram_max_energy_range_uj,
                    max_power_w=dram_max_power_w,
                )
            return package

    def add_multi_die_socket(
        self,
        dies: int = 2,
        *,
        mirrored: bool,
        max_power_w: float | Sequence[float] | None = None,
        max_energy_range_uj: int = DEFAULT_PACKAGE_RANGE_UJ,
    ) -> tuple[str, ...]:
        """Add the next CPU socket as ``package-N-die-M`` top-level zones, one per die.

        Args:
            dies: how many die zones.
            mirrored: True: every die zone shows the one socket-wide counter (AMD Zen 1 and
                some Zen 2 parts). False: each die has its own counter (Intel Cascade Lake
                AP); their first values differ, as real counters' do.
            max_power_w: each die zone's constraint max powers, in W (None: none, as AMD).
            max_energy_range_uj: the range of every die counter, in µJ.

        Returns:
            The die zones' ids, die 0 first.
        """
        if dies < 1:
            raise ValueError(f"dies must be at least 1, got {dies}")
        with self._lock:
            socket = self._sockets
            self._sockets += 1
            zones: list[str] = []
            for die in range(dies):
                mirror_of = zones[0] if mirrored and zones else None
                start_uj = 0 if mirror_of else die * (max_energy_range_uj // dies)
                zones.append(
                    self.add_zone(
                        f"package-{socket}-die-{die}",
                        max_energy_range_uj=max_energy_range_uj,
                        max_power_w=max_power_w,
                        energy_uj=start_uj,
                        mirror_of=mirror_of,
                    )
                )
            return tuple(zones)

    def add_psys(
        self,
        *,
        max_power_w: float | Sequence[float] | None = (0.0,),
        max_energy_range_uj: int = DEFAULT_PACKAGE_RANGE_UJ,
    ) -> str:
        """Add a ``psys`` (platform) top-level zone; by default its max power reads 0.

        Returns:
            The zone's id.
        """
        return self.add_zone(
            "psys", max_energy_range_uj=max_energy_range_uj, max_power_w=max_power_w
        )

    def add_mmio_package(
        self,
        socket: int = 0,
        *,
        max_power_w: float | Sequence[float] | None = 125.0,
        max_energy_range_uj: int = DEFAULT_PACKAGE_RANGE_UJ,
    ) -> str:
        """Add an ``intel-rapl-mmio`` zone repeating ``package-<socket>``, as client CPUs do.

        Returns:
            The zone's id, e.g. ``"intel-rapl-mmio:0"``.
        """
        return self.add_zone(
            f"package-{socket}",
            control_type="intel-rapl-mmio",
            max_energy_range_uj=max_energy_range_uj,
            max_power_w=max_power_w,
        )

    # -- driving the counters -----------------------------------------------------------

    def zone_path(self, zone: str) -> Path:
        """The real directory of a zone."""
        return self._zones[zone].directory

    def energy_uj(self, zone: str) -> int:
        """The counter's current value, in µJ (also while its file cannot be read)."""
        with self._lock:
            return self._owner(zone).counter_uj

    def written_uj(self, zone: str) -> int:
        """Every µJ :meth:`advance` has added to the zone since it was created."""
        with self._lock:
            return self._owner(zone).advanced_uj

    def set_energy_uj(self, zone: str, value_uj: int) -> None:
        """Make the counter show ``value_uj`` now (e.g. just below its range, to test wraps).

        Does not change :meth:`written_uj`.
        """
        with self._lock:
            z = self._owner(zone)
            if not 0 <= value_uj <= z.range_uj:
                raise ValueError(f"value {value_uj} outside 0..{z.range_uj}")
            z.offset_uj = (value_uj - z.advanced_uj) % (z.range_uj + 1)
            self._write_counter(z)

    def advance(self, zone: str, joules: float) -> int:
        """Add ``joules`` of energy to a zone's counter, wrapping modulo its range.

        The counter holds whole µJ; a fraction of a µJ is carried to the next call, so
        many small advances add up exactly. While the file is unreadable or empty the
        counter still moves, as the hardware's does, and shows its value on :meth:`restore`.

        Args:
            zone: the zone id.
            joules: the energy to add, in J (>= 0).

        Returns:
            The µJ actually added to the counter by this call.
        """
        if not (math.isfinite(joules) and joules >= 0):
            raise ValueError(f"joules must be finite and >= 0, got {joules!r}")
        with self._lock:
            z = self._owner(zone)
            exact = joules * _UJ_PER_J + z.residual_uj
            whole = round(exact)
            z.residual_uj = exact - whole
            z.advanced_uj += whole
            self._write_counter(z)
            return whole

    def drive(self, power_w: Mapping[str, float], *, tick_s: float = 0.005) -> PowerDriver:
        """Start a thread that advances counters at constant power; use it as a context.

        Args:
            power_w: the power of each zone id, in W.
            tick_s: how often the counters move, in s.

        Returns:
            The running :class:`PowerDriver`; ``stop()`` it (or leave its ``with`` block).
        """
        driver = PowerDriver(self, power_w, tick_s=tick_s)
        driver.start()
        return driver

    # -- failures -------------------------------------------------------------------------

    def make_unreadable(self, zone: str) -> None:
        """Make the zone's ``energy_uj`` fail to read, until :meth:`restore`.

        The file's mode becomes 000, so a non-root reader gets EACCES. Root ignores mode
        bits, so where the file can still be read the file is also moved aside and reads
        fail with ENOENT, as when the driver is unloaded.
        """
        with self._lock:
            z = self._owner(zone)
            z.state = "unreadable"
            z.energy_path.chmod(0)
            if os.access(z.energy_path, os.R_OK):
                z.energy_path.replace(z.hidden_path)

    def make_empty(self, zone: str) -> None:
        """Make the zone's ``energy_uj`` read as an empty file, until :meth:`restore`."""
        with self._lock:
            z = self._owner(zone)
            z.state = "empty"
            _write(z.energy_path, "", mode=z.mode)

    def restore(self, zone: str) -> None:
        """Undo :meth:`make_unreadable` or :meth:`make_empty`; the file shows the counter."""
        with self._lock:
            z = self._owner(zone)
            if z.hidden_path.exists():
                z.hidden_path.replace(z.energy_path)
            z.state = "ok"
            self._write_counter(z)

    def make_root_only(self) -> None:
        """Give every ``energy_uj`` mode 0400, as Linux does since 5.10 (CVE-2020-8694)."""
        with self._lock:
            for z in (z for z in self._zones.values() if z.zone_id not in self._mirrors):
                z.mode = 0o400
                target = z.hidden_path if z.hidden_path.exists() else z.energy_path
                if z.state != "unreadable":
                    target.chmod(z.mode)

    # -- internals ------------------------------------------------------------------------

    def _owner(self, zone: str) -> _FakeZone:
        """The zone whose counter ``zone`` shows: itself, or the one it mirrors."""
        return self._zones[self._mirrors.get(zone, zone)]

    def _control_dir(self, control_type: str) -> Path:
        directory = self._devices / control_type
        if not directory.is_dir():
            directory.mkdir()
            (directory / "power").mkdir()
            _write(directory / "enabled", "1\n", mode=0o644)
            _write(directory / "uevent", "")
            _relative_link(directory / "subsystem", self._class)
            _relative_link(self._class / control_type, directory)
        return directory

    def _write_counter(self, zone: _FakeZone) -> None:
        if zone.state == "ok":
            _write(zone.energy_path, f"{zone.counter_uj}\n", mode=zone.mode)


class PowerDriver:
    """A background thread advancing :class:`FakePowercap` counters at constant power.

    Every ``tick_s`` it adds ``power × elapsed time`` to each zone. :meth:`stop` ends it and
    re-raises any error the thread met. :meth:`written_uj` tells exactly what was added.

    Args:
        fake: the tree to drive.
        power_w: the power of each zone id, in W.
        tick_s: the period of the updates, in s.
    """

    def __init__(
        self, fake: FakePowercap, power_w: Mapping[str, float], *, tick_s: float = 0.005
    ) -> None:
        self.fake = fake
        self.power_w = dict(power_w)
        self.tick_s = tick_s
        self._written: dict[str, int] = dict.fromkeys(self.power_w, 0)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="fake-powercap", daemon=True)

    def start(self) -> None:
        """Start the thread (done by :meth:`FakePowercap.drive`)."""
        self._thread.start()

    def stop(self) -> None:
        """Stop the thread and wait for it; re-raise any error it met."""
        self._stop.set()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def written_uj(self, zone: str) -> int:
        """The µJ this driver added to the zone."""
        with self._lock:
            return self._written[zone]

    def __enter__(self) -> PowerDriver:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _run(self) -> None:
        last = time.monotonic()
        try:
            while not self._stop.wait(self.tick_s):
                now = time.monotonic()
                for zone, watts in self.power_w.items():
                    added = self.fake.advance(zone, watts * (now - last))
                    with self._lock:
                        self._written[zone] += added
                last = now
        except BaseException as exc:  # handed to stop(), so that the test sees it
            self._error = exc


def _write(path: Path, text: str, *, mode: int = 0o444) -> None:
    """Replace a file's content atomically and give it ``mode``."""
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(text, encoding="ascii")
    temporary.chmod(mode)
    temporary.replace(path)


def _relative_link(link: Path, target: Path) -> None:
    link.symlink_to(os.path.relpath(target, link.parent))
