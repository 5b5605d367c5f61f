"""`LirdSimulatorUserModel`: the memory-based reward simulator of the LIRD write-up
(seed 000; Zhao et al. 2018), as a Keras model with non-trainable weights.

From the log it collects (state, action, pattern) records: the state is the N tracks
before a slate of K logged tracks, the action those K tracks, the pattern their 0/1
listens (2^K patterns).  Each pattern is represented by the mean of its records'
normalised states and actions.  For a new (state, action):

    sim_x = alpha * cos(s, s_x) + (1 - alpha) * cos(a, a_x)       (clipped at 0)
    P(x)  = sim_x / sum_y sim_y
    P(listen at position k) = sum over patterns x with x_k = 1 of P(x)

`respond` draws one whole pattern from P(x), so the simulator's joint over the slate is
kept.  Slates shorter than K use the first positions of each representative action.
"""

from __future__ import annotations

import itertools
import json
import os

import gin
import numpy as np
import tensorflow as tf

from spotisim.data.session_log import SessionLog
from spotisim.errors import ConfigError, UserModelError
from spotisim.io_utils import atomic_dir
from user_models.base import AbstractUserModel, History, read_model_meta
from user_models.catalog_alignment import read_track_ids, write_track_ids
from user_models.registry import register_user_model


class LirdMemoryNet(tf.keras.Model):
    """Pattern probabilities from (state, action) by cosine similarity to pattern
    representatives held as non-trainable weights."""

    def __init__(self, state_dim: int, action_dim: int, num_patterns: int, alpha: float):
        super().__init__()
        self.alpha = float(alpha)
        self.state_rep = self.add_weight(name="state_representatives",
                                         shape=(num_patterns, state_dim),
                                         initializer="zeros", trainable=False)
        self.action_rep = self.add_weight(name="action_representatives",
                                          shape=(num_patterns, action_dim),
                                          initializer="zeros", trainable=False)
        self.present = self.add_weight(name="pattern_present", shape=(num_patterns,),
                                       initializer="zeros", trainable=False)

    def call(self, inputs):
        state, action = inputs  # [B, N*d], [B, k*d] with k*d <= action_dim
        a_dim = tf.shape(action)[1]
        s_rep = tf.math.l2_normalize(self.state_rep, -1)
        a_rep = tf.math.l2_normalize(self.action_rep[:, :a_dim], -1)
        cs = tf.matmul(tf.math.l2_normalize(state, -1), s_rep, transpose_b=True)
        ca = tf.matmul(tf.math.l2_normalize(action, -1), a_rep, transpose_b=True)
        sim = tf.maximum(self.alpha * cs + (1.0 - self.alpha) * ca, 0.0) + 1e-6
        sim = sim * self.present[None, :]
        return sim / tf.reduce_sum(sim, -1, keepdims=True)


@register_user_model("lird_simulator")
@gin.configurable
class LirdSimulatorUserModel(AbstractUserModel):
    """The LIRD memory simulator.

    Args:
      embeddings: float [T, d] track embeddings.
      state_length: N, tracks in the state (the LIRD write-up: 10).
      slate_size: K, tracks per action (LIRD: 3, so 8 patterns).
      alpha: weight of the state similarity (public code: 0.2-0.5).
    """

    cascades = False

    def __init__(self, embeddings: np.ndarray, state_length: int = 10, slate_size: int = 3,
                 alpha: float = 0.3):
        if not 0.0 <= alpha <= 1.0:
            raise ConfigError(f"LirdSimulatorUserModel.alpha must be in [0, 1], got {alpha}")
        if state_length < 1 or slate_size < 1:
            raise ConfigError("LirdSimulatorUserModel.state_length and slate_size must be >= 1")
        self.embeddings = np.asarray(embeddings, np.float32)
        d = self.embeddings.shape[1]
        self.config = dict(state_length=int(state_length), slate_size=int(slate_size),
                           alpha=float(alpha))
        self.max_slate_size = int(slate_size)
        self.patterns = np.array(list(itertools.product([0, 1], repeat=slate_size)),
                                 np.float32)[:, ::-1].copy()  # row x: listens per position
        self.net = LirdMemoryNet(state_length * d, slate_size * d, len(self.patterns), alpha)
        self.net((tf.zeros((1, state_length * d)), tf.zeros((1, slate_size * d))))
        self.record_counts = np.zeros(len(self.patterns), np.int64)

    def _unit_rows(self, tracks: np.ndarray) -> np.ndarray:
        """Normalised embeddings of tracks [..., n] (zeros for -1), flattened per row."""
        e = np.concatenate([self.embeddings, np.zeros((1, self.embeddings.shape[1]))])
        idx = np.where(tracks < 0, len(self.embeddings), tracks)
        v = e[idx]
        v = v / np.maximum(np.linalg.norm(v, axis=-1, keepdims=True), 1e-9)
        return v.reshape(v.shape[:-2] + (-1,)).astype(np.float32)

    def _state(self, history: History) -> np.ndarray:
        N = self.config["state_length"]
        n = history.length.astype(np.int64)
        idx = n[:, None] - N + np.arange(N)[None, :]
        ok = idx >= 0
        if history.tracks.shape[1] == 0:
            return self._unit_rows(np.full((len(n), N), -1))
        safe = np.clip(idx, 0, history.tracks.shape[1] - 1)
        return self._unit_rows(np.where(ok, np.take_along_axis(history.tracks, safe, 1), -1))

    def pattern_probs(self, history: History, slate: np.ndarray) -> np.ndarray:
        """P(pattern) [B, 2^K] for a state and an action of k <= K tracks."""
        if not self.net.present.numpy().any():
            raise UserModelError("LirdSimulatorUserModel has no memory yet: fit it on a log "
                                 "(or load a saved one) before asking it")
        return self.net((tf.constant(self._state(history)),
                         tf.constant(self._unit_rows(slate)))).numpy().astype(np.float64)

    def _predict(self, history, slate, slate_responses):
        probs = self.pattern_probs(history, slate)
        K = slate.shape[1]
        return probs @ self.patterns[:, :K]

    def _respond(self, history, slate, uniforms):
        probs = self.pattern_probs(history, slate)
        K = slate.shape[1]
        cdf = np.cumsum(probs, axis=1)
        x = (uniforms[:, :1] > cdf).sum(axis=1)
        x = np.minimum(x, len(self.patterns) - 1)
        return probs @ self.patterns[:, :K], self.patterns[x, :K] > 0.5, None

    def expected_reward(self, history: History, slate: np.ndarray, gamma: float = 0.9) -> np.ndarray:
        """LIRD's list reward: sum_x P(x) * sum_k gamma^k x_k."""
        K = slate.shape[1]
        r = self.patterns[:, :K] @ (gamma ** np.arange(K))
        return self.pattern_probs(history, slate) @ r

    # ------------------------------------------------------------------ fitting
    def fit(self, train_log: SessionLog, val_log=None, verbose: bool = False):
        """Collects the records of every full (N history, K slate) window of the log
        and sets each pattern's representative to its records' mean."""
        if len(train_log.catalog) != len(self.embeddings):
            raise ConfigError(f"the log's catalogue has {len(train_log.catalog)} tracks but "
                              f"the embeddings have {len(self.embeddings)} rows")
        N, K = self.config["state_length"], self.config["slate_size"]
        tracks, skipped, mask = train_log.padded()
        L = tracks.shape[1]
        P = len(self.patterns)
        s_sum = np.zeros((P, N * self.embeddings.shape[1]))
        a_sum = np.zeros((P, K * self.embeddings.shape[1]))
        counts = np.zeros(P, np.int64)
        weights = 2 ** np.arange(K)
        for t in range(N, L - K + 1):
            rows = np.nonzero(mask[:, t + K - 1])[0]
            if len(rows) == 0:
                continue
            s = self._unit_rows(tracks[rows, t - N:t])
            a = self._unit_rows(tracks[rows, t:t + K])
            x = ((~skipped[rows, t:t + K]) * weights).sum(1)
            np.add.at(s_sum, x, s)
            np.add.at(a_sum, x, a)
            counts += np.bincount(x, minlength=P)
        if counts.sum() == 0:
            raise UserModelError(f"no session of the log has {N} + {K} tracks: nothing to "
                                 "build the LIRD memory from")
        present = counts > 0
        self.net.state_rep.assign((s_sum / np.maximum(counts, 1)[:, None]).astype(np.float32))
        self.net.action_rep.assign((a_sum / np.maximum(counts, 1)[:, None]).astype(np.float32))
        self.net.present.assign(present.astype(np.float32))
        self.record_counts = counts
        self.track_ids = train_log.catalog.track_ids
        if verbose:
            print(f"LIRD memory: {counts.sum()} records over {present.sum()} patterns")
        return self

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str) -> None:
        with atomic_dir(directory) as tmp:
            np.savez(os.path.join(tmp, "model.npz"), embeddings=self.embeddings,
                     state_rep=self.net.state_rep.numpy(),
                     action_rep=self.net.action_rep.numpy(),
                     present=self.net.present.numpy(), counts=self.record_counts)
            if self.track_ids is not None:
                write_track_ids(tmp, self.track_ids)
            with open(os.path.join(tmp, "user_model.json"), "w") as f:
                json.dump({"class": "LirdSimulatorUserModel", "config": self.config}, f)

    @classmethod
    def load(cls, directory: str) -> "LirdSimulatorUserModel":
        meta = read_model_meta(directory, "LirdSimulatorUserModel")
        with np.load(os.path.join(directory, "model.npz")) as a:
            model = cls(a["embeddings"], **meta["config"])
            model.net.state_rep.assign(a["state_rep"])
            model.net.action_rep.assign(a["action_rep"])
            model.net.present.assign(a["present"])
            model.record_counts = a["counts"]
        model.track_ids = read_track_ids(directory)
        return model

    def remapped(self, rows, embeddings):
        model = type(self)(embeddings, **self.config)
        model.net.state_rep.assign(self.net.state_rep)
        model.net.action_rep.assign(self.net.action_rep)
        model.net.present.assign(self.net.present)
        model.record_counts = self.record_counts
        return model
