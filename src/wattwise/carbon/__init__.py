"""Carbon: grid intensity (bundled, live, traces), emissions, and carbon-aware scheduling.

Bundled data: grid intensity per country and region, cloud regions with their PUE,
default PUE and everyday equivalents, built by ``scripts/build_carbon_tables.py`` from the
Green Algorithms data (Lannelongue, Grealey & Inouye 2021, CC BY 4.0); every row keeps its
source and year. Embodied emissions (the hardware's manufacturing footprint, a run's
share, an estimate kept apart from the operational figures) from cited per-component factors
(``data/embodied_factors.csv``: Boavizta's documented figures, EcoInfo's EcoDiag, the
ADEME/Hubblo A100 figure for data-centre GPUs), charged for what a stored run was given.
"""

from wattwise.carbon._base import ConstantIntensity, IntensityProvider
from wattwise.carbon._data import (
    CloudRegion,
    EquivalentFactor,
    GridZone,
    PueDefault,
    cloud_regions,
    dataset_credit,
    equivalent_factors,
    grid_zones,
    pue_defaults,
)
from wattwise.carbon._embodied import (
    DEFAULT_LIFETIME_RANGE_YEARS,
    DEFAULT_LIFETIME_YEARS,
    EMBODIED_LABEL,
    EmbodiedComponent,
    EmbodiedFactor,
    EmbodiedFigures,
    Hardware,
    embodied,
    embodied_factors,
    is_datacenter_gpu,
)
from wattwise.carbon._embodied_runs import embodied_for_run, embodied_for_runs
from wattwise.carbon._emissions import (
    Equivalent,
    emissions_for_energy,
    emissions_for_samples,
    equivalents,
)
from wattwise.carbon._live import (
    TOKEN_ENV,
    ElectricityMapsClient,
    LiveIntensity,
    live_location,
)
from wattwise.carbon._location import (
    Location,
    config_path,
    find_cloud_region,
    find_zone,
    parse_pue,
    resolve_location,
)
from wattwise.carbon._schedule import (
    UNITS_GRAMS,
    UNITS_RELATIVE,
    Plan,
    ScheduleResult,
    parse_duration,
    parse_instant,
    plan_contiguous,
    plan_interruptible,
    schedule_job,
)
from wattwise.carbon._trace import (
    BUNDLED_TRACES,
    IntensityTrace,
    TraceIntensity,
    bundled_trace,
    load_trace,
    parse_timezone,
)

__all__ = [
    "BUNDLED_TRACES",
    "DEFAULT_LIFETIME_RANGE_YEARS",
    "DEFAULT_LIFETIME_YEARS",
    "EMBODIED_LABEL",
    "TOKEN_ENV",
    "UNITS_GRAMS",
    "UNITS_RELATIVE",
    "CloudRegion",
    "ConstantIntensity",
    "ElectricityMapsClient",
    "EmbodiedComponent",
    "EmbodiedFactor",
    "EmbodiedFigures",
    "Equivalent",
    "EquivalentFactor",
    "GridZone",
    "Hardware",
    "IntensityProvider",
    "IntensityTrace",
    "LiveIntensity",
    "Location",
    "Plan",
    "PueDefault",
    "ScheduleResult",
    "TraceIntensity",
    "bundled_trace",
    "cloud_regions",
    "config_path",
    "dataset_credit",
    "embodied",
    "embodied_factors",
    "embodied_for_run",
    "embodied_for_runs",
    "emissions_for_energy",
    "emissions_for_samples",
    "equivalent_factors",
    "equivalents",
    "find_cloud_region",
    "find_zone",
    "grid_zones",
    "is_datacenter_gpu",
    "live_location",
    "load_trace",
    "parse_duration",
    "parse_instant",
    "parse_pue",
    "parse_timezone",
    "plan_contiguous",
    "plan_interruptible",
    "pue_defaults",
    "resolve_location",
    "schedule_job",
]
