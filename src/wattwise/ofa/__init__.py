"""Once-for-all networks: train one elastic network, deploy a sub-network per budget.

Cai, Gan, Wang, Zhang, Han, "Once-for-All: Train One Network and Specialize it for
Efficient Deployment", ICLR 2020. One network with elastic depth, kernel size and width is
trained once (progressive shrinking, with distillation from the largest network); for each
deployment budget the best sub-network is *selected*, not trained, with its energy per
inference measured under the measurement protocol.
"""

from wattwise.ofa._budget import BUDGET_FORMS, Budget, format_budget, parse_budget
from wattwise.ofa._io import load_elastic, save_elastic
from wattwise.ofa._net import ElasticArch, ElasticCNN, SubnetCNN, elastic_network
from wattwise.ofa._predict import FEATURES, calibration_set, features_of, fit_predictor
from wattwise.ofa._records import (
    SELECTION_KIND,
    BudgetChoice,
    Candidate,
    CostPredictor,
    PredictedCandidate,
    Selection,
)
from wattwise.ofa._select import ENERGY_MODES, SEARCHES, SELECT_PROTOCOL, select
from wattwise.ofa._select_cache import CACHE_KIND
from wattwise.ofa._select_pool import network_fingerprint, save_subnet
from wattwise.ofa._shrink import progressive_shrink, step_subnets
from wattwise.ofa._shrink_records import PhasePlan, PhaseResult, ShrinkPlan, ShrinkResult
from wattwise.ofa._space import ElasticNetwork, ElasticSpace, SubnetConfig

__all__ = [
    "BUDGET_FORMS",
    "CACHE_KIND",
    "ENERGY_MODES",
    "FEATURES",
    "SEARCHES",
    "SELECTION_KIND",
    "SELECT_PROTOCOL",
    "Budget",
    "BudgetChoice",
    "Candidate",
    "CostPredictor",
    "ElasticArch",
    "ElasticCNN",
    "ElasticNetwork",
    "ElasticSpace",
    "PhasePlan",
    "PhaseResult",
    "PredictedCandidate",
    "Selection",
    "ShrinkPlan",
    "ShrinkResult",
    "SubnetCNN",
    "SubnetConfig",
    "calibration_set",
    "elastic_network",
    "features_of",
    "fit_predictor",
    "format_budget",
    "load_elastic",
    "network_fingerprint",
    "parse_budget",
    "progressive_shrink",
    "save_elastic",
    "save_subnet",
    "select",
    "step_subnets",
]
