"""The `prepare` role, once per root_dir: data, user model, catalogue and Parquet
shards; and what the other roles build from them (environment, agent, signatures)."""

from __future__ import annotations

import itertools
import json
import os
from typing import Optional, Sequence

import gin

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from experiments.distributed.config import (FINISHED_KEY, HAZARD_FILE, ScaleOut, experiment,
                                            write_json)
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file


def load_prepared_user_model(root_dir: str, emb):
    """The prepared user model with the leave hazard it was prepared with (if any)."""
    from user_models import load_user_model
    from user_models.leave_models import leave_vectors, load_leave_model
    directory = os.path.join(root_dir, "user_model")
    model = load_user_model(directory)
    if os.path.exists(os.path.join(directory, HAZARD_FILE)):
        model.leave_hazard = load_leave_model(os.path.join(directory, HAZARD_FILE),
                                              leave_vectors(model, emb))
    return model


def prepare(root_dir: str, settings: Optional[ScaleOut] = None) -> dict:
    """Once per root_dir: loads the data, fits (or reuses) the user model, learns the
    embeddings and cuts the log into Parquet shards; records it all in prepared.json.

    Everything the other roles need is then under root_dir, so on several hosts it only
    has to be a shared (or copied) directory.
    """
    settings = settings or ScaleOut()
    refuse_single_process_settings()
    marker = os.path.join(root_dir, "prepared.json")
    inputs = _prepare_inputs(settings)
    if os.path.exists(marker):
        with open(marker) as f:
            prep = json.load(f)
        if prep.get("inputs") != inputs:
            raise ConfigError(f"{root_dir} was prepared from other data, user model or "
                              f"sharding settings ({prep.get('inputs')}); use a new "
                              "--root_dir (or delete this one) to prepare again")
        log_path = prep.get("log_path")
        if log_path is not None and _data_digest(log_path) != prep.get("data_digest"):
            raise ConfigError(f"the log at {log_path} changed since {root_dir} was prepared "
                              "from it (a file replaced, added or removed); use a new "
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
            "user_model": type(user_model).__name__, "inputs": inputs,
            "log_path": os.path.abspath(data.log_path),
            "data_digest": _data_digest(data.log_path)}
    write_json(marker, prep)
    return prep


def refuse_single_process_settings() -> None:
    """Raises ConfigError where the config binds what only the single-process main job
    does, so the binding would be ignored, not obeyed:
    - `run_experiment.simulator` (a recalibrated model, an ensemble, `+memory`): every
      role of the distributed mode trains against the one model `prepare` fits and
      saves (`fit_or_load_user_model`);
    - `run_experiment.actor_starts` and `run_experiment.ship`: the actors build their
      agents as the factory's bindings say, and the learner ships what it trained.
    (The learner's final evaluation does read `run_experiment.offline_evaluator`.)"""
    x = experiment()
    if x.simulator:
        raise ConfigError(f"run_experiment.simulator = {x.simulator!r}: the distributed mode "
                          "trains against the model fit_or_load_user_model fits "
                          "(bind fit_or_load_user_model.model_ctor); train against a "
                          "named simulator in the single-process main job "
                          "(python -m experiments.run)")
    for name, value, ignored in (("actor_starts", x.actor_starts, bool(x.actor_starts)),
                                 ("ship", x.ship, x.ship != "trained")):
        if ignored:
            raise ConfigError(f"run_experiment.{name} = {value!r}: the distributed mode does "
                              f"not read it; run it in the single-process main job "
                              "(python -m experiments.run)")


def _data_digest(log_path: str) -> Optional[str]:
    """The log files' `files_digest`, or None where they are gone (then the check
    refuses the directory: a None never equals a recorded digest)."""
    from spotisim.data.readers import files_digest
    from spotisim.errors import DataValidationError
    try:
        return files_digest(log_path)
    except DataValidationError:
        return None


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


def make_environment(root_dir: str, prep: dict, shards: Sequence[str], seed: int):
    """(environment builder, agent factory) for the shards, as the main job builds its
    training environment (gin scope `train/`: its lanes are
    `train/EnvironmentBuilder.batch_size`)."""
    import gin
    from agents.registry import agent_spec
    from experiments.assembly import make_builder
    from spotisim.embeddings import TrackEmbeddings
    agent_fn = experiment().agent_fn
    if agent_fn is None:
        raise ConfigError("run_experiment.agent_fn is not bound: the distributed mode "
                          "trains an agent (use lird_ddpg.gin, ah_dqn.gin or dqn.gin)")
    kind = agent_spec(agent_fn).sampler
    log = shard_log(root_dir, prep, shards)
    emb = TrackEmbeddings.load(os.path.join(root_dir, "embeddings")).aligned_to(log.catalog)
    user_model = load_prepared_user_model(root_dir, emb)
    with gin.config_scope("train"):
        builder = make_builder(log, user_model, emb, kind, prep["hidden_path"], seed=seed)
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
