"""Run a policy in a simulated environment for a number of whole episodes and summarise
what the listeners did: skip rate, mean episode reward and length, list diversity and
catalogue coverage.  Works for TF policies and Py policies alike."""

from __future__ import annotations

from typing import Dict

import numpy as np
from tf_agents.policies import py_policy, py_tf_eager_policy

from spotisim.builder import TFAgtPyEnvironment
from spotisim.episode_tracker import list_diversity


def run_episodes(policy, env: TFAgtPyEnvironment, num_episodes: int,
                 diversity_features: np.ndarray = None, max_steps: int = 100_000) -> Dict[str, float]:
    """Steps `env` (batched) with `policy` until `num_episodes` episodes have finished.

    Only finished episodes are counted; the environment's tracker is cleared first.
    """
    if not isinstance(policy, py_policy.PyPolicy):
        policy = py_tf_eager_policy.PyTFEagerPolicy(policy, use_tf_function=True,
                                                    batch_time_steps=False)
    tracker = env.env.episode_tracker
    tracker.clear()
    time_step = env.reset()
    for _ in range(max_steps):
        time_step = env.step(policy.action(time_step).action)
        a = tracker.arrays()
        if a and int(a["done"].sum()) >= num_episodes:
            break
    a = tracker.arrays()
    done_eps = np.unique(a["episode_id"][a["done"]])[:num_episodes]
    keep = np.isin(a["episode_id"], done_eps)
    ep = a["episode_id"][keep]
    _, inverse = np.unique(ep, return_inverse=True)
    rewards = np.bincount(inverse, weights=a["reward"][keep])
    lengths = np.bincount(inverse)
    out = {
        "episodes": float(len(done_eps)),
        "skip_rate": float(1.0 - a["responses"][keep].mean()),
        "mean_episode_reward": float(rewards.mean()),
        "episode_reward_sd": float(rewards.std()),
        "mean_episode_length": float(lengths.mean()),
        "coverage": float(len(np.unique(a["slate"][keep])) / env.env.embeddings.shape[0]),
    }
    if diversity_features is not None:
        out["diversity"] = float(np.nanmean(list_diversity(diversity_features[a["slate"][keep]])))
    return out
