"""Energy-aware hyperparameter search on Optuna.

Optuna searches; wattwise measures every trial as a tracked run and records its energy on
the trial (Optuna user attributes) and in the run store, linked to a study. On top of that:
a whole-study energy budget, strategies compared on energy to a target accuracy
(:func:`compare_strategies`), and workers on many machines sharing one study through a
database (:func:`search` with ``storage=``, :func:`study_status`).

Needs the ``search`` and ``torch`` extras (Optuna, PyYAML, PyTorch).
"""

from wattwise._extras import require as _require

_require("wattwise.search", "search", ["optuna", "yaml"])

from wattwise.search._compare import (
    COMPARE_PROTOCOL,
    TARGET_MARGIN,
    anytime_curve,
    compare_strategies,
    energy_to_target_j,
)
from wattwise.search._objective import EnergyObjective
from wattwise.search._records import (
    Comparison,
    CurvePoint,
    HostEnergy,
    RepeatResult,
    SearchResult,
    StrategyResult,
    StudyStatus,
    TrialRecord,
    WorkerEnergy,
    Workload,
)
from wattwise.search._search import search, study_status, sweep_study_id
from wattwise.search._space import (
    BUILTIN_SPACES,
    CategoricalParam,
    FloatParam,
    IntParam,
    Param,
    SearchSpace,
    builtin_space,
    load_space,
)
from wattwise.search._storage import open_storage
from wattwise.search._strategies import (
    PRUNERS,
    SAMPLERS,
    STRATEGIES,
    Strategy,
    parse_strategies,
    parse_strategy,
)

__all__ = [
    "BUILTIN_SPACES",
    "COMPARE_PROTOCOL",
    "PRUNERS",
    "SAMPLERS",
    "STRATEGIES",
    "TARGET_MARGIN",
    "CategoricalParam",
    "Comparison",
    "CurvePoint",
    "EnergyObjective",
    "FloatParam",
    "HostEnergy",
    "IntParam",
    "Param",
    "RepeatResult",
    "SearchResult",
    "SearchSpace",
    "Strategy",
    "StrategyResult",
    "StudyStatus",
    "TrialRecord",
    "WorkerEnergy",
    "Workload",
    "anytime_curve",
    "builtin_space",
    "compare_strategies",
    "energy_to_target_j",
    "load_space",
    "open_storage",
    "parse_strategies",
    "parse_strategy",
    "search",
    "study_status",
    "sweep_study_id",
]
