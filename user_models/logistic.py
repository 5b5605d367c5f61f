"""`LogisticUserModel`: the simple baseline.  A logistic regression (a one-unit Keras
layer) on hand-made features of (history, candidate): the candidate's popularity, its
cosine similarity to the listened and to the skipped tracks of the history, the last
track, the skip streak, the position and the context type."""

from __future__ import annotations

import json
import os
from typing import Optional, Tuple

import gin
import numpy as np
import tensorflow as tf

from spotisim.data.session_log import SessionLog
from spotisim.errors import ConfigError
from spotisim.io_utils import atomic_dir
from user_models import streamed_fit
from user_models.base import AbstractUserModel, History, read_model_meta
from user_models.catalog_alignment import read_track_ids, write_track_ids
from user_models.history_match import history_match
from user_models.registry import register_user_model
from user_models.sequential import NUM_CONTEXTS, SequentialUserModel

FEATURES = ("popularity", "sim_listened", "sim_skipped", "max_sim_listened",
            "listened_share", "log_heard", "sim_last", "last_listened", "streak",
            "position") + tuple(f"context_{i}" for i in range(NUM_CONTEXTS))


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)


@register_user_model("logistic")
@gin.configurable
class LogisticUserModel(AbstractUserModel):
    """Logistic regression on engineered features.

    Args:
      embeddings: float [T, d] track embeddings.
      popularity: float [T] log play counts (set from the training log by `fit` when None).
      max_history: most recent history entries the features read.
      learning_rate / epochs / batch_size / patience: training with early stopping.
      seed: initialisation and shuffling seed.
    """

    cascades = True

    def __init__(self, embeddings: np.ndarray, popularity: Optional[np.ndarray] = None,
                 max_history: int = 20, learning_rate: float = 0.05, epochs: int = 10,
                 batch_size: int = 4096, patience: int = 2, seed: int = 0):
        self.embeddings = np.asarray(embeddings, np.float32)
        self._unit_emb = np.concatenate([_unit(self.embeddings),
                                         np.zeros((1, self.embeddings.shape[1]), np.float32)])
        self.popularity = (np.zeros(len(self.embeddings), np.float32) if popularity is None
                           else np.asarray(popularity, np.float32))
        self.config = dict(max_history=int(max_history), learning_rate=float(learning_rate),
                           epochs=int(epochs), batch_size=int(batch_size),
                           patience=int(patience), seed=int(seed))
        self.mean = np.zeros(len(FEATURES), np.float32)
        self.std = np.ones(len(FEATURES), np.float32)
        tf.random.set_seed(seed)
        self.net = tf.keras.Sequential([tf.keras.layers.Dense(
            1, kernel_initializer=tf.keras.initializers.Zeros(), input_shape=(len(FEATURES),))])
        self.history_ = []
        # The popularity feature of a track never played in training (set by `fit`).
        self.unplayed_popularity = float(self.popularity.min()) if len(self.popularity) else 0.0
        # The last position the fit saw (set by `fit`: the logs' longest session).  A
        # later position reads as this one: the position term is linear, and carried
        # past the log's cap it kept raising P(listen) there (+0.10 to +0.37 past 20
        # tracks along every policy's episodes, docs/offline_verdicts.md).  60, three
        # times MSSD's cap, is what models saved before it was read at.
        self.position_cap = 60.0

    # ------------------------------------------------------------------ features
    def features(self, mem_tracks, mem_resp, valid, cand, position, context) -> np.ndarray:
        """[B, L, F] features of candidates cand [B, L] given memories [B, M] and
        valid [B, L, M] (1 where memory item m was heard before candidate l)."""
        T = len(self.embeddings)
        uq = self._unit_emb[np.where(cand < 0, T, cand)]
        um = self._unit_emb[np.where(mem_tracks < 0, T, mem_tracks)]
        sims = np.einsum("bld,bmd->blm", uq, um)
        r = mem_resp[:, None, :]
        w_l, w_s = valid * r, valid * (1 - r)
        m = history_match(sims, valid, r)
        n_l = m.n_listened.numpy()
        n = n_l + m.n_skipped.numpy()
        # The last heard item before each candidate: highest valid index.
        M = mem_tracks.shape[1]
        last = np.where(valid > 0, np.arange(M)[None, None, :], -1).max(-1)
        has_last = last >= 0
        li = np.maximum(last, 0)
        sim_last = np.where(has_last, np.take_along_axis(sims, li[..., None], -1)[..., 0], 0)
        last_resp = np.where(has_last, np.take_along_axis(
            np.broadcast_to(r, sims.shape), li[..., None], -1)[..., 0], 0.5)
        # Skip streak: skipped items after the last listened one.
        last_listened = np.where(w_l > 0, np.arange(M)[None, None, :], -1).max(-1)
        streak = ((np.arange(M)[None, None, :] > last_listened[..., None]) * w_s).sum(-1)
        pop = self.popularity[np.where(cand < 0, 0, cand)]
        ctx = SequentialUserModel.context_one_hot(context)[:, None, :]
        ctx = np.broadcast_to(ctx, cand.shape + (NUM_CONTEXTS,))
        f = np.stack([pop, m.mean_listened.numpy(), m.mean_skipped.numpy(),
                      np.where(n_l > 0, m.max_listened.numpy(), 0),
                      n_l / np.maximum(n, 1), np.log1p(n), sim_last, last_resp,
                      np.minimum(streak, 5) / 5.0,
                      np.minimum(np.minimum(position, self.position_cap) / 20.0, 3.0)], -1)
        return np.concatenate([f, ctx], -1).astype(np.float32)

    def _logit(self, f: np.ndarray) -> np.ndarray:
        w, b = self.net.layers[0].get_weights()
        return ((f - self.mean) / self.std) @ w[:, 0] + b[0]

    def _run(self, history: History, slate, forced=None, uniforms=None):
        H = self.config["max_history"]
        B, K = slate.shape
        n = history.length.astype(np.int64)
        idx = np.maximum(n - H, 0)[:, None] + np.arange(H)[None, :]
        ok = idx < n[:, None]
        if history.tracks.shape[1]:
            safe = np.minimum(idx, history.tracks.shape[1] - 1)
            ht = np.where(ok, np.take_along_axis(history.tracks, safe, 1), -1)
            hr = np.where(ok, np.take_along_axis(history.responses, safe, 1), 0)
        else:
            ht, hr = np.full((B, H), -1), np.zeros((B, H))
        mem_t = np.concatenate([ht, slate], 1)
        mem_r = np.concatenate([hr, np.zeros((B, K))], 1).astype(np.float32)
        mem_m = np.concatenate([ok, np.zeros((B, K), bool)], 1).astype(np.float32)
        probs = np.zeros((B, K))
        resp = np.zeros((B, K), bool)
        for k in range(K):
            f = self.features(mem_t, mem_r, mem_m[:, None, :], slate[:, k:k + 1],
                              (n + k + 1)[:, None].astype(np.float32), history.context)
            p = 1 / (1 + np.exp(-self._logit(f[:, 0])))
            probs[:, k] = p
            if uniforms is not None:
                resp[:, k] = uniforms[:, k] < p
            elif forced is not None:
                resp[:, k] = np.asarray(forced)[:, k]
            else:
                resp[:, k] = p >= 0.5
            mem_r[:, H + k] = resp[:, k]
            mem_m[:, H + k] = 1
        return probs, resp

    def _predict(self, history, slate, slate_responses):
        return self._run(history, slate, forced=slate_responses)[0]

    def _respond(self, history, slate, uniforms):
        p, r = self._run(history, slate, uniforms=uniforms)
        return p, r, None

    def session_features(self, log: SessionLog):
        """Teacher-forced features of every row of a log: ([R, F], labels [R])."""
        tracks, skipped, mask = log.padded()
        L = tracks.shape[1]
        causal = np.tril(np.ones((L, L)), -1)
        out = []
        for b in range(0, log.num_sessions, 2048):
            sl = slice(b, b + 2048)
            valid = causal[None] * mask[sl][:, None, :]
            pos = np.broadcast_to(np.arange(1, L + 1, dtype=np.float32), tracks[sl].shape)
            f = self.features(tracks[sl], (~skipped[sl]).astype(np.float32), valid,
                              tracks[sl], pos, log.session_context()[sl])
            out.append(f[mask[sl]])
        return np.concatenate(out), ~log.skipped

    def predict_sessions(self, log: SessionLog) -> np.ndarray:
        f, _ = self.session_features(log)
        return 1 / (1 + np.exp(-self._logit(f)))

    # ------------------------------------------------------------------ training
    def fit(self, train_log: SessionLog, val_log: SessionLog, verbose: bool = False):
        if len(train_log.catalog) != len(self.embeddings):
            raise ConfigError(f"the log's catalogue has {len(train_log.catalog)} tracks but "
                              f"the embeddings have {len(self.embeddings)} rows")
        # Plays in the train split only: the catalogue's counts cover the whole log,
        # validation and test plays included.
        counts = np.bincount(train_log.tracks, minlength=len(train_log.catalog)).astype(np.float64)
        pop = np.log1p(counts)
        self.popularity = ((pop - pop.mean()) / max(pop.std(), 1e-6)).astype(np.float32)
        self.unplayed_popularity = float(-pop.mean() / max(pop.std(), 1e-6))
        self.track_ids = train_log.catalog.track_ids
        self.position_cap = float(max(train_log.lengths.max(initial=1),
                                      val_log.lengths.max(initial=1)))
        x, y = self.session_features(train_log)
        xv, yv = self.session_features(val_log)
        self.mean, self.std = x.mean(0), np.maximum(x.std(0), 1e-6)
        c = self.config
        # The layer outputs a logit; the loss applies the sigmoid.
        self.net.compile(tf.keras.optimizers.Adam(c["learning_rate"]),
                         tf.keras.losses.BinaryCrossentropy(from_logits=True))
        stop = tf.keras.callbacks.EarlyStopping(patience=c["patience"], restore_best_weights=True)
        h = self.net.fit((x - self.mean) / self.std, y.astype(np.float32),
                         validation_data=((xv - self.mean) / self.std, yv.astype(np.float32)),
                         epochs=c["epochs"], batch_size=c["batch_size"], shuffle=True,
                         callbacks=[stop], verbose=0)
        self.history_ = [{"epoch": i + 1, "train_loss": float(a), "val_loss": float(b)}
                         for i, (a, b) in enumerate(zip(h.history["loss"], h.history["val_loss"]))]
        return self

    def fit_streamed(self, train, val, verbose: bool = False,
                     strategy: Optional[tf.distribute.Strategy] = None,
                     worker: Tuple[int, int] = (0, 1),
                     shuffle_buffer: int = 65_536) -> "LogisticUserModel":
        """`fit` from Parquet shards (`ShardedLog`s) a chunk at a time: the popularity
        from the training shards' play counts, the features' mean and spread from one
        pass over them, then the streamed loop (`streamed_fit`) on each chunk's rows, in
        one process or as worker `worker` of a `tf.distribute` strategy."""
        if len(train.catalog) != len(self.embeddings):
            raise ConfigError(f"the log's catalogue has {len(train.catalog)} tracks but "
                              f"the embeddings have {len(self.embeddings)} rows")
        pop = np.log1p(train.play_counts().astype(np.float64))
        self.popularity = ((pop - pop.mean()) / max(pop.std(), 1e-6)).astype(np.float32)
        self.unplayed_popularity = float(-pop.mean() / max(pop.std(), 1e-6))
        self.track_ids = train.catalog.track_ids
        self.position_cap = float(max(train.max_length, val.max_length))
        rows, total, squares = 0, np.zeros(len(FEATURES)), np.zeros(len(FEATURES))
        for chunk in train.chunks():   # the standardisation, from running sums
            x, _ = self.session_features(chunk)
            rows += len(x)
            total += x.sum(0, dtype=np.float64)
            squares += np.square(x, dtype=np.float64).sum(0)
        mean = total / max(rows, 1)
        self.mean = mean.astype(np.float32)
        self.std = np.maximum(np.sqrt(np.maximum(squares / max(rows, 1) - mean ** 2, 0.0)),
                              1e-6).astype(np.float32)

        def standardised(chunk):
            x, y = self.session_features(chunk)
            return ((x - self.mean) / self.std).astype(np.float32), y.astype(np.float32)

        def loss(x, y):
            logits = self.net(x)[:, 0]
            return tf.reduce_mean(tf.nn.sigmoid_cross_entropy_with_logits(labels=y,
                                                                          logits=logits))

        c = self.config
        signature = (tf.TensorSpec([None, len(FEATURES)], tf.float32),
                     tf.TensorSpec([None], tf.float32))
        self.history_ = streamed_fit.fit_streamed(
            self.net.trainable_variables, loss, standardised, signature, train, val,
            learning_rate=c["learning_rate"], batch_size=c["batch_size"], epochs=c["epochs"],
            patience=c["patience"], seed=c["seed"], weight_index=None, elements=rows,
            strategy=strategy, worker=worker, shuffle_buffer=shuffle_buffer,
            verbose=verbose)
        return self

    def coefficients(self):
        w, b = self.net.layers[0].get_weights()
        return dict(zip(FEATURES, (w[:, 0] / self.std).tolist())), float(b[0])

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str) -> None:
        with atomic_dir(directory) as tmp:
            w, b = self.net.layers[0].get_weights()
            np.savez(os.path.join(tmp, "model.npz"), embeddings=self.embeddings,
                     popularity=self.popularity, mean=self.mean, std=self.std, w=w, b=b,
                     unplayed_popularity=self.unplayed_popularity,
                     position_cap=self.position_cap)
            if self.track_ids is not None:
                write_track_ids(tmp, self.track_ids)
            with open(os.path.join(tmp, "user_model.json"), "w") as f:
                json.dump({"class": "LogisticUserModel", "config": self.config,
                           "features": list(FEATURES), "history": self.history_}, f, indent=1)

    @classmethod
    def load(cls, directory: str) -> "LogisticUserModel":
        meta = read_model_meta(directory, "LogisticUserModel")
        with np.load(os.path.join(directory, "model.npz")) as a:
            model = cls(a["embeddings"], a["popularity"], **meta["config"])
            model.mean, model.std = a["mean"], a["std"]
            model.net.layers[0].set_weights([a["w"], a["b"]])
            if "unplayed_popularity" in a.files:
                model.unplayed_popularity = float(a["unplayed_popularity"])
            if "position_cap" in a.files:
                model.position_cap = float(a["position_cap"])
        model.history_ = meta.get("history", [])
        model.track_ids = read_track_ids(directory)
        return model

    def remapped(self, rows, embeddings):
        rows = np.asarray(rows, np.int64)
        popularity = np.where(rows >= 0, self.popularity[np.maximum(rows, 0)],
                              self.unplayed_popularity)
        model = type(self)(embeddings, popularity, **self.config)
        model.mean, model.std = self.mean, self.std
        model.unplayed_popularity = self.unplayed_popularity
        model.position_cap = self.position_cap
        model.net.layers[0].set_weights(self.net.layers[0].get_weights())
        model.history_ = list(self.history_)
        return model
