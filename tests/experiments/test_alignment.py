"""Rank correlations by hand, and the alignment study on a tiny world."""

import json
import os
import re

import numpy as np

import gin
import pytest

from experiments import alignment
from spotisim.gin_utils import parse_gin
from experiments.tiny import tiny_bindings


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


def test_close_call_metrics_on_a_hand_made_table():
    # Five policies; random is the last.  Offline swaps the top two and inflates them.
    online = np.array([9.0, 8.5, 8.0, 7.0, 6.0])
    offline = np.array([9.5, 10.5, 8.1, 6.5, 6.1])
    beats = online > online[-1]
    m = alignment.close_call_metrics(offline, online, beats)
    # One discordant pair of ten: (9 - 1) / 10.
    assert m["kendall_tau"] == pytest.approx(0.8)
    # Among the four above random: one discordant pair of six.
    assert m["top_tau"] == pytest.approx(4 / 6)
    # The offline favourite (policy 1) gets 8.5 online against the best 9.0.
    assert m["regret_at_1"] == pytest.approx(100 * 0.5 / 9.0)
    # Largest |offline / online - 1|: policy 1, 10.5 / 8.5 - 1.
    assert m["max_abs_error"] == pytest.approx(100 * (10.5 / 8.5 - 1))
    # Ranks 2,1,3,4,5 against 1..5: rho = 1 - 6 * 2 / (5 * 24).
    assert m["spearman_rho"] == pytest.approx(0.9)
    # A tie for the favourite counts at its worst: policies 0 and 1 tie offline.
    tied = alignment.close_call_metrics(np.array([10.0, 10.0, 8, 7, 6]), online, beats)
    assert tied["regret_at_1"] == pytest.approx(100 * 0.5 / 9.0)
    # Fewer than two policies above random: no top-tau.
    assert np.isnan(alignment.close_call_metrics(offline, online,
                                                 np.eye(5, dtype=bool)[0])["top_tau"])


def test_the_bootstrap_keeps_the_pairing():
    rng = np.random.default_rng(0)
    # Three policies whose per-start listens differ by a constant: any resample of the
    # starts keeps the same order, so every draw agrees and the interval is a point.
    common = rng.normal(8, 3, size=400)
    online = np.stack([common + 1.0, common, common - 1.0])
    offline = online * 1.1
    out = alignment.bootstrap_close_calls(offline, online, np.array([True, True, False]),
                                          resamples=50)
    assert out["kendall_tau"] == {"value": 1.0, "lo": 1.0, "hi": 1.0}
    assert out["regret_at_1"]["hi"] == 0.0
    assert out["max_abs_error"]["value"] == pytest.approx(10.0)
    # Two policies exactly equal in mean offline but noisy per start: resamples order
    # them either way, so the interval spans both orders.
    e = rng.normal(0, 3, 400)
    e -= e.mean()
    noisy = np.stack([common + e, common - e])
    wide = alignment.bootstrap_close_calls(noisy, np.stack([common, common + 0.01]),
                                           np.array([True, True]), resamples=200)
    assert wide["kendall_tau"]["lo"] == -1.0 and wide["kendall_tau"]["hi"] == 1.0
    with pytest.raises(ValueError, match="same starts"):
        alignment.bootstrap_close_calls(offline[:, :10], online, np.ones(3, bool))


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_alignment_on_a_tiny_world(tiny_world_dir, tmp_path):
    bindings = tiny_bindings(tiny_world_dir, [
        f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'"])
    gin.clear_config()
    try:
        parse_gin(["alignment"], [
            "run_alignment.simulators = ['logistic']",
            "run_alignment.chosen = 'logistic'", "run_alignment.decompose = 'logistic'",
            "run_alignment.agents = {'ah_dqn_tiny': ('ah_dqn', "
            "'run_experiment.num_iterations = 5')}",
            "run_alignment.penalties = [0.0]",
            "run_alignment.episodes = 6", "run_alignment.resamples = 20"],
            [alignment.CONFIG_DIR])
        out = alignment.run_alignment(str(tmp_path / "align"), bindings=bindings)
    finally:
        gin.clear_config()
    # 5 baselines + the redundancy greedy at penalty 0 + the trained agent.
    assert out["policies"] == list(alignment.BASELINES) + ["redundancy_greedy_0",
                                                           "ah_dqn_tiny"]
    assert os.path.exists(tmp_path / "align" / "agents" / "ah_dqn_tiny" / "policy")
    table = out["table"]
    for p in out["policies"]:
        assert set(table[p]) == {"logistic", "ground_truth", alignment.CEILING}
    # The ceiling: the truth on the same starts with other draws, scored like a
    # simulator.  Its random policy's listens differ (other luck), its metrics are
    # the close-call metrics of that second online column.
    ceiling = np.array([table[p][alignment.CEILING] for p in out["policies"]])
    assert not np.array_equal(ceiling, [table[p]["ground_truth"] for p in out["policies"]])
    assert out["alignment"][alignment.CEILING]["kendall_tau"]["value"] == pytest.approx(
        alignment.close_call_metrics(ceiling, np.array(
            [table[p]["ground_truth"] for p in out["policies"]]),
            np.array([table[p]["ground_truth"] > table["random"]["ground_truth"]
                      for p in out["policies"]]))["kendall_tau"], nan_ok=True)
    # Penalty 0 is greedy: the same slates, so the same listens under every scorer.
    assert table["redundancy_greedy_0"] == table["greedy_user_model"]
    online = np.array([table[p]["ground_truth"] for p in out["policies"]])
    for m in ("logistic",):
        offline = np.array([table[p][m] for p in out["policies"]])
        expect = alignment.close_call_metrics(offline, online, online > table["random"]
                                              ["ground_truth"])
        for k, v in expect.items():
            got = out["alignment"][m][k]
            assert got["value"] == pytest.approx(v, nan_ok=True)
    # The decomposition: the parts add up to each policy's error, and the shadow saw
    # every heard track of the truth's episodes.
    dec = out["decomposition"]
    assert set(dec) == set(out["policies"])
    for p, d in dec.items():
        assert d["offline"] - d["online"] == pytest.approx(d["error"])
        assert d["listen_part"] + d["leave_part"] + d["interaction"] == pytest.approx(
            d["error"])
        assert d["shadow"]["p_listen_first_n"] > 0
    saved = json.load(open(tmp_path / "align" / "alignment.json"))
    assert json.dumps(saved["alignment"]) == json.dumps(out["alignment"])  # NaN too
    assert os.path.exists(tmp_path / "align" / "alignment.png")
    line = alignment.last_line(out)
    assert re.fullmatch(r"alignment: tau=-?\d\.\d{3} \[-?\d\.\d{3}, -?\d\.\d{3}\] "
                        r"top-tau=(-?\d\.\d{3}|nan) regret@1=\d+\.\d{2}% policies=7", line)
    # A second call reuses the trained agent and the cached scores: same figures.
    gin.clear_config()
    again = alignment.run_alignment(str(tmp_path / "align"), simulators=["logistic"],
                                    agents={"ah_dqn_tiny": ("ah_dqn",)},
                                    penalties=[0.0], episodes=6, resamples=20,
                                    bindings=bindings)
    assert again["table"] == out["table"]


def test_the_main_tables_offline_error_and_favourite_by_hand():
    from experiments.reporting import offline_error_percent, offline_online_ranking

    def modes(off, on):
        return {"offline": {"mean_episode_reward": off}, "online": {"mean_episode_reward": on}}
    table = {"a": modes(10.0, 8.0), "b": modes(9.0, 9.0), "c": modes(5.0, 6.0)}
    assert offline_error_percent(table["a"]) == pytest.approx(25.0)
    assert offline_error_percent({"offline": table["a"]["offline"]}) is None
    # Favourite a is 2nd online (b 9, a 8, c 6); shipping it loses 1 of 9.
    assert offline_online_ranking(table) == ("offline favourite: a (2nd online); online "
                                             "best: b; regret@1 11.1%")
    assert offline_online_ranking({"a": {"offline": table["a"]["offline"]}}) == ""


def test_the_slice_chooses_the_simulator_without_ground_truth(tmp_path):
    """`chosen = 'auto'`: each simulator's log loss on the randomly exposed rows of the
    held-out slice sessions, as computed here by hand from its predictions."""
    from spotisim.data.datasets import load_dataset
    from spotisim.data.synthetic import WorldConfig, generate
    from spotisim.embeddings import build_embeddings
    from tests.conftest import TINY_WORLD
    from user_models.evaluation import predict_log
    from user_models.heuristics import PositionPriorUserModel
    w = generate(str(tmp_path / "world"), num_sessions=200, seed=5,
                 config=WorldConfig(seed=5, **TINY_WORLD), exploration_sessions=100,
                 explore_from=10)
    bindings = [f"load_dataset.log_path = '{w['log']}'",
                f"load_dataset.tracks_path = '{w['tracks']}'",
                f"load_dataset.exposure_path = '{w['exploration']}'",
                f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'"]
    run = tmp_path / "run"
    os.makedirs(run)
    (run / "operative_config.gin").write_text("\n".join(bindings) + "\n")
    got = alignment.slice_log_losses(str(run), ["position_prior", "track_popularity"], [])
    gin.clear_config()
    try:
        gin.parse_config(bindings)
        data = load_dataset()
    finally:
        gin.clear_config()
    log = data.exposure.log
    held = np.random.default_rng(0).random(log.num_sessions) < 0.2
    rows = held[log.session_of_row] & (log.positions > 10)
    assert got["position_prior"]["rows"] == rows.sum() > 0
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    prior = PositionPriorUserModel(emb).fit(data.train, data.val)
    p = np.clip(predict_log(prior, log)[rows], 1e-6, 1 - 1e-6)
    y = ~log.skipped[rows]
    assert got["position_prior"]["log_loss"] == pytest.approx(
        -np.mean(y * np.log(p) + (~y) * np.log(1 - p)), rel=1e-6)
    assert emb.shape[0] == len(data.log.catalog)
    # An ensemble recalibrated as one model is scored the same way (and cached in the
    # run's model cache, not the working directory's).
    whole = alignment.slice_log_losses(str(run), ["min(logistic,position_prior)+calibrated"],
                                        [])["min(logistic,position_prior)+calibrated"]
    assert whole["rows"] == rows.sum() and np.isfinite(whole["log_loss"])
    assert any(d.startswith("ensemble-") for d in os.listdir(tmp_path / "cache"))

    def ensembles():
        return {d for d in os.listdir(tmp_path / "cache") if d.startswith("ensemble-")}
    # A member configured otherwise is another ensemble, calibrated on its own (the key
    # lacked the members' bindings until 2026-12-07, and served the other's calibration).
    before = ensembles()
    alignment.slice_log_losses(str(run), ["min(logistic,position_prior)+calibrated"],
                               ["LogisticUserModel.epochs = 2"])
    assert len(ensembles() - before) == 1
    # P(leave) too: a model that leaves is scored on the held-out sessions' at-risk rows
    # with the hazard it answers step by step (`leave_probs`), which must be the one
    # its leave model gives over each whole logged session (`exposure_rows`).
    from user_models.exposure_calibration import exposure_rows
    leaving = alignment.slice_log_losses(str(run), ["logistic"], [])["logistic"]
    gin.clear_config()
    try:
        gin.parse_config(bindings)
        from experiments.user_model_cache import user_model_by_name
        logistic = user_model_by_name("logistic", data, emb)
    finally:
        gin.clear_config()
    _, leave = exposure_rows(logistic, data.exposure)
    at = held[leave["session"]]
    h = 1 / (1 + np.exp(-leave["logit_h"][at]))
    left = leave["left"][at]
    assert leaving["leave_rows"] == at.sum() > 0 and left.any()
    assert leaving["leave_log_loss"] == pytest.approx(
        -np.mean(left * np.log(h) + (~left) * np.log(1 - h)), rel=1e-6)
    assert leaving["joint"] == pytest.approx(
        (leaving["log_loss"] * leaving["rows"] + leaving["leave_log_loss"] * at.sum())
        / held.sum(), rel=1e-9)
    assert len(leaving["session_joint"]) == held.sum()
    assert np.mean(leaving["session_joint"]) == pytest.approx(leaving["joint"], rel=1e-9)
    # The choice: the likeliest joint among the simulators that leave, and P(listen)
    # alone only where none does.
    table = {"a": {"log_loss": 0.60, "joint": 9.0}, "b": {"log_loss": 0.62, "joint": 8.5},
             "c": {"log_loss": 0.50, "joint": None}}
    assert alignment.slice_choice(table) == "b"
    assert alignment.slice_choice({"c": table["c"], "d": {"log_loss": 0.4, "joint": None}}) == "d"
    # With the sessions' own losses, the first stays unless another is likelier by more
    # than twice the paired standard error: gains 1, -1, 1, -0.6 (mean 0.1, se 0.49)
    # change nothing; gains 0.1, 0.1, 0.2, 0.0 (mean 0.1, se 0.041) do.
    first = {"log_loss": 0.6, "joint": 9.0, "session_joint": [9.0, 9.0, 9.0, 9.0]}
    noisy = {"log_loss": 0.6, "joint": 8.9, "session_joint": [8.0, 10.0, 8.0, 9.6]}
    steady = {"log_loss": 0.6, "joint": 8.9, "session_joint": [8.9, 8.9, 8.8, 9.0]}
    assert alignment.slice_choice({"first": first, "noisy": noisy}) == "first"
    assert alignment.slice_choice({"first": first, "steady": steady}) == "steady"
    # Without a slice, 'auto' cannot choose: one clear error before any scoring.
    (run / "operative_config.gin").write_text("\n".join(bindings[:2]) + "\n")
    assert alignment.slice_log_losses(str(run), ["position_prior"], []) == {}


def test_each_policys_offline_error_carries_its_interval():
    rng = np.random.default_rng(1)
    online = rng.normal(8, 3, size=(3, 500))
    offline = online * np.array([[1.1], [1.0], [0.9]])     # +10%, 0, -10% on every start
    out = alignment.bootstrap_close_calls(offline, online, np.array([True, True, False]),
                                          resamples=50)
    errors = out["policy_errors"]
    assert [round(e["value"], 6) for e in errors] == [10.0, 0.0, -10.0]
    for e in errors:                                  # the same ratio in every resample
        assert e["lo"] == pytest.approx(e["value"]) and e["hi"] == pytest.approx(e["value"])
    noisy = alignment.bootstrap_close_calls(online + rng.normal(0, 3, online.shape), online,
                                            np.array([True, True, False]), resamples=200)
    for e in noisy["policy_errors"]:
        assert e["lo"] < e["value"] < e["hi"] and e["hi"] - e["lo"] > 1.0
