"""MLflow logging of a training run's energy: per-epoch metrics, totals, provenance tags.

Nothing is logged unless asked: ``fit(..., mlflow=True)`` (or an :class:`MlflowLogger`),
``EnergyCallback(..., mlflow=True)`` of the framework callbacks, or the environment
variable ``WATTWISE_MLFLOW`` (``1``: log to the active run, ``start``: start one when none
is active, ``0`` or unset: off). The figures go to the **active** MLflow run (or the run
``MLFLOW_RUN_ID`` names, as ``mlflow run`` sets it, or ``run_id=``); a run is started only
when asked (``start_run=True``), and then ended by the logger. A second training logged
while the same run is active (the fits of a study or a sweep) goes to a run nested in it.

Metrics, step = epoch: ``wattwise.energy_j``, ``wattwise.energy_uncertainty_j`` (one
sigma), ``wattwise.power_w`` (mean), ``wattwise.duration_s``,
``wattwise.cumulative_energy_j``; from :func:`wattwise.train.fit` also
``wattwise.train_energy_j``, ``wattwise.eval_energy_j``, ``wattwise.train_loss``,
``wattwise.val_loss``, ``wattwise.val_accuracy`` and the prediction
``wattwise.predicted_total_energy_j`` (``..._sigma_j``). At the end the totals:
``wattwise.total_energy_j``, ``wattwise.total_energy_uncertainty_j``,
``wattwise.total_duration_s``, ``wattwise.mean_power_w``, and where known
``wattwise.predicted_energy_saved_j`` and ``wattwise.emissions_g``.

MLflow metrics carry no label, so the provenance is in tags (tags, not params: params are
write-once, and a run's provenance is final only at its end): ``wattwise.energy_source``
(``measured (rapl-powercap)``, ``mixed: estimated (...) + measured (...)``),
``wattwise.method`` (measured, estimated, mixed, none), ``wattwise.sensors``,
``wattwise.models``, ``wattwise.total_energy`` (one line: figure, one sigma, provenance),
``wattwise.scope``, ``wattwise.run_id``, ``wattwise.run_name``, ``wattwise.window``,
``wattwise.status``, ``wattwise.stop_reason`` and ``wattwise.emissions_source``.

Needs ``mlflow`` (the ``mlflow`` extra); a missing package is one line naming the extra.
A run that cannot be found is one line before training; a write MLflow refuses later (the
server went away) stops the logging with one ``RuntimeWarning``, and training goes on.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from wattwise._errors import ConfigError
from wattwise._extras import require
from wattwise._records import (
    CarbonFigures,
    ComponentEnergy,
    Provenance,
    WindowResult,
    combined_uncertainty,
)
from wattwise._units import format_energy
from wattwise.train._callbacks import Callback, TrainState
from wattwise.train._records import EpochRecord, FitResult

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from wattwise._records import RunResult
    from wattwise.tracking._tracker import Tracker

__all__ = ["ENV_VAR", "PREFIX", "MlflowLogger", "RunTotals", "mlflow_logger"]

#: The environment variable that turns MLflow logging on (``1``) or starts a run (``start``).
ENV_VAR = "WATTWISE_MLFLOW"
#: Every metric and tag wattwise logs starts with this.
PREFIX = "wattwise."

_ON = frozenset({"1", "true", "yes", "on"})
_OFF = frozenset({"", "0", "false", "no", "off"})
_START = "start"
_UNCERTAINTY_NOTE = "one sigma, from the meters (linear within a sensor, root-sum-square across)"


@dataclass(frozen=True)
class RunTotals:
    """What a measured training run cost, as the logger logs it at the end.

    Attributes:
        energy_j: total energy, in J.
        uncertainty_j: its one-sigma uncertainty, in J.
        duration_s: wall-clock length, in s.
        components: the per-component energy the total adds up (for the provenance).
        status: ``completed``, ``stopped early``, ``interrupted`` or ``failed``.
        stop_reason: why the run ended, one line (None: not known).
        predicted_saved_j: energy saved by stopping early, a prediction (None: none).
        emissions_g: emissions, in g CO2e (None: not computed).
        emissions_source: where the emissions come from (an estimate from the grid's
            intensity: zone, intensity, PUE, dataset).
    """

    energy_j: float
    uncertainty_j: float
    duration_s: float
    components: tuple[ComponentEnergy, ...]
    status: str = "completed"
    stop_reason: str | None = None
    predicted_saved_j: float | None = None
    emissions_g: float | None = None
    emissions_source: str | None = None

    @classmethod
    def of_run(cls, run: RunResult, *, failed: bool = False) -> RunTotals:
        """The totals of a tracked run."""
        status = "failed" if failed else str(run.status)
        totals = cls(run.energy_j, run.uncertainty_j, run.duration_s, run.components, status)
        return totals.with_carbon(run.carbon)

    def with_carbon(self, carbon: CarbonFigures | None) -> RunTotals:
        """These totals with a run's emissions (None: none were computed)."""
        if carbon is None:
            return self
        source = (
            f"estimated ({carbon.zone}, {carbon.intensity_g_per_kwh:.0f} gCO2e/kWh, "
            f"PUE {carbon.pue:g}, {carbon.intensity_source})"
        )
        return dataclasses.replace(self, emissions_g=carbon.emissions_g, emissions_source=source)

    @classmethod
    def of_windows(cls, windows: Iterable[WindowResult], *, failed: bool = False) -> RunTotals:
        """The totals of some windows (the measured epochs of a run that is not ours)."""
        ws = list(windows)
        components = tuple(c for w in ws for c in w.components)
        return cls(
            energy_j=sum(w.energy_j for w in ws),
            uncertainty_j=combined_uncertainty(components),
            duration_s=sum(w.duration_s for w in ws),
            components=components,
            status="failed" if failed else "completed",
        )

    @classmethod
    def of_fit(cls, result: FitResult) -> RunTotals:
        """The totals of a :func:`wattwise.train.fit` result."""
        comps = result.run.components if result.run is not None else ()
        if not comps:
            comps = tuple(c for e in result.epochs for c in e.components)
        if result.interrupted:
            status = "interrupted"
        else:
            status = "stopped early" if result.stopped_early else "completed"
        return cls(
            energy_j=result.total_energy_j,
            uncertainty_j=result.total_uncertainty_j,
            duration_s=result.duration_s,
            components=comps,
            status=status,
            stop_reason=result.stop_reason,
            predicted_saved_j=result.energy_saved_j if result.prediction is not None else None,
        ).with_carbon(result.run.carbon if result.run is not None else None)


def _first_line(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _method(p: Provenance) -> str:
    if p.mixed:
        return "mixed"
    methods = p.methods
    return methods[0].value if methods else "none"


def _provenance_tags(components: Iterable[ComponentEnergy]) -> dict[str, str]:
    """The tags that label a figure made of ``components``: source, method, sensors."""
    p = Provenance.from_components(components)
    tags = {"energy_source": str(p), "method": _method(p)}
    if p.measured:
        tags["sensors"] = ", ".join(p.measured)
    if p.estimated:
        tags["models"] = ", ".join(p.estimated)
    return tags


def _finite(values: Mapping[str, float | None]) -> dict[str, float]:
    return {k: float(v) for k, v in values.items() if v is not None and math.isfinite(v)}


class MlflowLogger(Callback):
    """Log a training run's energy to MLflow: per-epoch metrics, totals, provenance tags.

    A :class:`~wattwise.train.Callback` for :func:`wattwise.train.fit` (``fit(...,
    mlflow=MlflowLogger(...))``); the framework callbacks call :meth:`attach`,
    :meth:`start`, :meth:`log_window` and :meth:`finish` themselves.

    Args:
        run_id: the MLflow run to log to (default: the active run, else ``MLFLOW_RUN_ID``).
        start_run: start an MLflow run (named ``run_name``, default the wattwise run's
            name) when none is active, and end it at the end of training.
        run_name: the name of a run started here.
    """

    def __init__(
        self, *, run_id: str | None = None, start_run: bool = False, run_name: str | None = None
    ) -> None:
        self.run_id = run_id
        self.start_run = start_run
        self.run_name = run_name
        self._client: MlflowClient | None = None
        self._mlflow_run: str | None = None
        self._started = False
        self._spent_j = 0.0
        self._source: str | None = None
        self._window: str | None = None
        self._open = False
        #: Why logging stopped (MLflow refused a write), or None.
        self.failure: str | None = None

    @property
    def logging(self) -> bool:
        """Whether a run is attached and not yet finished."""
        return self._open

    @property
    def mlflow_run_id(self) -> str | None:
        """The MLflow run logged to (None before :meth:`attach`)."""
        return self._mlflow_run

    def attach(self, name: str = "train", *, window: str | None = None) -> str:
        """Find (or, when asked, start) the MLflow run to log to; returns its id.

        ``name``: the name of a run started here (unless ``run_name`` was given);
        ``window``: the tracker window that holds the training, when it is one part of a
        larger wattwise run (tagged ``wattwise.window``).

        Raises:
            MissingExtra: MLflow is not installed.
            ConfigError: no run is active and none was to be started, or ``run_id`` names
                no run of the tracking store.
        """
        require("MLflow logging", "mlflow", ["mlflow"])
        import mlflow
        from mlflow.exceptions import MlflowException

        self._client = mlflow.MlflowClient()
        self._started, self._spent_j, self._source = False, 0.0, None
        self._window, self.failure = window, None
        active = mlflow.active_run()
        active_id = active.info.run_id if active is not None else None
        run_id = self.run_id or active_id or os.environ.get("MLFLOW_RUN_ID")
        name = self.run_name or name
        try:
            if run_id:
                tags = self._client.get_run(run_id).data.tags  # fails for an unknown run
                if self.run_id is None and run_id == active_id and PREFIX + "run_id" in tags:
                    # The active run holds another training already (a study's or a sweep's
                    # next fit): this one gets a run nested in it, so neither is overwritten.
                    run_id = mlflow.start_run(run_name=name, nested=True).info.run_id
                    self._started = True
            elif self.start_run:
                run_id = mlflow.start_run(run_name=name).info.run_id
                self._started = True
            else:
                raise ConfigError(
                    "MLflow logging was asked for, but no MLflow run is active: train inside "
                    "`with mlflow.start_run():`, or let wattwise start one "
                    f"(MlflowLogger(start_run=True), {ENV_VAR}=start)"
                )
        except MlflowException as exc:
            raise ConfigError(f"MLflow run {run_id or '(new)'}: {_first_line(exc)}") from None
        self._mlflow_run, self._open = run_id, True
        return run_id

    def _log(self, metrics: Mapping[str, float], tags: Mapping[str, str], step: int) -> None:
        from mlflow.entities import Metric, RunTag
        from mlflow.exceptions import MlflowException

        if self._client is None or self._mlflow_run is None:
            raise ConfigError("MlflowLogger.attach() was not called")
        if self.failure is not None:
            return
        now_ms = int(time.time() * 1000)
        try:
            self._client.log_batch(
                self._mlflow_run,
                metrics=[Metric(PREFIX + k, v, now_ms, step) for k, v in metrics.items()],
                tags=[RunTag(PREFIX + k, v) for k, v in tags.items()],
            )
        except MlflowException as exc:  # the server went away, the run was deleted...
            self._fail(exc)

    def _fail(self, exc: Exception) -> None:
        """Stop logging after MLflow refused a write, and say so once; training goes on
        (the wattwise run keeps every figure)."""
        self.failure = f"MLflow run {self._mlflow_run}: {_first_line(exc)}"
        warnings.warn(
            f"{self.failure}; MLflow logging stopped, training goes on "
            "(the wattwise run keeps every figure)",
            RuntimeWarning,
            stacklevel=3,
        )

    def start(self, tracker: Tracker) -> None:
        """Tag the MLflow run with the wattwise run it measures (after :meth:`attach`)."""
        tags = {
            "run_id": tracker.run_id,
            "run_name": tracker.name,
            "scope": str(tracker.scope),
            "status": "running",
            "uncertainty": _UNCERTAINTY_NOTE,
        }
        if self._window is not None:
            tags["window"] = self._window
        self._log({}, tags, 0)

    def log_epoch(
        self,
        epoch: int,
        *,
        energy_j: float,
        uncertainty_j: float,
        duration_s: float,
        components: tuple[ComponentEnergy, ...],
        extra: Mapping[str, float | None] | None = None,
    ) -> None:
        """Log one measured epoch (``extra``: more metrics of it; NaN and None are skipped)."""
        self._spent_j += energy_j
        metrics = _finite(
            {
                "energy_j": energy_j,
                "energy_uncertainty_j": uncertainty_j,
                "power_w": energy_j / duration_s if duration_s > 0 else None,
                "duration_s": duration_s,
                "cumulative_energy_j": self._spent_j,
                **(extra or {}),
            }
        )
        tags = _provenance_tags(components)
        # The label is logged again only when it changes (a sensor came or went).
        if tags["energy_source"] == self._source:
            tags = {}
        else:
            self._source = tags["energy_source"]
        self._log(metrics, tags, epoch)

    def log_window(self, epoch: int, window: WindowResult) -> None:
        """Log the measured window of one epoch."""
        self.log_epoch(
            epoch,
            energy_j=window.energy_j,
            uncertainty_j=window.uncertainty_j,
            duration_s=window.duration_s,
            components=window.components,
        )

    def finish(self, totals: RunTotals) -> None:
        """Log the run's totals and provenance; end the MLflow run when it was started here."""
        p_tags = _provenance_tags(totals.components)
        figure = (
            f"{format_energy(totals.energy_j)} ± {format_energy(totals.uncertainty_j)} "
            f"(one sigma), {p_tags['energy_source']}"
        )
        tags = {**p_tags, "total_energy": figure, "status": totals.status}
        if totals.stop_reason is not None:
            tags["stop_reason"] = totals.stop_reason
        if totals.emissions_source is not None:
            tags["emissions_source"] = totals.emissions_source
        d = totals.duration_s
        metrics = _finite(
            {
                "total_energy_j": totals.energy_j,
                "total_energy_uncertainty_j": totals.uncertainty_j,
                "total_duration_s": d,
                "mean_power_w": totals.energy_j / d if d > 0 else None,
                "predicted_energy_saved_j": totals.predicted_saved_j,
                "emissions_g": totals.emissions_g,
            }
        )
        try:
            self._log(metrics, tags, 0)
        finally:
            self._end(totals.status)

    def _end(self, status: str) -> None:
        self._open = False
        if not self._started or self._client is None or self._mlflow_run is None:
            return
        import mlflow
        from mlflow.exceptions import MlflowException

        self._started = False
        mlflow_status = {"failed": "FAILED", "interrupted": "KILLED"}.get(status, "FINISHED")
        active = mlflow.active_run()
        try:
            if active is not None and active.info.run_id == self._mlflow_run:
                mlflow.end_run(status=mlflow_status)  # off the active stack even if it fails
            else:
                self._client.set_terminated(self._mlflow_run, status=mlflow_status)
        except MlflowException as exc:
            if self.failure is None:
                self._fail(exc)

    def abort(self) -> None:
        """Mark the run failed (an error ended training); end it when it was started here."""
        if self._open and self._client is not None and self._mlflow_run is not None:
            try:
                self._log({}, {"status": "failed"}, 0)
            finally:
                self._end("failed")

    # The hooks of :func:`wattwise.train.fit`.

    def on_fit_start(self, state: TrainState) -> None:
        if not self._open:  # given in callbacks= rather than fit(mlflow=...)
            self.attach(state.tracker.name)
        self.start(state.tracker)

    def on_epoch_end(self, state: TrainState, record: EpochRecord) -> None:
        extra: dict[str, float | None] = {
            "train_energy_j": record.train_energy_j,
            "eval_energy_j": record.eval_energy_j,
            "train_loss": record.train_loss,
            "val_loss": record.val_loss,
            "val_accuracy": record.val_accuracy,
            "predicted_total_energy_j": record.predicted_full_energy_j,
            "predicted_total_energy_sigma_j": record.predicted_full_energy_sigma_j,
        }
        self.log_epoch(
            record.epoch,
            energy_j=record.energy_j,
            uncertainty_j=record.uncertainty_j,
            duration_s=record.duration_s,
            components=record.components,
            extra=extra,
        )

    def on_fit_end(self, state: TrainState, result: FitResult) -> None:
        self.finish(RunTotals.of_fit(result))


def _env_choice() -> MlflowLogger | None:
    raw = os.environ.get(ENV_VAR)
    value = (raw or "").strip().lower()
    if value in _OFF:
        return None
    if value in _ON:
        return MlflowLogger()
    if value == _START:
        return MlflowLogger(start_run=True)
    raise ConfigError(f"{ENV_VAR}={raw!r} is not understood: use 1 (log to the active MLflow "
                      "run), start (start one when none is active) or 0 (off)")  # fmt: skip


def mlflow_logger(option: bool | MlflowLogger | None) -> MlflowLogger | None:
    """The logger asked for: ``True`` a default one, ``False`` none, a logger itself, None
    what ``WATTWISE_MLFLOW`` says (unset: none). Checks that MLflow is installed.

    Raises:
        MissingExtra: logging is asked for and MLflow is not installed.
        ConfigError: ``WATTWISE_MLFLOW`` holds a value it does not know.
    """
    if option is None:
        logger = _env_choice()
    elif isinstance(option, MlflowLogger):
        logger = option
    else:
        logger = MlflowLogger() if option else None
    if logger is not None:
        require("MLflow logging", "mlflow", ["mlflow"])
    return logger
