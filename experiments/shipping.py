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

The call made again on a finished run, on more validation starts (how sure it was;
policy/ and the report stay as they are):

    python -m experiments.shipping --run_dir=runs/X/seed_0 [--run_dir=...] --ship_episodes=1024
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
from spotisim import cli
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
                   episodes: int, evaluator: str, file_name: str = SHIPPED_FILE) -> Dict:
    """The evaluator's choice among saved policies.

    Args:
      candidates: {name: SavedModel directory}, in preference order on ties (the
        first of equals ships).
      make_env: builds the batched py environment (at least `episodes` lanes) whose
        user model is the evaluator; each candidate plays its first `episodes` starts
        (`run_episodes`: the same starts and response draws for every candidate).
      evaluator: the evaluator's name, recorded.

    Returns (and writes to run_dir/`file_name`):
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
    with atomic_file(os.path.join(run_dir, file_name)) as f:
        json.dump(out, f, indent=1)
    return out


def shipped_file(episodes: Optional[int] = None) -> str:
    """shipped.json (the run's own choice), or shipped_<episodes>.json (`reconsider`)."""
    return SHIPPED_FILE if episodes is None else f"shipped_{int(episodes)}.json"


def judge_env_factory(data, evaluator, user_model, emb, kind: str, seed: int,
                      episodes: int) -> Callable:
    """`make_env` of the shipping call: the validation split under the evaluator, the
    run's seed + 3, `episodes` lanes, candidate scores from the model trained against.
    The run and `reconsider` both build it here, so a call made again is the same call."""
    import gin
    from experiments.assembly import make_builder
    from experiments.user_model_cache import listener_profiles

    def judge_env():
        with gin.config_scope("eval"):
            return make_builder(data.val, evaluator, emb, kind, data.hidden_path,
                                batch_size=episodes, seed=seed + 3, scorer=user_model,
                                profiles=listener_profiles(data, emb)).get_tf_env()
    return judge_env


def reconsider(run_dir: str, episodes: int, trust_run_dir: bool = False) -> Dict:
    """The evaluator's choice of a finished run with `run_experiment.ship = 'evaluator'`
    made again on `episodes` validation starts, as the run makes it (its environment,
    seed and evaluator, from its operative config), and written to
    shipped_<episodes>.json.  policy/ and the report stay as the run left them: this
    asks how sure the call was (say, on more starts than the run used), it does not
    ship again.  No ground truth is read."""
    import gin
    from agents.registry import agent_spec
    from experiments.assembly import parse_run_config
    from experiments.experiment import Experiment
    from experiments.user_model_cache import fit_or_load_user_model, user_model_by_name
    from spotisim.data.datasets import load_dataset
    from spotisim.embeddings import dataset_embeddings
    check_ship("evaluator", episodes)
    paths = {n: os.path.join(run_dir, n) for n in (TRAINED_POLICY, START_POLICY)}
    missing = [n for n, p in paths.items() if not os.path.isdir(p)]
    if missing:
        raise ConfigError(f"{run_dir}: no {', '.join(m + '/' for m in missing)} (a finished "
                          "run with run_experiment.ship = 'evaluator' keeps both)")
    gin.clear_config()
    try:
        parse_run_config(run_dir, trust=trust_run_dir)
        x = Experiment()
        data = load_dataset()
        emb = dataset_embeddings(data).aligned_to(data.log.catalog)
        user_model = (user_model_by_name(x.simulator, data, emb) if x.simulator
                      else fit_or_load_user_model(data, emb))
        evaluator = (user_model_by_name(x.offline_evaluator, data, emb)
                     if x.offline_evaluator else user_model)
        kind = agent_spec(x.agent_fn).sampler

        judge_env = judge_env_factory(data, evaluator, user_model, emb, kind, x.seed, episodes)
        record = choose_shipped(run_dir, {"trained": paths[TRAINED_POLICY],
                                          "start": paths[START_POLICY]}, judge_env, episodes,
                                x.offline_evaluator or x.simulator or "simulator",
                                file_name=shipped_file(episodes))
    finally:
        gin.clear_config()
    return record


def define_flags() -> None:
    """Command-line flags (defined only when this module runs as the program)."""
    from absl import flags
    flags.DEFINE_multi_string("run_dir", [], "a finished run with run_experiment.ship = "
                              "'evaluator' (repeat for several, e.g. each seed's)")
    flags.DEFINE_integer("ship_episodes", 1024, "validation starts the call is made on")
    flags.DEFINE_bool("trust_run_dir", False, "let the runs' configs import modules from "
                      "outside this project")


def _main() -> None:
    from absl import flags
    from spotisim.tables import render_table
    f = flags.FLAGS
    if not f.run_dir:
        raise ConfigError("--run_dir is required")
    rows = []
    for run_dir in f.run_dir:
        r = reconsider(run_dir, f.ship_episodes, f.trust_run_dir)
        by = {c["name"]: c for c in r["candidates"]}
        rows.append([run_dir, f"{by['trained']['listens']:.3f}", f"{by['start']['listens']:.3f}",
                     f"{-by['start']['minus_first']:+.3f} ({by['start']['minus_first_se']:.3f})",
                     r["shipped"]])
    print(render_table(["run", "trained", "start", "trained - start (se)", "would ship"], rows,
                       [f"the offline evaluator on {f.ship_episodes} validation starts; "
                        f"written to each run's {shipped_file(f.ship_episodes)}"]))


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
