"""Search strategies: an Optuna sampler, optionally with a pruner, by name.

``grid``, ``random``, ``tpe``, ``gp`` and ``nsga2`` name samplers; ``hyperband`` and
``asha`` name pruners and, alone, mean random sampling with that pruner (Hyperband and
ASHA as their authors define them). ``SAMPLER+PRUNER`` combines them: ``tpe+hyperband``.
``nsga2`` searches two objectives at once, validation accuracy (up) and the trial's
energy (down), and returns the Pareto set; Optuna cannot prune multi-objective trials.

Every sampler and pruner keeps Optuna's defaults except where a setting is stated here:
pruners take their resource (epochs) from the search space, and NSGA-II's population is
sized so that at least four generations fit in the trial budget.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from wattwise._errors import ConfigError

if TYPE_CHECKING:
    import optuna

    from wattwise.search._space import SearchSpace

__all__ = ["PRUNERS", "SAMPLERS", "STRATEGIES", "Strategy", "parse_strategies", "parse_strategy"]

#: Samplers by name.
SAMPLERS = {
    "grid": "grid search over the space's grid, in a seeded shuffled order",
    "random": "independent uniform (or log-uniform) sampling",
    "tpe": "Bayesian optimisation with a tree-structured Parzen estimator",
    "gp": "Bayesian optimisation with a Gaussian process",
    "nsga2": "NSGA-II on accuracy (up) and energy (down); returns the Pareto set",
}
#: Pruners by name (``hyperband`` alone means ``random+hyperband``).
PRUNERS = {
    "hyperband": "Hyperband: successive halving in several brackets",
    "asha": "asynchronous successive halving (ASHA)",
}
#: Every name ``parse_strategy`` takes on its own.
STRATEGIES = {**SAMPLERS, **PRUNERS}

#: Successive halving keeps the best 1/3 at each rung (rungs at 1, 3, 9... epochs).
REDUCTION_FACTOR = 3
#: NSGA-II's population is at most Optuna's default and at least this.
_MIN_POPULATION = 4
_OPTUNA_POPULATION = 50
_GENERATIONS = 4


@dataclass(frozen=True)
class Strategy:
    """A sampler and an optional pruner.

    Attributes:
        sampler: ``grid``, ``random``, ``tpe``, ``gp`` or ``nsga2``.
        pruner: ``hyperband``, ``asha`` or None.
    """

    sampler: str
    pruner: str | None = None

    @property
    def name(self) -> str:
        """The canonical name: ``tpe``, ``hyperband`` (random + Hyperband), ``tpe+asha``."""
        if self.pruner is None:
            return self.sampler
        if self.sampler == "random":
            return self.pruner
        return f"{self.sampler}+{self.pruner}"

    @property
    def multi_objective(self) -> bool:
        """Whether the search optimises accuracy and energy together."""
        return self.sampler == "nsga2"

    @property
    def directions(self) -> list[Literal["maximize", "minimize"]]:
        """Optuna's study directions: accuracy up (and energy down when multi-objective)."""
        return ["maximize", "minimize"] if self.multi_objective else ["maximize"]

    def describe(self, space: SearchSpace) -> str:
        """One line: what runs, with the settings that matter."""
        text = SAMPLERS[self.sampler]
        if self.sampler == "grid":
            text += f" ({space.grid_size} grid points)"
        if self.pruner is not None:
            text += (
                f", pruned by {PRUNERS[self.pruner]} (epochs {space.min_epochs} to "
                f"{space.epochs}, reduction factor {REDUCTION_FACTOR})"
            )
        return text

    def make_sampler(
        self, space: SearchSpace, *, seed: int | None, trials: int
    ) -> optuna.samplers.BaseSampler:
        """A fresh sampler.

        Args:
            space: the space (grid search takes its grid).
            seed: the sampler's seed (None: random).
            trials: the trial budget (sizes NSGA-II's population).

        Raises:
            ConfigError: the GP sampler's dependencies are missing.
        """
        import optuna

        if self.sampler == "grid":
            return optuna.samplers.GridSampler(space.grid(), seed=seed)
        if self.sampler == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if self.sampler == "tpe":
            return optuna.samplers.TPESampler(seed=seed)
        if self.sampler == "gp":
            missing = [m for m in ("scipy", "torch") if importlib.util.find_spec(m) is None]
            if missing:
                raise ConfigError(
                    f"the gp strategy needs SciPy and PyTorch ({', '.join(missing)} missing)"
                )
            return optuna.samplers.GPSampler(seed=seed)
        population = max(_MIN_POPULATION, min(_OPTUNA_POPULATION, trials // _GENERATIONS))
        return optuna.samplers.NSGAIISampler(population_size=population, seed=seed)

    def make_pruner(self, space: SearchSpace) -> optuna.pruners.BasePruner:
        """A fresh pruner (Optuna's no-op pruner when there is none)."""
        import optuna

        if self.pruner == "hyperband":
            return optuna.pruners.HyperbandPruner(
                min_resource=space.min_epochs,
                max_resource=space.epochs,
                reduction_factor=REDUCTION_FACTOR,
            )
        if self.pruner == "asha":
            return optuna.pruners.SuccessiveHalvingPruner(
                min_resource=space.min_epochs, reduction_factor=REDUCTION_FACTOR
            )
        return optuna.pruners.NopPruner()


def parse_strategy(text: str) -> Strategy:
    """Read a strategy: ``tpe``, ``hyperband``, ``tpe+asha``...

    Raises:
        ConfigError: an unknown name, or pruning with NSGA-II.
    """
    parts = [p.strip().lower() for p in text.split("+")]
    known = ", ".join(STRATEGIES)
    if len(parts) == 1 and parts[0] in PRUNERS:
        return Strategy("random", parts[0])
    if len(parts) not in (1, 2) or parts[0] not in SAMPLERS:
        raise ConfigError(
            f"unknown strategy {text!r} (known: {known}; combine as SAMPLER+PRUNER, e.g. "
            "tpe+hyperband)"
        )
    pruner = parts[1] if len(parts) == 2 else None
    if pruner is not None and pruner not in PRUNERS:
        raise ConfigError(f"unknown pruner {pruner!r} in {text!r} (known: {', '.join(PRUNERS)})")
    if pruner is not None and parts[0] == "nsga2":
        raise ConfigError(f"{text!r}: Optuna cannot prune multi-objective (nsga2) trials")
    return Strategy(parts[0], pruner)


def parse_strategies(text: str) -> tuple[Strategy, ...]:
    """Read a comma-separated list of strategies (``grid,random,tpe,hyperband``).

    Raises:
        ConfigError: an empty list, a name listed twice, or an unknown name.
    """
    out = [parse_strategy(p) for p in text.split(",") if p.strip()]
    if not out:
        raise ConfigError(f"no strategy in {text!r} (e.g. grid,random,tpe,hyperband)")
    names = [s.name for s in out]
    dup = next((n for n in names if names.count(n) > 1), None)
    if dup is not None:
        raise ConfigError(f"strategy {dup!r} is listed twice in {text!r}")
    return tuple(out)
