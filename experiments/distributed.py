"""The main job across processes (and hosts): TF-Agents' actor/learner layout on Reverb.

    python -m experiments.distributed --gin_file=lird_ddpg.gin --role=local   # all on loopback

or each role on its own host, all given the same gin files and a shared --root_dir:

    --role=prepare                                 once: data, user model, Parquet shards
    --role=replay  --port=8008                     the Reverb server (replay + weights)
    --role=learn   --replay_server=HOST:8008       the one learner
    --role=collect --replay_server=HOST:8008 --actor_index=i --num_actors=N   (N times)

Why this shape: collection (the simulator + the user model) is what costs, and it
parallelises across processes; the learner only needs batches.  The Reverb server holds
the replay table and a one-slot `variables` table through which the learner publishes the
policy weights (`ReverbVariableContainer`); actors pull them between collect runs.  Each
actor owns a subset of the log's Parquet shards (`spotisim.data.shards`), so no process
reads the whole log except `prepare`.  Every replay item carries the id of the actor that
wrote it, so the learner can report how much it consumed from each actor.

Fault tolerance: the learner checkpoints (tf_agents `Learner`) and resumes from root_dir;
an actor is stateless (it rebuilds its environment and pulls the current weights), so a
restarted one simply rejoins; the learner only talks to the server, so an actor's death
does not stop it.  The local launcher restarts actors that die.  A file named STOP in
root_dir makes the learner checkpoint, publish its final weights and finish early.

Unlike `experiments.run`, a distributed run is not bit-for-bit reproducible: the order in
which actors' items reach the table depends on timing.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import os
import signal
import socket
import subprocess
import sys
import time
from typing import Dict, List, Optional, Sequence

import gin

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file

REPLAY_TABLE = "replay"
MAX_ACTORS = 256      # actor ids are counted in a fixed-size histogram
STOP_FILE = "STOP"
FINISHED_KEY = "finished"


@gin.configurable
@dataclasses.dataclass
class ScaleOut:
    """Settings of the distributed mode (gin: `ScaleOut.num_actors = 4`, ...).

    Attributes:
      num_actors: collect actors the local launcher starts.
      actor_batch_size: parallel episodes in each actor's (natively batched) environment.
      collect_steps_per_run: batched steps an actor collects between weight pulls.
      learner_steps_per_run: gradient steps between weight pushes and status reports.
      sample_batch_size: transitions per gradient step.
      replay_capacity: items (transition pairs) the replay table keeps (FIFO).
      min_replay_size: items in the table before the learner may sample.
      samples_per_insert: if set, Reverb rate-limits so the learner samples about this
        many times per inserted item (the learner waits for actors, or actors for it).
      prioritized: sample by priority (|TD error|, updated by the learner after each
        step) instead of uniformly.
      priority_exponent: alpha of prioritized replay.
      checkpoint_interval: learner steps between checkpoints.
      rows_per_shard: cut big log files into Parquet shards of about this many rows.
      preprocess_workers: files converted at once (default: one per core).
      restart_actors: the local launcher restarts an actor that dies.
      evaluate: the learner runs the main job's final evaluation when it finishes.
    """

    num_actors: int = 2
    actor_batch_size: int = 16
    collect_steps_per_run: int = 20
    learner_steps_per_run: int = 50
    sample_batch_size: int = 64
    replay_capacity: int = 100_000
    min_replay_size: int = 1_000
    samples_per_insert: Optional[float] = None
    prioritized: bool = False
    priority_exponent: float = 0.6
    checkpoint_interval: int = 500
    rows_per_shard: Optional[int] = 50_000
    preprocess_workers: Optional[int] = None
    restart_actors: bool = True
    evaluate: bool = True


HAZARD_FILE = "leave_hazard.json"


def _load_prepared_user_model(root_dir: str, emb):
    """The prepared user model with the leave hazard it was prepared with (if any)."""
    from user_models import load_user_model
    from user_models.leave_hazard import load_leave_model
    directory = os.path.join(root_dir, "user_model")
    model = load_user_model(directory)
    if os.path.exists(os.path.join(directory, HAZARD_FILE)):
        model.leave_hazard = load_leave_model(os.path.join(directory, HAZARD_FILE), emb)
    return model


def _bound(name: str):
    """A run_experiment setting as the gin files bind it, else its default (the
    distributed job reuses the main job's configs: agent, iterations, seed, ...)."""
    import inspect

    from experiments.runner import run_experiment
    bindings = gin.get_bindings("run_experiment")
    if name in bindings:
        return bindings[name]
    return inspect.signature(run_experiment.__wrapped__ if hasattr(run_experiment, "__wrapped__")
                             else run_experiment).parameters[name].default


def _write_json(path: str, obj) -> None:
    with atomic_file(path) as f:
        json.dump(obj, f, indent=1)


def read_status(root_dir: str, name: str) -> Optional[dict]:
    """A role's last status report (root_dir/status/<name>.json), or None."""
    path = os.path.join(root_dir, "status", f"{name}.json")
    try:
        with open(path) as f:
            return json.load(f)
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def _write_status(root_dir: str, name: str, status: dict) -> None:
    _write_json(os.path.join(root_dir, "status", f"{name}.json"), status)


# --------------------------------------------------------------------------- prepare

def prepare(root_dir: str, settings: Optional[ScaleOut] = None) -> dict:
    """Once per root_dir: loads the data, fits (or reuses) the user model, learns the
    embeddings and cuts the log into Parquet shards; records it all in prepared.json.

    Everything the other roles need is then under root_dir, so on several hosts it only
    has to be a shared (or copied) directory.
    """
    settings = settings or ScaleOut()
    marker = os.path.join(root_dir, "prepared.json")
    inputs = _prepare_inputs(settings)
    if os.path.exists(marker):
        with open(marker) as f:
            prep = json.load(f)
        if prep.get("inputs") != inputs:
            raise ConfigError(f"{root_dir} was prepared from other data, user model or "
                              f"sharding settings ({prep.get('inputs')}); use a new "
                              "--root_dir (or delete this one) to prepare again")
        return prep
    from experiments.user_model_cache import fit_or_load_user_model
    from spotisim.data.datasets import load_dataset
    from spotisim.data.shards import preprocess_shards
    from spotisim.embeddings import build_embeddings

    data = load_dataset()
    if not data.log_path or os.path.exists(os.path.join(data.log_path, "session_log.json")):
        raise ConfigError("the distributed mode shards the raw log files: point "
                          "load_dataset.log_path at CSV / Parquet files, not at a "
                          f"processed log ({data.log_path})")
    emb_obj = build_embeddings(data.train, unlabelled=data.log)
    user_model = fit_or_load_user_model(data, emb_obj.aligned_to(data.log.catalog))
    shards = preprocess_shards(data.log_path, os.path.join(root_dir, "shards"),
                               settings.preprocess_workers, settings.rows_per_shard)
    emb_obj.save(os.path.join(root_dir, "embeddings"))
    data.log.catalog.save(os.path.join(root_dir, "catalog"))
    user_model.save(os.path.join(root_dir, "user_model"))
    if user_model.leave_hazard is not None:  # every role simulates leaving the same way
        user_model.leave_hazard.save(os.path.join(root_dir, "user_model", HAZARD_FILE))
    with atomic_file(os.path.join(root_dir, "train_sessions.parquet"), "wb") as f:
        pq.write_table(pa.table({"session_id": pa.array(data.train.session_ids.tolist(),
                                                        pa.string())}), f)
    prep = {"shards": [os.path.abspath(s) for s in shards],
            "hidden_path": data.hidden_path and os.path.abspath(data.hidden_path),
            "skip_column": data.log.skip_column, "source": data.source,
            "user_model": type(user_model).__name__, "inputs": inputs}
    _write_json(marker, prep)
    return prep


def _prepare_inputs(settings: ScaleOut) -> str:
    """The settings `prepare` depends on (data, embeddings, user model, sharding), as
    a stable string: a root_dir prepared from other ones is refused, not reused."""
    def stable(v):  # a function's repr holds its address, which differs per process
        return (f"{v.__module__}.{v.__qualname__}" if callable(v) and hasattr(v, "__qualname__")
                else repr(v))

    parts = {name: sorted((k, stable(v)) for k, v in gin.get_bindings(name).items())
             for name in ("load_dataset", "ensure_synthetic_world", "build_embeddings",
                          "fit_or_load_user_model")}
    ctor = gin.get_bindings("fit_or_load_user_model").get("model_ctor")
    if ctor is not None:
        parts["model"] = sorted((k, stable(v)) for k, v in gin.get_bindings(ctor).items())
    parts["rows_per_shard"] = settings.rows_per_shard
    return json.dumps(parts, sort_keys=True, default=str)


def load_prepared(root_dir: str) -> dict:
    path = os.path.join(root_dir, "prepared.json")
    if not os.path.exists(path):
        raise ConfigError(f"{path} not found: run --role=prepare with this --root_dir first")
    with open(path) as f:
        return json.load(f)


def shard_log(root_dir: str, prep: dict, shards: Sequence[str]):
    """The train-split sessions of `shards`, indexed by the prepared (global) catalogue,
    so track indices agree with the user model's and every other actor's."""
    from spotisim.data.catalog import TrackCatalog
    from spotisim.data.session_log import SessionLog
    from spotisim.data.sessions import iter_session_tables
    catalog = TrackCatalog.load(os.path.join(root_dir, "catalog"))
    chunks = itertools.chain.from_iterable(iter_session_tables(s) for s in shards)
    log = SessionLog.from_arrow_chunks(chunks, catalog, prep["skip_column"])
    train = pq.read_table(os.path.join(root_dir, "train_sessions.parquet"))
    keep = np.isin(log.session_ids, train.column("session_id").to_numpy(zero_copy_only=False))
    if not keep.any():
        raise ConfigError(f"shards {list(shards)} hold no training sessions")
    return log.subset(np.nonzero(keep)[0])


def make_environment(root_dir: str, prep: dict, shards: Sequence[str], batch_size: int,
                     seed: int):
    """(environment builder, agent factory) for the shards, as the main job builds them."""
    from agents.registry import agent_spec
    from experiments.assembly import make_builder
    from spotisim.embeddings import TrackEmbeddings
    agent_fn = _bound("agent_fn")
    if agent_fn is None:
        raise ConfigError("run_experiment.agent_fn is not bound: the distributed mode "
                          "trains an agent (use lird_ddpg.gin, ah_dqn.gin or dqn.gin)")
    kind = agent_spec(agent_fn).sampler
    log = shard_log(root_dir, prep, shards)
    emb = TrackEmbeddings.load(os.path.join(root_dir, "embeddings")).aligned_to(log.catalog)
    user_model = _load_prepared_user_model(root_dir, emb)
    builder = make_builder(log, user_model, emb, kind, prep["hidden_path"],
                           batch_size=batch_size, seed=seed,
                           expected_leaving=bool(_bound("expected_leaving")))
    return builder, agent_fn


def make_agent(agent_fn, py_env):
    from tf_agents.specs import tensor_spec
    return agent_fn(tensor_spec.from_spec(py_env.time_step_spec()),
                    tensor_spec.from_spec(py_env.action_spec()))


def replay_signature(agent):
    """What a replay item holds: a transition pair and, per step, the writer's actor id."""
    import tensorflow as tf
    from tf_agents.specs import tensor_spec
    return (tensor_spec.from_spec(agent.collect_data_spec),
            tf.TensorSpec((), tf.int32, name="actor_index"))


def policy_variables(agent, train_step, finished) -> dict:
    """What the learner publishes: the greedy policy's weights (the collect policy
    shares its network), the train step they belong to, and whether training has
    finished (actors then exit).  Exploration state (noise processes, random
    generators) stays each actor's own."""
    from tf_agents.experimental.distributed import reverb_variable_container as rvc
    return {rvc.POLICY_KEY: agent.policy.variables(), rvc.TRAIN_STEP_KEY: train_step,
            FINISHED_KEY: finished}


# --------------------------------------------------------------------------- replay

def serve_replay(root_dir: str, port: int, settings: ScaleOut) -> None:
    """Runs the Reverb server until killed: the replay table and the weights table.

    The server checkpoints into root_dir/reverb when the learner asks (at each of its
    checkpoints) and loads the latest one on start, so a restarted server keeps its data.
    """
    import reverb
    import tensorflow as tf
    from tf_agents.experimental.distributed import reverb_variable_container as rvc
    from tf_agents.specs import tensor_spec
    prep = load_prepared(root_dir)
    builder, agent_fn = make_environment(root_dir, prep, prep["shards"][:1], 2, 0)
    agent = make_agent(agent_fn, builder.get_tf_env())
    variables = policy_variables(agent, tf.Variable(0, dtype=tf.int64), tf.Variable(False))
    if settings.samples_per_insert:
        limiter = reverb.rate_limiters.SampleToInsertRatio(
            settings.samples_per_insert, settings.min_replay_size,
            error_buffer=max(settings.min_replay_size, 2 * settings.sample_batch_size)
            * settings.samples_per_insert)
    else:
        limiter = reverb.rate_limiters.MinSize(settings.min_replay_size)
    sampler = (reverb.selectors.Prioritized(settings.priority_exponent)
               if settings.prioritized else reverb.selectors.Uniform())
    tables = [
        reverb.Table(REPLAY_TABLE, sampler=sampler, remover=reverb.selectors.Fifo(),
                     max_size=settings.replay_capacity, rate_limiter=limiter,
                     signature=tensor_spec.add_outer_dim(replay_signature(agent))),
        reverb.Table(rvc.DEFAULT_TABLE, sampler=reverb.selectors.Uniform(),
                     remover=reverb.selectors.Fifo(), max_size=1, max_times_sampled=0,
                     rate_limiter=reverb.rate_limiters.MinSize(1),
                     signature=tf.nest.map_structure(
                         lambda v: tf.TensorSpec(v.shape, v.dtype), variables)),
    ]
    checkpointer = reverb.checkpointers.DefaultCheckpointer(os.path.join(root_dir, "reverb"))
    server = reverb.Server(tables, port=port, checkpointer=checkpointer)
    _write_status(root_dir, "replay", {"pid": os.getpid(), "port": port,
                                       "address": f"{socket.gethostname()}:{port}"})
    print(f"reverb server on port {port}", flush=True)
    server.wait()


# --------------------------------------------------------------------------- collect

def collect(root_dir: str, address: str, actor_index: int, num_actors: int,
            settings: ScaleOut, shards: Optional[Sequence[str]] = None) -> dict:
    """A collect actor: steps its shards' environment with the latest collect policy,
    writes every transition pair to the replay table, and pulls new weights between
    runs, until the learner publishes that it has finished."""
    import reverb
    import tensorflow as tf
    from tf_agents.experimental.distributed import reverb_variable_container as rvc
    from tf_agents.policies import py_tf_eager_policy
    from tf_agents.train import actor as tfa_actor

    from agents.reverb_observer import ActorTaggedObserver
    from spotisim.data.shards import assign_shards
    prep = load_prepared(root_dir)
    shards = list(shards) if shards else assign_shards(prep["shards"], actor_index, num_actors)
    seed = int(_bound("seed")) + 1 + actor_index
    tf.keras.utils.set_random_seed(seed)
    builder, agent_fn = make_environment(root_dir, prep, shards, settings.actor_batch_size,
                                         seed)
    py_env = builder.get_tf_env()
    agent = make_agent(agent_fn, py_env)
    train_step = tf.Variable(0, dtype=tf.int64)
    finished = tf.Variable(False)
    variables = policy_variables(agent, train_step, finished)
    container = rvc.ReverbVariableContainer(address, table_names=[rvc.DEFAULT_TABLE])
    container.update(variables)  # blocks until the learner has published weights
    observer = ActorTaggedObserver(reverb.Client(address), REPLAY_TABLE, py_env.batch_size,
                                   actor_index)
    policy = py_tf_eager_policy.PyTFEagerPolicy(agent.collect_policy, use_tf_function=True,
                                                batch_time_steps=False)
    actor = tfa_actor.Actor(py_env, policy, train_step, observers=[observer],
                            steps_per_run=settings.collect_steps_per_run
                            * (py_env.batch_size or 1))
    name = f"actor_{actor_index}"
    previous = read_status(root_dir, name) or {}
    status = {"pid": os.getpid(), "actor_index": actor_index, "shards": shards,
              "starts": int(previous.get("starts", 0)) + 1, "env_steps": 0,
              "runs": 0, "policy_train_steps": [int(train_step.numpy())]}
    t0 = time.perf_counter()
    _write_status(root_dir, name, status)
    while not bool(finished.numpy()):
        actor.run()
        observer.flush()
        container.update(variables)
        status["env_steps"] = observer.steps
        status["runs"] += 1
        status["steps_per_second"] = observer.steps / (time.perf_counter() - t0)
        step = int(train_step.numpy())
        if step != status["policy_train_steps"][-1]:
            status["policy_train_steps"].append(step)
        _write_status(root_dir, name, status)
    observer.close()
    return status


# --------------------------------------------------------------------------- learn

def learn(root_dir: str, address: str, settings: ScaleOut) -> dict:
    """The learner: samples the replay table, trains, publishes weights every
    `learner_steps_per_run` steps, checkpoints; on finishing (or a STOP file) saves the
    policy and runs the main job's final evaluation."""
    import reverb
    import tensorflow as tf
    from tf_agents.experimental.distributed import reverb_variable_container as rvc
    from tf_agents.policies import policy_saver
    from tf_agents.replay_buffers import reverb_replay_buffer
    from tf_agents.train import learner as tfa_learner

    from agents.priorities import td_errors
    prep = load_prepared(root_dir)
    seed = int(_bound("seed"))
    tf.keras.utils.set_random_seed(seed)
    builder, agent_fn = make_environment(root_dir, prep, prep["shards"][:1], 2, seed)
    agent = make_agent(agent_fn, builder.get_tf_env())
    train_step = agent.train_step_counter
    consumed = tf.Variable(tf.zeros([MAX_ACTORS], tf.int64), name="consumed_per_actor")
    buffer = reverb_replay_buffer.ReverbReplayBuffer(
        replay_signature(agent), REPLAY_TABLE, sequence_length=2, server_address=address)
    batch = settings.sample_batch_size

    def dataset_fn():
        ds = buffer.as_dataset(sample_batch_size=batch, num_steps=2)
        # (trajectory, ids), info -> trajectory, (info, the id of each pair's writer)
        return ds.map(lambda s, info: (s[0], (info, s[1][:, 0]))).prefetch(2)

    tf_client = reverb.TFClient(address) if settings.prioritized else None

    def after_train_step(sample, loss_info):
        experience, (info, actor_ids) = sample
        consumed.assign_add(tf.math.bincount(actor_ids, minlength=MAX_ACTORS,
                                             maxlength=MAX_ACTORS, dtype=tf.int64))
        if tf_client is not None:
            priority = tf.cast(td_errors(agent, experience), tf.float64) + 1e-3
            tf_client.update_priorities(REPLAY_TABLE, info.key[:, 0], priority)

    learner = tfa_learner.Learner(
        os.path.join(root_dir, "learner"), train_step, agent, dataset_fn,
        after_train_strategy_step_fn=after_train_step,
        checkpoint_interval=settings.checkpoint_interval, summary_interval=100)
    container = rvc.ReverbVariableContainer(address, table_names=[rvc.DEFAULT_TABLE])
    finished = tf.Variable(False)
    variables = policy_variables(agent, train_step, finished)
    container.push(variables)
    num_iterations = int(_bound("num_iterations"))
    client = reverb.Client(address)
    status = {"pid": os.getpid(), "train_step": int(train_step.numpy()),
              "num_iterations": num_iterations, "done": False}
    _write_status(root_dir, "learner", status)
    stop = os.path.join(root_dir, STOP_FILE)
    t0 = s0 = None  # the rate is timed from the first run's end (not the wait for data)
    while int(train_step.numpy()) < num_iterations and not os.path.exists(stop):
        n = min(settings.learner_steps_per_run, num_iterations - int(train_step.numpy()))
        loss = float(learner.run(iterations=n).loss) / n
        if not np.isfinite(loss):
            raise FloatingPointError(f"training loss became {loss} at step {int(train_step.numpy())}")
        container.push(variables)
        counts = consumed.numpy()
        if t0 is None:
            t0, s0 = time.perf_counter(), int(train_step.numpy())
        rate = (int(train_step.numpy()) - s0) / max(time.perf_counter() - t0, 1e-9)
        status.update(train_step=int(train_step.numpy()), loss=loss,
                      steps_per_second=rate if rate > 0 else None,
                      consumed_per_actor={str(i): int(c) for i, c in enumerate(counts) if c},
                      replay_size=int(client.server_info()[REPLAY_TABLE].current_size))
        _write_status(root_dir, "learner", status)
    if os.path.exists(stop):  # consumed: a later run in this root_dir resumes
        status["stopped_early"] = True
        os.remove(stop)
    for trigger in learner.triggers:  # the final checkpoint
        trigger(int(train_step.numpy()), force_trigger=True)
    client.checkpoint()
    policy_saver.PolicySaver(agent.policy, batch_size=None).save(os.path.join(root_dir, "policy"))
    finished.assign(True)  # the actors stop on pulling this
    container.push(variables)
    if settings.evaluate:
        status["metrics"] = evaluate(root_dir, agent, agent_fn, seed)
    status["done"] = True
    _write_status(root_dir, "learner", status)
    return status


def evaluate(root_dir: str, agent, agent_fn, seed: int) -> dict:
    """The main job's final evaluation of the learned policy (and the baselines),
    written to root_dir/metrics.json."""
    from experiments.policy_evaluation import final_evaluation
    from experiments.reporting import format_table
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import TrackEmbeddings
    data = load_dataset()
    emb = TrackEmbeddings.load(os.path.join(root_dir, "embeddings")).aligned_to(data.log.catalog)
    user_model = _load_prepared_user_model(root_dir, emb)
    t0 = time.perf_counter()
    metrics = final_evaluation(data, user_model, emb, agent, agent_fn,
                               _bound("baselines"),
                               int(_bound("eval_episodes")), seed, root_dir)
    from agents.registry import agent_spec
    name = agent_spec(agent_fn).name
    out = {"data": data.source, "user_model": type(user_model).__name__,
           "embeddings": TrackEmbeddings.load(os.path.join(root_dir, "embeddings")).source,
           "agent": name, "iterations": int(agent.train_step_counter.numpy()),
           "seconds": time.perf_counter() - t0, "policies": metrics}
    _write_json(os.path.join(root_dir, "metrics.json"), out)
    print(format_table(out), flush=True)
    return metrics


# --------------------------------------------------------------------------- launcher

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return int(s.getsockname()[1])


class LocalCluster:
    """Starts every role on this machine, each its own process, on loopback.

    Logs go to root_dir/logs/<role>.log.  Actors that die are restarted (when
    `ScaleOut.restart_actors`); the job ends when the learner exits.
    """

    def __init__(self, root_dir: str, gin_args: Sequence[str], settings: ScaleOut,
                 port: Optional[int] = None):
        self.root_dir = os.path.abspath(root_dir)
        self.settings = settings
        self.port = port or free_port()
        self.address = f"localhost:{self.port}"
        self._base = [sys.executable, "-m", "experiments.distributed", *gin_args,
                      f"--root_dir={self.root_dir}", f"--replay_server={self.address}"]
        self.processes: Dict[str, subprocess.Popen] = {}
        self.restarts: Dict[str, int] = {}

    def _start(self, name: str, args: List[str]) -> subprocess.Popen:
        os.makedirs(os.path.join(self.root_dir, "logs"), exist_ok=True)
        log = open(os.path.join(self.root_dir, "logs", f"{name}.log"), "ab")
        proc = subprocess.Popen(self._base + args, stdout=log, stderr=subprocess.STDOUT,
                                cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        log.close()
        self.processes[name] = proc
        return proc

    def _actor_args(self, i: int) -> List[str]:
        return ["--role=collect", f"--actor_index={i}",
                f"--num_actors={self.settings.num_actors}"]

    def run(self, timeout: Optional[float] = None) -> int:
        """Runs until the learner exits; returns its exit status."""
        prepare(self.root_dir, self.settings)
        self._start("replay", ["--role=replay", f"--port={self.port}"])
        self._start("learner", ["--role=learn"])
        for i in range(self.settings.num_actors):
            self._start(f"actor_{i}", self._actor_args(i))
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                learner = self.processes["learner"]
                if learner.poll() is not None:
                    break
                if self.processes["replay"].poll() is not None:
                    raise RuntimeError("the Reverb server died: see "
                                       f"{self.root_dir}/logs/replay.log")
                for i in range(self.settings.num_actors):
                    name = f"actor_{i}"
                    proc = self.processes[name]
                    if proc.poll() is not None and proc.returncode != 0 \
                            and self.settings.restart_actors:
                        self.restarts[name] = self.restarts.get(name, 0) + 1
                        print(f"{name} exited with {proc.returncode}; restarting", flush=True)
                        self._start(name, self._actor_args(i))
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"the learner did not finish in {timeout} s")
                time.sleep(0.5)
            # Actors stop by themselves on seeing the final weights; give them a moment.
            end = time.monotonic() + 30
            for name, proc in self.processes.items():
                if name.startswith("actor_"):
                    try:
                        proc.wait(max(0.1, end - time.monotonic()))
                    except subprocess.TimeoutExpired:
                        pass
            return self.processes["learner"].returncode
        finally:
            self.shutdown()

    def shutdown(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()


# --------------------------------------------------------------------------- CLI

ROLES = ("prepare", "replay", "collect", "learn", "local")


def define_flags() -> None:
    from absl import flags
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings")
    flags.DEFINE_enum("role", "local", ROLES, "which part of the job this process runs")
    flags.DEFINE_string("root_dir", None, "shared run directory (default runs/<config>_distributed)")
    flags.DEFINE_string("replay_server", None, "HOST:PORT of the Reverb server (collect, learn)")
    flags.DEFINE_integer("port", None, "port the Reverb server listens on (replay, local)")
    flags.DEFINE_integer("actor_index", 0, "this actor's index (collect)")
    flags.DEFINE_integer("num_actors", None, "actors in the job (collect; default ScaleOut)")
    flags.DEFINE_list("shards", None, "log shards this actor owns (collect; default: "
                      "every num_actors-th prepared shard from actor_index)")


def _main() -> int:
    from absl import flags

    from experiments.run import CONFIG_DIR
    from spotisim.gin_utils import parse_gin
    FLAGS = flags.FLAGS
    files = FLAGS.gin_file or ["lird_ddpg"]
    paths = parse_gin(files, FLAGS.gin_bindings, [CONFIG_DIR])
    root = FLAGS.root_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(paths[-1]))[0] + "_distributed")
    settings = ScaleOut()
    role = FLAGS.role
    if role in ("collect", "learn") and not FLAGS.replay_server:
        raise ConfigError(f"--role={role} needs --replay_server=HOST:PORT")
    if role == "replay" and not FLAGS.port:
        raise ConfigError("--role=replay needs --port")
    if role == "prepare":
        print(json.dumps(prepare(root, settings), indent=1))
    elif role == "replay":
        serve_replay(root, FLAGS.port, settings)
    elif role == "collect":
        collect(root, FLAGS.replay_server, FLAGS.actor_index,
                FLAGS.num_actors or settings.num_actors, settings, FLAGS.shards)
    elif role == "learn":
        learn(root, FLAGS.replay_server, settings)
    else:
        gin_args = [f"--gin_file={f}" for f in files] + \
            [f"--gin_bindings={b}" for b in FLAGS.gin_bindings]
        rc = LocalCluster(root, gin_args, settings, FLAGS.port).run()
        metrics = os.path.join(root, "metrics.json")
        if rc == 0 and os.path.exists(metrics):
            from experiments.reporting import format_table
            with open(metrics) as f:
                print(format_table(json.load(f)))
        print(f"learner exited with {rc}; run directory: {root} (logs: {root}/logs)")
        return rc
    return 0


main = cli.absl_main(_main)


if __name__ == "__main__":
    cli.start(define_flags, main)
