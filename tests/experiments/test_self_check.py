"""The simulator's self-check on constructed inputs whose answers are known."""

import numpy as np
import pytest

from experiments import self_check as sc


def test_kendall_tau_by_hand():
    assert sc.kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == 1.0
    assert sc.kendall_tau([1, 2, 3, 4], [40, 30, 20, 10]) == -1.0
    # Pairs of (1,2,3) vs (1,3,2): (1,2)+ (1,3)+ (2,3)- -> (2 - 1) / 3.
    assert sc.kendall_tau([1, 2, 3], [1, 3, 2]) == pytest.approx(1 / 3)
    # A tie in y: tau-b = (concordant - discordant) / sqrt(3 * 2) = 2 / sqrt(6).
    assert sc.kendall_tau([1, 2, 3], [1, 2, 2]) == pytest.approx(2 / np.sqrt(6))


def _policy(listens, heard, replay_counted=None, replay_skips=None):
    m = {"episode_listens": list(listens), "episode_heard": list(heard)}
    if replay_counted is not None:
        m.update(episode_replay_counted=list(replay_counted),
                 episode_replay_skips=list(replay_skips), replay_count=sum(replay_counted))
    return m


def test_skip_rates_spread_and_replay_tau():
    n = 50
    heard = [10] * n
    metrics = {
        # random skips 8 of 10 everywhere; greedy 3 of 10; logging 5 of 10.
        "random": {"offline": _policy([2] * n, heard, [2] * n, [2] * n)},
        "greedy_user_model": {"offline": _policy([7] * n, heard, [2] * n, [0] * n)},
        "logging_policy": {"offline": _policy([5] * n, heard, [2] * n, [1] * n)},
    }
    ci = sc.skip_rate_ci(metrics, "offline")
    assert ci["random"] == {"mean": pytest.approx(0.8), "lo": pytest.approx(0.8),
                            "hi": pytest.approx(0.8)}
    assert ci["greedy_user_model"]["mean"] == pytest.approx(0.3)
    spread = sc.offline_spread(metrics, ["random", "greedy_user_model", "logging_policy"])
    assert spread["best_baseline"] == "greedy_user_model"
    assert spread["best_minus_random"]["mean"] == pytest.approx(-0.5) and spread["separates"]
    # Offline order random > logging > greedy; replay 1.0 > 0.5 > 0.0: the same order.
    rep = sc.replay_alignment(metrics)
    assert rep["tau"] == pytest.approx(1.0) and rep["lo"] == pytest.approx(1.0)
    # Reverse the replay outcomes: tau -1.
    metrics["random"]["offline"]["episode_replay_skips"] = [0] * n
    metrics["greedy_user_model"]["offline"]["episode_replay_skips"] = [2] * n
    assert sc.replay_alignment(metrics)["tau"] == pytest.approx(-1.0)
    # A best baseline no better than random: the spread does not separate them.
    metrics["greedy_user_model"]["offline"] = _policy([1, 3] * (n // 2), heard)
    metrics["logging_policy"]["offline"] = _policy([3, 1] * (n // 2), heard)
    spread = sc.offline_spread(metrics, ["random", "greedy_user_model", "logging_policy"])
    assert not spread["separates"]
    text = sc.format_self_check({"offline_spread": spread, "track_permutation": {
        "auc": 0.7, "auc_tracks_permuted": 0.699, "auc_drop": 0.001, "uses_tracks": False}})
    assert text.count("WARNING") == 2


def test_permutation_check_on_a_model_that_ignores_tracks(tiny_log):
    from user_models.heuristics import RepeatLastLabelUserModel, TrackPopularityUserModel
    heuristic = RepeatLastLabelUserModel().fit(tiny_log)
    out = sc.permutation_check(heuristic, tiny_log)
    assert "skipped" in out and "auc_drop" not in out
    pop = TrackPopularityUserModel().fit(tiny_log)
    pop.embeddings = np.zeros((len(tiny_log.catalog), 2), np.float32)
    out = sc.permutation_check(pop, tiny_log)
    # Per-track listen rates on the data they were fitted on, then shuffled across
    # tracks: the AUC falls.
    assert out["auc_drop"] > 0 and out["auc_tracks_permuted"] < out["auc"]
