"""The `learn` role: the one learner, which trains from the replay server, publishes
weights, checkpoints, and evaluates at the end."""

from __future__ import annotations

import os
import time

import numpy as np

from experiments.distributed.config import (MAX_ACTORS, REPLAY_TABLE, STOP_FILE, ScaleOut,
                                            experiment, wait_for_replay, write_json,
                                            write_status)
from experiments.distributed.prepare import (load_prepared, load_prepared_user_model,
                                             make_agent, make_environment, policy_variables,
                                             replay_signature)


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
    from agents.training import build_optimizer_slots
    wait_for_replay(address, settings.connect_timeout)
    prep = load_prepared(root_dir)
    settings_of_run = experiment()
    seed = settings_of_run.seed
    tf.keras.utils.set_random_seed(seed)
    builder, agent_fn = make_environment(root_dir, prep, prep["shards"][:1], seed)
    agent = make_agent(agent_fn, builder.get_tf_env())
    build_optimizer_slots(agent)
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
    num_iterations = settings_of_run.num_iterations
    client = reverb.Client(address)
    status = {"pid": os.getpid(), "train_step": int(train_step.numpy()),
              "num_iterations": num_iterations, "done": False}
    write_status(root_dir, "learner", status)
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
        write_status(root_dir, "learner", status)
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
    write_status(root_dir, "learner", status)
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
    user_model = load_prepared_user_model(root_dir, emb)
    t0 = time.perf_counter()
    run = experiment()
    evaluator = None
    if run.offline_evaluator:
        from experiments.user_model_cache import user_model_by_name
        evaluator = user_model_by_name(run.offline_evaluator, data, emb)
    metrics = final_evaluation(data, user_model, emb, agent, agent_fn, run.baselines,
                               run.eval_episodes, seed, root_dir, offline_model=evaluator)
    from agents.registry import agent_spec
    name = agent_spec(agent_fn).name
    out = {"data": data.source, "user_model": type(user_model).__name__,
           "offline_evaluator": run.offline_evaluator, "embeddings": TrackEmbeddings.load(os.path.join(root_dir, "embeddings")).source,
           "agent": name, "iterations": int(agent.train_step_counter.numpy()),
           "seconds": time.perf_counter() - t0, "policies": metrics}
    write_json(os.path.join(root_dir, "metrics.json"), out)
    print(format_table(out), flush=True)
    return metrics
