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


def _save_untrained_ah_dqn_policy(directory):
    """An AH-DQN policy for the tiny world's slate environment (as the alignment study
    builds it under the same bindings), saved like a run's policy/."""
    from tf_agents.environments import tf_py_environment
    from tf_agents.policies import policy_saver
    from agents.ah_dqn import create_ah_dqn_agent
    from experiments.assembly import make_builder
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import build_embeddings
    from user_models.heuristics import PositionPriorUserModel
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    env = tf_py_environment.TFPyEnvironment(make_builder(
        data.test, PositionPriorUserModel().fit(data.train), emb, "slate", data.hidden_path,
        batch_size=2).get_tf_env())
    agent = create_ah_dqn_agent(env.time_step_spec(), env.action_spec(), units=8)
    policy_saver.PolicySaver(agent.policy, batch_size=None).save(directory)


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_alignment_on_a_tiny_world(tiny_world_dir, tmp_path):
    gin.clear_config()
    try:
        parse_gin(["alignment"], tiny_bindings(tiny_world_dir, [
            f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
            "run_alignment.user_models = ['logistic', 'lird_simulator']",
            f"run_alignment.policy_dirs = ['{tmp_path / 'my_run' / 'policy'}']",
            "run_alignment.eval_episodes = 6"]), [alignment.CONFIG_DIR])
        _save_untrained_ah_dqn_policy(str(tmp_path / "my_run" / "policy"))
        out = alignment.run_alignment(str(tmp_path / "align"))
    finally:
        gin.clear_config()
    # 5 baselines + greedy under each of the two models + the saved agent
    # (`run_alignment.policy_dirs`, named after its run directory).
    assert len(out["policies"]) == 8 and out["policies"][-1] == "agent:my_run"
    for p in out["policies"]:
        assert set(out["scores"][p]) == {"logistic", "lird_simulator", "ground_truth"}
        assert all(r["episodes"] == 6 for r in out["scores"][p].values())
    # Each model's tau and rho are those of its offline scores against the online ones
    # (the arithmetic itself: test_rank_correlations_by_hand), and the best aligned is
    # the one of larger tau.
    online = [out["scores"][p]["ground_truth"]["mean_episode_reward"] for p in out["policies"]]
    taus = {}
    for m in ("logistic", "lird_simulator"):
        offline = [out["scores"][p][m]["mean_episode_reward"] for p in out["policies"]]
        taus[m] = alignment.kendall_tau(offline, online)
        assert out["alignment"][m]["kendall_tau"] == pytest.approx(taus[m])
        assert out["alignment"][m]["spearman_rho"] == pytest.approx(
            alignment.spearman_rho(offline, online))
    assert taus["logistic"] != taus["lird_simulator"]
    assert out["best_aligned_user_model"] == max(taus, key=taus.get)
    saved = json.load(open(tmp_path / "align" / "alignment.json"))
    assert saved["alignment"] == out["alignment"]
    assert os.path.exists(tmp_path / "align" / "alignment.png")
    assert "Kendall tau" in alignment.format_table(out)
