"""The main job: one experiment, described by a gin file.

    python -m experiments.run --gin_file=lird_ddpg.gin [--gin_bindings=...] [--run_dir=...]

Data (the synthetic default, generated or reused) -> track embeddings -> user model
(fitted, or reused from a cache keyed by data + configuration) -> simulated environment
-> agent trained against the user model -> evaluation of the agent and the baselines
under that user model ("offline") and, on synthetic data, under the world's ground truth
("online") -> a run directory:

    operative_config.gin   the full configuration that ran
    metrics.json           every number of the final table, per policy
    learning_curve.png     training loss and periodic evaluation reward
    comparison.png         listens per episode and skip rate per policy
    tb/                    TensorBoard summaries
    checkpoints/           agent + replay buffer + iteration (resume from here)
    policy/                the shipped greedy policy as a SavedModel (PolicySaver): the
                           trained one, or with run_experiment.ship = 'evaluator' the one
                           the offline evaluator rates higher of start_policy/ (the
                           untrained agent) and trained_policy/ (shipped.json says which)
    episodes.parquet       every step of the agent's online evaluation episodes

An interrupted run started again with the same --run_dir resumes from its last
checkpoint (--noresume starts over).
"""

from __future__ import annotations

import os

import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags

# Agent factories and user-model classes a gin file may name (`@create_ah_dqn_agent`,
# `@LogisticUserModel`): imported so that gin knows them when the file is parsed.
from agents.ah_dqn import create_ah_dqn_agent  # noqa: F401
from agents.dqn import create_dqn_agent  # noqa: F401
from agents.lird_ddpg import create_lird_ddpg_agent  # noqa: F401
from user_models.lird import LirdSimulatorUserModel  # noqa: F401
from user_models.logistic import LogisticUserModel  # noqa: F401
from user_models.registry import learned_user_models
from user_models.sequential import SequentialUserModel  # noqa: F401
# The job's parts, by module (re-exported: `experiments.run.X` keeps working).
from experiments.assembly import (PASSED_KNOBS, SAMPLERS, make_builder,  # noqa: F401
                                  refuse_changed_setup, refuse_shadowed_bindings,
                                  without_shadowed_bindings)
from experiments.policy_evaluation import final_evaluation  # noqa: F401
from experiments.reporting import format_self_check, format_table
from experiments.runner import run_experiment, scoped_op_determinism  # noqa: F401
from experiments.user_model_cache import (attach_leave_hazard,  # noqa: F401
                                          fit_or_load_user_model)
from spotisim import cli
from spotisim.gin_utils import parse_gin

# Every built-in user model's gin configurable exists before a config or a binding names
# it (`TasteUserModel.leave_space` was "no configurable" here until 2026-12-07).
learned_user_models()

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


FLAGS = flags.FLAGS


def define_flags() -> None:
    """Command-line flags, defined only when this module runs as the program (several
    entry points live in one test process)."""
    flags.DEFINE_multi_string("gin_file", [], "config: a path or a name in experiments/configs")
    flags.DEFINE_multi_string("gin_bindings", [], "gin bindings, e.g. 'run_experiment.num_iterations = 100'")
    flags.DEFINE_string("run_dir", None, "output directory (default runs/<config name>)")
    flags.DEFINE_bool("resume", True, "resume from the run directory's last checkpoint")


def _main() -> None:
    paths = parse_gin(FLAGS.gin_file or ["lird_ddpg"], FLAGS.gin_bindings, [CONFIG_DIR])
    run_dir = FLAGS.run_dir or os.path.join(
        "runs", os.path.splitext(os.path.basename(paths[-1]))[0])
    out = run_experiment(run_dir, resume=FLAGS.resume)
    print(format_table(out))
    print(format_self_check(out["self_check"]))
    print(f"run directory: {run_dir}")


main = cli.absl_main(_main)

if __name__ == "__main__":
    cli.start(define_flags, main)
