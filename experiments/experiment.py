"""`Experiment`: the settings of one experiment (agent, length, evaluation, seed), a
gin-configurable record that every role reads: the main job's runner and the
distributed job's prepare, actor and learner.  It keeps the gin name `run_experiment`,
so configs bind `run_experiment.num_iterations = 3000`, `run_experiment.agent_fn =
@create_ah_dqn_agent`, ... as they always did; nobody reads another function's
bindings."""

from __future__ import annotations

import dataclasses
from typing import Callable, Optional, Tuple

import gin

DEFAULT_BASELINES = ("random", "most_popular", "nearest_neighbour", "greedy_user_model",
                     "redundancy_greedy_user_model", "logging_policy")


@gin.configurable("run_experiment")
@dataclasses.dataclass(frozen=True)
class Experiment:
    """One experiment's settings.

    Attributes:
      agent_fn: an agent factory (gin: `@create_lird_ddpg_agent`, `@create_dqn_agent`,
        `@create_ah_dqn_agent`, `@create_dqn_ranked_agent`), or None to evaluate the
        baselines only.
      num_iterations: gradient steps (one batched collect step each).
      eval_every / checkpoint_every: iterations between evaluations / checkpoints
        (training runs in segments that start at checkpoints: `agents.training`).
      eval_episodes: whole episodes per policy in the final evaluation.
      baselines: baseline policies evaluated beside the agent.
      seed: seeds TensorFlow and the environments (same seed, same metrics).
      progress: show a progress bar while training.
      offline_evaluator: the user model the offline evaluation is scored with, when it
        should not be the one the agent trained against (a name
        `experiments.user_model_cache.user_model_by_name` knows, e.g.
        'sequential+calibrated'); policies still observe the trained-against model.
      simulator: the user model the agent trains against, by name (`user_model_by_name`:
        'min(sequential,taste,logistic)', 'sequential+calibrated', ...); None (the
        default) is `fit_or_load_user_model`'s, as its gin bindings say.
      keep_checkpoints: keep the resumable state (checkpoints/, which carries the
        replay buffer: 570 MB for the main job) when the run finishes, to extend it
        later.  By default a finished run keeps what evaluation, re-scoring and the
        report read (metrics, policy, episodes, config, plots) and drops it.
      actor_starts: starts the agent may train from, each a dict of the agent
        factory's arguments (e.g. `{'score_prior': 2.0, 'popularity_prior': 1.0}`);
        the training simulator chooses among them before training
        (`experiments.actor_start`).  Empty: the factory's bindings as they are.
      actor_start_episodes: the training split's episode starts each candidate plays.
      ship: which policy the run ships (policy/, and the agent's row of the report):
        'trained' (the trained agent), or 'evaluator': the offline evaluator (the
        simulator when none is bound) plays the untrained agent (the chosen start)
        and the trained one on the same `ship_episodes` validation starts, and the
        one it rates higher ships (`experiments.shipping`).
      ship_episodes: the validation starts of that comparison.  1,024 by default: at
        256 the paired standard error of the two policies' difference (about 0.3
        listens on the returning world) is as large as what training changes, and
        the call flips with the sample (docs/listeners.md, "The evaluator's choice as
        a step of the run").
    """

    agent_fn: Optional[Callable] = None
    num_iterations: int = 3000
    eval_every: int = 1000
    checkpoint_every: int = 500
    eval_episodes: int = 256
    baselines: Tuple[str, ...] = DEFAULT_BASELINES
    seed: int = 0
    progress: bool = True
    offline_evaluator: Optional[str] = None
    simulator: Optional[str] = None
    keep_checkpoints: bool = False
    actor_starts: Tuple[dict, ...] = ()
    actor_start_episodes: int = 256
    ship: str = "trained"
    ship_episodes: int = 1024
