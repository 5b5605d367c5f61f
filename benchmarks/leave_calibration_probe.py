"""Can the exposure slice correct the learned P(leave) along redundant lists?
(docs/offline_verdicts.md, "Where the chosen simulator's error comes from"; not a test.)

    python benchmarks/leave_calibration_probe.py [--simulator=sequential]
        [--run_dir=runs/alignment/agents/lird_ddpg_1500]

The decomposition found the learned hazard too high where policies play redundant
lists.  Here the slice's randomly exposed, at-risk rows (the rows the P(leave)
recalibration fits on) are fitted three ways on 80% of the slice's sessions: logit' =
v0 + v1 logit(h) (the recalibration), plus the exposed track's redundancy, plus whether
it was listened to; each is scored by its log loss on the other 20% against the model
as it is.  A term is worth keeping only where the held-out loss falls.

A slice whose sessions run past the log's cap (`ensure_synthetic_world.
exploration_length`) also shows the model's hazard against the listeners' by position
band on the held-out sessions, and two more variants: logit(h) + log(1 + tracks past
the log's cap), and logit(h) + one term per 10-track band past the cap.
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.alignment import STUDY_DATA
from experiments.assembly import exposure_run_data
from experiments.user_model_cache import user_model_by_name
from spotisim import cli
from spotisim.tables import render_table
from user_models import exposure_calibration as ec

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/alignment/agents/lird_ddpg_1500",
                        "a finished run (its data and its user model)")
    flags.DEFINE_string("simulator", "sequential", "the learned model whose leave head is probed")
    flags.DEFINE_multi_string("gin_bindings", STUDY_DATA, "bindings over the run's own")


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    model = user_model_by_name(FLAGS.simulator, data, emb)
    _, leave = ec.exposure_rows(model, data.exposure, ec.within_log(model.leave_hazard))
    held = np.random.default_rng(0).random(data.exposure.log.num_sessions) < 0.2
    h = held[leave["session"]]
    base = ec.log_loss(ec.sigmoid(leave["logit_h"][h]), leave["left"][h])
    figures = {"rows": int(len(h)), "held_out_rows": int(h.sum()),
               "left_rate": float(leave["left"].mean()),
               "redundancy_p95": float(np.percentile(leave["rho"], 95)),
               "held_out_log_loss_as_is": base, "variants": {}}
    rows = []
    log_cap = int(data.train.lengths.max())
    past = np.log1p(np.maximum(leave["position"] - log_cap, 0))
    variants = [("logit(h)", leave["logit_h"][:, None]),
                ("logit(h) + redundancy", np.stack([leave["logit_h"], leave["rho"]], 1)),
                ("logit(h) + redundancy + listened",
                 np.stack([leave["logit_h"], leave["rho"], leave["listened"]], 1))]
    if past.any():
        variants.append(("logit(h) + past the cap", np.stack([leave["logit_h"], past], 1)))
        pos = leave["position"]
        variants.append(("logit(h) + bands past the cap", np.stack(
            [leave["logit_h"], (pos > log_cap) & (pos <= log_cap + 10),
             (pos > log_cap + 10) & (pos <= log_cap + 20), pos > log_cap + 20], 1)))
        pos = leave["position"]
        bands = {label: h & (pos >= lo) & (pos <= hi) for label, lo, hi in (
            ("11-20", 11, 20), ("21-30", 21, 30), ("31-40", 31, 40), ("41-", 41, 10 ** 6))}
        bands = {label: b for label, b in bands.items() if b.any()}
        figures["by_position"] = {
            label: {"rows": int(b.sum()), "observed": float(leave["left"][b].mean()),
                    "as_is": float(ec.sigmoid(leave["logit_h"][b]).mean())}
            for label, b in bands.items()}
        print(render_table(["positions", "held-out rows", "left", f"{FLAGS.simulator}"], [
            [label, f"{f['rows']:,}", f"{f['observed']:.4f}", f"{f['as_is']:.4f}"]
            for label, f in figures["by_position"].items()],
            [f"the slice past the log's cap ({log_cap})"]))
    else:
        bands = {}
    for name, X in variants:
        w = ec.fit_logistic(X[~h], leave["left"][~h])
        loss = ec.log_loss(ec.sigmoid(np.c_[np.ones(h.sum()), X[h]] @ w), leave["left"][h])
        figures["variants"][name] = {"weights": [float(x) for x in w], "held_out_log_loss": loss}
        if bands:
            p = ec.sigmoid(np.c_[np.ones(len(X)), X] @ w)
            for label, b in bands.items():
                figures["by_position"][label][name] = float(p[b].mean())
        rows.append([name, " ".join(f"{x:+.3f}" for x in w), f"{loss:.5f}",
                     "kept" if loss < base else "not kept"])
    print(render_table(["P(leave) recalibration", "weights", "held-out log loss", ""], rows,
                       [f"{FLAGS.simulator} as it is: {base:.5f} on {figures['held_out_rows']} "
                        f"held-out at-risk rows (of {figures['rows']}; left rate "
                        f"{figures['left_rate']:.3f})"]))
    return figures


if __name__ == "__main__":
    cli.benchmark("leave_calibration_probe", define_flags, main)
