"""Does the log's support of a (history, track) pair mark where the simulator errs?
(docs/offline_verdicts.md, "Co-play support"; not a test.)

    python benchmarks/support_probe.py [--run_dir=runs/alignment/agents/lird_ddpg_1500]
        [--simulator=min(sequential+calibrated,taste+calibrated,logistic+calibrated)]
        [--agent_runs=runs/alignment/agents/ah_dqn_1500] [--episodes=256]

Two measurements, no change to any simulator:
- the slice: the co-play support (`user_models.log_support`, counted on the training
  split) as an input of the exposure calibration of `--simulator`, its gain in the
  held-out log loss of the slice's listens, on the 20% held out and across 5 folds of
  every slice session (`ExposureCalibration.fit(folds=...)`);
- the policies: the mean support of each policy's picks (after the listened history
  before the slate), `--episodes` starts under the ground truth:
  the run's baselines, the redundancy greedy at 0.5, 1 and 2, and the agent of each of
  `--agent_runs`.
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)

import numpy as np
from absl import flags

from experiments.alignment import STUDY_DATA
from experiments.assembly import exposure_run_data
from experiments.recorded_picks import recorded_picks
from experiments.user_model_cache import user_model_by_name
from spotisim import cli
from spotisim.tables import render_table
from user_models.exposure_calibration import ExposureCalibration
from user_models.log_support import CoPlaySupport

FLAGS = flags.FLAGS
DEFAULT_AGENTS = [f"runs/alignment/agents/{a}" for a in (
    "lird_ddpg_1500", "lird_ddpg_3000", "ah_dqn_1500", "ah_dqn_3000", "dqn_ranked_1500",
    "dqn_ranked_3000", "ah_dqn_calibrated", "lird_ddpg_chosen", "ah_dqn_chosen")]


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/alignment/agents/lird_ddpg_1500",
                        "a finished run (its data, and the environment of the baselines)")
    flags.DEFINE_string("simulator",
                        "min(sequential+calibrated,taste+calibrated,logistic+calibrated)",
                        "the learned model whose calibration may read the support")
    flags.DEFINE_multi_string("agent_runs", DEFAULT_AGENTS, "finished runs whose agents' "
                              "picks are measured")
    flags.DEFINE_integer("episodes", 256, "starts per policy", lower_bound=1)
    flags.DEFINE_multi_string("gin_bindings", STUDY_DATA, "bindings over the run's own")



def pick_support(records, support: CoPlaySupport) -> np.ndarray:
    """The support of every pick after the history heard before its slate (its listened
    tracks)."""
    out = [support.support(tracks, responses, slate).ravel()
           for tracks, responses, slate in records]
    return np.concatenate(out) if out else np.zeros(0)


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    support = CoPlaySupport.from_log(data.train)
    model = user_model_by_name(FLAGS.simulator, data, emb)
    figures = {"pairs": int(len(support.keys)), "slice": {}, "picks": {}}
    rows = []
    for name, folds in (("20% held out", 0), ("5 folds", 5)):
        sel = ExposureCalibration.fit(model, data.exposure, support=support,
                                      folds=folds).selection
        figures["slice"][name] = {"gain": sel["support_gain"], "se": sel["support_gain_se"],
                                  "kept": sel["listen_uses_support"]}
        rows.append([name, f"{sel['support_gain']:+.5f}", f"{sel['support_gain_se']:.5f}",
                     f"{sel['support_gain'] / max(sel['support_gain_se'], 1e-12):.1f}",
                     "kept" if sel["listen_uses_support"] else "not kept"])
    print(render_table(["decided on", "gain in log loss", "se", "gain / se", ""], rows,
                       [f"co-play support in the calibration of {FLAGS.simulator}"]))
    rows = []
    for name, records in recorded_picks(FLAGS.run_dir, FLAGS.agent_runs, FLAGS.gin_bindings,
                                        FLAGS.episodes):
        s = pick_support(records, support)
        figures["picks"][name] = {"mean": float(s.mean()), "picks": int(len(s))}
        rows.append([name, f"{s.mean():.2f}", f"{len(s):,}"])
    print(render_table(["policy", "mean support of a pick", "picks"], rows,
                       [f"{FLAGS.episodes} starts under the ground truth"]))
    return figures


if __name__ == "__main__":
    cli.benchmark("support_probe", define_flags, main)
