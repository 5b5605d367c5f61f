"""The main job on a tiny configuration: every artefact, resume, same seed -> same
metrics, clear errors for bad gin input."""

import json
import os

import gin
import numpy as np
import pytest

from experiments import run as run_mod
from experiments.tiny import tiny_bindings
from spotisim.errors import ConfigError
from spotisim.gin_utils import parse_gin

ARTEFACTS = ["operative_config.gin", "metrics.json", "learning_curve.png", "comparison.png",
             "tb", "checkpoints", "policy", "episodes.parquet"]


def run(world, run_dir, cache, iterations, config="ah_dqn", resume=True, extra=()):
    gin.clear_config()
    try:
        parse_gin([config], tiny_bindings(world, [
            f"fit_or_load_user_model.cache_dir = '{cache}'",
            f"run_experiment.num_iterations = {iterations}"] + list(extra)),
            [run_mod.CONFIG_DIR])
        return run_mod.run_experiment(str(run_dir), resume=resume)
    finally:
        gin.clear_config()


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_main_job_writes_everything_and_resumes(tiny_world_dir, tmp_path):
    from tensorflow.python.framework import config as tf_config
    tf_config.disable_op_determinism()
    keep = ["run_experiment.keep_checkpoints = True"]  # extended below
    out = run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 10, extra=keep)
    # Deterministic kernels were on for the run only: later tests run as they do alone.
    assert not tf_config.is_op_determinism_enabled()
    for name in ARTEFACTS:
        assert os.path.exists(tmp_path / "run" / name), name
    metrics = json.load(open(tmp_path / "run" / "metrics.json"))
    assert set(metrics["policies"]) == {"random", "most_popular", "nearest_neighbour",
                                        "greedy_user_model", "redundancy_greedy_user_model",
                                        "logging_policy", "ah_dqn"}
    for modes in metrics["policies"].values():
        assert set(modes) == {"offline", "online"}
        for r in modes.values():
            # 8 paired starts; the skip rate is the share of the heard tracks skipped
            # (per-episode counts summed), and reward = listens here.
            assert r["episodes"] == 8 and len(r["episode_heard"]) == 8
            assert r["skip_rate"] == pytest.approx(
                1 - sum(r["episode_listens"]) / sum(r["episode_heard"]))
            assert r["mean_episode_reward"] == pytest.approx(np.mean(r["episode_listens"]))
    assert [e[0] for e in metrics["offline_evaluations"]] == [5, 10]
    assert "create_ah_dqn_agent.units = 8" in open(tmp_path / "run" / "operative_config.gin").read()
    assert "ah_dqn" in run_mod.format_table(out)
    # Resume: the step count continues from the checkpoint (10 -> 15), nothing repeated.
    out2 = run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 15, extra=keep)
    assert [e[0] for e in out2["offline_evaluations"]] == [15]
    from tf_agents.utils import common  # noqa: F401
    ckpts = sorted(os.listdir(tmp_path / "run" / "checkpoints"))
    assert any("ckpt-15" in c for c in ckpts)
    # The user model was fitted once and reused from the cache.
    assert len(os.listdir(tmp_path / "cache")) == 1
    # Resuming that checkpoint with another agent setup fails loudly instead of keeping
    # its iteration count (nothing would train) and dropping the mismatched variables.
    from spotisim.errors import ConfigError
    with pytest.raises(ConfigError, match="create_ah_dqn_agent.units: 8 then, 16 now"):
        run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 20,
            extra=["create_ah_dqn_agent.units = 16"])
    # `--noresume` (resume=False) clears the checkpoint at 15 (and a temp directory a cut
    # save left): 5 iterations from 0, one evaluation at 5.  Finished without
    # keep_checkpoints, the run drops its resumable state.
    os.makedirs(tmp_path / "run" / "checkpoints" / "ckpt-20_temp")
    out3 = run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 5, resume=False,
               extra=["run_experiment.baselines = ['random']"])
    assert [e[0] for e in out3["offline_evaluations"]] == [5] and out3["iterations"] == 5
    assert not os.path.exists(tmp_path / "run" / "checkpoints")
    assert os.path.exists(tmp_path / "run" / "policy" / "saved_model.pb")


# Runs the main job in a child process and kills it (SIGKILL: no clean-up, no atexit)
# right after iteration `kill_at`.
KILLED_RUN = """
import os, signal
from agents import training
plain_run = training.Trainer.run
def killed_run(self, n, callback=None):
    def step(i, loss):
        callback(i, loss)
        if i + 1 == {kill_at}:
            os.kill(os.getpid(), signal.SIGKILL)
    return plain_run(self, n, step)
training.Trainer.run = killed_run
from experiments import run as run_mod
from spotisim.gin_utils import parse_gin
parse_gin(["ah_dqn"], {bindings!r}, [run_mod.CONFIG_DIR])
run_mod.run_experiment({run_dir!r})
"""


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_a_killed_and_resumed_run_ends_where_an_uninterrupted_one_does(tiny_world_dir,
                                                                       tmp_path):
    """Killed after iteration 8 of 10 (checkpoints every 5), started again on the same
    run directory: it resumes from the checkpoint at 5, and its agent, and so every
    metric of it, equals the uninterrupted run's.  Replay contents, exploration and
    replay sampling streams and the environment's episodes all matter here: AH-DQN
    explores epsilon-greedily, samples its replay and draws episode starts."""
    import subprocess
    import sys

    import tensorflow as tf
    cache = tmp_path / "cache"
    # One baseline (the agent is what matters); checkpoints and evaluations every 5.
    one_baseline = ["run_experiment.baselines = ['random']",
                    "run_experiment.checkpoint_every = 5", "run_experiment.eval_every = 5"]
    whole = run(tiny_world_dir, tmp_path / "whole", cache, 10, extra=one_baseline)
    bindings = tiny_bindings(tiny_world_dir, [f"fit_or_load_user_model.cache_dir = '{cache}'",
                                              "run_experiment.num_iterations = 10"]
                             + one_baseline)
    code = KILLED_RUN.format(kill_at=8, bindings=bindings, run_dir=str(tmp_path / "cut"))
    child = subprocess.run([sys.executable, "-c", code], cwd=os.path.dirname(os.path.dirname(run_mod.CONFIG_DIR)),
                           capture_output=True, text=True, timeout=600)
    assert child.returncode == -9, child.stderr[-2000:]
    assert tf.train.latest_checkpoint(str(tmp_path / "cut" / "checkpoints")).endswith("ckpt-5")
    assert not os.path.exists(tmp_path / "cut" / "metrics.json")
    resumed = run(tiny_world_dir, tmp_path / "cut", cache, 10, extra=one_baseline)
    assert [e[0] for e in resumed["offline_evaluations"]] == [10]
    assert resumed["offline_evaluations"] == whole["offline_evaluations"][-1:]
    assert resumed["policies"]["ah_dqn"] == whole["policies"]["ah_dqn"]
    a = tf.saved_model.load(str(tmp_path / "whole" / "policy")).model_variables
    b = tf.saved_model.load(str(tmp_path / "cut" / "policy")).model_variables
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy())


@pytest.fixture(scope="module")
def four_iterations(tiny_world_dir, tmp_path_factory):
    """One finished 4-iteration run (metrics, run directory), shared by the tests that
    only read it: a run costs about 25 s of the suite's budget."""
    root = tmp_path_factory.mktemp("four_iterations")
    return run(tiny_world_dir, root / "run", root / "cache", 4), root / "run"


def test_a_finished_run_is_kept_not_trained_again(tiny_world_dir, four_iterations, tmp_path):
    """A finished run keeps no checkpoint: run again with its setup, it returns its own
    metrics and trains nothing; asked for more iterations than it has, it is one error
    naming keep_checkpoints, and nothing of it changes."""
    import shutil
    from spotisim.errors import ConfigError
    finished = tmp_path / "run"
    shutil.copytree(four_iterations[1], finished)
    saved = (finished / "metrics.json").read_text()
    stamps = {p: os.path.getmtime(finished / p) for p in ("metrics.json", "policy")}
    again = run(tiny_world_dir, finished, four_iterations[1].parent / "cache", 4)
    assert again == json.loads(saved)
    with pytest.raises(ConfigError, match="finished run \\(4 iterations of ah_dqn\\).*"
                                          "keep_checkpoints"):
        run(tiny_world_dir, finished, four_iterations[1].parent / "cache", 6)
    assert (finished / "metrics.json").read_text() == saved
    assert {p: os.path.getmtime(finished / p) for p in stamps} == stamps
    assert not os.path.exists(finished / "checkpoints")


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_same_seed_same_metrics(tiny_world_dir, four_iterations, tmp_path):
    a = four_iterations[0]
    b = run(tiny_world_dir, tmp_path / "b", tmp_path / "cache", 4)
    assert a["policies"] == b["policies"]  # the trained agent included
    c = run(tiny_world_dir, tmp_path / "c", tmp_path / "cache", 4,
            extra=["run_experiment.seed = 1"])
    assert c["policies"] != a["policies"]


def test_bad_gin_input_fails_at_once():
    gin.clear_config()
    try:
        with pytest.raises(ConfigError, match="unknown gin config 'lird_dpg'"):
            parse_gin(["lird_dpg"], [], [run_mod.CONFIG_DIR])
        with pytest.raises(ConfigError, match="num_iteration"):
            parse_gin(["lird_ddpg"], ["run_experiment.num_iteration = 3"], [run_mod.CONFIG_DIR])
        # Not gin syntax: one line naming the binding, not gin's SyntaxError.
        with pytest.raises(ConfigError, match="leave_prior = float.*not gin syntax") as err:
            parse_gin(["lird_ddpg"], ["create_lird_ddpg_agent.leave_prior = float('nan')"],
                      [run_mod.CONFIG_DIR])
        assert "\n" not in str(err.value)
    finally:
        gin.clear_config()


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_evaluate_a_saved_run_under_swapped_user_models(four_iterations, tmp_path):
    from experiments import evaluate
    out, run_dir = four_iterations
    gin.clear_config()
    try:
        # The cache of the run is reused for the logistic model through the operative config.
        results = evaluate.evaluate_run(str(run_dir), ["ground_truth", "logistic"],
                                        episodes=8)
    finally:
        gin.clear_config()
    # The run's own baselines, greedy on the model it trained against included.
    assert set(results) == set(out["policies"]) == {
        "random", "most_popular", "nearest_neighbour", "greedy_user_model",
        "redundancy_greedy_user_model", "logging_policy", "ah_dqn"}
    for name, r in results.items():
        assert set(r) == {"ground_truth", "logistic"}
        # Under the ground truth, on the run's 8 starts (same seed), the saved run's
        # policies score exactly what the run itself reported online: the saved agent
        # included.
        online = out["policies"][name]["online"]
        for key in ("episode_listens", "episode_heard", "skip_rate", "mean_episode_reward"):
            assert r["ground_truth"][key] == online[key], (name, key)
        m = r["logistic"]
        assert m["episodes"] == 8
        assert m["skip_rate"] == pytest.approx(
            1 - sum(m["episode_listens"]) / sum(m["episode_heard"]))
    assert "ah_dqn" in evaluate.format_table(results, ["ground_truth", "logistic"])
    # experiments.seeds --reevaluate_episodes: the same online figures, kept beside the run.
    from experiments.seeds import reevaluated
    with pytest.raises(ConfigError, match="without an offline evaluator"):
        reevaluated(str(run_dir), 8, offline=True)  # the run scored offline by its model
    again = reevaluated(str(run_dir), 8)
    assert os.path.exists(run_dir / "evaluation_8.json")
    for name, r in results.items():
        assert again["policies"][name]["online"]["episode_listens"] == \
            r["ground_truth"]["episode_listens"]
    # --also scores a baseline the run did not report, under --gin_bindings over the
    # run's own, each setting kept in its own file: with penalty 0 the redundancy-aware
    # greedy is greedy; with a large one it plays other tracks.
    runs = {}
    for pen in (0.0, 50.0):
        bindings = [f"RedundancyGreedyPolicy.penalty = {pen}"]
        runs[pen] = reevaluated(str(run_dir), 8, also=["least_popular"],
                                bindings=bindings)["policies"]
        assert set(runs[pen]) == set(results) | {"least_popular"}
        for name in set(results) - {"redundancy_greedy_user_model"}:
            assert runs[pen][name]["online"]["episode_listens"] == \
                again["policies"][name]["online"]["episode_listens"]
    assert len(list(run_dir.glob("evaluation_8_*.json"))) == 2
    greedy = again["policies"]["greedy_user_model"]["online"]
    assert runs[0.0]["redundancy_greedy_user_model"]["online"]["episode_heard"] == \
        greedy["episode_heard"]
    assert runs[50.0]["redundancy_greedy_user_model"]["online"]["diversity"] != \
        greedy["diversity"]
    with pytest.raises(ConfigError, match="--also 'greedy'"):
        evaluate.evaluate_run(str(run_dir), ["ground_truth"], also=["greedy"])
    with pytest.raises(ConfigError, match="not a finished run"):
        evaluate.evaluate_run(str(tmp_path / "nothing"), ["ground_truth"])


def test_a_runs_offline_error_splits_into_its_parts(four_iterations):
    """`experiments.evaluate --decompose`: the truth decomposed against itself has no
    error and no part (its hybrids are the truth: the same draws, the same episodes);
    a learned model's error is its parts' sum, each part a hybrid's value minus the
    truth's."""
    from experiments import evaluate
    _, run_dir = four_iterations
    gin.clear_config()
    try:
        scored = evaluate.evaluate_run(str(run_dir), ["ground_truth", "logistic"], episodes=4)
        self_dec = evaluate.decompose_run(str(run_dir), "ground_truth", scored, 4)
        dec = evaluate.decompose_run(str(run_dir), "logistic", scored, 4)
    finally:
        gin.clear_config()
    assert set(self_dec) == set(dec) == set(scored)
    for policy, d in self_dec.items():
        assert (d["error"], d["listen_part"], d["leave_part"], d["interaction"]) == (0, 0, 0, 0)
        s = d["shadow"]
        assert s["p_leave_shadow"] == pytest.approx(s["p_leave_true"]), policy
    for policy, d in dec.items():
        assert d["online"] == scored[policy]["ground_truth"]["mean_episode_reward"]
        assert d["offline"] == scored[policy]["logistic"]["mean_episode_reward"]
        assert d["error"] == pytest.approx(d["offline"] - d["online"])
        assert d["error"] == pytest.approx(d["listen_part"] + d["leave_part"]
                                           + d["interaction"])
    assert any(d["listen_part"] != 0 for d in dec.values())
    assert "where the offline error comes from" in evaluate.format_decomposition(dec)


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_real_mssd_slice_end_to_end(mssd_sample_path, tmp_path):
    gin.clear_config()
    try:
        parse_gin(["mssd_sample"], [
            f"load_dataset.log_path = '{mssd_sample_path}'",
            f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
            "Item2VecTrainer.epochs = 1", "Item2VecTrainer.dim = 8",
            "SequentialUserModel.units = 8", "SequentialUserModel.epochs = 1",
            "run_experiment.num_iterations = 4", "run_experiment.eval_every = 4",
            "run_experiment.eval_episodes = 8", "run_experiment.progress = False",
            "train/EnvironmentBuilder.batch_size = 4", "Trainer.batch_size = 16",
            "Trainer.initial_collect_steps = 4", "create_ah_dqn_agent.units = 8",
        ], [run_mod.CONFIG_DIR])
        out = run_mod.run_experiment(str(tmp_path / "mssd"))
    finally:
        gin.clear_config()
    assert out["embeddings"].startswith("item2vec")
    for modes in out["policies"].values():
        assert set(modes) == {"offline"}  # no ground truth on real data
        r = modes["offline"]
        # Every policy plays the same 8 starts; a track counts for the replay metric only
        # where the held-out session played it, which a policy may never hit.
        # The count and rate are the per-episode counts summed (8 episodes).
        counted, skips = r["episode_replay_counted"], r["episode_replay_skips"]
        assert len(counted) == 8 and r["replay_count"] == sum(counted)
        if r["replay_count"]:
            assert r["replay_skip_rate"] == pytest.approx(sum(skips) / sum(counted))
        assert all(0 <= k <= c for k, c in zip(skips, counted))
    # The logging policy plays the held-out continuation itself: its tracks replay.
    assert out["policies"]["logging_policy"]["offline"]["replay_count"] > 0
    # No acoustic features: diversity on the learned embeddings, said so, never nan.
    assert "learned track embeddings" in out["diversity_source"]
    for modes in out["policies"].values():
        assert np.isfinite(modes["offline"]["diversity"])
    # The self-check ran: the permutation check on the user model, the spread, the tau.
    check = out["self_check"]
    assert check["track_permutation"]["auc"] > 0.5 and "auc_drop" in check["track_permutation"]
    assert check["offline_spread"]["best_baseline"] != "random"
    assert set(check["offline_skip_rate_ci"]) == set(out["policies"])
    assert "simulator self-check" in run_mod.format_self_check(check)


def test_seed_summary_arithmetic():
    from experiments import seeds
    from spotisim.stats import t95
    r = seeds.interval([1.0, 2.0, 3.0])
    # mean 2, sd 1, n 3: half-width = 4.303 * 1 / sqrt(3).
    assert r["mean"] == pytest.approx(2.0) and r["ci95"] == pytest.approx(4.303 / 3 ** 0.5, abs=1e-3)
    assert seeds.interval([5.0])["ci95"] == 0.0
    outs = [{"policies": {"p": {"online": {m: v for m in seeds.METRICS}}}} for v in (1.0, 3.0)]
    s = seeds.summarize(outs)
    assert s["p"]["online"]["skip_rate"]["mean"] == pytest.approx(2.0)
    assert "+-" in seeds.format_table(s)
    # Exact t quantiles for any number of seeds (tables: t_0.975 = 4.303 at 2 df,
    # 2.201 at 11 df, 2.042 at 30 df), never the normal 1.96.
    assert t95(2) == pytest.approx(4.303, abs=1e-3)
    assert t95(11) == pytest.approx(2.201, abs=1e-3)
    assert t95(30) == pytest.approx(2.042, abs=1e-3)
    # Paired differences: per seed (agent - greedy) = 1.0 and 3.0 -> mean 2, sd sqrt(2),
    # half-width 12.706 * sqrt(2) / sqrt(2) = 12.706.
    outs = [{"policies": {"greedy_user_model": {"online": {"mean_episode_reward": g}},
                          "agent": {"online": {"mean_episode_reward": g + d}}}}
            for g, d in ((5.0, 1.0), (7.0, 3.0))]
    pd = seeds.paired_differences(outs)["agent"]["online"]
    assert pd["mean"] == pytest.approx(2.0) and pd["ci95"] == pytest.approx(12.706, abs=1e-3)
    # In %: per seed 100 x (6 / 5 - 1) = 20 and 100 x (10 / 7 - 1) = 42.86, a paired
    # ratio per seed, not the ratio of the means over seeds (2 / 6 = 33.3%).
    rel = seeds.paired_differences(outs, relative=True)["agent"]["online"]
    assert rel["mean"] == pytest.approx((20.0 + 300.0 / 7) / 2, abs=1e-6)
    assert "%" in seeds.format_paired({"agent": {"online": rel}}, relative=True)
    # A policy that one seed did not evaluate is left out, not a KeyError.
    outs[0]["policies"]["random"] = {"online": {m: 1.0 for m in seeds.METRICS}}
    assert set(seeds.summarize(outs)) == {"greedy_user_model", "agent"}
    assert set(seeds.paired_differences(outs)) == {"agent"}
    # The agent against every baseline every seed scored (random, scored on one seed
    # only, is left out): per seed 6 - 5 and 10 - 7 against greedy.
    assert seeds.agent_minus_baselines(outs) == {}            # no agent named
    for o in outs:
        o["agent"] = "agent"
    outs[0]["policies"]["most_popular"] = {"online": {"mean_episode_reward": 4.0}}
    outs[1]["policies"]["most_popular"] = {"online": {"mean_episode_reward": 10.5}}
    diffs = seeds.agent_minus_baselines(outs)
    assert set(diffs) == {"greedy_user_model", "most_popular"}
    assert diffs["greedy_user_model"]["online"]["mean"] == pytest.approx(2.0)
    # 6 - 4 = 2 and 10 - 10.5 = -0.5: mean 0.75, sd 1.768, half-width 12.706 * 1.25.
    assert diffs["most_popular"]["online"]["mean"] == pytest.approx(0.75)
    assert diffs["most_popular"]["online"]["ci95"] == pytest.approx(12.706 * 1.25, abs=1e-3)
    assert "most_popular" in seeds.format_agent_minus_baselines(diffs, "agent")


def test_verdicts_over_seeds_on_a_hand_made_table():
    """Two seeds of four policies, offline and online, worked by hand: per seed Kendall's
    tau 4/6 (one discordant pair of six), top-tau 1/3 among the three above random,
    regret@1 0% then 100 x 0.2 / 8.2, the largest error 100 x (8 / 7 - 1), and the agent's
    paired online differences with their t-interval over seeds."""
    from experiments import seeds
    tables = ({"random": (5, 5), "most_popular": (7, 8), "agent": (9, 8.5), "greedy": (8, 7)},
              {"random": (5, 5), "most_popular": (9, 8), "agent": (8, 8.2), "greedy": (6, 7)})
    outs = [{"agent": "agent", "policies": {
        p: {"offline": {"mean_episode_reward": a}, "online": {"mean_episode_reward": b}}
        for p, (a, b) in t.items()}} for t in tables]
    v = seeds.verdicts_over_seeds(outs)
    assert v["per_seed"]["kendall_tau"] == pytest.approx([4 / 6, 4 / 6])
    assert v["per_seed"]["top_tau"] == pytest.approx([1 / 3, 1 / 3])
    assert v["per_seed"]["regret_at_1"] == pytest.approx([0.0, 100 * 0.2 / 8.2])
    assert v["per_seed"]["max_abs_error"][0] == pytest.approx(100 * (8 / 7 - 1))
    assert v["favourite_first_or_within_1pct"] == [True, False]
    assert v["figures"]["regret_at_1"]["mean"] == pytest.approx(50 * 0.2 / 8.2)
    assert v["offline_error"]["most_popular"]["mean"] == pytest.approx((-12.5 + 12.5) / 2)
    # agent - most popular online: +0.5 and +0.2 -> mean 0.35, half-width
    # 12.706 x sd(0.5, 0.2) / sqrt(2) = 12.706 x 0.15.
    m = v["agent_vs_policy"]["most_popular"]
    assert m["mean"] == pytest.approx(0.35) and m["hi"] - m["mean"] == pytest.approx(12.706 * 0.15, abs=1e-3)
    assert set(v["agent_vs_policy"]) == {"random", "most_popular", "greedy"}
    text = seeds.format_verdicts(v, [3, 7])
    assert "seed 3" in text and "1 of 2 seeds" in text and "beats 1 of 3" in text
    assert seeds.verdicts_line(v).startswith("verdicts over seeds: tau=0.667 [0.667, 0.667]")
    # Online only (what --reevaluate_episodes gives): no verdicts.
    for o in outs:
        for p in o["policies"].values():
            del p["offline"]
    assert seeds.verdicts_over_seeds(outs) == {}


def test_seeds_summarize_only_reads_finished_runs(tmp_path):
    """`--summarize_only` reads each seed's metrics.json (no run, no evaluation) and
    writes the paired differences to greedy and to the logging policy."""
    import subprocess
    import sys
    for seed, (g, a, lp) in enumerate(((5.0, 6.0, 4.0), (7.0, 10.0, 6.0))):
        d = tmp_path / f"seed_{seed}"
        d.mkdir()
        pol = {name: {mode: {"mean_episode_reward": v * scale, "skip_rate": 0.5,
                             "mean_episode_length": 3.0, "diversity": 0.1, "coverage": 0.2}
                      for mode, scale in (("online", 1.0), ("offline", 1.1))}
               for name, v in (("greedy_user_model", g), ("agent", a), ("logging_policy", lp))}
        (d / "metrics.json").write_text(json.dumps({"agent": "agent", "policies": pol}))
    r = subprocess.run([sys.executable, "-m", "experiments.seeds", "--summarize_only",
                        f"--run_dir={tmp_path}", "--seeds=0,1"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    out = json.load(open(tmp_path / "summary.json"))
    # agent - greedy: 1 and 3 -> mean 2; agent - logging: 2 and 4 -> mean 3.
    assert out["paired_vs_greedy_user_model"]["agent"]["online"]["mean"] == pytest.approx(2.0)
    assert out["paired_vs_logging_policy"]["agent"]["online"]["mean"] == pytest.approx(3.0)
    # Offline = 1.1 x online for every policy: the same ranking, no regret, 10% errors.
    assert out["verdicts"]["figures"]["kendall_tau"]["mean"] == pytest.approx(1.0)
    assert out["verdicts"]["figures"]["max_abs_error"]["mean"] == pytest.approx(10.0)
    assert r.stdout.strip().splitlines()[-1] == (
        "verdicts over seeds: tau=1.000 [1.000, 1.000] top-tau=1.000 [1.000, 1.000] "
        "regret@1=0.00% [0.00, 0.00] seeds=2 policies=3")
    r = subprocess.run([sys.executable, "-m", "experiments.seeds", "--summarize_only",
                        f"--run_dir={tmp_path}", "--seeds=0,5"], capture_output=True, text=True)
    assert r.returncode == 1 and "seed_5" in r.stderr


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_the_seeds_loop_runs_each_seed_and_summarises_them(tiny_world_dir, tmp_path):
    """`python -m experiments.seeds` (baselines only, two seeds): each seed's run is
    written under seed_<k> with that seed, plays its own starts, and the summary's
    mean is the two runs' mean."""
    import subprocess
    import sys
    args = [f"--gin_bindings={b}" for b in tiny_bindings(tiny_world_dir, [
        f"fit_or_load_user_model.cache_dir = '{tmp_path / 'cache'}'",
        "run_experiment.baselines = ['random', 'greedy_user_model']"])]
    r = subprocess.run([sys.executable, "-m", "experiments.seeds", "--gin_file=baselines",
                        f"--run_dir={tmp_path / 'seeds'}", "--seeds=0,1"] + args,
                       capture_output=True, text=True, timeout=600,
                       cwd=os.path.dirname(os.path.dirname(run_mod.CONFIG_DIR)))
    assert r.returncode == 0, r.stderr[-2000:]
    runs = [json.load(open(tmp_path / "seeds" / f"seed_{k}" / "metrics.json")) for k in (0, 1)]
    cfg = [open(tmp_path / "seeds" / f"seed_{k}" / "operative_config.gin").read()
           for k in (0, 1)]
    assert "run_experiment.seed = 0" in cfg[0] and "run_experiment.seed = 1" in cfg[1]
    listens = [m["policies"]["random"]["online"]["episode_listens"] for m in runs]
    assert listens[0] != listens[1]                       # other seed, other starts
    summary = json.load(open(tmp_path / "seeds" / "summary.json"))
    assert summary["seeds"] == [0, 1]
    want = np.mean([m["policies"]["greedy_user_model"]["online"]["mean_episode_reward"]
                    for m in runs])
    got = summary["summary"]["greedy_user_model"]["online"]["mean_episode_reward"]["mean"]
    assert got == pytest.approx(want)


@pytest.mark.parametrize("configs", [[os.path.splitext(f)[0]] for f in sorted(
    os.listdir(run_mod.CONFIG_DIR)) if f.endswith(".gin") and f != "satiation_world.gin"]
    + [["ah_dqn", "satiation_world"]])
def test_every_shipped_config_parses(configs):
    """A misspelt binding in a shipped config fails here, not in a user's first run."""
    from experiments import alignment, distributed  # noqa: F401  (their configurables)
    gin.clear_config()
    try:
        parse_gin(configs, [], [run_mod.CONFIG_DIR])
        if "satiation_world" in configs:
            from spotisim.data.synthetic import WorldConfig
            assert WorldConfig().satiation_weight > 0
    finally:
        gin.clear_config()


def test_user_model_cache_is_keyed_by_the_logs_content(tiny_log, tmp_path):
    """A log with the same sessions, ids and size but one skip flag flipped deep inside
    (past the first 50 sessions an id-and-size key looked at) gets its own fit; the same
    log again is a cache hit."""
    import copy

    from experiments.run import fit_or_load_user_model
    from spotisim.data.datasets import Dataset
    from spotisim.embeddings import build_embeddings
    from user_models.logistic import LogisticUserModel

    train, val, test = tiny_log.split(seed=0)
    emb = build_embeddings(train).aligned_to(tiny_log.catalog)

    def dataset(train_log):
        return Dataset(tiny_log, train_log, val, test, source="tiny")

    cache = tmp_path / "cache"
    fit_or_load_user_model(dataset(train), emb, model_ctor=LogisticUserModel, cache_dir=str(cache))
    fit_or_load_user_model(dataset(train), emb, model_ctor=LogisticUserModel, cache_dir=str(cache))
    assert len(os.listdir(cache)) == 1                      # same content: reused
    changed = copy.copy(train)
    changed.columns = dict(train.columns)
    flag = train.columns[train.skip_column].copy()
    row = train.offsets[train.num_sessions - 3]             # a session far past the 50th
    flag[row] = ~flag[row]
    changed.columns[train.skip_column] = flag
    changed._digest = None
    assert train.num_sessions > 60 and changed.num_rows == train.num_rows
    assert changed.content_digest() != train.content_digest()
    fit_or_load_user_model(dataset(changed), emb, model_ctor=LogisticUserModel, cache_dir=str(cache))
    assert len(os.listdir(cache)) == 2                      # changed content: refitted


def test_user_model_cache_is_keyed_by_helpers_and_machine_settings(tiny_log, tmp_path,
                                                                   monkeypatch):
    """An edit to a helper module the model's module imports (not the model's own
    module) refits, and so do other machine settings (instruction set, thread pools,
    versions: `spotisim.determinism.fingerprint`)."""
    import inspect

    from experiments import user_model_cache
    from spotisim import determinism
    from spotisim.data.datasets import Dataset
    from spotisim.embeddings import build_embeddings
    from user_models import early_stopping
    from user_models.logistic import LogisticUserModel

    train, val, test = tiny_log.split(seed=0)
    emb = build_embeddings(train).aligned_to(tiny_log.catalog)
    data = Dataset(tiny_log, train, val, test, source="tiny")
    cache = tmp_path / "cache"

    def fit():
        user_model_cache.fit_or_load_user_model(data, emb, model_ctor=LogisticUserModel,
                                                cache_dir=str(cache))
        return len(os.listdir(cache))

    assert fit() == 1 and fit() == 1
    names = [m.__name__ for m in user_model_cache._project_modules(LogisticUserModel)]
    assert "user_models.early_stopping" in names and "spotisim.user_model" in names
    real = inspect.getsource

    def edited(obj):
        text = real(obj)
        return text + "\n# edited\n" if obj is early_stopping else text
    monkeypatch.setattr(inspect, "getsource", edited)
    assert fit() == 2                                      # a helper edited: refitted
    monkeypatch.setattr(inspect, "getsource", real)
    assert fit() == 2                                      # back as it was: reused
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX512_CORE")
    assert fit() == 3                                      # another instruction set
    assert determinism.fingerprint()["isa"] == "AVX512_CORE"


def test_portable_defaults_fill_only_what_the_environment_leaves_unset():
    from spotisim import determinism
    env = {}
    determinism.apply_portable_defaults(env)
    assert env == {"ONEDNN_MAX_CPU_ISA": "AVX2", "TF_ENABLE_ONEDNN_OPTS": "0",
                   "TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "2"}
    env = {"SPOTISIM_THREADS": "8", "ONEDNN_MAX_CPU_ISA": "AVX512_CORE",
           "TF_ENABLE_ONEDNN_OPTS": "1"}
    determinism.apply_portable_defaults(env)
    assert env["ONEDNN_MAX_CPU_ISA"] == "AVX512_CORE"      # the user's choice wins
    assert env["TF_ENABLE_ONEDNN_OPTS"] == "1"
    assert env["TF_NUM_INTRAOP_THREADS"] == env["TF_NUM_INTEROP_THREADS"] == "8"
    env = {"SPOTISIM_PORTABLE": "0"}
    determinism.apply_portable_defaults(env)
    assert env == {"SPOTISIM_PORTABLE": "0"}               # TensorFlow's own choices
    # `import spotisim` applied them to this process (conftest imports it first).
    assert os.environ.get("ONEDNN_MAX_CPU_ISA") and os.environ.get("TF_NUM_INTRAOP_THREADS")
    assert os.environ.get("TF_ENABLE_ONEDNN_OPTS") == "0"


def test_bindings_on_the_parts_reach_the_main_jobs_environments(tiny_log):
    """The issue's three bindings, once silently ignored, take effect in the
    environments the main job builds (`train/` and `eval/` scopes); a scoped binding
    holds in its scope only; what the run wires in code is refused, naming the
    binding; parts that disagree fail loudly."""
    from spotisim.embeddings import build_embeddings
    from user_models.heuristics import PositionPriorUserModel
    emb = build_embeddings(tiny_log).aligned_to(tiny_log.catalog)
    model = PositionPriorUserModel().fit(tiny_log)

    def build(scope, kind="weights", **kw):
        with gin.config_scope(scope):
            return run_mod.make_builder(tiny_log, model, emb, kind, None, **kw).environment

    gin.clear_config()
    try:
        parse_gin([], ["PlaylistEnvironment.position_discount = 0.5",
                       "ContinuousWeightsTrackSampler.slate_size = 5", "MaxSteps.max_steps = 7",
                       "LogEpisodeSampler.pool_size = 40",
                       "train/EnvironmentBuilder.batch_size = 3"], [])
        for env in (build("train"), build("eval", batch_size=2)):
            assert env.slate_size == 5 and env.action_space().shape == (5, emb.shape[1])
            assert env.pool_size == 40 == env._track_sampler.pool_size
            # Rewards weigh positions 1, 0.5, 0.25, ...: five listens earn 1.9375.
            np.testing.assert_allclose(env.reward(np.ones((1, 5)), np.ones((1, 5))), [1.9375])
            steps = [r for r in env._termination.rules if hasattr(r, "max_steps")]
            assert [r.max_steps for r in steps] == [7]
        assert build("train").batch_size == 3
        assert build("").batch_size == 1            # the scoped binding stays in its scope
        assert build("eval", batch_size=2).batch_size == 2
        # 7 slates at most: an episode that is never left and never given up ends at 7.
        env = build("train", kind="slate")
        env.simulate_leaving = False
        env.reset()
        for step in range(1, 8):
            r = env.step(np.tile(np.arange(3), (3, 1)))
            assert r.done.all() == (step == 7)
    finally:
        gin.clear_config()
    for binding, names in [
        ("PlaylistEnvironment.seed = 3", ("PlaylistEnvironment.seed", "run_experiment.seed")),
        ("LogEpisodeSampler.embeddings = None", ("LogEpisodeSampler.embeddings",
                                                 "build_embeddings")),
        ("eval/EnvironmentBuilder.batch_size = 9", ("EnvironmentBuilder.batch_size",
                                                    "train/EnvironmentBuilder.batch_size")),
        ("SlateIndicesTrackSampler.pool_size = 30", ("SlateIndicesTrackSampler.pool_size",
                                                     "episode sampler's pool is 100")),
    ]:
        gin.clear_config()
        try:
            parse_gin([], [binding], [])
            with pytest.raises(ConfigError) as err:
                build("eval", kind="slate", batch_size=2)
            for name in names:
                assert name in str(err.value), (binding, str(err.value))
        finally:
            gin.clear_config()


def test_an_operative_config_loses_only_the_wired_arguments():
    text = ("PlaylistEnvironment.expected_leaving = False\n"
            "PlaylistEnvironment.seed = 0\n"
            "train/EnvironmentBuilder.seed = 0\n"
            "MaxSteps.max_steps = 20\n"
            "train/MaxSteps.max_steps = 20\n")
    kept = run_mod.without_shadowed_bindings(text)
    assert kept.split("\n")[:3] == ["PlaylistEnvironment.expected_leaving = False",
                                     "MaxSteps.max_steps = 20",
                                     "train/MaxSteps.max_steps = 20"]


def test_observe_scores_gives_the_scorers_answers(tiny_log):
    """`PlaylistEnvironment.observe_scores`: the observation holds the *scorer's* P(listen) of
    each candidate.  The scorer here answers by track alone (train-split play count), so
    each observed score is known from the candidate's id."""
    from user_models.heuristics import PositionPriorUserModel, TrackPopularityUserModel
    emb = tiny_log.catalog.normalized_features()
    scorer = TrackPopularityUserModel().fit(tiny_log)
    responder = PositionPriorUserModel().fit(tiny_log)
    gin.clear_config()
    try:
        gin.parse_config("PlaylistEnvironment.observe_scores = True")
        env = run_mod.make_builder(tiny_log, responder, emb, "slate", None, batch_size=3,
                                   scorer=scorer).environment
    finally:
        gin.clear_config()
    obs = env.reset()
    ids = obs["candidate_ids"]
    assert ids.shape == (3, 100)
    np.testing.assert_allclose(obs["candidate_scores"], scorer.by_bin[scorer._bins(ids)],
                               rtol=1e-6)
    off = run_mod.make_builder(tiny_log, responder, emb, "slate", None,
                               batch_size=3).environment
    assert "candidate_scores" not in off.reset()


def test_the_experiment_settings_are_one_record_every_role_reads():
    """`run_experiment.*` bindings fill one gin-configurable record (`Experiment`) that
    the runner and the distributed roles both read; no role reads another function's
    bindings."""
    from experiments.distributed.config import experiment
    from experiments.experiment import DEFAULT_BASELINES, Experiment
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], ["run_experiment.seed = 7", "run_experiment.num_iterations = 12"],
                  [run_mod.CONFIG_DIR])
        shared = experiment()
        assert shared == Experiment()
        assert (shared.seed, shared.num_iterations, shared.eval_every) == (7, 12, 1000)
        assert shared.agent_fn.__name__ == "create_ah_dqn_agent"
        assert shared.baselines == DEFAULT_BASELINES
    finally:
        gin.clear_config()
    assert Experiment().seed == 0 and Experiment().agent_fn is None


def test_the_recorded_operative_config_keeps_the_gin_imports():
    """A run of an agent that a gin file imports (dqn_ranked_leave.gin) records the
    import, so experiments.evaluate and a resume find the agent from the directory."""
    from experiments.assembly import operative_config_text
    gin.clear_config()
    try:
        parse_gin(["dqn_ranked_leave"], [], [run_mod.CONFIG_DIR])
        text = operative_config_text()
    finally:
        gin.clear_config()
    assert text.splitlines()[0] == "import agents.dqn_ranked"
    assert text.splitlines().count("import agents.dqn_ranked") == 1   # not twice
    gin.clear_config()
    try:  # and it parses back
        gin.parse_config(text, skip_unknown=True)
    finally:
        gin.clear_config()


def test_run_configs_recorded_before_the_parts_were_the_surface_read_with_current_names():
    """Runs made before 2026-11-26 recorded make_builder.* bindings: experiments.evaluate
    reads them under the parts' names (docs/configuration.md, "Renamed bindings")."""
    from experiments.assembly import with_current_names, without_shadowed_bindings
    old = ("make_builder.max_steps = 20\nMaxSteps.max_steps = 7\n"
           "make_builder.observe_scores = True\nmake_builder.scorer = None\n"
           "make_builder.slate_size = 3\nmake_builder.expected_leaving = False\n"
           "run_experiment.seed = 1\n")
    new = with_current_names(old)
    assert "make_builder" not in new
    assert "MaxSteps.max_steps = 7" in new and "MaxSteps.max_steps = 20" not in new
    assert "PlaylistEnvironment.observe_scores = True" in new
    assert "SlateIndicesTrackSampler.slate_size = 3" in new
    gin.clear_config()
    try:
        gin.parse_config(without_shadowed_bindings(old))
        assert gin.query_parameter("PlaylistEnvironment.observe_scores") is True
        assert gin.query_parameter("MaxSteps.max_steps") == 7
    finally:
        gin.clear_config()


def test_the_offline_evaluation_can_be_scored_by_another_user_model(tiny_world_dir, tmp_path):
    """`run_experiment.offline_evaluator` scores the offline evaluation with another
    user model while policies observe the trained one: with the ground truth as the
    evaluator, every policy's offline figures are its online ones (same starts, same
    listeners), and the header names the evaluator; an unknown name is one clear
    error."""
    out = run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 0, config="baselines",
              extra=["run_experiment.offline_evaluator = 'ground_truth'",
                     "run_experiment.baselines = ('random', 'greedy_user_model')"])
    for name, modes in out["policies"].items():
        assert modes["offline"]["episode_rewards"] == modes["online"]["episode_rewards"]
        assert modes["offline"]["skip_rate"] == modes["online"]["skip_rate"]
    assert "offline evaluator: ground_truth" in run_mod.format_table(out)
    # experiments.seeds --reevaluate_offline: the run's evaluator at today's code on the
    # run's starts gives the run's own offline figures back.
    from experiments.seeds import reevaluated
    again = reevaluated(str(tmp_path / "run"), 8, offline=True)["policies"]
    assert set(again) == set(out["policies"])
    for name, modes in out["policies"].items():
        for mode in ("offline", "online"):
            assert again[name][mode]["episode_rewards"] == modes[mode]["episode_rewards"]
    # --reevaluate_evaluator: another simulator scores the same starts offline; the
    # online figures stay; a name that is no user model is one error.
    other = reevaluated(str(tmp_path / "run"), 8, offline=True,
                        evaluator="logistic")["policies"]
    for name, modes in out["policies"].items():
        assert other[name]["online"]["episode_rewards"] == modes["online"]["episode_rewards"]
    assert any(other[n]["offline"]["episode_rewards"] != m["offline"]["episode_rewards"]
               for n, m in out["policies"].items())
    with pytest.raises(ConfigError, match="nobody"):
        reevaluated(str(tmp_path / "run"), 8, offline=True, evaluator="nobody")
    with pytest.raises(ConfigError, match="'nobody'"):
        run(tiny_world_dir, tmp_path / "run2", tmp_path / "cache", 0, config="baselines",
            extra=["run_experiment.offline_evaluator = 'nobody'"])


def test_a_run_directory_in_use_is_refused_before_anything_is_written(tiny_world_dir,
                                                                      tmp_path):
    from spotisim.errors import DirectoryInUse
    from spotisim.io_utils import directory_lock
    with directory_lock(str(tmp_path / "run")):
        with pytest.raises(DirectoryInUse, match="one process per run directory"):
            run(tiny_world_dir, tmp_path / "run", tmp_path / "cache", 2)
    assert os.listdir(tmp_path / "run") == [".lock"]


def test_a_run_directory_never_runs_code_it_names(four_iterations, tmp_path):
    """A shared run directory whose config imports its own payload is refused, naming
    the line, unless the user trusts it; the project's own imports pass."""
    import shutil
    import sys

    from experiments import evaluate
    from experiments.assembly import checked_run_config
    run_dir = tmp_path / "shared_run"
    shutil.copytree(four_iterations[1], run_dir)
    (tmp_path / "payload_for_test.py").write_text(
        f"open({str(tmp_path / 'ran')!r}, 'w').close()\n")
    config = run_dir / "operative_config.gin"
    config.write_text("import experiments.run\nimport payload_for_test\n" + config.read_text())
    sys.path.insert(0, str(tmp_path))
    try:
        gin.clear_config()
        with pytest.raises(ConfigError, match="line 2: 'import payload_for_test' would run "
                                              "code the run directory names"):
            evaluate.evaluate_run(str(run_dir), ["ground_truth"], episodes=2)
        assert not (tmp_path / "ran").exists()
        with pytest.raises(ConfigError, match="include"):
            config.write_text("include '/somewhere/else.gin'\n" + config.read_text())
            checked_run_config(str(run_dir))
        checked_run_config(str(run_dir), trust=True)  # read, not parsed: nothing ran
        assert not (tmp_path / "ran").exists()
        gin.clear_config()
        config.write_text("\n".join(config.read_text().splitlines()[1:]) + "\n")
        from experiments.assembly import parse_run_config
        parse_run_config(str(run_dir), trust=True)
        assert (tmp_path / "ran").exists()  # trusted: its import ran
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("payload_for_test", None)
        gin.clear_config()


def test_a_bad_binding_over_a_run_is_one_line_naming_it(four_iterations):
    """What every script reading a finished run parses (`parse_run_config`): an unknown
    configurable and an unclosed bracket are each a ConfigError naming the binding."""
    from experiments.assembly import parse_run_config
    try:
        for binding, why in (("nonsense.x = 1", "No configurable matching 'nonsense'"),
                             ("run_experiment.seed = (", "not gin syntax")):
            gin.clear_config()
            with pytest.raises(ConfigError, match=f"gin binding .*: {why}"):
                parse_run_config(four_iterations[1], [binding])
    finally:
        gin.clear_config()


def test_a_cut_save_leaves_no_temp_directory_behind(tmp_path):
    from experiments.runner import clear_stale_checkpoints
    ckpt = tmp_path / "checkpoints"
    os.makedirs(ckpt / "ckpt-7_temp" / "part")
    (ckpt / "ckpt-5.index").write_text("x")
    (ckpt / "checkpoint").write_text("x")
    clear_stale_checkpoints(str(ckpt))
    assert sorted(os.listdir(ckpt)) == ["checkpoint", "ckpt-5.index"]
    clear_stale_checkpoints(str(ckpt), everything=True)
    assert not ckpt.exists()
    clear_stale_checkpoints(str(tmp_path / "none"))  # nothing there: nothing to do


def test_an_agent_can_train_against_a_named_simulator(tiny_world_dir, tmp_path):
    """`run_experiment.simulator` names the model the run trains against (and greedy
    reads): an ensemble here, whose offline answers differ from its first member's;
    an unknown name is one clear error before anything is written."""
    base = ["run_experiment.baselines = ('random', 'greedy_user_model')"]
    alone = run(tiny_world_dir, tmp_path / "alone", tmp_path / "cache", 0, config="baselines",
                extra=base)
    both = run(tiny_world_dir, tmp_path / "both", tmp_path / "cache", 0, config="baselines",
               extra=base + ["run_experiment.simulator = 'min(logistic,position_prior)'"])
    for policy in ("random", "greedy_user_model"):
        assert (both["policies"][policy]["offline"]["episode_rewards"]
                != alone["policies"][policy]["offline"]["episode_rewards"])
        assert (both["policies"]["random"]["online"]["episode_rewards"]
                == alone["policies"]["random"]["online"]["episode_rewards"])
    assert "run_experiment.simulator = 'min(logistic,position_prior)'" in open(
        tmp_path / "both" / "operative_config.gin").read()
    with pytest.raises(ConfigError, match="run_experiment.simulator 'nobody'"):
        run(tiny_world_dir, tmp_path / "bad", tmp_path / "cache", 0, config="baselines",
            extra=["run_experiment.simulator = 'nobody'"])
    assert not os.path.exists(tmp_path / "bad")


def test_a_reward_changed_since_the_checkpoint_is_refused(tmp_path):
    """The reward is a part of the setup: resuming a checkpoint made with another
    discount would mix two objectives (#27: rewards were missing from the parts)."""
    from experiments.assembly import refuse_changed_setup
    from spotisim.errors import ConfigError
    from spotisim.rewards import PositionDiscountedListens
    saved = tmp_path / "operative_config.gin"
    saved.write_text("PositionDiscountedListens.discount = 0.9\n")
    gin.clear_config()
    try:
        gin.parse_config(["PositionDiscountedListens.discount = 0.5"])
        PositionDiscountedListens()                 # the run calls it: gin records it
        with pytest.raises(ConfigError, match="PositionDiscountedListens.discount"):
            refuse_changed_setup(str(saved), "create_ah_dqn_agent")
        gin.clear_config()
        gin.parse_config(["PositionDiscountedListens.discount = 0.9"])
        PositionDiscountedListens()
        refuse_changed_setup(str(saved), "create_ah_dqn_agent")   # the same: resumes
    finally:
        gin.clear_config()


def test_the_agent_starts_where_its_training_simulator_says(tiny_world_dir, four_iterations,
                                                            tmp_path, monkeypatch):
    """`run_experiment.actor_starts`: each start's untrained agent plays the same
    training starts against the training simulator; training begins from the best
    (the first of equals), the choice is in metrics.json and actor_start.json, and a
    run directory holding the choice for the same starts reuses it without playing
    them again.  A start naming an argument the agent does not take is one error.

    `run_experiment.ship = 'evaluator'`: the untrained start (saved before training)
    and the trained agent play the same validation starts under the evaluator, and
    the higher ships: policy/ is its copy and the report's agent row is its own.  (The
    tiny run's evaluator prefers the trained agent, so the start is made to ship here
    after the real choice is checked: the start's branch is the one to test.)"""
    import tensorflow as tf
    from agents.lird_ddpg import create_lird_ddpg_agent
    from experiments import runner, shipping
    from experiments.actor_start import START_FILE, choose_actor_start
    from experiments.shipping import SHIPPED_FILE, load_policy
    real_choices, scored = [], []
    choose, evaluate = shipping.choose_shipped, runner.final_evaluation

    def start_ships(*args, **kwargs):
        real_choices.append(choose(*args, **kwargs))
        return {**real_choices[-1], "shipped": "start"}

    def final_evaluation(*args, **kwargs):
        scored.append(kwargs["agent_policy"])
        return evaluate(*args, **kwargs)
    monkeypatch.setattr(shipping, "choose_shipped", start_ships)
    monkeypatch.setattr(runner, "final_evaluation", final_evaluation)
    starts = "[{'score_prior': 2.0}, {'score_prior': 2.0, 'popularity_prior': 3.0}]"
    lird = ["PlaylistEnvironment.score_features = True",
            "PlaylistEnvironment.score_popularity = True",
            "PlaylistEnvironment.observe_candidates = True",
            "create_lird_ddpg_agent.units = 8", "run_experiment.baselines = ['random']",
            f"run_experiment.actor_starts = {starts}",
            "run_experiment.actor_start_episodes = 8"]
    cache = four_iterations[1].parent / "cache"  # the shared run's fitted model
    out = run(tiny_world_dir, tmp_path / "run", cache, 2, config="lird_published",
              extra=lird + ["run_experiment.ship = 'evaluator'",
                            "run_experiment.ship_episodes = 8"])
    (real,) = real_choices
    assert real == json.load(open(tmp_path / "run" / SHIPPED_FILE))
    assert [c["name"] for c in real["candidates"]] == ["trained", "start"]
    (trained, start) = [c["listens"] for c in real["candidates"]]
    assert real["shipped"] == ("trained" if trained >= start else "start")
    assert real["candidates"][0]["minus_first"] == 0
    assert real["candidates"][1]["minus_first"] == pytest.approx(start - trained)
    assert real["candidates"][1]["minus_first_se"] >= 0
    assert real["episodes"] == 8 and real["evaluator"] == "simulator"
    assert out["shipped"]["shipped"] == "start"
    # The report's agent row is the start's: the policy the final evaluation scored.
    (policy_fn,) = scored
    assert policy_fn.func is load_policy and policy_fn.args == (
        str(tmp_path / "run" / "start_policy"),)

    def weights(name):
        return [v.numpy() for v in tf.saved_model.load(
            str(tmp_path / "run" / name)).model_variables]
    kept = {"trained": weights("trained_policy"), "start": weights("start_policy")}
    assert any(not np.array_equal(a, b) for a, b in zip(kept["trained"], kept["start"]))
    for a, b in zip(weights("policy"), kept["start"]):
        np.testing.assert_array_equal(a, b)       # policy/ is the one shipped
    # The call made again on the finished run: the same figures on the same starts,
    # in its own file; policy/ stays the shipped one.
    monkeypatch.setattr(shipping, "choose_shipped", choose)
    again = shipping.reconsider(str(tmp_path / "run"), 8)
    assert again == real == json.load(open(tmp_path / "run" / "shipped_8.json"))
    for a, b in zip(weights("policy"), kept["start"]):
        np.testing.assert_array_equal(a, b)
    # Either candidate scored as the agent on the run's own test starts: the start's
    # figure is the report's agent row.
    from experiments.evaluate import evaluate_run
    agent = out["agent"]
    by_policy = {p: evaluate_run(str(tmp_path / "run"), ["ground_truth"], 8, policy=p)[agent]
                 ["ground_truth"]["episode_rewards"] for p in ("start_policy", "trained_policy")}
    assert by_policy["start_policy"] == out["policies"][agent]["online"]["episode_rewards"]
    assert by_policy["trained_policy"] != by_policy["start_policy"]
    with pytest.raises(ConfigError, match="policy 'best_policy': not one of"):
        evaluate_run(str(tmp_path / "run"), ["ground_truth"], 8, policy="best_policy")
    with pytest.raises(ConfigError, match=r"no trained_policy/, start_policy/ \(a finished run"):
        shipping.reconsider(str(four_iterations[1]), 8)
    for binding, message in (
            ("run_experiment.ship = 'best'",
             r"run_experiment.ship: 'best' is not one of 'trained', 'evaluator'"),
            ("run_experiment.ship_episodes = 0",
             "run_experiment.ship_episodes: 0 is not a positive whole number")):
        with pytest.raises(ConfigError, match=message):
            run(tiny_world_dir, tmp_path / "bad_ship", cache, 2, config="lird_published",
                extra=lird + [binding])
        assert not os.path.exists(tmp_path / "bad_ship")
    rows = out["actor_start"]["candidates"]
    assert [r["start"] for r in rows] == [{"score_prior": 2.0},
                                         {"score_prior": 2.0, "popularity_prior": 3.0}]
    listens = [r["listens"] for r in rows]
    assert listens[0] != listens[1]          # the popularity start plays other tracks
    assert out["actor_start"]["chosen"] == rows[int(np.argmax(listens))]["start"]
    saved = json.load(open(tmp_path / "run" / START_FILE))
    assert saved == out["actor_start"]

    def no_env():
        raise AssertionError("the saved choice is reused, nothing is played")
    assert choose_actor_start(str(tmp_path / "run"), saved["starts"], create_lird_ddpg_agent,
                              None, None, no_env, 8) == saved
    with pytest.raises(ConfigError, match=r"actor_starts\[1\]: create_lird_ddpg_agent takes "
                                          "no argument pop_prior"):
        run(tiny_world_dir, tmp_path / "bad", cache, 2, config="lird_published",
            extra=lird + ["run_experiment.actor_starts = [{}, {'pop_prior': 1.0}]"])
    assert not os.path.exists(tmp_path / "bad")
