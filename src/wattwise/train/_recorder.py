"""Per-epoch energy for training loops that are not wattwise's (Lightning, Keras, HF).

The framework callbacks are thin: each maps its framework's hooks onto this recorder,
which runs a tracker (or uses a running one: the rule of :func:`wattwise.protocol.tracking`,
spread over the framework's begin and end hooks) and opens the window ``epoch-N`` around
each epoch, so the epochs land in the store like those of :func:`wattwise.train.fit`.
"""

from __future__ import annotations

from wattwise._errors import WattwiseError
from wattwise._records import RunResult, RunStatus, WindowResult
from wattwise.protocol import LeverContext
from wattwise.tracking._tracker import Tracker, Window

__all__ = ["EpochEnergyRecorder"]


class EpochEnergyRecorder:
    """Measures each epoch of a foreign training loop as a tracker window.

    Args:
        name: the run's name (or the tracker's, when it is given).
        tracker: a tracker to use; started (and stopped) here unless it is running.
        context: meters, store and scope of a new tracker (default: detected meters, the
            default store, machine scope).
    """

    def __init__(
        self,
        name: str = "train",
        *,
        tracker: Tracker | None = None,
        context: LeverContext | None = None,
    ) -> None:
        self.name = name
        self.tracker = tracker
        self.context = context or LeverContext()
        self.epochs: list[WindowResult] = []
        self._own = False
        self._window: Window | None = None

    def begin(self) -> None:
        """Start measuring (at the start of training)."""
        if self.tracker is None:
            self.tracker = self.context.tracker(self.name)
        if not self.tracker.running:
            self._own = True
            self.tracker.start()
        self.epochs = []

    def epoch_begin(self, epoch: int) -> None:
        """Open the window of ``epoch`` (1-based); an epoch still open is closed first."""
        if self.tracker is None or not self.tracker.running:
            raise WattwiseError("EpochEnergyRecorder.begin() was not called")
        if self._window is not None:
            self.epoch_end()
        self._window = self.tracker.window(f"epoch-{epoch}").__enter__()

    def epoch_end(self) -> WindowResult | None:
        """Close the current epoch's window and return its energy (None: none was open)."""
        if self._window is None:
            return None
        window, self._window = self._window, None
        window.__exit__(None, None, None)
        assert window.result is not None
        self.epochs.append(window.result)
        return window.result

    @property
    def energy_j(self) -> float:
        """Energy of the closed epochs, in J."""
        return sum(e.energy_j for e in self.epochs)

    def end(self, *, failed: bool = False) -> RunResult | None:
        """Stop measuring; returns the run when the recorder started the tracker."""
        self.epoch_end()
        if self.tracker is None or not self._own:
            return None
        self._own = False
        return self.tracker.stop(status=RunStatus.FAILED if failed else RunStatus.COMPLETED)
