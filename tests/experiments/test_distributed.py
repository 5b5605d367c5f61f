"""The distributed mode: a Reverb server, two collect actors and a learner as separate
processes on loopback.  The learner must consume trajectories from both actors, the
actors must pick up new policy weights, an actor killed mid-run must be restarted and
rejoin, and the learner must survive it, checkpoint and finish cleanly on STOP."""

import contextlib
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
from experiments.tiny import tiny_bindings


@pytest.fixture(scope="module")
def sharded_world(tmp_path_factory):
    """A tiny world written as 4 CSV files (so 2 actors own 2 shards each)."""
    from spotisim.data.synthetic import WorldConfig, generate
    from tests.conftest import TINY_WORLD
    out = str(tmp_path_factory.mktemp("sharded_world"))
    return generate(out, num_sessions=240, seed=5, config=WorldConfig(seed=5, **TINY_WORLD),
                    num_shards=4)


def bindings(world, cache, extra=()):
    """The main job's tiny test configuration, plus small distributed settings."""
    return tiny_bindings(world, [
        f"fit_or_load_user_model.cache_dir = '{cache}'",
        "run_experiment.baselines = ['random']",
        "ScaleOut.min_replay_size = 40",
        "ScaleOut.sample_batch_size = 16", "ScaleOut.learner_steps_per_run = 5",
        "ScaleOut.collect_steps_per_run = 5", "ScaleOut.rows_per_shard = None",
    ] + list(extra))


def status(root, name):
    return dist.read_status(root, name) or {}


def cluster_for(config, args, root):
    gin.clear_config()
    parse_gin([config], args, [run_mod.CONFIG_DIR])
    return dist.LocalCluster(root, [f"--gin_file={config}"] + [f"--gin_bindings={b}" for b in args],
                             dist.ScaleOut())


def learner_log(root):
    return open(os.path.join(root, "logs", "learner.log")).read()[-3000:]


@contextlib.contextmanager
def running_job(config, args, root):
    """The job runs in the background during the block; then STOP, and the learner
    must finish cleanly."""
    result = {}
    try:
        cluster = cluster_for(config, args, root)
        thread = threading.Thread(target=lambda: result.setdefault("rc", cluster.run(timeout=400)))
        thread.start()
        try:
            yield cluster
            open(os.path.join(root, dist.STOP_FILE), "w").close()
            thread.join(300)
        finally:
            if thread.is_alive():
                cluster.shutdown()
                thread.join(30)
    finally:
        gin.clear_config()
    assert result.get("rc") == 0, learner_log(root)


def run_job(config, args, root):
    """The job run to its end (num_iterations)."""
    try:
        rc = cluster_for(config, args, root).run(timeout=300)
    finally:
        gin.clear_config()
    assert rc == 0, learner_log(root)


def progress(root):
    """What the job has done so far, from every role's status report: a new value is
    an event (an actor collected, the learner trained, a process started)."""
    reports = {}
    status_dir = os.path.join(root, "status")
    for name in sorted(os.listdir(status_dir)) if os.path.isdir(status_dir) else []:
        r = status(root, name[:-5]) if name.endswith(".json") else {}
        reports[name] = (r.get("train_step"), r.get("env_steps"), r.get("starts"),
                         r.get("done"))
    return reports


def wait_for(predicate, what, root, max_learner_steps=None, stall=300):
    """Waits for `predicate`, bounded by the job's events rather than a clock budget:
    it fails when the learner trains `max_learner_steps` more steps without the
    predicate holding, or when no role reports any progress for `stall` seconds (the
    job hung).  So a slow machine waits longer, and a broken job fails fast."""
    first = status(root, "learner").get("train_step", 0)
    seen, since = None, time.monotonic()
    while True:
        value = predicate()
        if value:
            return value
        now = progress(root)
        if now != seen:
            seen, since = now, time.monotonic()
        elif time.monotonic() - since > stall:
            raise AssertionError(f"the job made no progress for {stall} s while waiting "
                                 f"for {what}")
        step = status(root, "learner").get("train_step", 0)
        if max_learner_steps is not None and step - first > max_learner_steps:
            raise AssertionError(f"the learner trained {step - first} steps without "
                                 f"{what}")
        time.sleep(0.2)


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_two_actors_and_a_learner_on_loopback(sharded_world, tmp_path):
    root = str(tmp_path / "job")
    args = bindings(sharded_world, tmp_path / "cache",
                    ["run_experiment.num_iterations = 1000000",   # ends on STOP
                     "ScaleOut.prioritized = True"])
    with running_job("ah_dqn", args, root) as cluster:
        # Both actors collect, and the learner trains on their data.
        wait_for(lambda: status(root, "learner").get("train_step", 0) >= 10
                 and all(status(root, f"actor_{i}").get("env_steps", 0) > 0 for i in (0, 1)),
                 "the learner to train on both actors' data", root, max_learner_steps=500)
        a0 = status(root, "actor_0")
        assert a0["starts"] == 1
        # Kill actor 0; the launcher restarts it and it rejoins.
        step_at_kill = status(root, "learner")["train_step"]
        os.kill(a0["pid"], signal.SIGKILL)
        wait_for(lambda: status(root, "actor_0").get("starts") == 2
                 and status(root, "actor_0").get("env_steps", 0) > 0
                 and max(status(root, "actor_0")["policy_train_steps"]) > step_at_kill,
                 "actor 0 to restart, pull newer weights and collect again", root,
                 max_learner_steps=5000)
        # The learner carried on through the actor's death.
        assert status(root, "learner")["train_step"] > step_at_kill
        assert cluster.restarts == {"actor_0": 1}
    learner = status(root, "learner")
    assert learner["done"] and learner["stopped_early"]
    # Consumed trajectories written by both actors.
    assert learner["consumed_per_actor"]["0"] > 0 and learner["consumed_per_actor"]["1"] > 0
    assert sum(learner["consumed_per_actor"].values()) == 16 * learner["train_step"]
    for i in (0, 1):
        a = status(root, f"actor_{i}")
        # Picked up new weights: the train steps of the weights it pulled grew.
        assert len(a["policy_train_steps"]) >= 2 and max(a["policy_train_steps"]) > 0
        assert len(a["shards"]) == 2
    assert set(status(root, "actor_0")["shards"]).isdisjoint(status(root, "actor_1")["shards"])
    # Checkpoint, saved policy, the final evaluation, and STOP consumed.
    ckpt_dir = os.path.join(root, "learner", "train", "checkpoints")
    assert f"ckpt-{learner['train_step']}.index" in os.listdir(ckpt_dir)
    assert os.path.exists(os.path.join(root, "policy", "saved_model.pb"))
    metrics = json.load(open(os.path.join(root, "metrics.json")))
    assert set(metrics["policies"]) == {"random", "ah_dqn"}
    online = metrics["policies"]["ah_dqn"]["online"]
    # 8 paired starts (run_experiment.eval_episodes), each scored; the skip rate is the
    # share of heard tracks skipped, over those episodes.
    assert online["episodes"] == 8 and len(online["episode_heard"]) == 8
    assert online["skip_rate"] == pytest.approx(
        1 - sum(online["episode_listens"]) / sum(online["episode_heard"]))
    assert not os.path.exists(os.path.join(root, dist.STOP_FILE))

    # A new job in the same root_dir resumes the learner from its checkpoint.
    target = learner["train_step"] + 10
    # (One actor: what matters is the learner's resume.)
    run_job("ah_dqn", bindings(sharded_world, tmp_path / "cache",
                               [f"run_experiment.num_iterations = {target}",
                                "ScaleOut.num_actors = 1"]), root)
    resumed = status(root, "learner")
    assert resumed["done"] and resumed["train_step"] == target
    # Only the 10 new steps were trained: consumption restarts with the process.
    assert sum(resumed["consumed_per_actor"].values()) == 16 * 10


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_lird_ddpg_runs_distributed(sharded_world, tmp_path):
    """LIRD-DDPG through the same roles: both actors' data consumed, new weights pulled,
    a clean finish on STOP with its report."""
    root = str(tmp_path / "lird")
    args = bindings(sharded_world, tmp_path / "cache",
                    ["run_experiment.num_iterations = 1000000", "create_lird_ddpg_agent.units = 8",
                     "run_experiment.offline_evaluator = None"])
    with running_job("lird_ddpg", args, root):
        wait_for(lambda: all(
            status(root, "learner").get("consumed_per_actor", {}).get(str(i), 0) > 0
            and max(status(root, f"actor_{i}").get("policy_train_steps", [0])) > 0
            for i in (0, 1)),
            "the learner to consume both actors' data and the actors to pull weights", root,
            max_learner_steps=500)
    learner = status(root, "learner")
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


@pytest.mark.parametrize("binding, message", [
    ("run_experiment.simulator = 'sequential+memory'",
     r"run_experiment.simulator = 'sequential\+memory': the distributed mode"),
    ("run_experiment.ship = 'evaluator'",
     "run_experiment.ship = 'evaluator': the distributed mode does not read it"),
    ("run_experiment.actor_starts = [{'epsilon': 0.2}]",
     r"run_experiment.actor_starts = .*'epsilon': 0.2.*: the distributed mode"),
])
def test_prepare_refuses_settings_it_would_ignore(sharded_world, tmp_path, binding, message):
    """Every role trains against the one model prepare fits, actors build agents as
    the factory's bindings say, and the learner ships what it trained: a named
    simulator (`+memory`, a recalibrated ensemble), starts to choose among or another
    shipping rule is one error line, nothing written."""
    from spotisim.errors import ConfigError
    root = tmp_path / "job"
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], bindings(sharded_world, tmp_path / "cache", [binding]),
                  [run_mod.CONFIG_DIR])
        with pytest.raises(ConfigError, match=message):
            dist.prepare(str(root))
    finally:
        gin.clear_config()
    assert not root.exists()


def test_prepare_refuses_a_root_dir_whose_data_changed(sharded_world, tmp_path):
    """The same bindings over a log whose files changed (one shard rewritten) are
    refused: prepared.json records the files' digest (names, sizes, times)."""
    import shutil
    from spotisim.errors import ConfigError
    top = os.path.dirname(sharded_world["log"])
    shutil.copytree(top, tmp_path / "world")       # a copy of the world this test may touch
    world = {key: str(tmp_path / "world" / os.path.relpath(path, top))
             for key, path in sharded_world.items()}
    root = str(tmp_path / "job")
    gin.clear_config()
    try:
        parse_gin(["ah_dqn"], bindings(world, tmp_path / "cache"), [run_mod.CONFIG_DIR])
        prep = dist.prepare(root)
        assert dist.prepare(root) == prep
        shard = sorted(os.listdir(world["log"]))[1]
        stamp = os.stat(os.path.join(world["log"], shard)).st_mtime_ns + 10 ** 9
        os.utime(os.path.join(world["log"], shard), ns=(stamp, stamp))
        with pytest.raises(ConfigError, match="changed since"):
            dist.prepare(root)
    finally:
        gin.clear_config()


def test_the_local_roles_network_is_unreachable_from_outside(tmp_path):
    """Reverb listens on every interface; in the local role's private namespace that is
    loopback only: a server there is reached from a process in the namespace and
    refused from this one (the host's network)."""
    import socket
    import subprocess
    import sys

    from spotisim.private_network import PrivateNetwork, free_port
    net = PrivateNetwork()
    port = free_port()
    try:
        server = subprocess.Popen(net.command([sys.executable, "-c", (
            "import socket, sys\n"
            "s = socket.socket(socket.AF_INET6)\n"
            f"s.bind(('::', {port})); s.listen()\n"
            "print([n for _, n in socket.if_nameindex()], flush=True)\n"
            "c, _ = s.accept(); c.sendall(b'hi'); sys.stdin.read()\n")]),
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert server.stdout.readline().strip() == "['lo']"
        inside = subprocess.run(net.command([sys.executable, "-c", (
            "import socket\n"
            f"print(socket.create_connection(('localhost', {port}), timeout=5).recv(2))\n")]),
            capture_output=True, text=True, timeout=60)
        assert inside.stdout.strip() == "b'hi'", inside.stderr
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(("localhost", port), timeout=5)
        server.stdin.close()
        server.wait(10)
    finally:
        net.close()
    assert net.holder.poll() is not None


def test_a_replay_port_in_use_is_one_error():
    """Reverb sets SO_REUSEPORT: a second server on a taken port would start and take
    half the clients. The replay role checks the port first."""
    import socket

    from experiments.distributed.replay import check_port_free
    from spotisim.errors import ConfigError
    held = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    held.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)   # as Reverb's gRPC does
    held.bind(("::", 0))
    held.listen()
    port = held.getsockname()[1]
    try:
        with pytest.raises(ConfigError, match=f"--port {port} is in use"):
            check_port_free(port)
    finally:
        held.close()
    check_port_free(port)     # free again


def test_an_unreachable_replay_server_is_one_error_not_a_hang():
    """A learner or actor pointed at a server nobody runs stops after
    ScaleOut.connect_timeout with one line, where Reverb's calls would block."""
    import socket
    import time

    from experiments.distributed.config import wait_for_replay
    from spotisim.errors import SpotisimError
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()                       # a port nothing listens on
    t0 = time.monotonic()
    with pytest.raises(SpotisimError, match=f"localhost:{port} did not answer in 2 s"):
        wait_for_replay(f"localhost:{port}", timeout=2, poll=1)
    assert time.monotonic() - t0 < 30


def test_a_failing_actor_is_restarted_with_backoff_then_given_up(tmp_path, monkeypatch):
    """Restarts after 1, 2, 4, ... seconds, at most ScaleOut.max_actor_restarts times;
    then one error naming the actor's log."""
    from experiments.distributed import launcher as launcher_mod
    from experiments.distributed.config import ScaleOut
    from spotisim.errors import SpotisimError

    class Dead:
        returncode = 3

        def poll(self):
            return 3

    clock = [100.0]
    monkeypatch.setattr(launcher_mod.time, "monotonic", lambda: clock[0])
    job = launcher_mod.LocalCluster.__new__(launcher_mod.LocalCluster)
    job.settings = ScaleOut(num_actors=1, max_actor_restarts=2)
    job.root_dir = str(tmp_path)
    job.processes = {"actor_0": Dead()}
    job.restarts, job._restart_at = {}, {}
    started = []
    job._start = lambda name, args: (started.append(clock[0]), job.processes.__setitem__(name, Dead()))
    for t in (100.0, 100.5, 101.0, 101.5, 103.0, 103.5):
        clock[0] = t
        job._restart_if_dead(0)
    assert started == [101.0, 103.5]          # 1 s after the first death, 2 s after the next
    with pytest.raises(SpotisimError, match="actor_0 failed 3 times.*logs/actor_0.log"):
        job._restart_if_dead(0)
