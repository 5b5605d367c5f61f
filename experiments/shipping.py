"""Which policy the run ships: the trained agent, or the start it trained from.

Why: on the returning world LIRD-DDPG's chosen start beats every baseline online, and
training against the GRU loses half a listen of it on every seed (docs/listeners.md,
"The redundancy among LIRD's features").  The offline evaluator (another model class
than the one trained against) rates the trained policy below its start on the same
seeds.  So with `run_experiment.ship = 'evaluator'` the run keeps the untrained agent
(the chosen start) beside the trained one and ships whichever the evaluator rates
higher on the same validation starts (`run_experiment.ship_episodes`): the offline
verdict the project exists for, made with what a team has (logs, the models fitted on
them), never the ground truth.  Ties ship the trained agent.

The run directory then holds `start_policy/` (saved before the first gradient step, so
a resumed run compares with the same start), `trained_policy/`, `policy/` (the shipped
one: what `experiments.evaluate` and a team load) and `shipped.json` (the choice and
the figures it was made on).
"""

from __future__ import annotations

import functools
import json
import os
import shutil
from typing import Callable, Dict, Mapping, Optional, Tuple

import numpy as np
from tf_agents.policies import policy_saver

from agents.evaluate import load_saved_policy as load_policy
from agents.evaluate import run_episodes
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_dir, atomic_file

SHIP_CHOICES = ("trained", "evaluator")
SHIPPED_FILE = "shipped.json"
START_POLICY = "start_policy"
TRAINED_POLICY = "trained_policy"


def check_ship(ship: str, episodes: int) -> None:
    """Raises ConfigError naming the binding unless `ship` is one of SHIP_CHOICES and
    `episodes` (`run_experiment.ship_episodes`) a positive whole number."""
    if ship not in SHIP_CHOICES:
        raise ConfigError(f"run_experiment.ship: {ship!r} is not one of "
                          f"{', '.join(map(repr, SHIP_CHOICES))}")
    if isinstance(episodes, bool) or not isinstance(episodes, int) or episodes < 1:
        raise ConfigError(f"run_experiment.ship_episodes: {episodes!r} is not a positive "
                          "whole number")


def save_policy(policy, path: str) -> None:
    """`policy` as a SavedModel at `path`, whole or not at all (a cut save leaves the
    previous directory, or none)."""
    with atomic_dir(path) as tmp:
        policy_saver.PolicySaver(policy, batch_size=None).save(tmp)


def keep_start_policy(run_dir: str, agent, iteration: int) -> None:
    """Saves the untrained agent's greedy policy to run_dir/start_policy.  A resumed
    run keeps the one saved before its first gradient step; a run resumed past it
    without one cannot know its start: one ConfigError."""
    path = os.path.join(run_dir, START_POLICY)
    if iteration > 0:
        if not os.path.isdir(path):
            raise ConfigError(f"run_experiment.ship = 'evaluator': {run_dir} resumes at "
                              f"iteration {iteration} and holds no {START_POLICY}/ (the run "
                              "began without it): --noresume to start over")
        return
    save_policy(agent.policy, path)


def ship_evaluators_choice(run_dir: str, make_env: Callable, episodes: int,
                           evaluator: str) -> Tuple[Dict, Optional[Callable]]:
    """Chooses between run_dir's trained_policy/ and start_policy/ (`choose_shipped`)
    and copies the one chosen to policy/.  Returns (the record, `policy_fn(env)` for
    the final evaluation when the start ships, else None: the trained agent in
    memory is scored)."""
    record = choose_shipped(run_dir, {"trained": os.path.join(run_dir, TRAINED_POLICY),
                                      "start": os.path.join(run_dir, START_POLICY)},
                            make_env, episodes, evaluator)
    chosen = os.path.join(run_dir, {"trained": TRAINED_POLICY,
                                    "start": START_POLICY}[record["shipped"]])
    with atomic_dir(os.path.join(run_dir, "policy")) as tmp:
        shutil.copytree(chosen, tmp, dirs_exist_ok=True)
    if record["shipped"] == "trained":
        return record, None
    return record, functools.partial(load_policy, chosen)


def paired_difference(a: np.ndarray, b: np.ndarray) -> Tuple[float, float]:
    """(mean of a - b, its standard error) over paired starts; the error is NaN for
    fewer than two starts."""
    d = np.asarray(a, np.float64) - np.asarray(b, np.float64)
    se = float(d.std(ddof=1) / np.sqrt(len(d))) if len(d) > 1 else float("nan")
    return float(d.mean()), se


def choose_shipped(run_dir: str, candidates: Mapping[str, str], make_env: Callable,
                   episodes: int, evaluator: str) -> Dict:
    """The evaluator's choice among saved policies.

    Args:
      candidates: {name: SavedModel directory}, in preference order on ties (the
        first of equals ships).
      make_env: builds the batched py environment (at least `episodes` lanes) whose
        user model is the evaluator; each candidate plays its first `episodes` starts
        (`run_episodes`: the same starts and response draws for every candidate).
      evaluator: the evaluator's name, recorded.

    Returns (and writes to run_dir/shipped.json):
      {"shipped": name, "candidates": [{"name", "listens", "skip_rate", "minus_first",
       "minus_first_se"}], "episodes", "evaluator"}: `minus_first` is the candidate's
      listens minus the first candidate's, paired on the same starts, with its
      standard error over the starts (how sure the evaluator's call is, read without
      the ground truth).
    """
    if not candidates:
        raise ConfigError("choose_shipped: no candidates")
    env = make_env()
    rows, first = [], None
    for name, path in candidates.items():
        r = run_episodes(load_policy(path, env), env, episodes)
        per_start = np.asarray(r["episode_rewards"], np.float64)
        first = per_start if first is None else first
        diff, se = paired_difference(per_start, first)
        rows.append({"name": name, "listens": float(r["mean_episode_reward"]),
                     "skip_rate": float(r["skip_rate"]), "minus_first": diff,
                     "minus_first_se": se})
    best = max(range(len(rows)), key=lambda i: (rows[i]["listens"], -i))
    out = {"shipped": rows[best]["name"], "candidates": rows, "episodes": int(episodes),
           "evaluator": evaluator}
    with atomic_file(os.path.join(run_dir, SHIPPED_FILE)) as f:
        json.dump(out, f, indent=1)
    return out
