"""Which leave model extrapolates past the log's cap?  A backtest on the log alone.
(docs/offline_verdicts.md, "Leaving past the cap"; not a test.)

    python benchmarks/leave_extrapolation.py [--run_dir=runs/alignment/agents/lird_ddpg_1500]
        [--pseudo_cap=12 --pseudo_cap=15]

Episodes run to 60 tracks; the log stops at 20, so no fit sees where the simulator
spends most of its steps, and along the truth's episodes the learned hazard drifts
above the truth's past the cap (`benchmarks/leave_by_position.py`).  A team cannot see
past its own cap, but it can see past a lower one: cut every training and validation
session at a pseudo-cap c (longer ones censored there), fit each leave model on that,
and score it on the positions c..19 of the whole validation sessions, which the cut
fits never saw.  The model that extrapolates best past c is the one to trust past 20
(no ground truth involved).

Each leave model: `LeaveHead` (the GRU's and the taste model's), the same held to the
features' range the log showed (`within_log`, what the recalibrated simulators use),
and `LeaveHazard` (one boredom recursion, a linear logit).  Figures: the held-out log
loss on the at-risk rows past c, and the mean predicted against the observed hazard
there, for the fit on the cut log and, for reference, on the whole one.
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.alignment import STUDY_DATA
from experiments.assembly import exposure_run_data
from spotisim import cli
from spotisim.errors import ConfigError
from spotisim.data.session_log import SessionLog
from spotisim.tables import render_table
from user_models.leave_features import at_risk_rows
from user_models.leave_hazard import LeaveHazard
from user_models.leave_head import LeaveHead

FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/alignment/agents/lird_ddpg_1500",
                        "a finished run (its data and embeddings)")
    flags.DEFINE_multi_integer("pseudo_cap", [12, 15], "the lengths the sessions are cut at")
    flags.DEFINE_integer("head_epochs", 40, "LeaveHead's training epochs (early stopping)",
                         lower_bound=1)
    flags.DEFINE_multi_string("gin_bindings", STUDY_DATA, "bindings over the run's own")


def truncated(log: SessionLog, cap: int) -> SessionLog:
    """`log` with every session cut after its first `cap` tracks."""
    keep = log.positions <= cap
    lengths = np.minimum(log.lengths, cap)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    return SessionLog(log.session_ids, offsets, log.tracks[keep],
                      {k: v[keep] for k, v in log.columns.items()}, log.vocab, log.catalog,
                      log.skip_column)


def past(model, log: SessionLog, start: int, cap: int) -> dict:
    """Log loss and mean predicted / observed hazard over `log`'s at-risk rows at
    positions start..cap-1 (what a fit cut at `start` never saw)."""
    tracks, skipped, mask = log.padded()
    h = np.clip(model.hazards(tracks, mask & ~skipped), 1e-9, 1 - 1e-9)
    at_risk, event = at_risk_rows(log.lengths, tracks.shape[1], 1, cap)
    rows = at_risk & (np.arange(1, tracks.shape[1] + 1)[None, :] >= start)
    y, p = event[rows].astype(float), h[rows]
    loss = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    return {"log_loss": float(loss.mean()), "se": float(loss.std(ddof=1) / np.sqrt(len(loss))),
            "predicted": float(p.mean()), "observed": float(y.mean()), "rows": int(rows.sum())}


def fitted_models(emb, train: SessionLog, val: SessionLog):
    """name -> each leave model fitted on (train, val); the head's `within_log` copy
    shares its fit."""
    head = LeaveHead(emb, epochs=FLAGS.head_epochs).fit(train, val)
    return {"LeaveHead": head, "LeaveHead within_log": head.within_log(),
            "LeaveHazard": LeaveHazard(emb).fit(train, val)}


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    cap = int(data.train.lengths.max())
    bad = [c for c in FLAGS.pseudo_cap if not 2 <= c < cap]
    if bad:
        raise ConfigError(f"--pseudo_cap: each must lie in [2, {cap - 1}] (below the log's "
                          f"cap, {cap}), got {bad}")
    figures = {"cap": cap, "cuts": {}}
    rows = []
    for c in FLAGS.pseudo_cap:
        figures["cuts"][str(c)] = {}
        cut = fitted_models(emb, truncated(data.train, c), truncated(data.val, c))
        for name, fitted in cut.items():
            f = past(fitted, data.val, c, cap)
            figures["cuts"][str(c)][name] = f
            rows.append([f"cut at {c}", name, f"{f['log_loss']:.5f}", f"{f['se']:.5f}",
                         f"{f['predicted']:.4f}", f"{f['observed']:.4f}", f"{f['rows']:,}"])
    figures["whole"] = {}
    for name, fitted in fitted_models(emb, data.train, data.val).items():
        f = past(fitted, data.val, min(FLAGS.pseudo_cap), cap)
        figures["whole"][name] = f
        rows.append(["whole log", name, f"{f['log_loss']:.5f}", f"{f['se']:.5f}",
                     f"{f['predicted']:.4f}", f"{f['observed']:.4f}", f"{f['rows']:,}"])
    print(render_table(["fitted on", "leave model", "log loss past the cut", "se",
                        "predicted", "observed", "rows"], rows,
                       [f"the validation sessions' at-risk rows from the cut to {cap - 1}"]))
    return figures


if __name__ == "__main__":
    cli.benchmark("leave_extrapolation", define_flags, main)
