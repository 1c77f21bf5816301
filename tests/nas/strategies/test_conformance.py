from __future__ import annotations

import statistics

import pytest

from nas.core.errors import ConfigError
from nas.strategies import STRATEGIES, StrategySettings, make_strategy
from nas.testing.strategy_conformance import CHECKS, zdt1_hypervolume


@pytest.mark.parametrize("check", CHECKS, ids=lambda c: c.__name__.removeprefix("check_"))
@pytest.mark.parametrize("name", list(STRATEGIES))
def test_every_strategy_conforms(name: str, check):
    check(name)


def test_nsga2_beats_random_search_at_equal_evaluations():
    """On ZDT1 (4 variables), 12 x 15 evaluations, five seeds: NSGA-II's hypervolume beats
    random search's on most seeds and in the median."""
    seeds = range(5)
    nsga2 = [zdt1_hypervolume("nsga2", s, population=12, generations=14) for s in seeds]
    random = [zdt1_hypervolume("random", s, population=12, generations=14) for s in seeds]
    assert sum(a > b for a, b in zip(nsga2, random, strict=True)) >= 4
    assert statistics.median(nsga2) > statistics.median(random) + 0.1


def test_an_unknown_strategy_is_one_line():
    with pytest.raises(ConfigError, match="unknown strategy 'cmaes'"):
        make_strategy("cmaes", None)  # type: ignore[arg-type]


def test_optuna_strategies_need_the_define_by_run_mapping():
    from nas.testing.toy_space import VectorSpace

    class WithoutSuggest(VectorSpace):
        suggest = None

    settings = StrategySettings(
        space=WithoutSuggest(), weights=(1.0, -1.0), population=4, generations=1, seed=0
    )
    with pytest.raises(ConfigError, match="no suggest"):
        make_strategy("optuna-tpe", settings)
