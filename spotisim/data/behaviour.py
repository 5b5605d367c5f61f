"""What a log records about how each track was heard, beyond listened/skipped: the
per-row behaviour a user model may read from the *history* (never from the track it
predicts, whose behaviour is the outcome).

MSSD's strongest skip predictors are of this kind (the challenge's winning models read
skip_1, skip_3, pauses, seeks and the reasons a track started and ended).  A simulated
step records only listened or skipped, so the simulator fills each simulated step's
behaviour by one documented rule: the train split's mean behaviour vector of plays
with the same outcome (`BehaviourFill`).  Logged history rows keep their real values.
"""

from __future__ import annotations

import dataclasses
from typing import Iterable, Tuple

import numpy as np

from spotisim.data.schema import REASONS_END, REASONS_START
from spotisim.data.session_log import SessionLog

FLAG_FEATURES: Tuple[str, ...] = (
    "skip_1", "skip_3", "not_skipped", "no_pause_before_play", "short_pause_before_play",
    "long_pause_before_play", "seeked_forward", "seeked_back", "shuffle", "premium")
BEHAVIOUR_FEATURES: Tuple[str, ...] = (
    FLAG_FEATURES + tuple(f"reason_start={r}" for r in REASONS_START)
    + tuple(f"reason_end={r}" for r in REASONS_END))
NUM_BEHAVIOUR_FEATURES = len(BEHAVIOUR_FEATURES)


def _one_hot(codes: np.ndarray, vocab: list, known: Tuple[str, ...]) -> np.ndarray:
    """[R, len(known)] one-hot of coded values; values outside `known` are all zero."""
    lookup = np.full(len(vocab) + 1, -1, np.int64)
    for i, name in enumerate(vocab):
        if name in known:
            lookup[i] = known.index(name)
    idx = lookup[np.asarray(codes, np.int64)]
    out = np.zeros((len(idx), len(known)), np.float32)
    ok = idx >= 0
    out[np.nonzero(ok)[0], idx[ok]] = 1.0
    return out


def behaviour_matrix(log: SessionLog) -> np.ndarray:
    """float32 [R, NUM_BEHAVIOUR_FEATURES]: each row's logged behaviour (see
    `BEHAVIOUR_FEATURES`; seeks as "any", reasons one-hot over the known reasons)."""
    c = log.columns
    flags = np.stack([
        c["skip_1"], c["skip_3"], c["not_skipped"], c["no_pause_before_play"] > 0,
        c["short_pause_before_play"] > 0, c["long_pause_before_play"] > 0,
        c["hist_user_behavior_n_seekfwd"] > 0, c["hist_user_behavior_n_seekback"] > 0,
        c["hist_user_behavior_is_shuffle"], c["premium"]], axis=1).astype(np.float32)
    start = _one_hot(c["hist_user_behavior_reason_start"],
                     log.vocab["hist_user_behavior_reason_start"], REASONS_START)
    end = _one_hot(c["hist_user_behavior_reason_end"],
                   log.vocab["hist_user_behavior_reason_end"], REASONS_END)
    return np.concatenate([flags, start, end], axis=1)


def padded_behaviour(log: SessionLog, width: int) -> np.ndarray:
    """float32 [S, width, F]: `behaviour_matrix` laid out like `SessionLog.padded`
    (zeros on padding)."""
    out = np.zeros((log.num_sessions, width, NUM_BEHAVIOUR_FEATURES), np.float32)
    pos = log.positions - 1
    keep = pos < width
    out[log.session_of_row[keep], pos[keep]] = behaviour_matrix(log)[keep]
    return out


@dataclasses.dataclass
class BehaviourFill:
    """The rule that fills the behaviour of a step nobody logged (a simulated step, or a
    predicted one): the mean logged behaviour of plays with the same outcome."""

    listened: np.ndarray   # float32 [F]
    skipped: np.ndarray    # float32 [F]

    @classmethod
    def fit(cls, log: SessionLog) -> "BehaviourFill":
        b = behaviour_matrix(log)
        listened = ~log.skipped
        def mean(m):
            return (b[m].mean(0) if m.any() else b.mean(0) if len(b)
                    else np.zeros(NUM_BEHAVIOUR_FEATURES)).astype(np.float32)
        return cls(mean(listened), mean(~listened))

    @classmethod
    def fit_chunks(cls, logs: Iterable[SessionLog]) -> "BehaviourFill":
        """`fit` over a log streamed in parts (`ShardedLog.chunks`): the same means from
        running sums."""
        sums = np.zeros((2, NUM_BEHAVIOUR_FEATURES))
        counts = np.zeros(2)
        for log in logs:
            b = behaviour_matrix(log).astype(np.float64)
            listened = ~log.skipped
            for k, m in enumerate((listened, ~listened)):
                sums[k] += b[m].sum(0)
                counts[k] += m.sum()
        overall = sums.sum(0) / max(counts.sum(), 1.0)
        mean = [(sums[k] / counts[k] if counts[k] else overall).astype(np.float32)
                for k in range(2)]
        return cls(mean[0], mean[1])

    def fill(self, behaviour: np.ndarray, responses: np.ndarray) -> np.ndarray:
        """`behaviour` [..., F] with its NaN rows (steps not logged) replaced by the
        rule, given the steps' responses [...] (1 listened, 0 skipped)."""
        r = np.asarray(responses, np.float32)[..., None]
        rule = r * self.listened + (1.0 - r) * self.skipped
        missing = np.isnan(behaviour).any(-1, keepdims=True)
        return np.where(missing, rule, behaviour).astype(np.float32)

    def to_json(self) -> dict:
        return {"listened": self.listened.tolist(), "skipped": self.skipped.tolist()}

    @classmethod
    def from_json(cls, d: dict) -> "BehaviourFill":
        return cls(np.asarray(d["listened"], np.float32), np.asarray(d["skipped"], np.float32))
