"""The runner: one experiment end to end, for whatever agent factory gin binds
(`run_experiment.agent_fn`; the runner knows agents only through their registration,
`agents.registry.agent_spec`).  See `experiments.run` for the command line and the
run directory's contents."""

from __future__ import annotations

import functools
import json
import os
import shutil
import sys
import time
from typing import Callable, Dict, Optional

import gin
import numpy as np
import tensorflow as tf
from tf_agents.environments import tf_py_environment
from tf_agents.utils import common

from agents.evaluate import run_episodes
from agents.registry import agent_spec
from agents.training import Trainer, check_trainer_bindings
from experiments.actor_start import check_actor_starts, choose_actor_start
from experiments.assembly import make_builder, operative_config_text, refuse_changed_setup
from experiments.experiment import Experiment
from experiments.policy_evaluation import final_evaluation
from experiments.reporting import plot_comparison, plot_learning_curve
from experiments.self_check import self_check
from experiments.shipping import (TRAINED_POLICY, check_ship, judge_env_factory,
                                  keep_start_policy, save_policy, ship_evaluators_choice)
from experiments.user_model_cache import (check_user_model_name, fit_or_load_user_model,
                                          listener_profiles, user_model_by_name)
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import dataset_embeddings
from spotisim.errors import ConfigError
from spotisim.io_utils import (atomic_file, clear_stale_temporaries,
                               directory_lock)

def scoped_op_determinism(fn: Callable) -> Callable:
    """Runs `fn` with TensorFlow's deterministic kernels on (same seed, same metrics),
    and turns them off again afterwards if they were off: the switch is process-wide,
    so without this every later computation in the process (the next test, say) would
    run differently from how it runs alone.  TF 2.15 has no public switch-off, hence
    `tensorflow.python.framework.config`."""
    from tensorflow.python.framework import config as tf_config

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        was_on = tf_config.is_op_determinism_enabled()
        tf.config.experimental.enable_op_determinism()
        try:
            return fn(*args, **kwargs)
        finally:
            if not was_on:
                tf_config.disable_op_determinism()
    return wrapper


@scoped_op_determinism
def run_experiment(run_dir: str, resume: bool = True,
                   experiment: Optional[Experiment] = None) -> dict:
    """Runs one experiment end to end; returns the metrics written to metrics.json.

    The agent's training environment is built under the gin scope `train/`, the
    evaluations' under `eval/` (experiments/configs/environment.gin: the training
    environment runs 32 lanes and takes leaving in expectation,
    `train/PlaylistEnvironment.expected_leaving = True`; evaluation always draws exits).

    Args:
      run_dir: where everything is written (and resumed from).
      resume: continue from run_dir's last checkpoint if there is one.
      experiment: the settings (default: `Experiment()`, i.e. the `run_experiment.*`
        gin bindings).
    """
    x = experiment if experiment is not None else Experiment()
    if x.offline_evaluator:  # a misnamed evaluator fails before anything is written
        check_user_model_name(x.offline_evaluator, "run_experiment.offline_evaluator")
    if x.simulator:
        check_user_model_name(x.simulator, "run_experiment.simulator")
    if x.agent_fn is not None:  # a bad Trainer count fails before anything is written
        check_trainer_bindings()
    check_actor_starts(x.actor_starts, x.agent_fn)
    check_ship(x.ship, x.ship_episodes)
    if x.ship != "trained" and x.agent_fn is None:
        raise ConfigError(f"run_experiment.ship = {x.ship!r} needs run_experiment.agent_fn "
                          "(there is no agent to ship)")
    # One process per run directory: a second one would interleave checkpoints.
    with directory_lock(run_dir):
        return _run_experiment(run_dir, resume, x)


def _run_experiment(run_dir: str, resume: bool, x: Experiment) -> dict:
    agent_fn, num_iterations, eval_every = x.agent_fn, x.num_iterations, x.eval_every
    checkpoint_every, eval_episodes, baselines = x.checkpoint_every, x.eval_episodes, x.baselines
    seed, progress = x.seed, x.progress
    t_start = time.perf_counter()
    os.makedirs(run_dir, exist_ok=True)
    # Under the run directory's lock: a temporary file here is a killed process's.
    clear_stale_temporaries(run_dir)
    # Same seed, same metrics: deterministic kernels (`scoped_op_determinism`) and
    # seeded random ops.
    tf.keras.utils.set_random_seed(seed)  # Python, numpy and TF (unseeded Keras initialisers)
    data = load_dataset()
    emb_obj = dataset_embeddings(data)
    emb = emb_obj.aligned_to(data.log.catalog)
    user_model = (user_model_by_name(x.simulator, data, emb) if x.simulator
                  else fit_or_load_user_model(data, emb))
    # Resolved before training (a slice it needs and lacks fails now, not after).
    evaluator = (user_model_by_name(x.offline_evaluator, data, emb)
                 if x.offline_evaluator else None)
    metrics: Dict[str, dict] = {}
    losses, evals = [], []
    agent = None
    agent_name = None
    actor_start = None
    shipped = shipped_policy = None
    if agent_fn is not None:
        spec = agent_spec(agent_fn)
        agent_name, kind = spec.name, spec.sampler
        with gin.config_scope("train"):
            train_builder = make_builder(data.train, user_model, emb, kind, data.hidden_path,
                                         seed=seed, profiles=listener_profiles(data, emb),
                                         shards=data.train_shards)
        train_env = tf_py_environment.TFPyEnvironment(train_builder.get_tf_env())
        start_kwargs = {}
        if x.actor_starts:
            def start_env():
                with gin.config_scope("eval"):
                    return make_builder(data.train, user_model, emb, kind, data.hidden_path,
                                        batch_size=x.actor_start_episodes, seed=seed + 2,
                                        profiles=listener_profiles(data, emb),
                                        shards=data.train_shards).get_tf_env()
            actor_start = choose_actor_start(
                run_dir, x.actor_starts, agent_fn, train_env.time_step_spec(),
                train_env.action_spec(), start_env, x.actor_start_episodes)
            start_kwargs = actor_start["chosen"]
            # The chosen agent is built from the same random state as a run that bound
            # its start directly (and as a resumed run, which reads the choice).
            tf.keras.utils.set_random_seed(seed)
        agent = agent_fn(train_env.time_step_spec(), train_env.action_spec(), **start_kwargs)
        # After the agent: a bad agent binding leaves no TensorBoard directory behind.
        writer = tf.summary.create_file_writer(os.path.join(run_dir, "tb"))
        # Segments start at checkpoints: a resumed run ends where an uninterrupted one
        # does (see agents.training).
        trainer = Trainer(agent, train_env, segment_every=checkpoint_every, seed=seed,
                          reseed_env=train_builder.environment.reseed)
        # (The Checkpointer restores as it is built: check the setup first.)
        ckpt_dir = os.path.join(run_dir, "checkpoints")
        if resume and not tf.train.latest_checkpoint(ckpt_dir):
            finished = finished_run(run_dir, agent_fn.__name__, agent_name, num_iterations)
            if finished is not None:
                return finished
        if resume and tf.train.latest_checkpoint(ckpt_dir):
            refuse_changed_setup(os.path.join(run_dir, "operative_config.gin"),
                                 agent_fn.__name__)
        clear_stale_checkpoints(ckpt_dir, everything=not resume)
        ckpt = common.Checkpointer(ckpt_dir, max_to_keep=2, **trainer.checkpoint_items())
        if resume:
            ckpt.initialize_or_restore()
        else:
            trainer.iteration.assign(0)
        start = int(trainer.iteration.numpy())
        if x.ship == "evaluator":
            keep_start_policy(run_dir, agent, start)
        with gin.config_scope("eval"):
            eval_builder = make_builder(data.val, user_model, emb, kind, data.hidden_path,
                                        batch_size=64, seed=seed + 1,
                                        profiles=listener_profiles(data, emb))
        bar = None
        if progress and num_iterations > start:
            from tqdm import tqdm
            bar = tqdm(total=num_iterations, initial=start, desc=f"training {agent_name}",
                       unit="it", file=sys.stderr, mininterval=2.0)
        wrote_config = [False]

        def on_step(i, loss):
            losses.append(loss)
            if not wrote_config[0]:
                with atomic_file(os.path.join(run_dir, "operative_config.gin")) as f:
                    f.write(operative_config_text())
                wrote_config[0] = True
            train_builder.environment.episode_tracker.clear()
            with writer.as_default(step=i + 1):
                if (i + 1) % 10 == 0:
                    tf.summary.scalar("train/loss", loss)
                if (i + 1) % eval_every == 0 or i + 1 == num_iterations:
                    r = run_episodes(agent.policy, eval_builder.get_tf_env(), 64)
                    evals.append((i + 1, r["mean_episode_reward"]))
                    tf.summary.scalar("eval_offline/listens_per_episode", r["mean_episode_reward"])
                    tf.summary.scalar("eval_offline/skip_rate", r["skip_rate"])
            if (i + 1) % checkpoint_every == 0 or i + 1 == num_iterations:
                ckpt.save(trainer.iteration)
            if bar is not None:
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.3f}", refresh=False)

        trainer.run(num_iterations, on_step)
        if bar is not None:
            bar.close()
        # Whole or not at all: a cut save leaves the previous policy/ (or none).
        save_policy(agent.policy, os.path.join(
            run_dir, TRAINED_POLICY if x.ship == "evaluator" else "policy"))
        if x.ship == "evaluator":
            judge_env = judge_env_factory(data, evaluator or user_model, user_model, emb,
                                          kind, seed, x.ship_episodes)
            shipped, shipped_policy = ship_evaluators_choice(
                run_dir, judge_env, x.ship_episodes,
                x.offline_evaluator or x.simulator or "simulator")
    info: dict = {}
    metrics.update(final_evaluation(data, user_model, emb, agent, agent_fn, baselines,
                                    eval_episodes, seed, run_dir, info,
                                    offline_model=evaluator, agent_policy=shipped_policy))
    if agent is None:
        with atomic_file(os.path.join(run_dir, "operative_config.gin")) as f:
            f.write(operative_config_text())
    check = self_check(metrics, user_model, data.test, list(baselines), seed)
    out = {"data": data.source, "user_model": type(user_model).__name__,
           "offline_evaluator": x.offline_evaluator, "reward": info["reward"],
           "diversity_source": info["diversity_source"], "self_check": check,
           "data_quirks": (data.log.read_report.quirk_summary()
                           if data.log.read_report is not None else "no quirks"),
           "embeddings": emb_obj.source, "agent": agent_name,
           "iterations": num_iterations, "seconds": time.perf_counter() - t_start,
           "final_loss": float(np.mean(losses[-50:])) if losses else None,
           "offline_evaluations": evals, "actor_start": actor_start, "shipped": shipped,
           "policies": metrics}
    with atomic_file(os.path.join(run_dir, "metrics.json")) as f:
        json.dump(out, f, indent=1)
    plot_learning_curve(os.path.join(run_dir, "learning_curve.png"), losses, evals)
    plot_comparison(os.path.join(run_dir, "comparison.png"), metrics)
    if not x.keep_checkpoints:  # finished: the resumable state goes (keep_checkpoints)
        shutil.rmtree(os.path.join(run_dir, "checkpoints"), ignore_errors=True)
    return out


def finished_run(run_dir: str, agent_factory: str, agent_name: str,
                 num_iterations: int) -> Optional[dict]:
    """The metrics of a run that finished in `run_dir` with this setup, or None when
    none did.  A finished run keeps no resumable state (`keep_checkpoints`), so
    resuming it used to train a new agent from scratch over its figures (an
    `experiments.seeds` command extended by one seed retrained the seeds it had).
    Same agent, environment and length: its metrics as they are.  Another setup, or
    another length it cannot be continued to: one ConfigError, nothing written."""
    path = os.path.join(run_dir, "metrics.json")
    if not os.path.exists(path):
        return None
    refuse_changed_setup(os.path.join(run_dir, "operative_config.gin"), agent_factory)
    with open(path) as f:
        saved = json.load(f)
    if saved.get("agent") == agent_name and saved.get("iterations") == num_iterations:
        print(f"{run_dir}: finished already ({num_iterations} iterations of {agent_name}); "
              "its metrics.json is kept (--noresume trains it again)", file=sys.stderr)
        return saved
    raise ConfigError(f"{run_dir} holds a finished run ({saved.get('iterations')} iterations "
                      f"of {saved.get('agent')}) and kept no state to continue it from "
                      f"(run_experiment.keep_checkpoints): use another --run_dir, or "
                      "--noresume to start over")


def clear_stale_checkpoints(ckpt_dir: str, everything: bool = False) -> None:
    """Removes what a save cut short left in `ckpt_dir` (TensorFlow's `*_temp*`
    directories), or, with `everything` (`--noresume`), the whole old state."""
    if everything:
        shutil.rmtree(ckpt_dir, ignore_errors=True)
    elif os.path.isdir(ckpt_dir):
        for name in os.listdir(ckpt_dir):
            if "_temp" in name:
                path = os.path.join(ckpt_dir, name)
                if os.path.isdir(path):
                    shutil.rmtree(path, ignore_errors=True)
                else:
                    os.remove(path)
