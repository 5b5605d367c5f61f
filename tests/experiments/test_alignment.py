"""Rank correlations by hand, and the alignment study on a tiny world."""

import json
import os

import gin
import pytest

from experiments import alignment
from spotisim.gin_utils import parse_gin
from tests.experiments.test_run import tiny_bindings


def test_rank_correlations_by_hand():
    x = [1, 2, 3, 4]
    assert alignment.kendall_tau(x, [10, 20, 30, 40]) == pytest.approx(1.0)
    assert alignment.spearman_rho(x, [40, 30, 20, 10]) == pytest.approx(-1.0)
    # One swapped pair of six: (5 - 1) / 6.
    assert alignment.kendall_tau(x, [1, 3, 2, 4]) == pytest.approx(4 / 6)
    # Ranks 1,2,3,4 vs 1,3,2,4: d^2 = 2 -> rho = 1 - 6*2 / (4*15) = 0.8.
    assert alignment.spearman_rho(x, [1, 3, 2, 4]) == pytest.approx(0.8)
    # Ties (tau-b): x = 1, 1, 2 has one tied pair; concordant pairs 2, discordant 0:
    # tau_b = 2 / sqrt((3 - 1) * (3 - 0)) = 2 / sqrt(6).
    assert alignment.kendall_tau([1, 1, 2], [1, 2, 3]) == pytest.approx(2 / 6 ** 0.5)


def test_alignment_on_a_tiny_world(tiny_world_dir, tmp_path):
    gin.clear_config()
    try:
        parse_gin(["alignment"], tiny_bindings(tiny_world_dir, [
            f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
            "run_alignment.user_models = ['logistic']",
            "run_alignment.eval_episodes = 6"]), [alignment.CONFIG_DIR])
        out = alignment.run_alignment(str(tmp_path / "align"))
    finally:
        gin.clear_config()
    assert len(out["policies"]) == 6  # 5 baselines + greedy under the one user model
    for p in out["policies"]:
        assert set(out["scores"][p]) == {"logistic", "ground_truth"}
    a = out["alignment"]["logistic"]
    assert -1 <= a["kendall_tau"] <= 1 and -1 <= a["spearman_rho"] <= 1
    assert out["best_aligned_user_model"] == "logistic"
    saved = json.load(open(tmp_path / "align" / "alignment.json"))
    assert saved["alignment"] == out["alignment"]
    assert os.path.exists(tmp_path / "align" / "alignment.png")
    assert "Kendall tau" in alignment.format_table(out)
