"""How well do the learned leave models know when listeners leave?  (Not a test.)

On a synthetic world's test split: every at-risk row (a logged session after track t,
from the log's shortest session length on, before its 20-track cap: sessions at the cap
are censored) gets "left here" or not; each model's P(leave) there is scored by
  * AUC (ranking: does it know *who* leaves),
  * ECE (calibration: 10 bins of equal mass by predicted P(leave), the row-weighted mean
    of |mean predicted - observed rate|; equal-width bins would put nearly every row in
    the first bin, hazards being small).
Models: the world's true hazard (the ceiling: the AUC a perfect model reaches), the
sequential model's `LeaveHead`, and the simple fitted `LeaveHazard`.  The long-horizon
issue's aims for the head: AUC within 0.02 of the true hazard's, ECE <= 0.02.  Then,
by the length of the skip streak the row ends (0-4, 5-10, 11 or more), the mean P(leave)
of the truth, of the head, of the head as it was before the eleventh session (the
streak capped at 5 only and every decay of the grid: `long_streak=None,
settled_only=False`) and of `LeaveHazard`
(linear in the streak capped at 5), and the log loss of each:
where a model misses the log's own long skip runs.

With `--mssd` it also runs on the real MSSD slices (no truth there): the head against a
hazard that uses position only (one leaving rate per track position, fitted on the
train split).

    python benchmarks/leave_head_quality.py [--mssd]
"""


import spotisim  # noqa: F401  (first: quiets the stack at import)
from absl import flags
import gin
import numpy as np

from spotisim import cli
from experiments.run import CONFIG_DIR
from spotisim.data.datasets import load_dataset
from spotisim.embeddings import build_embeddings
from spotisim.gin_utils import parse_gin
from user_models.base import History
from user_models.ground_truth import GroundTruthUserModel
from user_models.leave_features import at_risk_rows, skip_streaks
from user_models.leave_hazard import LeaveHazard
from user_models import exposure_calibration as ec
from user_models.leave_head import LeaveHead


def auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney, ties counted half)."""
    import pandas as pd
    labels = np.asarray(labels, bool)
    ranks = pd.Series(np.asarray(scores, float)).rank(method="average").to_numpy()
    n1, n0 = labels.sum(), (~labels).sum()
    return float((ranks[labels].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error over `bins` bins of equal mass."""
    order = np.argsort(probs, kind="stable")
    err = 0.0
    for part in np.array_split(order, bins):
        err += len(part) * abs(probs[part].mean() - labels[part].mean())
    return float(err / len(probs))


def rows(log, hazards, first_at_risk, cap):
    """(predicted, event) at the log's at-risk rows from hazards [S, H]."""
    tracks, _, _ = log.padded()
    at_risk, events = at_risk_rows(log.lengths, tracks.shape[1], first_at_risk, cap)
    return hazards[at_risk], events[at_risk]


def position_hazard(train, test, cap):
    """A hazard that knows only the position: the train split's leaving rate after
    track t, for each t (the censored Kaplan-Meier step), applied to the test split."""
    first = int(train.lengths.min())
    tracks, _, _ = train.padded()
    at_risk, events = at_risk_rows(train.lengths, tracks.shape[1], first, cap)
    rate = events.sum(0) / np.maximum(at_risk.sum(0), 1)
    width = test.padded()[0].shape[1]
    rate = np.pad(rate, (0, max(0, width - len(rate))), mode="edge")[:width]
    return np.tile(rate[None, :], (test.num_sessions, 1))


def report(name, p, y, truth_auc=None):
    a, e = auc(p, y), ece(p, y)
    gap = "" if truth_auc is None else f"   AUC gap to the truth {truth_auc - a:+.3f}"
    print(f"  {name:<34} AUC {a:.3f}   ECE {e:.4f}   mean P {p.mean():.4f}{gap}", flush=True)
    return a, e


def synthetic(args):
    gin.clear_config()
    parse_gin(args.gin_file, args.gin_bindings, [CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    head = LeaveHead(emb).fit(data.train, data.val)
    hazard = LeaveHazard(emb).fit(data.train)
    test = data.test
    tracks, skipped, mask = test.padded()
    listened = (mask & ~skipped).astype(np.float32)
    listener, mood = data.hidden(test)
    history = History(tracks, listened, test.lengths.astype(np.int32),
                      test.session_context().astype(np.int16), listener, mood)
    true_h = GroundTruthUserModel(data.world).hazards_along(history, cap=False)
    first, cap = head.first_at_risk, head.cap
    pt, y = rows(test, true_h, first, cap)
    print(f"{data.source}: test split, {test.num_sessions} sessions, {len(y)} at-risk rows, "
          f"{int(y.sum())} leaves (rate {y.mean():.4f})")
    truth_auc, _ = report("true hazard (ceiling)", pt, y)
    a, e = report("LeaveHead (sequential model)", rows(test, head.hazards(tracks, listened),
                                                        first, cap)[0], y, truth_auc)
    report("LeaveHazard (logistic, LIRD models)", rows(test, hazard.hazards(tracks, listened),
                                                       first, cap)[0], y, truth_auc)
    report("position only", rows(test, position_hazard(data.train, test, cap), first, cap)[0],
           y, truth_auc)
    print(f"leave head: AUC gap {truth_auc - a:+.3f} (aim <= 0.02), ECE {e:.4f} (aim <= 0.02)")
    short = LeaveHead(emb, long_streak=None, settled_only=False).fit(data.train, data.val)
    by_streak = streak_table(test, {"truth": true_h, "LeaveHead": head.hazards(tracks, listened),
                                    "before (streak at 5, decay 0.95)":
                                        short.hazards(tracks, listened),
                                    "LeaveHazard": hazard.hazards(tracks, listened)},
                             first, cap)
    return {"truth_auc": truth_auc, "leave_head_auc": a, "leave_head_ece": e,
            "auc_gap": truth_auc - a, "by_streak": by_streak}


def streak_table(log, hazards: dict, first_at_risk: int, cap: int,
                 bands=((0, 4), (5, 10), (11, 10 ** 6))) -> dict:
    """Per band of the skip streak, the at-risk rows' observed leaving rate and each
    model's mean P(leave) and log loss (printed and returned)."""
    streak = rows(log, skip_streaks(log), first_at_risk, cap)[0]
    preds = {name: rows(log, h, first_at_risk, cap) for name, h in hazards.items()}
    y = next(iter(preds.values()))[1].astype(np.float64)
    print("  by skip streak: rows, observed rate, then each model's mean P(leave) "
          "[log loss]: " + ", ".join(hazards))
    out = {}
    for lo, hi in bands:
        m = (streak >= lo) & (streak <= hi)
        label = f"{lo}-{hi}" if hi < 10 ** 6 else f"{lo}+"
        out[label] = {"rows": int(m.sum()), "observed": float(y[m].mean())}
        cells = []
        for name, (p, _) in preds.items():
            loss = ec.log_loss(p[m], y[m])
            out[label][name] = {"mean": float(p[m].mean()), "log_loss": loss}
            cells.append(f"{p[m].mean():.4f} [{loss:.4f}]")
        print(f"    {label:<6} {int(m.sum()):>7} {y[m].mean():.4f}   " + "   ".join(cells))
    return out


def mssd(args):
    gin.clear_config()
    parse_gin(["mssd_sample"], [], [CONFIG_DIR])
    data = load_dataset()
    emb = build_embeddings(data.train, unlabelled=data.log).aligned_to(data.log.catalog)
    head = LeaveHead(emb).fit(data.train, data.val)
    test = data.test
    tracks, skipped, mask = test.padded()
    listened = (mask & ~skipped).astype(np.float32)
    first, cap = head.first_at_risk, head.cap
    _, y = rows(test, np.zeros(tracks.shape), first, cap)
    print(f"{data.source}: test split, {test.num_sessions} sessions, {len(y)} at-risk rows, "
          f"{int(y.sum())} leaves (rate {y.mean():.4f})")
    pos_auc, _ = report("position only", rows(test, position_hazard(data.train, test, cap),
                                               first, cap)[0], y)
    a, _ = report("LeaveHead (sequential model)",
                  rows(test, head.hazards(tracks, listened), first, cap)[0], y)
    print(f"MSSD leave head AUC {a:.3f} vs position only {pos_auc:.3f} ({a - pos_auc:+.3f})")
    return {"leave_head_auc": a, "position_only_auc": pos_auc}


FLAGS = flags.FLAGS


def define_flags() -> None:
    flags.DEFINE_multi_string('gin_file', [], "world / data config (e.g. myopic_world)")
    flags.DEFINE_multi_string('gin_bindings', [], "gin bindings over it")
    flags.DEFINE_bool('mssd', False, "also the real MSSD slices")


def main():
    args = FLAGS
    figures = {"synthetic": synthetic(args)}
    if args.mssd:
        figures["mssd"] = mssd(args)
    return figures


if __name__ == "__main__":
    cli.benchmark('leave_head_quality', define_flags, main)
