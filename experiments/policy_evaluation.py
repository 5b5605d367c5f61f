"""One evaluation loop for every report: policies played on the same test-split episode
starts under one responding user model.  The main job (offline and online), the
re-scoring of a finished run under other user models (`experiments.evaluate`) and the
alignment study (`experiments.alignment`) all call `evaluate_policies`."""

from __future__ import annotations

import os
from typing import Callable, Dict, Mapping, Optional, Sequence, Tuple

import gin
import numpy as np
from tf_agents.environments import tf_py_environment

from agents import baselines as baseline_policies
from agents.evaluate import run_episodes
from agents.registry import agent_spec
from experiments.assembly import make_builder
from experiments.user_model_cache import listener_profiles
from spotisim.data.datasets import Dataset
from spotisim.errors import ConfigError
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel

#: The baselines `evaluate_policies` knows by name (greedy policies are passed as models).
BASELINES = ("random", "most_popular", "least_popular", "nearest_neighbour",
             "farthest_neighbour", "logging_policy")

#: Policies built on the user model an agent trains against, by report name; any other
#: name in `greedy_models` is plain greedy on its model.
def evaluation_seed(seed: int) -> int:
    """The seed of a run's final evaluation starts, from the run's seed: one rule for
    the runner and for a later re-evaluation (`experiments.evaluate`), so both score
    the same starts."""
    return int(seed) + 2


MODEL_POLICIES = {"greedy_user_model": baseline_policies.GreedyUserModelPolicy,
                  "redundancy_greedy_user_model": baseline_policies.RedundancyGreedyPolicy}


def diversity_basis(data: Dataset, emb: np.ndarray) -> Tuple[np.ndarray, str]:
    """What list diversity is measured on: the acoustic features, or, for a log without
    a track table, the run's learned embeddings (and a label saying which)."""
    if data.log.catalog.has_features:
        return data.log.catalog.diversity_features(), "acoustic features"
    return emb, "the run's learned track embeddings (no acoustic features)"


def _baseline(name: str, env, builder, data: Dataset, seed: int):
    tf_env = tf_py_environment.TFPyEnvironment(env)
    tss, acs = tf_env.time_step_spec(), tf_env.action_spec()
    counts = data.train.catalog.play_counts
    if name == "random":
        return baseline_policies.random_policy(tss, acs, seed=seed)
    if name == "most_popular":
        return baseline_policies.popularity_policy(tss, acs, counts)
    if name == "least_popular":
        return baseline_policies.least_popular_policy(tss, acs, counts)
    if name == "nearest_neighbour":
        return baseline_policies.nearest_neighbour_policy(tss, acs)
    if name == "farthest_neighbour":
        return baseline_policies.farthest_neighbour_policy(tss, acs)
    return baseline_policies.LoggedSessionPolicy(
        env.time_step_spec(), env.action_spec(), data.test, builder.environment,
        builder.environment.history_length, counts)


def evaluate_policies(data: Dataset, responder: AbstractUserModel, emb: np.ndarray, *,
                      policies: Sequence[str] = (),
                      greedy_models: Optional[Mapping[str, AbstractUserModel]] = None,
                      agents: Optional[Mapping[str, Tuple[Callable, str]]] = None,
                      episodes: int = 256, seed: int = 0, policy_seed: int = 0,
                      scorer: Optional[AbstractUserModel] = None,
                      episodes_path: Optional[str] = None,
                      info: Optional[dict] = None,
                      binding: str = "policies",
                      model_policies: Optional[Mapping[str, Callable]] = None
                      ) -> Dict[str, dict]:
    """Every policy's metrics (`run_episodes`) under `responder`, on the same starts.

    Args:
      policies: names, in report order: baselines (`BASELINES`) or keys of
        `greedy_models`.
      greedy_models: {policy name: model} for greedy policies (P(listen) of each model).
      agents: {name: (policy_fn, sampler kind)}: `policy_fn(env)` returns the agent's
        policy for its environment (built with its own track sampler, same starts).
      episodes: one lane per episode start.
      seed: the environments' seed (the same seed, the same starts).
      policy_seed: the random baseline's seed.
      scorer: the model whose answers policies observe (`PlaylistEnvironment.observe_scores`).
      episodes_path: where the (last) agent's evaluated episodes are written.
      info: receives the reward's name and the diversity basis.
      binding: the setting that named `policies`, for the error on an unknown one.
      model_policies: {policy name: class or factory} over `MODEL_POLICIES`, for
        policies on a model built otherwise (the alignment study's redundancy greedy at
        several penalties: `functools.partial(RedundancyGreedyPolicy, penalty=2.0)`).

    A responder that records something per policy (`reset()` and `bias()`, as
    `user_models.composite.ShadowedUserModel`) is reset before each policy and its
    record is added to that policy's metrics as `shadow`.
    """
    greedy_models = dict(greedy_models or {})
    model_policies = {**MODEL_POLICIES, **dict(model_policies or {})}
    div, div_source = diversity_basis(data, emb)
    with gin.config_scope("eval"):
        builder = make_builder(data.test, responder, emb, "slate", data.hidden_path,
                               batch_size=episodes, seed=seed, scorer=scorer,
                               profiles=listener_profiles(data, emb))
    env = builder.get_tf_env()
    if info is not None:
        info["reward"] = builder.environment.reward.name
        info["diversity_source"] = div_source

    records = hasattr(responder, "reset") and hasattr(responder, "bias")

    def score(policy, penv, b):
        if records:
            responder.reset()
        m = run_episodes(policy, penv, episodes, div, replay_log=data.test,
                         history_length=b.environment.history_length)
        if records:
            m["shadow"] = responder.bias()
        return m

    out: Dict[str, dict] = {}
    for name in policies:
        if name in greedy_models:
            cls = model_policies.get(name, baseline_policies.GreedyUserModelPolicy)
            policy = cls(env.time_step_spec(), env.action_spec(), greedy_models[name],
                         builder.environment)
        elif name in BASELINES:
            policy = _baseline(name, env, builder, data, policy_seed)
        else:
            raise ConfigError(f"{binding}: unknown baseline {name!r} (known: "
                              f"{', '.join(BASELINES + tuple(greedy_models))})")
        out[name] = score(policy, env, builder)
    for name, (policy_fn, sampler) in (agents or {}).items():
        with gin.config_scope("eval"):
            b = make_builder(data.test, responder, emb, sampler, data.hidden_path,
                             batch_size=episodes, seed=seed, scorer=scorer,
                             profiles=listener_profiles(data, emb))
        if b.environment.slate_size != builder.environment.slate_size:
            raise ConfigError(
                f"{name}'s slates hold {b.environment.slate_size} tracks, the baselines' "
                f"{builder.environment.slate_size}: policies compared in one report "
                "recommend slates of one size (bind SLATE_SIZE, which every track "
                "sampler's slate_size reads in environment.gin)")
        agent_env = b.get_tf_env()
        out[name] = score(policy_fn(agent_env), agent_env, b)
        if episodes_path is not None:
            b.environment.episode_tracker.flush(episodes_path)
    return out


def final_evaluation(data: Dataset, user_model: AbstractUserModel, emb: np.ndarray,
                     agent=None, agent_fn: Optional[Callable] = None,
                     baselines: Sequence[str] = (), eval_episodes: int = 256, seed: int = 0,
                     run_dir: Optional[str] = None,
                     info: Optional[dict] = None,
                     offline_model: Optional[AbstractUserModel] = None,
                     agent_policy: Optional[Callable] = None) -> Dict[str, dict]:
    """Scores the agent's greedy policy and the baselines on test-split episodes,
    offline (under `offline_model`, by default `user_model`) and, on synthetic data,
    online (the ground truth).  Policies observe `user_model` either way.

    `agent_policy(env)`, when given, is the policy scored under the agent's name in
    place of `agent.policy` (the start a run ships instead, `experiments.shipping`).

    Returns {policy: {mode: metrics}}; writes the agent's online episodes to
    run_dir/episodes.parquet.  Shared by the main job and the distributed learner.
    """
    modes = {"offline": offline_model if offline_model is not None else user_model}
    if data.synthetic:
        modes["online"] = GroundTruthUserModel(data.world)
    agents = {}
    if agent is not None:
        spec = agent_spec(agent_fn)
        agents[spec.name] = (agent_policy or (lambda env: agent.policy), spec.sampler)
    metrics: Dict[str, dict] = {}
    for mode, model in modes.items():
        last = mode == list(modes)[-1]
        per_policy = evaluate_policies(
            data, model, emb, policies=baselines,
            greedy_models={name: user_model for name in MODEL_POLICIES}, agents=agents,
            episodes=eval_episodes, seed=evaluation_seed(seed), policy_seed=seed, scorer=user_model,
            info=info, binding="run_experiment.baselines",
            episodes_path=(os.path.join(run_dir, "episodes.parquet")
                           if last and run_dir is not None else None))
        for name, m in per_policy.items():
            metrics.setdefault(name, {})[mode] = m
    return metrics
