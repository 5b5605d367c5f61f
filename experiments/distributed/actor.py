"""The `collect` role: an actor that owns some shards, collects with the newest
policy weights and writes trajectories to the replay server."""

from __future__ import annotations

import os
import time
from typing import Optional, Sequence

from experiments.distributed.config import (REPLAY_TABLE, ScaleOut, experiment, read_status,
                                            wait_for_replay, write_status)
from experiments.distributed.prepare import (load_prepared, make_agent, make_environment,
                                             policy_variables)


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
    wait_for_replay(address, settings.connect_timeout)
    prep = load_prepared(root_dir)
    shards = list(shards) if shards else assign_shards(prep["shards"], actor_index, num_actors)
    seed = experiment().seed + 1 + actor_index
    tf.keras.utils.set_random_seed(seed)
    builder, agent_fn = make_environment(root_dir, prep, shards, seed)
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
    write_status(root_dir, name, status)
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
        write_status(root_dir, name, status)
    observer.close()
    return status
