"""Does a policy's choice of tracks change what the learned redundancy means?
(docs/offline_verdicts.md, "Redundancy read through the embedding"; not a test.)

    python benchmarks/redundancy_selection.py [--run_dir=runs/alignment/agents/lird_ddpg_1500]
        [--agent_runs=runs/alignment/agents/ah_dqn_1500] [--episodes=256]
        [--decomposition=runs/alignment/alignment_decomposed.json] [--vectors=item2vec]

The learned leave models read redundancy (a track's cosine to the centroid of the
recent listens) on the run's track vectors; the world leaves on its hidden ones.  Fitted
on the log, a leave model learns what a learned redundancy means *for the tracks the
logging policy picked*.  A policy that picks by the learned vectors (the nearest
neighbour, greedy on a model that reads them) selects on their noise too, and then the
same learned redundancy stands for less true redundancy: the learned hazard is too high.

Measured, with the ground truth's vectors (a measurement, no simulator reads them):
- the log's map from learned to true redundancy, E[true | learned] in bins, over every
  logged (listened history, next track) of the training split;
- per policy, `--episodes` starts under the ground truth: each pick's learned and true
  redundancy to the listened history before its slate, and the GAP: its true redundancy
  minus what the log's map says for its learned one (negative: the learned redundancy
  overstates the true one, as the policy picked it);
- the same for the exposure slice's random exposures;
- per policy, how far its listeners get from the boredom the log shows: the share of
  its slates whose history's boredom level (the world's recursion, decay 0.9 and keep
  0.7, on the run's vectors) lies above the log's 99th percentile;
- with `--decomposition` (the alignment study's decomposed error), the correlation over
  the policies of the gap with the chosen simulator's excess hazard along the truth's
  own episodes (dP(leave), the shadow's).
"""

import spotisim  # noqa: F401  (first: quiets the stack at import)
import json
import os

import numpy as np
from absl import flags

from experiments.alignment import STUDY_DATA
from experiments.assembly import exposure_run_data
from experiments.recorded_picks import recorded_picks
from spotisim import cli
from spotisim.embeddings import build_embeddings
from spotisim.tables import render_table
from user_models.leave_features import boredom_features, unit

FLAGS = flags.FLAGS
DEFAULT_AGENTS = [f"runs/alignment/agents/{a}" for a in (
    "lird_ddpg_1500", "lird_ddpg_3000", "ah_dqn_1500", "ah_dqn_3000", "dqn_ranked_1500",
    "dqn_ranked_3000", "lird_ddpg_calibrated", "ah_dqn_calibrated", "dqn_ranked_calibrated")]
#: The centroid's keep of the world's boredom recursion (`WorldConfig.boredom_keep`),
#: used on both sides so that only the vectors differ.
KEEP = 0.7
#: The world's boredom decay (`WorldConfig.boredom_decay`), for the boredom levels.
DECAY = 0.9
#: Bins of the learned redundancy for the log's map.
BINS = np.array([0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01])


def define_flags() -> None:
    flags.DEFINE_string("run_dir", "runs/alignment/agents/lird_ddpg_1500",
                        "a finished run (its data, and the environment of the baselines)")
    flags.DEFINE_multi_string("agent_runs", DEFAULT_AGENTS, "finished runs whose agents' "
                              "picks are measured")
    flags.DEFINE_integer("episodes", 256, "starts per policy", lower_bound=1)
    flags.DEFINE_string("decomposition", "runs/alignment/alignment_decomposed.json",
                        "an alignment study's output with a decomposition ('' for none)")
    flags.DEFINE_enum("vectors", "run", ["run", "item2vec"], "the vectors the learned "
                      "redundancy is read on: the run's (what its leave models read), or "
                      "item2vec's, fitted on the training split (co-plays)")
    flags.DEFINE_multi_string("gin_bindings", STUDY_DATA, "bindings over the run's own")


def centroids(tracks: np.ndarray, listened: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """float [B, H + 1, d]: the centroid of the recent listens before each entry of the
    history and after the last (zeros before the first listen), the recursion of
    `leave_features.boredom_features` kept at every position (which that one does not):
    c <- unit(keep * c + (1 - keep) * e) over listened tracks, on `vectors` (unit)."""
    B, H = tracks.shape
    out = np.zeros((B, H + 1, vectors.shape[1]))
    c = np.zeros((B, vectors.shape[1]))
    has = np.zeros(B, bool)
    for t in range(H):
        out[:, t] = c
        lis = (tracks[:, t] >= 0) & (np.asarray(listened[:, t]) > 0.5)
        e = vectors[np.maximum(tracks[:, t], 0)]
        moved = np.where(has[:, None], unit(KEEP * c + (1 - KEEP) * e), e)
        c = np.where(lis[:, None], moved, c)
        has |= lis
    out[:, H] = c
    return out


def redundancy(cent: np.ndarray, tracks: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """max(0, e . c) of each track [B, K] against its row's centroid [B, d]; NaN where
    the history has no listen yet (no centroid)."""
    r = np.maximum(np.einsum("bkd,bd->bk", vectors[tracks], cent), 0.0)
    return np.where((np.abs(cent).sum(-1) > 0)[:, None], r, np.nan)


def log_pairs(log, learned: np.ndarray, true: np.ndarray, first: int = 0):
    """(learned, true) redundancy of every logged track from position `first` on (0
    based) against the listened tracks before it (where there is one)."""
    tracks, skipped, mask = log.padded()
    listened = mask & ~skipped
    mask = mask & (np.arange(tracks.shape[1])[None, :] >= first)
    cl, ct = centroids(tracks, listened, learned), centroids(tracks, listened, true)
    t = np.maximum(tracks, 0)
    rl = np.maximum(np.einsum("bhd,bhd->bh", learned[t], cl[:, :-1]), 0.0)
    rt = np.maximum(np.einsum("bhd,bhd->bh", true[t], ct[:, :-1]), 0.0)
    ok = mask & (np.abs(cl[:, :-1]).sum(-1) > 0)
    return rl[ok], rt[ok]


def log_map(rl: np.ndarray, rt: np.ndarray) -> np.ndarray:
    """E[true | learned] per bin of BINS (NaN for an empty bin)."""
    k = np.clip(np.digitize(rl, BINS) - 1, 0, len(BINS) - 2)
    return np.array([rt[k == i].mean() if (k == i).any() else np.nan
                     for i in range(len(BINS) - 1)])


def gap(rl: np.ndarray, rt: np.ndarray, mapped: np.ndarray) -> float:
    """Mean of true - E_log[true | learned] over the picks whose bin the log has."""
    k = np.clip(np.digitize(rl, BINS) - 1, 0, len(BINS) - 2)
    expected = mapped[k]
    ok = np.isfinite(expected) & np.isfinite(rl)
    return float((rt[ok] - expected[ok]).mean())



def pick_figures(records, learned: np.ndarray, true: np.ndarray):
    """Of every pick, its (learned, true) redundancy against the listened history before
    its slate, and of every slate, that history's boredom level on the learned vectors
    (`leave_features.boredom_features`: the same recursion, the centroid after the
    whole history)."""
    rl, rt, bored = [], [], []
    for tracks, responses, slate in records:
        listened = (tracks >= 0) & (responses > 0.5)
        _, b, cl = boredom_features(tracks, listened, learned, DECAY, KEEP)
        _, _, ct = boredom_features(tracks, listened, true, DECAY, KEEP)
        lengths = (tracks >= 0).sum(1)
        bored.append(b[np.arange(len(tracks)), np.maximum(lengths - 1, 0)])
        x, y = redundancy(cl, slate, learned).ravel(), redundancy(ct, slate, true).ravel()
        ok = np.isfinite(x)
        rl.append(x[ok])
        rt.append(y[ok])
    return np.concatenate(rl), np.concatenate(rt), np.concatenate(bored)


def main() -> dict:
    data, emb = exposure_run_data(FLAGS.run_dir, FLAGS.gin_bindings)
    if FLAGS.vectors == "item2vec":
        emb = build_embeddings(data.train, source="item2vec",
                               unlabelled=data.log).aligned_to(data.log.catalog)
    learned = unit(np.asarray(emb, np.float64))  # what the leave models read
    true = unit(np.asarray(data.world.track_latent, np.float64))
    rl, rt = log_pairs(data.train, learned, true)
    mapped = log_map(rl, rt)
    tracks, skipped, mask = data.train.padded()
    _, bored, _ = boredom_features(tracks, mask & ~skipped, learned, DECAY, KEEP)
    bored_p99 = float(np.percentile(bored[mask], 99))
    print(render_table(["learned redundancy", "logged tracks", "E[true | learned]"], [
        [f"{BINS[i]:.2f}-{BINS[i + 1]:.2f}",
         f"{int(((rl >= BINS[i]) & (rl < BINS[i + 1])).sum()):,}", f"{m:.3f}"]
        for i, m in enumerate(mapped)], ["the log's map (training split)"]))
    figures = {"vectors": FLAGS.vectors, "log_boredom_p99": bored_p99,
               "log_map": {"bins": BINS.tolist(), "mean_true": mapped.tolist(),
                           "rows": int(len(rl))}, "picks": {}}
    rows = []
    # The slice's randomly exposed tracks (after its logged starts).
    el, et = log_pairs(data.exposure.log, learned, true, first=data.exposure.explore_from)
    figures["picks"]["exposure slice"] = {"learned": float(el.mean()), "true": float(et.mean()),
                                          "gap": gap(el, et, mapped), "picks": int(len(el))}
    for name, records in recorded_picks(FLAGS.run_dir, FLAGS.agent_runs, FLAGS.gin_bindings,
                                        FLAGS.episodes):
        a, b, bored_here = pick_figures(records, learned, true)
        figures["picks"][name] = {"learned": float(a.mean()), "true": float(b.mean()),
                                  "gap": gap(a, b, mapped), "picks": int(len(a)),
                                  "beyond_log_boredom": float((bored_here > bored_p99).mean())}
    decomposition = {}
    if FLAGS.decomposition and os.path.exists(FLAGS.decomposition):
        with open(FLAGS.decomposition) as f:
            decomposition = json.load(f).get("decomposition", {})
    names = [n for n in figures["picks"] if n in decomposition]
    for name in names:
        s = decomposition[name]["shadow"]
        figures["picks"][name]["excess_hazard"] = s["p_leave_shadow"] - s["p_leave_true"]
    for name, f in figures["picks"].items():
        rows.append([name, f"{f['learned']:.3f}", f"{f['true']:.3f}", f"{f['gap']:+.3f}",
                     f"{f['excess_hazard']:+.4f}" if "excess_hazard" in f else "",
                     f"{f['beyond_log_boredom']:.3f}" if "beyond_log_boredom" in f else "",
                     f"{f['picks']:,}"])
    print(render_table(["policy", "learned redundancy", "true", "gap (true - log's map)",
                        "excess hazard", "boredom > log's p99", "picks"], rows,
                       [f"{FLAGS.episodes} starts under the ground truth; the slice: its "
                        "randomly exposed rows"]))
    if len(names) >= 3:
        h = np.array([figures["picks"][n]["excess_hazard"] for n in names])
        figures["policies_correlated"] = len(names)
        for key, label in (("gap", "the gap"), ("learned", "the learned redundancy"),
                           ("beyond_log_boredom", "the share beyond the log's boredom")):
            x = np.array([figures["picks"][n][key] for n in names])
            figures[f"correlation_{key}_excess_hazard"] = float(np.corrcoef(x, h)[0, 1])
            print(f"correlation over {len(names)} policies of {label} with the excess "
                  f"hazard: {figures[f'correlation_{key}_excess_hazard']:+.3f}")
    return figures


if __name__ == "__main__":
    cli.benchmark("redundancy_selection", define_flags, main)
