"""`LeaveHead`: the sequential user model's P(leave) after a track, a small Keras network
trained on the logged session lengths with a censored discrete-time hazard loss.

Why not the fitted `LeaveHazard` alone: that one assumes the world's form (one boredom
recursion, its constants picked from a grid, a linear logit).  The head reads the same
observable signals at every time scale of the grid at once (the skip streak and the
boredom level b_t for each (decay, keep) pair, from unit track vectors only) and learns
how to combine them: a linear part plus a hidden layer, so a listener whose boredom
builds on several time scales, or acts non-linearly, is not forced into one.

Why these inputs and not the GRU state: episodes in the simulator run to 60 tracks
after a 10-track history, far past the log's 20-track cap.  The inputs here stay in the
range the log shows (the streak is read twice, capped at 5 and at `long_streak`, every
boredom level is a decayed sum bounded by 1 / (1 - decay)), and nothing reads the
position, so the head extrapolates the way the hazard does, monotonically in boredom,
instead of reading a recurrent state at lengths it never saw.

Why the second streak: with the streak capped at 5 alone, every run of 5 to 19 skips
looks the same, and the log has many (12% of its entries; sessions skipped through).
The head then answered their average: +0.30 in logit too high after 5 to 10 skips and
-0.25 too low after 11 or more, on its own training log, and along the simulated
episodes, whose listeners skip more past the cap, the excess was a third of the
hazard's error there.  Why only the boredom time scales that settle within the log: a
slower one is a position proxy past the cap (`leave_features.settled_decays`).  Both
measured in docs/offline_verdicts.md, "The head's streak and time scales".

The loss (`censored_hazard_loss`): after each track t from the log's shortest session
length on, "did the listener leave here" (t = the session's length) or not; sessions
that reach the log's cap (MSSD: 20) are censored: they contribute "stayed" up to the cap
and nothing at it, since the log cut them, not the listener.
"""

from __future__ import annotations

import copy

import json
from typing import Optional, Sequence, Tuple

import numpy as np
import tensorflow as tf

from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file
from spotisim.data.streaming import ShardedLog
from user_models import streamed_fit
from user_models.early_stopping import train_with_early_stopping
from user_models.leave_features import (DECAYS, KEEPS, MAX_STREAK, at_risk_rows,
                                        boredom_features, boredom_features_grid,
                                        settled_decays, unit)



def censored_hazard_loss(logits: tf.Tensor, events: tf.Tensor, at_risk: tf.Tensor) -> tf.Tensor:
    """Mean binary cross-entropy of "left after this track" over the at-risk rows only
    (a censored session has no row at its cap: see `at_risk_rows`)."""
    w = tf.cast(at_risk, tf.float32)
    bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=tf.cast(events, tf.float32),
                                                  logits=logits)
    return tf.reduce_sum(bce * w) / tf.maximum(tf.reduce_sum(w), 1.0)


class LeaveHead:
    """A fitted leave head (see the module docstring); same interface as `LeaveHazard`.

    Args:
      embeddings: float [T, d] the track vectors the run uses.
      projection_dim: the boredom recursions read unit(e W), with W [d, projection_dim]
        learned first from the session lengths alone (`fit_projection`): the
        embeddings' directions that matter for "more of the same", without the
        dimensions that do not (None: the unit embeddings themselves).
      units: hidden units beside the linear part.
      decays / keeps: the time scales of the boredom recursions it reads; with
        `settled_only`, at fit, only the decays that settle within the log's longest
        session (`leave_features.settled_decays`; False: every one, as heads fitted
        before the eleventh session).
      long_streak: the second streak feature reads the streak capped here (None: only
        the streak capped at 5, as heads saved before it was added).
      epochs / batch_size / learning_rate / patience / seed: training (Adam, early
        stopping on the validation split's censored loss, best weights kept).
    """

    def __init__(self, embeddings: np.ndarray, units: int = 16,
                 decays: Sequence[float] = DECAYS, keeps: Sequence[float] = KEEPS,
                 epochs: int = 40, batch_size: int = 4096, learning_rate: float = 1e-2,
                 patience: int = 4, seed: int = 0, projection_dim: Optional[int] = 8,
                 long_streak: Optional[int] = 20, settled_only: bool = True):
        self.embeddings = np.asarray(embeddings, np.float64)
        self.projection: Optional[np.ndarray] = None
        self.unit_emb = unit(self.embeddings)
        self.decays, self.keeps = tuple(float(d) for d in decays), tuple(float(k) for k in keeps)
        self.config = dict(units=int(units), epochs=int(epochs), batch_size=int(batch_size),
                           learning_rate=float(learning_rate), patience=int(patience),
                           seed=int(seed),
                           projection_dim=None if projection_dim is None else int(projection_dim),
                           long_streak=None if long_streak is None else int(long_streak),
                           settled_only=bool(settled_only))
        self.params: Optional[dict] = None
        self.first_at_risk = 1
        self.cap = None
        self.history_: list = []
        #: The largest value of each feature over the training log (None: unknown),
        #: and whether features are held to it (`within_log`).
        self.feature_max: Optional[np.ndarray] = None
        self.clamp = False

    def within_log(self) -> "LeaveHead":
        """A copy that holds each feature to the largest value the log showed.

        Why: episodes run past the log's length cap, where the slow boredom levels keep
        growing beyond anything the head was fitted on and its hazard extrapolates
        upward (measured: docs/offline_verdicts.md).  A head that never reads a
        feature beyond its training support answers there as at the log's edge."""
        if self.feature_max is None:
            raise UserModelError("this LeaveHead was saved before it recorded its "
                                 "features' range: refit it")
        out = copy.copy(self)
        out.clamp = True
        return out

    def outside_log(self, tracks: np.ndarray, listened: np.ndarray,
                    valid: Optional[np.ndarray] = None) -> float:
        """The share of entries (of padded histories; `valid` masks them) whose
        features exceed what the log showed: how far a simulator runs off the leave
        model's support (needs no ground truth)."""
        x = self.features(tracks, listened)
        out = (x > self.feature_max + 1e-9).any(-1)
        mask = np.asarray(tracks) >= 0 if valid is None else valid
        return float(out[mask].mean()) if mask.any() else 0.0

    @property
    def pairs(self) -> Tuple[Tuple[float, float], ...]:
        return tuple((d, k) for d in self.decays for k in self.keeps)

    @property
    def streak_caps(self) -> Tuple[int, ...]:
        """The caps the streak features read it at (each scaled to [0, 1])."""
        long = self.config.get("long_streak")
        return (MAX_STREAK,) if long is None else (MAX_STREAK, long)

    @property
    def num_features(self) -> int:
        return len(self.streak_caps) + len(self.pairs)

    # ------------------------------------------------------------------ features
    def _recursions(self, tracks, listened):
        """Per keep: (streak [B, H], {decay: boredom [B, H]}, centroid [B, d])."""
        streak, bored, centroid = boredom_features_grid(tracks, listened, self.unit_emb,
                                                        self.decays, self.keeps,
                                                        max(self.streak_caps))
        return {(d, k): (streak, bored[i, j], centroid[j])
                for i, d in enumerate(self.decays) for j, k in enumerate(self.keeps)}

    def features(self, tracks: np.ndarray, listened: np.ndarray) -> np.ndarray:
        """float [B, H, F]: [min(streak, cap) / cap for each of `streak_caps`,
        b_t(decay, keep) * (1 - decay) for each pair] after each entry of padded
        histories (each boredom level scaled to [0, 1])."""
        rec = self._recursions(np.asarray(tracks), np.asarray(listened))
        streak = next(iter(rec.values()))[0]
        cols = [np.minimum(streak, cap) / cap for cap in self.streak_caps] + \
            [rec[(d, k)][1] * (1 - d) for d, k in self.pairs]
        return np.stack(cols, -1)

    # ------------------------------------------------------------------ network
    def _forward(self, x: np.ndarray) -> np.ndarray:
        """Logits from features [..., F] (numpy: the simulator calls this every step)."""
        p = self.params
        if self.clamp:
            x = np.minimum(x, self.feature_max)
        hidden = np.maximum(x @ p["w1"] + p["b1"], 0.0)
        return x @ p["w_lin"] + hidden @ p["w2"] + p["b"]

    def _keras_logits(self, variables, x):
        w1, b1, w2, w_lin, b = variables
        return (tf.linalg.matvec(x, w_lin) + tf.linalg.matvec(tf.nn.relu(x @ w1 + b1), w2) + b)

    def fit(self, log, val_log=None) -> "LeaveHead":
        """Fits on a `SessionLog` (early stopping on `val_log`, else on `log`)."""
        if log.num_sessions == 0:
            raise UserModelError("LeaveHead.fit needs a log with sessions")
        self.first_at_risk = int(log.lengths.min())
        self.cap = int(log.lengths.max())
        self._settle()
        if self.config["projection_dim"] and self.config["projection_dim"] < self.embeddings.shape[1]:
            self.set_projection(fit_projection(
                self.embeddings, log, val_log if val_log is not None and val_log.num_sessions
                else log, self.config["projection_dim"], self.decays, self.keeps,
                self.first_at_risk, self.cap, seed=self.config["seed"],
                long_streak=self.config["long_streak"]))
        train = self._rows(log)
        if train[1].sum() == 0:
            raise UserModelError("LeaveHead.fit: no session ends before the log's length "
                                 "cap, so nothing shows when listeners leave")
        val = self._rows(val_log) if val_log is not None and val_log.num_sessions else train
        c = self.config
        base = float(np.log(train[1].mean() / (1 - train[1].mean())))
        variables, step, loss_of = self._training(base)

        def assign(values):
            for var, value in zip(variables, values):
                var.assign(value)

        self.history_ = train_with_early_stopping(
            len(train[1]),
            lambda idx: step(tf.constant(train[0][idx], tf.float32),
                             tf.constant(train[1][idx], tf.float32)),
            lambda: loss_of(val), lambda: [x.numpy() for x in variables], assign,
            epochs=c["epochs"], batch_size=c["batch_size"], patience=c["patience"],
            seed=c["seed"], tolerance=1e-6)
        w1, b1, w2, w_lin, b = (x.numpy() for x in variables)
        self.params = {"w1": w1, "b1": b1, "w2": w2, "w_lin": w_lin, "b": float(b)}
        tracks, skipped, mask = log.padded()   # every entry the head was shown, at risk or not
        self.feature_max = self.features(tracks, mask & ~skipped)[mask].max(0)
        return self

    def _settle(self) -> None:
        """Keeps the decays that settle within the log (`settled_only`), once its cap
        is known: before the projection and the features are fitted."""
        if self.config.get("settled_only"):
            self.decays = settled_decays(self.decays, self.cap)

    def _variables(self, base: float) -> list:
        """The head's variables, its output bias at `base` (the log-odds of leaving)."""
        c = self.config
        F, U = self.num_features, c["units"]
        init = tf.keras.initializers.GlorotUniform(seed=c["seed"])
        return [tf.Variable(init((F, U)), name="w1"), tf.Variable(tf.zeros(U), name="b1"),
                tf.Variable(tf.zeros(U), name="w2"), tf.Variable(tf.zeros(F), name="w_lin"),
                tf.Variable(base, name="b")]

    def _training(self, base: float):
        """(variables, one Adam step on (x, y), the loss of rows (x, y)) of the head,
        its output bias starting at `base` (the log-odds of leaving): what the
        in-memory and the streamed fit share."""
        c = self.config
        variables = self._variables(base)
        opt = tf.keras.optimizers.Adam(c["learning_rate"])
        opt.build(variables)  # slots now: step is then traced once, not twice

        @tf.function(reduce_retracing=True)
        def step(x, y):
            with tf.GradientTape() as tape:
                loss = censored_hazard_loss(self._keras_logits(variables, x), y,
                                            tf.ones_like(y))
            opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
            return loss

        def loss_of(rows):
            x, y = (tf.constant(a, tf.float32) for a in rows)
            return float(censored_hazard_loss(self._keras_logits(variables, x), y,
                                              tf.ones_like(y)))

        return variables, step, loss_of

    def fit_streamed(self, log: ShardedLog, val_log: ShardedLog,
                     shuffle_buffer: int = 65_536,
                     strategy: Optional[tf.distribute.Strategy] = None,
                     worker: Tuple[int, int] = (0, 1),
                     record_range: bool = True) -> "LeaveHead":
        """`fit` from Parquet shards a chunk at a time (memory bounded whatever the
        log's size): the at-risk rows of each chunk, shuffled in a buffer, the first
        time at risk and the cap from the shards' session lengths; in one process or as
        worker `worker` of a `tf.distribute` strategy (`streamed_fit`).  `record_range`
        False skips the pass that records the features' range (`within_log`): the
        workers that do not save the head."""
        self.first_at_risk, self.cap = log.length_range
        if self.cap == 0:
            raise UserModelError("LeaveHead.fit needs a log with sessions")
        self._settle()
        exposed = events = 0
        for n in log.session_lengths():  # the at-risk rows and their events, shard by shard
            at_risk, left = at_risk_rows(n, self.cap, self.first_at_risk, self.cap)
            exposed, events = exposed + int(at_risk.sum()), events + int(left.sum())
        rate = events / max(exposed, 1)
        if events == 0:
            raise UserModelError("LeaveHead.fit: no session ends before the log's length "
                                 "cap, so nothing shows when listeners leave")
        c = self.config
        if c["projection_dim"] and c["projection_dim"] < self.embeddings.shape[1]:
            self.set_projection(fit_projection(
                self.embeddings, log, val_log, c["projection_dim"], self.decays, self.keeps,
                self.first_at_risk, self.cap, seed=c["seed"], strategy=strategy,
                worker=worker, long_streak=c["long_streak"]))
        F = self.num_features
        signature = (tf.TensorSpec([None, F], tf.float32), tf.TensorSpec([None], tf.float32))

        def rows(chunk):
            x, y = self._rows(chunk)
            return x.astype(np.float32), y.astype(np.float32)

        with (strategy or tf.distribute.get_strategy()).scope():
            variables = self._variables(float(np.log(rate / (1 - rate))))
        self.history_ = streamed_fit.fit_streamed(
            variables, lambda x, y: censored_hazard_loss(self._keras_logits(variables, x), y,
                                                         tf.ones_like(y)),
            rows, signature, log, val_log, learning_rate=c["learning_rate"],
            batch_size=c["batch_size"], epochs=c["epochs"], patience=c["patience"],
            seed=c["seed"], weight_index=None, tolerance=1e-6, elements=exposed,
            strategy=strategy, worker=worker, shuffle_buffer=shuffle_buffer)
        w1, b1, w2, w_lin, b = (x.numpy() for x in variables)
        self.params = {"w1": w1, "b1": b1, "w2": w2, "w_lin": w_lin, "b": float(b)}
        top = None
        for chunk in log.chunks() if record_range else ():  # every entry shown
            tracks, skipped, mask = chunk.padded()
            m = self.features(tracks, mask & ~skipped)[mask].max(0)
            top = m if top is None else np.maximum(top, m)
        self.feature_max = top
        return self

    def _rows(self, log):
        """(features [R, F], events [R]) of the log's at-risk rows."""
        tracks, skipped, mask = log.padded()
        at_risk, events = at_risk_rows(log.lengths, tracks.shape[1], self.first_at_risk, self.cap)
        x = self.features(tracks, mask & ~skipped)
        return x[at_risk], events[at_risk].astype(np.float64)

    # ------------------------------------------------------------------ prediction
    def _check(self):
        if self.params is None:
            raise UserModelError("LeaveHead used before fit or load")

    def hazards(self, tracks: np.ndarray, listened: np.ndarray) -> np.ndarray:
        """P(leave) [B, H] after each entry of padded histories (0 before the log's
        shortest session length: no logged listener left that early)."""
        self._check()
        p = 1 / (1 + np.exp(-self._forward(self.features(tracks, listened))))
        t = np.arange(1, p.shape[1] + 1)[None, :]
        return np.where(t >= self.first_at_risk, p, 0.0)

    def hazard_if_listened(self, history, candidates: np.ndarray) -> np.ndarray:
        """float [B, C]: P(leave) right after each candidate, were it played next and
        listened to (the streak resets; its redundancy adds to every boredom level)."""
        self._check()
        rec = self._recursions(history.tracks, history.responses)
        e = self.unit_emb[np.asarray(candidates)]                           # [B, C, d]
        B, C = np.shape(candidates)
        cols = [np.zeros((B, C))] * len(self.streak_caps)
        for d, k in self.pairs:
            _, bored, centroid = rec[(d, k)]
            b = bored[:, -1] if bored.shape[1] else np.zeros(B)
            rho = np.maximum(np.einsum("bcd,bd->bc", e, centroid), 0.0)
            cols.append((d * b[:, None] + rho) * (1 - d))
        p = 1 / (1 + np.exp(-self._forward(np.stack(cols, -1))))
        at_risk = (history.length + 1 >= self.first_at_risk)[:, None]
        return np.where(at_risk, p, 0.0)

    def redundancy(self, history, candidates: np.ndarray) -> np.ndarray:
        """float [B, C]: max(0, e_c . centroid of recent listens), the centroid kept at
        the time scale the head leans on most (largest summed linear weight)."""
        self._check()
        w = np.abs(self.params["w_lin"][len(self.streak_caps):]).reshape(
            len(self.decays), len(self.keeps))
        keep = self.keeps[int(np.argmax(w.sum(0)))]
        _, _, centroid = boredom_features(history.tracks, history.responses, self.unit_emb,
                                          self.decays[0], keep)
        return np.maximum(np.einsum("bcd,bd->bc", self.unit_emb[np.asarray(candidates)],
                                    centroid), 0.0)

    def set_projection(self, projection: Optional[np.ndarray]) -> None:
        """Reads the boredom recursions in unit(e W) (None: in the unit embeddings)."""
        self.projection = None if projection is None else np.asarray(projection, np.float64)
        self.unit_emb = unit(self.embeddings if self.projection is None
                              else self.embeddings @ self.projection)

    # ------------------------------------------------------------------ persistence
    def save(self, path: str) -> None:
        self._check()
        with atomic_file(path) as f:
            json.dump({"class": "LeaveHead", "config": self.config, "decays": self.decays,
                       "keeps": self.keeps, "first_at_risk": self.first_at_risk,
                       "cap": self.cap, "history": self.history_,
                       "projection": (None if self.projection is None
                                      else self.projection.tolist()),
                       "feature_max": (None if self.feature_max is None
                                       else self.feature_max.tolist()),
                       "params": {k: np.asarray(v).tolist() for k, v in self.params.items()}},
                      f, indent=1)

    @classmethod
    def load(cls, path: str, embeddings: np.ndarray) -> "LeaveHead":
        with open(path) as f:
            meta = json.load(f)
        if meta.get("class") != "LeaveHead":
            raise UserModelError(f"{path}: holds a {meta.get('class', 'LeaveHazard')}, "
                                 "not a LeaveHead")
        # Saved before the second streak and the settled decays: read as then.
        config = {"long_streak": None, "settled_only": False, **meta["config"]}
        head = cls(embeddings, decays=meta["decays"], keeps=meta["keeps"], **config)
        head.params = {k: (np.asarray(v) if k != "b" else float(v))
                       for k, v in meta["params"].items()}
        head.first_at_risk, head.cap = meta["first_at_risk"], meta["cap"]
        head.history_ = meta.get("history", [])
        head.set_projection(meta.get("projection"))
        if meta.get("feature_max") is not None:
            head.feature_max = np.asarray(meta["feature_max"], np.float64)
        return head


def fit_projection(embeddings: np.ndarray, log, val_log, dim: int,
                   decays: Sequence[float], keeps: Sequence[float], first_at_risk: int,
                   cap: int, seed: int = 0, epochs: int = 60, patience: int = 5,
                   batch_size: int = 4096, learning_rate: float = 0.02,
                   strategy: Optional[tf.distribute.Strategy] = None,
                   worker: Tuple[int, int] = (0, 1),
                   long_streak: Optional[int] = None) -> np.ndarray:
    """W [d, dim] such that the boredom recursions on unit(e W) best explain when the
    log's listeners left: the recursions of `boredom_features_grid`, written in
    TensorFlow so that W is learned through them, under a linear hazard (the streak
    capped at 5 and, with `long_streak`, at that too, and every boredom level) with
    the censored loss; PCA start, early stopping on
    `val_log`.  The log's session lengths are the only supervision.  `log` and
    `val_log` are `SessionLog`s, or `ShardedLog`s read a chunk at a time (then also
    as worker `worker` of a `tf.distribute` strategy: `streamed_fit`)."""
    emb = np.asarray(embeddings, np.float32)
    centred = emb - emb.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    dec = tf.constant(decays, tf.float32)[:, None, None]
    kp = tf.constant(keeps, tf.float32)[:, None, None]
    P = len(decays) * len(keeps)
    with (strategy or tf.distribute.get_strategy()).scope():
        W = tf.Variable(vt[:dim].T.astype(np.float32), name="projection")
        coef = tf.Variable(tf.zeros(P))
        intercept, w_streak = tf.Variable(-3.0), tf.Variable(0.0)
        w_long = tf.Variable(0.0) if long_streak else None
    E = tf.constant(emb)
    variables = [W, coef, intercept, w_streak] + ([w_long] if long_streak else [])

    def logits(tracks, listened):
        z = tf.math.l2_normalize(tf.gather(E, tf.maximum(tracks, 0)) @ W, -1)  # [B, T, dim]
        B, T = tf.shape(tracks)[0], tracks.shape[1]   # T static: the recursion is unrolled
        centroid = tf.zeros(tf.stack([len(keeps), B, dim]))
        has = tf.zeros(tf.stack([B]), tf.bool)
        bored = tf.zeros(tf.stack([len(decays), len(keeps), B]))
        streak = tf.zeros(tf.stack([B]))
        out = []
        for t in range(T):
            valid = tracks[:, t] >= 0
            lis = valid & (listened[:, t] > 0.5)
            e = z[:, t]
            rho = tf.where(lis & has, tf.nn.relu(tf.einsum("kbd,bd->kb", centroid, e)), 0.0)
            moved = tf.where(has[None, :, None],
                             tf.math.l2_normalize(kp * centroid + (1 - kp) * e[None], -1),
                             tf.broadcast_to(e[None], centroid.shape))
            centroid = tf.where(lis[None, :, None], moved, centroid)
            has = has | lis
            bored = tf.where(valid[None, None, :], dec * bored + rho[None], bored)
            streak = tf.where(valid, tf.where(lis, 0.0, streak + 1), streak)
            levels = tf.transpose(tf.reshape(bored * (1 - dec), tf.stack([P, B])))
            logit = intercept + w_streak * tf.minimum(streak, MAX_STREAK) / MAX_STREAK
            if long_streak:
                logit = logit + w_long * tf.minimum(streak, long_streak) / long_streak
            out.append(logit + tf.linalg.matvec(levels, coef))
        return tf.stack(out, 1)

    def arrays(lg, width=None):
        tracks, skipped, mask = lg.padded(width)
        at_risk, events = at_risk_rows(lg.lengths, tracks.shape[1], first_at_risk, cap)
        return [tracks, (mask & ~skipped).astype(np.float32), at_risk.astype(np.float32),
                events.astype(np.float32)]

    opt = tf.keras.optimizers.Adam(learning_rate)
    # Adam's slots made here, not in step's first call: a tf.function that creates
    # variables is traced twice, and each trace of the unrolled recursion and its
    # gradient costs seconds (most of a small fit's time).  The same variables and
    # values either way.
    opt.build(variables)

    @tf.function  # static shapes: the recursion is unrolled over the log's positions
    def step(tracks, listened, at_risk, events):
        with tf.GradientTape() as tape:
            loss = censored_hazard_loss(logits(tracks, listened), events, at_risk)
        opt.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    @tf.function
    def val_loss(tracks, listened, at_risk, events):
        return censored_hazard_loss(logits(tracks, listened), events, at_risk)

    if isinstance(log, ShardedLog):  # streamed: every chunk padded to the cap
        signature = (tf.TensorSpec([None, cap], tf.int32),) + \
            (tf.TensorSpec([None, cap], tf.float32),) * 3

        def chunk_arrays(lg):
            return tuple(arrays(lg, cap))

        streamed_fit.fit_streamed(
            variables, lambda t, lis, r, e: censored_hazard_loss(logits(t, lis), e, r),
            chunk_arrays, signature, log, val_log, learning_rate=learning_rate,
            batch_size=batch_size, epochs=epochs, patience=patience, seed=seed,
            weight_index=2, tolerance=1e-6, strategy=strategy, worker=worker,
            shuffle_buffer=4 * batch_size)
        return W.numpy().astype(np.float64)
    train, val = arrays(log), [tf.constant(a) for a in arrays(val_log)]
    train_with_early_stopping(
        len(train[0]), lambda idx: step(*(tf.constant(a[idx]) for a in train)),
        lambda: float(val_loss(*val)), lambda: [W.numpy().copy()],
        lambda values: W.assign(values[0]), epochs=epochs, batch_size=batch_size,
        patience=patience, seed=seed, tolerance=1e-6)
    return W.numpy().astype(np.float64)
