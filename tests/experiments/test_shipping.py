"""The shipping step's arithmetic and settings (`experiments.shipping`); the step
itself runs in tests/experiments/test_run.py
(`test_the_agent_starts_where_its_training_simulator_says`)."""

import math

import pytest

from experiments.shipping import check_ship, paired_difference
from spotisim.errors import ConfigError


def test_the_paired_difference_and_its_standard_error_by_hand():
    # Differences 1, 0, 2, 1: mean 1, sample sd sqrt(2/3), se sqrt(2/3) / 2.
    mean, se = paired_difference([3, 2, 5, 4], [2, 2, 3, 3])
    assert mean == 1.0
    assert se == pytest.approx(math.sqrt(2 / 3) / 2)
    assert paired_difference([1, 2], [1, 2]) == (0.0, 0.0)
    mean, se = paired_difference([4], [1])
    assert mean == 3.0 and math.isnan(se)


@pytest.mark.parametrize("ship, episodes, message", [
    ("best", 8, r"run_experiment.ship: 'best' is not one of 'trained', 'evaluator'"),
    ("evaluator", 0, "run_experiment.ship_episodes: 0 is not a positive whole number"),
    ("evaluator", 2.5, "run_experiment.ship_episodes: 2.5 is not a positive whole number"),
    ("evaluator", True, "run_experiment.ship_episodes: True is not a positive whole number"),
])
def test_bad_shipping_settings_are_one_error_naming_the_binding(ship, episodes, message):
    with pytest.raises(ConfigError, match=message):
        check_ship(ship, episodes)
    check_ship("evaluator", 1024)
    check_ship("trained", 1)
