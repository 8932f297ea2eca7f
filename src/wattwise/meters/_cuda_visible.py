"""Which GPUs a CUDA process sees: ``CUDA_VISIBLE_DEVICES`` resolved to NVML devices.

The rules are the CUDA runtime's (CUDA C Programming Guide, "CUDA Environment Variables"):
a comma-separated list of device indices or ``GPU-<uuid>`` prefixes long enough to be
unique, enumerated in its order; an invalid entry hides itself and every entry after it
(``0,2,-1,1`` shows devices 0 and 2); an empty value shows no device. A ``MIG-<uuid>`` entry
(or the older ``MIG-GPU-<uuid>/<gi>/<ci>``) names a MIG instance and shows its parent board.
Used by the NVML meter and the GPU probe.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["MigInstance", "visible_nvml_indices"]


@dataclass(frozen=True)
class MigInstance:
    """A MIG device NVML lists on a GPU in MIG mode.

    Attributes:
        parent: the NVML index of the GPU it is part of.
        uuid: its ``MIG-<uuid>``.
        keys: every ``CUDA_VISIBLE_DEVICES`` spelling of it: the UUID and the older
            ``MIG-GPU-<parent uuid>/<gpu instance>/<compute instance>`` form, where known.
        profile: the profile name, e.g. ``"3g.40gb"``.
        slices: its GPU instance's slice count.
        total_slices: the parent's slice count (7 on A100/H100), None where unknown.
    """

    parent: int
    uuid: str
    keys: tuple[str, ...]
    profile: str
    slices: int
    total_slices: int | None

    @property
    def share(self) -> float | None:
        """Its part of the parent board's energy, by slices (None where unknown)."""
        if not self.total_slices or not 0 < self.slices <= self.total_slices:
            return None
        return self.slices / self.total_slices


def visible_nvml_indices(
    spec: str | None,
    uuids: Sequence[str | None],
    migs: Sequence[MigInstance] = (),
) -> tuple[list[int], str | None]:
    """Resolve ``CUDA_VISIBLE_DEVICES`` into NVML device indices, in CUDA order.

    Args:
        spec: the variable's value, or None when it is unset (every device is visible).
        uuids: the UUID of each NVML device by NVML index (``GPU-...``), None where unknown.
        migs: the MIG devices NVML lists; a ``MIG-`` entry naming one shows its parent.

    Returns:
        The NVML indices CUDA would show, in its order (position = CUDA index; a MIG entry
        gives its parent's index), and a note saying why the list stopped early, or None.
    """
    targets, note = _visible_targets(spec, uuids, migs)
    return [index for index, _ in targets], note


def _visible_targets(
    spec: str | None, uuids: Sequence[str | None], migs: Sequence[MigInstance]
) -> tuple[list[tuple[int, MigInstance | None]], str | None]:
    """As :func:`visible_nvml_indices`, with the MIG instance each entry names (or None)."""
    count = len(uuids)
    if spec is None:
        return [(i, None) for i in range(count)], None
    if not spec.strip():
        return [], None
    visible: list[tuple[int, MigInstance | None]] = []
    for raw in spec.split(","):
        entry = raw.strip()
        index, mig, why = _resolve_entry(entry, uuids, migs)
        if index is not None and (index, mig) in visible:
            index, why = None, "repeats a device"
        if index is None:
            shown = ",".join(str(i) for i, _ in visible) or "none"
            return visible, (
                f"CUDA_VISIBLE_DEVICES entry {entry!r} {why}: CUDA ignores it and every "
                f"entry after it (visible NVML devices: {shown})"
            )
        visible.append((index, mig))
    return visible, None


def _resolve_entry(
    entry: str, uuids: Sequence[str | None], migs: Sequence[MigInstance]
) -> tuple[int | None, MigInstance | None, str]:
    """One ``CUDA_VISIBLE_DEVICES`` entry -> NVML index and MIG instance, or None and why."""
    if entry.upper().startswith("MIG-"):
        prefix = entry.lower()
        found = [m for m in migs if any(k.lower().startswith(prefix) for k in m.keys)]
        if len(found) == 1:
            return found[0].parent, found[0], ""
        return (
            None,
            None,
            ("matches no MIG device NVML lists" if not found else "matches several MIG devices"),
        )
    index, why = _resolve_gpu_entry(entry, uuids)
    return index, None, why


def _resolve_gpu_entry(entry: str, uuids: Sequence[str | None]) -> tuple[int | None, str]:
    """One non-MIG ``CUDA_VISIBLE_DEVICES`` entry -> NVML index, or None and why."""
    if entry.upper().startswith("GPU-"):
        prefix = entry.lower()
        matches = [i for i, u in enumerate(uuids) if u is not None and u.lower().startswith(prefix)]
        if len(matches) == 1:
            return matches[0], ""
        return None, "matches no GPU UUID" if not matches else "matches several GPU UUIDs"
    if re.fullmatch(r"\d+", entry):
        index = int(entry)
        if index < len(uuids):
            return index, ""
        return None, f"is out of range ({len(uuids)} GPU(s))"
    return None, "is not a device index or GPU UUID"
