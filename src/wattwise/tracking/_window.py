"""A named phase inside a running tracker, and the open window the tracker accounts into."""

from __future__ import annotations

import contextvars
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Self

from wattwise._records import WindowResult
from wattwise.tracking._accumulate import Accumulator
from wattwise.tracking._context import _reset, _window_path

if TYPE_CHECKING:
    from wattwise.tracking._tracker import Tracker

__all__ = ["Window"]


@dataclass
class _OpenWindow:
    name: str
    path: str
    start_s: float
    opened_at_s: float = 0.0  # the sampler clock at the opening (start_s is from t0)
    acc: Accumulator = field(default_factory=Accumulator)


class Window:
    """A named phase inside a running tracker; use as a context manager.

    After the ``with`` block, :attr:`result` holds its :class:`WindowResult`.
    """

    def __init__(self, tracker: Tracker, name: str) -> None:
        self.tracker = tracker
        self.name = name
        self.result: WindowResult | None = None
        self._token: contextvars.Token[tuple[str, ...]] | None = None
        self._open: _OpenWindow | None = None

    def __enter__(self) -> Self:
        path = (*_window_path.get(), self.name)
        self._token = _window_path.set(path)
        self._open = self.tracker._open_window(self.name, "/".join(path))
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._open is not None and self._token is not None
        self.result = self.tracker._close_window(self._open)
        _reset(_window_path, self._token)

    @property
    def energy_j(self) -> float:
        """Counted energy so far (or final), in J."""
        if self.result is not None:
            return self.result.energy_j
        if self._open is None:
            return 0.0
        return self.tracker._live_energy(self._open)
