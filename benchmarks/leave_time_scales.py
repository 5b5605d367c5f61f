"""Which leave head to trust past the log's cap?  Checked on what a team has: its log
and a slice of exploration traffic that runs past the cap (no ground truth).
(docs/offline_verdicts.md, "The head's streak and time scales"; not a test.)

    python benchmarks/leave_time_scales.py [--run_dir=runs/lird_ddpg]

Three heads fitted on the run's training log (early stopping on its validation split):
  * before: the skip streak capped at 5 only, every decay of the grid (0.7 to 0.95)
    (`long_streak=None, settled_only=False`: the head up to the tenth session);
  * + long streak: the streak also read capped at 20 (`settled_only=False`);
  * today's: the long streak and only the decays that settle within the log
    (`leave_features.settled_decays`: 0.95 dropped at a 20-track cap).
Each is scored (log loss, mean predicted against observed leaving) on the log's test
split by skip streak, and on the slice's sessions by position band, those past the cap
being what no fit saw; the paired log-loss difference from `before` carries its
standard error over the slice's sessions.  The default bindings read the 20,000-session
slice run to 60 tracks (`data/default_long20k`, built on first use); `--gin_bindings`
replace them (`ensure_synthetic_world.directory` and its exploration settings).
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import numpy as np
from absl import flags

from experiments.assembly import exposure_run_data
import experiments.runner  # noqa: F401  (registers the run's configurables for its config)
from spotisim import cli
from spotisim.tables import render_table
from user_models.leave_features import at_risk_rows, skip_streaks
from user_models.leave_head import LeaveHead

FLAGS = flags.FLAGS

LONG_SLICE = ["ensure_synthetic_world.directory = 'data/default_long20k'",
              "ensure_synthetic_world.exploration_sessions = 20000",
              "ensure_synthetic_world.exploration_length = 60"]

HEADS = (("before", dict(long_streak=None, settled_only=False)),
         ("+ long streak", dict(settled_only=False)),
         ("today's", {}))


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/lird_ddpg", "a finished run (its config)")
    flags.DEFINE_multi_string("gin_bindings", LONG_SLICE, "bindings over the run's own")
    flags.DEFINE_integer("head_epochs", 40, "each head's training epochs (early stopping)",
                         lower_bound=1)


def row_losses(log, hazards, first_at_risk: int, cap: int):
    """(at-risk mask [S, H], events [S, H], per-entry log loss [S, H]) of `log`."""
    at_risk, events = at_risk_rows(log.lengths, hazards.shape[1], first_at_risk, cap)
    p = np.clip(hazards, 1e-9, 1 - 1e-9)
    return at_risk, events, -(events * np.log(p) + (1 - events) * np.log(1 - p))


def paired_se(loss, base, rows) -> float:
    """Standard error of the mean per-row difference, clustered by session (rows of
    one session move together)."""
    diff = np.where(rows, loss - base, 0.0)
    per_session, counts = diff.sum(1), rows.sum(1)
    n = counts.sum()
    mean = per_session.sum() / n
    resid = per_session - mean * counts
    return float(np.sqrt((resid ** 2).sum()) / n)


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    heads = {name: LeaveHead(emb, epochs=FLAGS.head_epochs, **kw).fit(data.train, data.val)
             for name, kw in HEADS}
    first, cap = heads["before"].first_at_risk, heads["before"].cap
    figures = {"cap": cap, "decays": {n: list(h.decays) for n, h in heads.items()},
               "test_by_streak": {}, "slice_by_position": {}}
    test = data.test
    tracks, skipped, mask = test.padded()
    streak = skip_streaks(test)
    scored = {n: row_losses(test, h.hazards(tracks, mask & ~skipped), first, cap)
              for n, h in heads.items()}
    rows = []
    for lo, hi in ((0, 4), (5, 10), (11, 10 ** 6)):
        label = f"{lo}-{hi}" if hi < 10 ** 6 else f"{lo}+"
        cell = figures["test_by_streak"][label] = {}
        for n, h in heads.items():
            at_risk, events, loss = scored[n]
            m = at_risk & (streak >= lo) & (streak <= hi)
            p = h.hazards(tracks, mask & ~skipped)[m]
            cell[n] = {"rows": int(m.sum()), "observed": float(events[m].mean()),
                       "predicted": float(p.mean()), "log_loss": float(loss[m].mean())}
            rows.append([f"test, {label} skips", n, f"{int(m.sum()):,}",
                         f"{events[m].mean():.4f}", f"{p.mean():.4f}",
                         f"{loss[m].mean():.5f}", ""])
    ex = data.exposure.log
    tracks, skipped, mask = ex.padded()
    width = tracks.shape[1]
    pos = np.broadcast_to(np.arange(1, width + 1)[None, :], tracks.shape)
    hz = {n: h.within_log().hazards(tracks, mask & ~skipped) for n, h in heads.items()}
    scored = {n: row_losses(ex, hz[n], first, int(ex.lengths.max())) for n in heads}
    bands = [(first + 1, cap), (cap + 1, cap + 10), (cap + 11, cap + 20), (cap + 21, width),
             (cap + 1, width)]
    for lo, hi in bands:
        if lo > width:
            continue
        label = f"{lo}-{hi}"
        cell = figures["slice_by_position"][label] = {}
        base = scored["before"][2]
        for n in heads:
            at_risk, events, loss = scored[n]
            m = at_risk & (pos >= lo) & (pos <= hi)
            if not m.any():
                continue
            diff = float((loss[m] - base[m]).mean())
            se = paired_se(loss, base, m)
            cell[n] = {"rows": int(m.sum()), "observed": float(events[m].mean()),
                       "predicted": float(hz[n][m].mean()), "log_loss": float(loss[m].mean()),
                       "minus_before": diff, "se": se}
            rows.append([f"slice, positions {label}", n, f"{int(m.sum()):,}",
                         f"{events[m].mean():.4f}", f"{hz[n][m].mean():.4f}",
                         f"{loss[m].mean():.5f}",
                         "" if n == "before" else f"{diff:+.5f} ({se:.5f})"])
    print(render_table(["rows", "leave head", "at-risk rows", "observed", "predicted",
                        "log loss", "minus before (se)"], rows,
                       [f"heads fitted on the run's training log (cap {cap}); decays read: "
                        + "; ".join(f"{n} {list(h.decays)}" for n, h in heads.items()),
                        "slice: its exposed sessions, held to the log's feature range "
                        "(within_log) as the simulators are; se clustered by session"]))
    return figures


if __name__ == "__main__":
    cli.benchmark("leave_time_scales", define_flags, main)
