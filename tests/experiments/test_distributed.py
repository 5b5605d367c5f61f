"""The distributed mode: a Reverb server, two collect actors and a learner as separate
processes on loopback.  The learner must consume trajectories from both actors, the
actors must pick up new policy weights, an actor killed mid-run must be restarted and
rejoin, and the learner must survive it, checkpoint and finish cleanly on STOP."""

import json
import os
import signal
import threading
import time

import gin
import numpy as np
import pytest

from experiments import distributed as dist
from experiments import run as run_mod
from spotisim.gin_utils import parse_gin


@pytest.fixture(scope="module")
def sharded_world(tmp_path_factory):
    """A tiny world written as 4 CSV files (so 2 actors own 2 shards each)."""
    from spotisim.data.synthetic import WorldConfig, generate
    from tests.conftest import TINY_WORLD
    out = str(tmp_path_factory.mktemp("sharded_world"))
    return generate(out, num_sessions=240, seed=5, config=WorldConfig(seed=5, **TINY_WORLD),
                    num_shards=4)


def bindings(world, cache, extra=()):
    return [
        f"load_dataset.log_path = '{world['log']}'",
        f"load_dataset.tracks_path = '{world['tracks']}'",
        f"load_dataset.hidden_path = '{world['hidden']}'",
        f"load_dataset.world_path = '{world['world']}'",
        "fit_or_load_user_model.model_ctor = @LogisticUserModel",
        "LogisticUserModel.epochs = 2",
        f"fit_or_load_user_model.cache_dir = '{cache}'",
        "make_builder.pool_size = 30", "make_builder.max_steps = 5",
        "run_experiment.eval_episodes = 8", "run_experiment.baselines = ['random']",
        "create_ah_dqn_agent.units = 8",
        "ScaleOut.actor_batch_size = 4", "ScaleOut.min_replay_size = 40",
        "ScaleOut.sample_batch_size = 16", "ScaleOut.learner_steps_per_run = 5",
        "ScaleOut.collect_steps_per_run = 5", "ScaleOut.rows_per_shard = None",
    ] + list(extra)


def wait_for(predicate, timeout, what):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = predicate()
        if value:
            return value
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def test_two_actors_and_a_learner_on_loopback(sharded_world, tmp_path):
    root = str(tmp_path / "job")
    extra = ["run_experiment.num_iterations = 1000000",   # ends on STOP
             "ScaleOut.prioritized = True"]
    args = bindings(sharded_world, tmp_path / "cache", extra)
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], args, [run_mod.CONFIG_DIR])
        settings = dist.ScaleOut()
        cluster = dist.LocalCluster(root, ["--gin_file=ah_dqn"] + [f"--gin_bindings={b}" for b in args],
                                    settings)
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("rc", cluster.run(timeout=400)))
        thread.start()
        try:
            status = lambda name: dist.read_status(root, name) or {}  # noqa: E731
            # Both actors collect, and the learner trains on their data.
            wait_for(lambda: status("learner").get("train_step", 0) >= 10
                     and all(status(f"actor_{i}").get("env_steps", 0) > 0 for i in (0, 1)),
                     240, "the learner to train on both actors' data")
            a0 = status("actor_0")
            assert a0["starts"] == 1
            # Kill actor 0; the launcher restarts it and it rejoins.
            step_at_kill = status("learner")["train_step"]
            os.kill(a0["pid"], signal.SIGKILL)
            wait_for(lambda: status("actor_0").get("starts") == 2
                     and status("actor_0").get("env_steps", 0) > 0
                     and max(status("actor_0")["policy_train_steps"]) > step_at_kill,
                     240, "actor 0 to restart, pull newer weights and collect again")
            # The learner carried on through the actor's death.
            assert status("learner")["train_step"] > step_at_kill
            assert cluster.restarts == {"actor_0": 1}
            open(os.path.join(root, dist.STOP_FILE), "w").close()
            thread.join(300)
        finally:
            if thread.is_alive():
                cluster.shutdown()
                thread.join(30)
    finally:
        gin.clear_config()
    assert result.get("rc") == 0, open(os.path.join(root, "logs", "learner.log")).read()[-3000:]
    learner = dist.read_status(root, "learner")
    assert learner["done"] and learner["stopped_early"]
    # Consumed trajectories written by both actors.
    assert learner["consumed_per_actor"]["0"] > 0 and learner["consumed_per_actor"]["1"] > 0
    assert sum(learner["consumed_per_actor"].values()) == 16 * learner["train_step"]
    for i in (0, 1):
        a = dist.read_status(root, f"actor_{i}")
        # Picked up new weights: the train steps of the weights it pulled grew.
        assert len(a["policy_train_steps"]) >= 2 and max(a["policy_train_steps"]) > 0
        assert len(a["shards"]) == 2
    assert set(dist.read_status(root, "actor_0")["shards"]).isdisjoint(
        dist.read_status(root, "actor_1")["shards"])
    # Checkpoint, saved policy, the final evaluation, and STOP consumed.
    ckpt_dir = os.path.join(root, "learner", "train", "checkpoints")
    final = f"ckpt-{learner['train_step']}.index"
    assert final in os.listdir(ckpt_dir)
    assert os.path.exists(os.path.join(root, "policy", "saved_model.pb"))
    metrics = json.load(open(os.path.join(root, "metrics.json")))
    assert set(metrics["policies"]) == {"random", "ah_dqn"}
    assert 0 <= metrics["policies"]["ah_dqn"]["online"]["skip_rate"] <= 1
    assert not os.path.exists(os.path.join(root, dist.STOP_FILE))

    # A new job in the same root_dir resumes the learner from its checkpoint.
    target = learner["train_step"] + 10
    args = bindings(sharded_world, tmp_path / "cache",
                    [f"run_experiment.num_iterations = {target}"])
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], args, [run_mod.CONFIG_DIR])
        rc = dist.LocalCluster(root, ["--gin_file=ah_dqn"] + [f"--gin_bindings={b}" for b in args],
                               dist.ScaleOut()).run(timeout=300)
    finally:
        gin.clear_config()
    assert rc == 0
    resumed = dist.read_status(root, "learner")
    assert resumed["done"] and resumed["train_step"] == target
    # Only the 10 new steps were trained: consumption restarts with the process.
    assert sum(resumed["consumed_per_actor"].values()) == 16 * 10


def test_lird_ddpg_runs_distributed(sharded_world, tmp_path):
    """LIRD-DDPG through the same roles: both actors' data consumed, new weights pulled,
    a clean finish on STOP with its report."""
    root = str(tmp_path / "lird")
    args = bindings(sharded_world, tmp_path / "cache",
                    ["run_experiment.num_iterations = 1000000", "create_lird_ddpg_agent.units = 8"])
    gin.clear_config()
    try:
        parse_gin(["lird_ddpg"], args, [run_mod.CONFIG_DIR])
        cluster = dist.LocalCluster(root, ["--gin_file=lird_ddpg"]
                                    + [f"--gin_bindings={b}" for b in args], dist.ScaleOut())
        result = {}
        thread = threading.Thread(target=lambda: result.setdefault("rc", cluster.run(timeout=400)))
        thread.start()
        try:
            status = lambda name: dist.read_status(root, name) or {}  # noqa: E731
            wait_for(lambda: all(status("learner").get("consumed_per_actor", {}).get(str(i), 0) > 0
                                 and max(status(f"actor_{i}").get("policy_train_steps", [0])) > 0
                                 for i in (0, 1)),
                     240, "the learner to consume both actors' data and the actors to pull weights")
            open(os.path.join(root, dist.STOP_FILE), "w").close()
            thread.join(300)
        finally:
            if thread.is_alive():
                cluster.shutdown()
                thread.join(30)
    finally:
        gin.clear_config()
    assert result.get("rc") == 0, open(os.path.join(root, "logs", "learner.log")).read()[-3000:]
    learner = dist.read_status(root, "learner")
    assert learner["done"] and learner["train_step"] > 0 and np.isfinite(learner["loss"])
    assert "lird_ddpg" in json.load(open(os.path.join(root, "metrics.json")))["policies"]


def test_prepare_refuses_a_root_dir_prepared_differently(sharded_world, tmp_path):
    """Shards, user model and catalogue are prepared once per root_dir; other data or
    user-model settings are refused rather than silently reusing the old ones."""
    from spotisim.errors import ConfigError
    root = str(tmp_path / "job")
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], bindings(sharded_world, tmp_path / "cache"), [run_mod.CONFIG_DIR])
        prep = dist.prepare(root)
        assert len(prep["shards"]) == 4 and dist.prepare(root) == prep
        gin.clear_config()
        parse_gin(["ah_dqn"], bindings(sharded_world, tmp_path / "cache",
                                       ["LogisticUserModel.epochs = 3"]), [run_mod.CONFIG_DIR])
        with pytest.raises(ConfigError, match="prepared from other"):
            dist.prepare(root)
    finally:
        gin.clear_config()
