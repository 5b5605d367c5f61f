"""The agent's start, chosen on the simulator it trains against.

Why: on the returning world a fixed mix of the model's answers and the log popularity
beats most popular online, and LIRD-DDPG's own training simulator rates it above most
popular on every seed, but DDPG started at the model's greedy policy does not reach it
(docs/listeners.md, "What stops LIRD-DDPG short of most popular").  So the run may name
a few starts (keyword arguments of the agent factory, e.g. LIRD's `score_prior`,
`leave_prior`, `popularity_prior`); each untrained agent's policy plays the same
episode starts of the training split against the training simulator, and training
begins from the one it rates best.  Only what a team has is read: the logs and the
model fitted on them, never the ground truth.

The choice is written to the run directory (`actor_start.json`) before training, so
a resumed run starts from the same agent without playing the candidates again.
"""

from __future__ import annotations

import inspect
import json
import os
from typing import Callable, Dict, Sequence

import numpy as np

from agents.evaluate import run_episodes
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_file

START_FILE = "actor_start.json"


def check_actor_starts(starts: Sequence[dict], agent_fn: Callable) -> None:
    """Raises ConfigError unless `starts` is a list of keyword dicts that `agent_fn`
    takes (checked before anything is written)."""
    if not starts:
        return
    if agent_fn is None:
        raise ConfigError("run_experiment.actor_starts needs run_experiment.agent_fn")
    params = inspect.signature(inspect.unwrap(agent_fn)).parameters
    for i, start in enumerate(starts):
        if not isinstance(start, dict):
            raise ConfigError(f"run_experiment.actor_starts[{i}] must be a dict of the "
                              f"agent factory's arguments, got {start!r}")
        unknown = sorted(k for k in start if k not in params)
        if unknown:
            raise ConfigError(f"run_experiment.actor_starts[{i}]: {agent_fn.__name__} takes "
                              f"no argument {', '.join(unknown)}")


def choose_actor_start(run_dir: str, starts: Sequence[dict], agent_fn: Callable,
                       time_step_spec, action_spec, make_env: Callable,
                       episodes: int) -> Dict:
    """The start to train from: `{"chosen": kwargs, "candidates": [{"start", "listens"}]}`.

    Each start's untrained agent plays the same `episodes` starts (`run_episodes`:
    common random numbers, so the comparison is paired) in the TF-Agents py
    environment `make_env()` builds (at least `episodes` lanes); the first start with
    the highest mean listens is chosen.  A run directory that already holds the choice
    for the same candidates reuses it."""
    path = os.path.join(run_dir, START_FILE)
    wanted = [dict(s) for s in starts]
    if os.path.exists(path):
        with open(path) as f:
            saved = json.load(f)
        if saved.get("starts") == wanted:
            return saved
    env = make_env()
    rows = []
    for start in wanted:
        agent = agent_fn(time_step_spec, action_spec, **start)
        r = run_episodes(agent.policy, env, episodes)
        rows.append({"start": start, "listens": float(r["mean_episode_reward"])})
    best = int(np.argmax([r["listens"] for r in rows]))
    out = {"starts": wanted, "chosen": wanted[best], "candidates": rows,
           "episodes": int(episodes)}
    with atomic_file(path) as f:
        json.dump(out, f, indent=1)
    return out
