"""The space of once-for-all sub-networks: canonical forms, counting, sampling, checks."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wattwise._errors import ConfigError
from wattwise.ofa import ElasticSpace, SubnetConfig

SMALL = ElasticSpace(2, 2, (1, 2), (3, 5), (2.0, 4.0))
DEFAULT = ElasticSpace(3, 3, (1, 2, 3), (3, 5, 7), (2.0, 4.0, 6.0))


@st.composite
def configs(draw: st.DrawFn, space: ElasticSpace = DEFAULT) -> SubnetConfig:
    """Any config of ``space``, canonical or not."""
    return SubnetConfig(
        tuple(draw(st.sampled_from(space.depth_choices)) for _ in range(space.stages)),
        tuple(draw(st.sampled_from(space.kernel_choices)) for _ in range(space.blocks)),
        tuple(draw(st.sampled_from(space.expand_choices)) for _ in range(space.blocks)),
    )


def test_size_counts_the_distinct_sub_networks_enumerate_gives() -> None:
    listed = list(SMALL.enumerate())
    keys = {c.key for c in listed}
    # per stage: 4 one-block + 16 two-block choices; two stages
    assert SMALL.size() == (4 + 16) ** 2 == len(keys) == len(listed)
    assert all(SMALL.canonical(c) == c for c in listed)


def test_default_space_size_and_its_log() -> None:
    assert DEFAULT.size() == (9 + 81 + 729) ** 3
    assert DEFAULT.log10_size() == pytest.approx(8.7399, abs=1e-4)


def test_largest_and_smallest() -> None:
    big, small = DEFAULT.largest(), DEFAULT.smallest()
    assert big.depths == (3, 3, 3) and set(big.kernel_sizes) == {7}
    assert small.depths == (1, 1, 1)
    assert DEFAULT.active_blocks(small) == [0, 3, 6]
    # the skipped blocks of the smallest are canonical (largest choices)
    assert small.kernel_sizes[:3] == (3, 7, 7) and small.expand_ratios[:3] == (2.0, 6.0, 6.0)


@settings(deadline=None)  # a shared busy machine: no per-example time limit
@given(configs())
def test_canonical_is_idempotent_and_keeps_the_active_choices(config: SubnetConfig) -> None:
    canon = DEFAULT.canonical(config)
    assert DEFAULT.canonical(canon) == canon
    assert canon.depths == config.depths
    for i in DEFAULT.active_blocks(config):
        assert canon.kernel_sizes[i] == config.kernel_sizes[i]
        assert canon.expand_ratios[i] == config.expand_ratios[i]
    skipped = set(range(DEFAULT.blocks)) - set(DEFAULT.active_blocks(config))
    assert all(canon.kernel_sizes[i] == 7 and canon.expand_ratios[i] == 6.0 for i in skipped)


@settings(deadline=None)
@given(configs(), st.integers(0, 2**32 - 1))
def test_configs_differing_only_in_skipped_blocks_share_a_key(
    config: SubnetConfig, seed: int
) -> None:
    rng = random.Random(seed)
    active = set(DEFAULT.active_blocks(config))
    other = SubnetConfig(
        config.depths,
        tuple(
            k if i in active else rng.choice(DEFAULT.kernel_choices)
            for i, k in enumerate(config.kernel_sizes)
        ),
        config.expand_ratios,
    )
    assert DEFAULT.canonical(other).key == DEFAULT.canonical(config).key


@settings(max_examples=50, deadline=None)
@given(configs(), configs(), st.integers(0, 2**32 - 1), st.floats(0.0, 1.0))
def test_sample_mutate_crossover_stay_in_the_space_and_canonical(
    a: SubnetConfig, b: SubnetConfig, seed: int, prob: float
) -> None:
    rng = random.Random(seed)
    a, b = DEFAULT.canonical(a), DEFAULT.canonical(b)
    for c in (DEFAULT.sample(rng), DEFAULT.mutate(a, rng, prob), DEFAULT.crossover(a, b, rng)):
        DEFAULT.check(c)
        assert DEFAULT.canonical(c) == c


def test_mutate_with_probability_zero_changes_nothing() -> None:
    rng = random.Random(1)
    config = DEFAULT.sample(rng)
    assert DEFAULT.mutate(config, rng, 0.0) == config


def test_crossover_of_a_config_with_itself_is_itself() -> None:
    rng = random.Random(2)
    config = DEFAULT.sample(rng)
    assert DEFAULT.crossover(config, config, rng) == config


def test_restrict_keeps_the_network_with_fewer_choices() -> None:
    phase = DEFAULT.restrict(kernel_choices=(7,), expand_choices=(6.0,))
    assert (phase.stages, phase.max_depth, phase.depth_choices) == (3, 3, (1, 2, 3))
    assert phase.size() == 3**3
    rng = random.Random(3)
    assert all(set(phase.sample(rng).kernel_sizes) == {7} for _ in range(20))


@pytest.mark.parametrize(
    ("config", "message"),
    [
        (SubnetConfig((3, 3), (7,) * 9, (6.0,) * 9), "needs 3 depths"),
        (SubnetConfig((3, 3, 3), (7,) * 8, (6.0,) * 9), "needs 9 kernel sizes, got 8"),
        (SubnetConfig((3, 3, 3), (7,) * 8 + (9,), (6.0,) * 9), "kernel size 9 is not one"),
        (SubnetConfig((3, 3, 3), (7,) * 9, (6.0,) * 8 + (3.0,)), "expand ratio 3 is not one"),
        (SubnetConfig((3, 4, 3), (7,) * 9, (6.0,) * 9), "depth 4 is not one"),
    ],
)
def test_check_says_what_is_wrong_in_one_line(config: SubnetConfig, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        DEFAULT.check(config)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((0, 3, (1,), (3,), (2.0,)), ">= 1 stage"),
        ((3, 3, (), (3,), (2.0,)), "at least one depth choice"),
        ((3, 3, (2, 1), (3,), (2.0,)), "distinct and increasing"),
        ((3, 3, (1, 4), (3,), (2.0,)), "must lie in 1..3"),
        ((3, 3, (1,), (4,), (2.0,)), "odd"),
        ((3, 3, (1,), (3,), (0.0,)), "> 0"),
    ],
)
def test_a_bad_space_is_a_config_error(args: tuple[object, ...], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        ElasticSpace(*args)  # type: ignore[arg-type]


def test_space_and_config_round_trip_through_json() -> None:
    config = DEFAULT.sample(random.Random(4))
    assert SubnetConfig.from_dict(config.to_dict()) == config
    assert ElasticSpace.from_dict(DEFAULT.to_dict()) == DEFAULT
