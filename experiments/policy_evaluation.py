"""The final evaluation of a run: the agent's greedy policy and the baselines, played
on the same test-split episode starts, offline (under the user model the agent trained
against) and, on synthetic data, online (the ground truth)."""

from __future__ import annotations

import os
from typing import Callable, Dict, Optional, Sequence

import numpy as np
from tf_agents.environments import tf_py_environment

from agents import baselines as baseline_policies
from agents.evaluate import run_episodes
from agents.registry import agent_spec
from experiments.assembly import make_builder
from spotisim.data.datasets import Dataset
from spotisim.errors import ConfigError
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel


def final_evaluation(data: Dataset, user_model: AbstractUserModel, emb: np.ndarray,
                     agent=None, agent_fn: Optional[Callable] = None,
                     baselines: Sequence[str] = (), eval_episodes: int = 256, seed: int = 0,
                     run_dir: Optional[str] = None,
                     info: Optional[dict] = None) -> Dict[str, dict]:
    """Scores the agent's greedy policy and the baselines on test-split episodes,
    offline (under `user_model`) and, on synthetic data, online (the ground truth).

    Returns {policy: {mode: metrics}}; writes the agent's online episodes to
    run_dir/episodes.parquet.  Shared by the main job and the distributed learner.
    """
    metrics: Dict[str, dict] = {}
    spec = agent_spec(agent_fn) if agent_fn is not None else None
    ground_truth = GroundTruthUserModel(data.world) if data.synthetic else None
    if data.log.catalog.has_features:
        div, div_source = data.log.catalog.diversity_features(), "acoustic features"
    else:  # a log without a track table: the embeddings this run learned
        div, div_source = emb, "the run's learned track embeddings (no acoustic features)"
    modes = {"offline": user_model}
    if ground_truth is not None:
        modes["online"] = ground_truth
    policies = {}
    for mode, model in modes.items():
        # One lane per evaluated episode: every policy plays the same starts (paired).
        slate_builder = make_builder(data.test, model, emb, "slate", data.hidden_path,
                                     batch_size=eval_episodes, seed=seed + 2, scorer=user_model)
        slate_env = slate_builder.get_tf_env()
        if info is not None:  # what the report calls the reward, and diversity's basis
            info["reward"] = slate_builder.environment.reward.name
            info["diversity_source"] = div_source
        tf_env = tf_py_environment.TFPyEnvironment(slate_env)
        tss, acs = tf_env.time_step_spec(), tf_env.action_spec()
        policies = {
            "random": lambda: baseline_policies.random_policy(tss, acs, seed=seed),
            "most_popular": lambda: baseline_policies.popularity_policy(
                tss, acs, data.train.catalog.play_counts),
            "nearest_neighbour": lambda: baseline_policies.nearest_neighbour_policy(tss, acs),
            "greedy_user_model": lambda: baseline_policies.GreedyUserModelPolicy(
                slate_env.time_step_spec(), slate_env.action_spec(), user_model,
                slate_builder.environment),
            "logging_policy": lambda: baseline_policies.LoggedSessionPolicy(
                slate_env.time_step_spec(), slate_env.action_spec(), data.test,
                slate_builder.environment,
                slate_builder.environment._episode_sampler.history_length,
                data.train.catalog.play_counts),
        }
        for name in baselines:
            if name not in policies:
                raise ConfigError(f"run_experiment.baselines: unknown baseline {name!r} "
                                  f"(known: {', '.join(policies)})")
            metrics.setdefault(name, {})[mode] = run_episodes(
                policies[name](), slate_env, eval_episodes, div, replay_log=data.test,
                history_length=slate_builder.environment._episode_sampler.history_length)
        if agent is not None:
            b = make_builder(data.test, model, emb, spec.sampler, data.hidden_path,
                             batch_size=eval_episodes, seed=seed + 2, scorer=user_model)
            metrics.setdefault(spec.name, {})[mode] = run_episodes(
                agent.policy, b.get_tf_env(), eval_episodes, div, replay_log=data.test,
                history_length=b.environment._episode_sampler.history_length)
            if mode == list(modes)[-1] and run_dir is not None:
                b.environment.episode_tracker.flush(os.path.join(run_dir, "episodes.parquet"))
    return metrics
