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
from user_models import exposure_calibration as ec
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


def scored(log, hazards: np.ndarray, first_at_risk: int, cap: int) -> dict:
    """A head's P(leave) [S, H] over `log`: its at-risk mask, events and per-entry log
    loss beside it, and which session each entry is in."""
    at_risk, events = at_risk_rows(log.lengths, hazards.shape[1], first_at_risk, cap)
    session = np.broadcast_to(np.arange(hazards.shape[0])[:, None], hazards.shape)
    return {"h": hazards, "at_risk": at_risk, "events": events, "session": session,
            "loss": ec.row_log_loss(hazards, events)}


def by_band(where: str, bands: dict, heads: dict, rows: list) -> dict:
    """Per band (label -> bool [S, H]) and head: the at-risk rows' observed leaving,
    mean P(leave) and log loss, and the paired change from `before` with its standard
    error clustered by session; each also a row of the printed table."""
    out = {}
    for label, band in bands.items():
        cell = out[label] = {}
        base = heads["before"]
        for name, s in heads.items():
            m = s["at_risk"] & band
            if not m.any():
                continue
            diff, se = ec.clustered_mean(s["loss"][m] - base["loss"][m], s["session"][m])
            cell[name] = {"rows": int(m.sum()), "observed": float(s["events"][m].mean()),
                          "predicted": float(s["h"][m].mean()),
                          "log_loss": float(s["loss"][m].mean()),
                          "minus_before": diff, "se": se}
            rows.append([f"{where}, {label}", name, f"{int(m.sum()):,}",
                         f"{s['events'][m].mean():.4f}", f"{s['h'][m].mean():.4f}",
                         f"{s['loss'][m].mean():.5f}",
                         "" if name == "before" else f"{diff:+.5f} ({se:.5f})"])
    return out


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    heads = {name: LeaveHead(emb, epochs=FLAGS.head_epochs, **kw).fit(data.train, data.val)
             for name, kw in HEADS}
    first, cap = heads["before"].first_at_risk, heads["before"].cap
    rows: list = []
    test = data.test
    tracks, skipped, mask = test.padded()
    streak = skip_streaks(test)
    on_test = {n: scored(test, h.hazards(tracks, mask & ~skipped), first, cap)
               for n, h in heads.items()}
    streaks = {"0-4": streak <= 4, "5-10": (streak >= 5) & (streak <= 10),
               "11+": streak >= 11}
    ex = data.exposure.log
    tracks, skipped, mask = ex.padded()
    width = tracks.shape[1]
    on_slice = {n: scored(ex, h.within_log().hazards(tracks, mask & ~skipped), first,
                          int(ex.lengths.max())) for n, h in heads.items()}
    pos = np.broadcast_to(np.arange(1, width + 1)[None, :], tracks.shape)
    positions = {f"{lo}-{hi}": (pos >= lo) & (pos <= hi) for lo, hi in (
        (first + 1, cap), (cap + 1, cap + 10), (cap + 11, cap + 20), (cap + 21, width),
        (cap + 1, width)) if lo <= width}
    figures = {"cap": cap, "decays": {n: list(h.decays) for n, h in heads.items()},
               "test_by_streak": by_band("test, skips", streaks, on_test, rows),
               "slice_by_position": by_band("slice, positions", positions, on_slice, rows)}
    print(render_table(["rows", "leave head", "at-risk rows", "observed", "predicted",
                        "log loss", "minus before (se)"], rows,
                       [f"heads fitted on the run's training log (cap {cap}); decays read: "
                        + "; ".join(f"{n} {list(h.decays)}" for n, h in heads.items()),
                        "slice: its exposed sessions, held to the log's feature range "
                        "(within_log) as the simulators are; se clustered by session"]))
    return figures


if __name__ == "__main__":
    cli.benchmark("leave_time_scales", define_flags, main)
