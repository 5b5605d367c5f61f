"""`EpisodeTracker`: keeps every simulated step (who, what was recommended, what the user
model predicted, what was sampled, the reward) for debugging and evaluation beyond the
agent's own replay buffer, as Spotify's simulator does; flushes to Parquet.

Steps are recorded batched ([B] episodes at once) and stored as columnar numpy blocks,
so tracking costs a few array copies per step, not a Python loop over listeners.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional

import gin
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from spotisim.io_utils import atomic_file


def list_diversity(slate_features: np.ndarray) -> np.ndarray:
    """Diversity of each recommended list: 1 - mean pairwise cosine similarity.

    Args:
      slate_features: [N, K, F] features of the K tracks of N lists (the LIRD write-up
        uses the eight acoustic features of `schema.DIVERSITY_FEATURES`).

    Returns:
      [N] diversity per list (NaN for lists of fewer than two tracks).
    """
    x = np.asarray(slate_features, np.float64)
    n, k, _ = x.shape
    if k < 2:
        return np.full(n, np.nan)
    unit = x / np.maximum(np.linalg.norm(x, axis=2, keepdims=True), 1e-12)
    sim = np.einsum("nkf,njf->nkj", unit, unit)
    iu = np.triu_indices(k, 1)
    return 1.0 - sim[:, iu[0], iu[1]].mean(axis=1)


@gin.configurable
def survival_weights(episode_id: np.ndarray, step: np.ndarray, stay: np.ndarray) -> np.ndarray:
    """float64 [N]: for each record, the probability that its listener was still there
    when the slate started: the product of `stay` over the episode's earlier steps (1
    where exits are drawn, whose episodes simply end).  With leaving in expectation, a
    record's reward times this weight sums, over an episode, to the episode's expected
    reward given its responses: an unbiased estimate of the same listens per episode as
    drawn exits, without the variance of when the listener happened to leave."""
    episode_id, step = np.asarray(episode_id), np.asarray(step)
    log_stay = np.log(np.clip(np.asarray(stay, np.float64), 1e-300, 1.0))
    order = np.lexsort((step, episode_id))
    ls = log_stay[order]
    before = np.cumsum(ls) - ls                                    # sum over earlier records
    ep = episode_id[order]
    first = np.r_[True, ep[1:] != ep[:-1]]
    start = np.maximum.accumulate(np.where(first, np.arange(len(ep)), 0))
    before = before - before[start]                                # restart per episode
    out = np.empty(len(order))
    out[order] = np.exp(before)
    return out


class EpisodeTracker:
    """Per-step records of simulated episodes.

    Args:
      output_path: Parquet file `flush()` writes (atomically); None keeps records in
        memory only.
      track_features: optional [T, F] features used for the diversity summary.
    """

    COLUMNS = ("episode_id", "step", "listener_key", "slate", "predicted", "responses",
               "heard", "reward", "done", "end_reason", "listener", "stay")

    def __init__(self, output_path: Optional[str] = None,
                 track_features: Optional[np.ndarray] = None):
        self.output_path = output_path
        self.track_features = track_features
        self._blocks: List[Dict[str, np.ndarray]] = []

    def record(self, episode_id: np.ndarray, step: np.ndarray, listener_key: np.ndarray,
               slate: np.ndarray, predicted: np.ndarray, responses: np.ndarray,
               reward: np.ndarray, done: np.ndarray, heard: Optional[np.ndarray] = None,
               end_reason: Optional[np.ndarray] = None,
               listener: Optional[np.ndarray] = None,
               stay: Optional[np.ndarray] = None) -> None:
        """Records one step of B episodes (all arrays have leading dimension B).

        `heard` [B, K] is False for slate positions after the listener left (default:
        all heard); `end_reason` [B] says why an episode ended at this step (codes of
        `spotisim.termination.END_REASONS`, 0 = it goes on; default: 0); `listener` [B]
        who listened: the log's listener code of the episode's session (-1: anonymous,
        the default); `stay` [B] the probability that the listener stayed through the
        slate, where leaving is taken in expectation (1, the default, where exits are
        drawn: the episode went on)."""
        heard = np.ones(np.shape(responses), bool) if heard is None else heard
        end_reason = np.zeros(len(done), np.int8) if end_reason is None else end_reason
        listener = np.full(len(done), -1, np.int64) if listener is None else listener
        stay = np.ones(len(done), np.float32) if stay is None else stay
        block = {
            "episode_id": np.asarray(episode_id, np.int64).copy(),
            "step": np.asarray(step, np.int64).copy(),
            "listener_key": np.asarray(listener_key, np.int64).copy(),
            "slate": np.asarray(slate, np.int64).copy(),
            "predicted": np.asarray(predicted, np.float32).copy(),
            "responses": np.asarray(responses, bool).copy(),
            "heard": np.asarray(heard, bool).copy(),
            "reward": np.asarray(reward, np.float32).copy(),
            "done": np.asarray(done, bool).copy(),
            "end_reason": np.asarray(end_reason, np.int8).copy(),
            "listener": np.asarray(listener, np.int64).copy(),
            "stay": np.asarray(stay, np.float32).copy(),
        }
        b = len(block["episode_id"])
        for name, v in block.items():
            if len(v) != b:
                raise ValueError(f"EpisodeTracker.record: {name} has {len(v)} rows, "
                                 f"episode_id has {b}")
        self._blocks.append(block)

    def __len__(self) -> int:
        return int(sum(len(b["episode_id"]) for b in self._blocks))

    def arrays(self) -> Dict[str, np.ndarray]:
        """All records, concatenated, in recording order."""
        if not self._blocks:
            return {}
        return {c: np.concatenate([b[c] for b in self._blocks]) for c in self.COLUMNS}

    def to_arrow(self) -> pa.Table:
        a = self.arrays()
        if not a:
            return pa.table({})
        cols = {}
        for c in self.COLUMNS:
            v = a[c]
            if v.ndim == 2:  # [N, K] -> list<K> column
                cols[c] = pa.FixedSizeListArray.from_arrays(pa.array(v.reshape(-1)), v.shape[1])
            else:
                cols[c] = pa.array(v)
        return pa.table(cols)

    def flush(self, path: Optional[str] = None) -> Optional[str]:
        """Writes every record so far to Parquet (atomically) and returns the path."""
        path = path or self.output_path
        if path is None:
            return None
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with atomic_file(path, "wb") as f:
            pq.write_table(self.to_arrow(), f)
        return path

    def clear(self) -> None:
        self._blocks = []

    def summary(self) -> Dict[str, float]:
        """Skip rate, mean episode reward, mean episode length and list diversity."""
        a = self.arrays()
        if not a:
            return {"steps": 0}
        ep = a["episode_id"]
        _, inverse = np.unique(ep, return_inverse=True)
        ep_reward = np.bincount(inverse, weights=a["reward"] * survival_weights(
            a["episode_id"], a["step"], a["stay"]))
        ep_len = np.bincount(inverse)
        out = {
            "steps": float(len(ep)),
            "episodes": float(len(ep_len)),
            "skip_rate": float(1.0 - a["responses"][a["heard"]].mean()),
            "mean_episode_reward": float(ep_reward.mean()),
            "mean_episode_length": float(ep_len.mean()),
            "mean_step_reward": float(a["reward"].mean()),
        }
        if self.track_features is not None:
            out["diversity"] = float(np.nanmean(list_diversity(self.track_features[a["slate"]])))
        return out
