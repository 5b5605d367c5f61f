"""`SequentialUserModel`: a Keras GRU model of listener response.

One recurrent cell reads the session so far (each track's embedding with whether it was
listened to); before each new track, its state, the track's embedding, a learned track
bias, the context type and the position give the logit of "listened".  The same cell
then takes in the outcome, so within a slate the skips cascade: position k is predicted
after positions < k were heard.

Training runs the GRU once over whole logged sessions (teacher forcing, every position a
target), with early stopping on the validation split.  In the simulator `respond` runs
the cascade for the whole batch inside one `tf.function` call.
"""

from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

import gin
import numpy as np
import tensorflow as tf

from spotisim.data.behaviour import NUM_BEHAVIOUR_FEATURES, BehaviourFill, padded_behaviour
from spotisim.data.exposure import ExposureLog
from spotisim.data.schema import CONTEXT_TYPES
from spotisim.data.session_log import SessionLog
from spotisim.data.streaming import ShardedLog
from spotisim.errors import ConfigError, UserModelError
from user_models.base import AbstractUserModel, History, check_probabilities, read_model_meta
from user_models.catalog_alignment import read_track_ids
from user_models import streamed_fit
from user_models.early_stopping import train_with_early_stopping
from user_models.saving import load_weights, save_model_dir
from user_models.history_match import history_match
from user_models.registry import register_user_model
from user_models.propensity import ips_weights

NUM_CONTEXTS = len(CONTEXT_TYPES) + 1  # last = unknown
POSITION_SCALE = 20.0


class SequentialResponseNet(tf.keras.Model):
    """The network: embeddings (frozen) + track bias + GRU cell + attention over the
    heard tracks + MLP head.

    The head sees, for a candidate track: the GRU state before it, its projected
    embedding, the context, the position, and a read of the memory of heard tracks
    (learned attention with the candidate as query, plus the mean cosine similarity of
    the candidate to the listened and to the skipped tracks): how much this track is
    like what the listener kept or skipped is the core signal of taste.
    """

    def __init__(self, embeddings: np.ndarray, units: int, seed: int = 0,
                 exposure_input: bool = False):
        super().__init__()
        self.exposure_input = bool(exposure_input)
        T, d = embeddings.shape
        init = tf.keras.initializers.GlorotUniform(seed=seed)
        padded = np.concatenate([embeddings, np.zeros((1, d))]).astype(np.float32)
        self.num_tracks = T
        self.track_emb = tf.keras.layers.Embedding(
            T + 1, d, embeddings_initializer=tf.keras.initializers.Constant(padded),
            trainable=False, name="track_embedding")
        self.track_bias = tf.keras.layers.Embedding(
            T + 1, 1, embeddings_initializer="zeros", name="track_bias")
        self.proj = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init,
                                          name="track_projection")
        self.init_state = tf.keras.layers.Dense(units, activation="tanh",
                                                kernel_initializer=init, name="initial_state")
        self.cell = tf.keras.layers.GRUCell(units, kernel_initializer=init,
                                            recurrent_initializer=tf.keras.initializers.Orthogonal(seed=seed),
                                            name="gru_cell")
        self.rnn = tf.keras.layers.RNN(self.cell, return_sequences=True, return_state=True,
                                       name="gru")
        att = max(units // 2, 4)
        self.att_q = tf.keras.layers.Dense(att, kernel_initializer=init, name="attention_query")
        self.att_k = tf.keras.layers.Dense(att, kernel_initializer=init, name="attention_key")
        self.att_v = tf.keras.layers.Dense(att, kernel_initializer=init, name="attention_value")
        self.hidden = tf.keras.layers.Dense(units, activation="relu", kernel_initializer=init,
                                            name="head_hidden")
        self.out = tf.keras.layers.Dense(1, kernel_initializer=init, name="head_logit")

    def _safe(self, tracks):
        return tf.where(tracks < 0, self.num_tracks, tracks)

    def step_inputs(self, tracks, responses, behaviour):
        """x_t = [proj(e_t), r_t, b_t] for tracks [B, L], responses [B, L] and the
        logged behaviour [B, L, F] of each heard track (F = 0 when not read)."""
        e = self.proj(self.track_emb(self._safe(tracks)))
        return tf.concat([e, responses[..., None], behaviour], axis=-1)

    def memory_features(self, tracks, mem_tracks, mem_resp, valid):
        """Read of the heard tracks for candidates [B, L].

        Args:
          mem_tracks / mem_resp: [B, M] heard tracks and their responses.
          valid: float [B, L, M], 1 where memory item m was heard before candidate l.
        """
        e_q = self.track_emb(self._safe(tracks))
        e_m = self.track_emb(self._safe(mem_tracks))
        sims = tf.einsum("bld,bmd->blm", tf.math.l2_normalize(e_q, -1),
                         tf.math.l2_normalize(e_m, -1))
        m = history_match(sims, valid, mem_resp[:, None, :])
        n = m.n_listened + m.n_skipped
        f = tf.stack([m.mean_listened, m.mean_skipped, m.max_listened,
                      m.n_listened / tf.maximum(n, 1.0), tf.math.log1p(n) / 3.0], axis=-1)
        q, k = self.att_q(e_q), self.att_k(e_m)
        scores = tf.einsum("bla,bma->blm", q, k) / tf.sqrt(tf.cast(tf.shape(q)[-1], tf.float32))
        scores = tf.where(valid > 0, scores, -1e9)
        att = tf.nn.softmax(scores, -1) * tf.cast(n[..., None] > 0, tf.float32)
        v = tf.concat([self.att_v(e_m), mem_resp[..., None]], -1)
        read = tf.einsum("blm,bmv->blv", att, v)
        return tf.concat([f, read], -1)

    def logits(self, state, tracks, context_1h, position, memory, exposed=None):
        """Logit of listening to tracks [B, L] given states [B, L, u] before each and
        the memory (mem_tracks, mem_resp, valid) of what was heard before each.

        `exposed` [B, L] (1 = the track was put in front of the listener at random, 0 =
        chosen by the logging policy) is read when the net has `exposure_input`."""
        safe = self._safe(tracks)
        e = self.proj(self.track_emb(safe))
        L = tf.shape(tracks)[1]
        ctx = tf.tile(context_1h[:, None, :], [1, L, 1])
        pos = tf.cast(position, tf.float32)[..., None] / POSITION_SCALE
        mem = self.memory_features(tracks, *memory)
        parts = [state, e, ctx, tf.minimum(pos, 3.0), mem]
        if self.exposure_input:
            if exposed is None:
                exposed = tf.zeros_like(pos[..., 0])
            parts.append(tf.cast(exposed, tf.float32)[..., None] * tf.ones_like(pos))
        z = tf.concat(parts, axis=-1)
        return tf.squeeze(self.out(self.hidden(z)), -1) + tf.squeeze(self.track_bias(safe), -1)

    def sequence_logits(self, tracks, responses, mask, context_1h, behaviour, exposed=None):
        """Teacher-forced logits for every position of padded sessions [B, L]
        (`exposed` [B, L]: see `logits`)."""
        h0 = self.init_state(context_1h)
        x = self.step_inputs(tracks, responses, behaviour)
        outs, _ = self.rnn(x, initial_state=[h0], mask=mask)
        # State before position t = output after t - 1 (h0 before the first).
        before = tf.concat([h0[:, None, :], outs[:, :-1, :]], axis=1)
        L = tf.shape(tracks)[1]
        position = tf.tile(tf.range(1, L + 1)[None, :], [tf.shape(tracks)[0], 1])
        causal = tf.linalg.band_part(tf.ones((L, L)), -1, 0) - tf.eye(L)  # j < t
        valid = causal[None] * tf.cast(mask, tf.float32)[:, None, :]
        return self.logits(before, tracks, context_1h, position, (tracks, responses, valid),
                           exposed)

    def encode(self, tracks, responses, mask, context_1h, behaviour):
        """State after a (left-aligned, masked) history."""
        h0 = self.init_state(context_1h)
        _, h = self.rnn(self.step_inputs(tracks, responses, behaviour), initial_state=[h0],
                        mask=mask)
        return h

    def call(self, inputs):
        tracks, responses, mask, context_1h, behaviour = inputs
        return self.sequence_logits(tracks, responses, tf.cast(mask, tf.bool), context_1h,
                                    behaviour)


@register_user_model("sequential")
@gin.configurable
class SequentialUserModel(AbstractUserModel):
    """GRU user model over the listening history, cascading within a slate.

    Args:
      embeddings: float [T, d] track embeddings (frozen inside the model, saved with it).
      units: GRU / head width.
      use_behaviour: the GRU also reads each heard track's logged behaviour (skip_1,
        skip_3, pauses, seeks, reasons, shuffle, premium: `spotisim.data.behaviour`),
        what MSSD's strong models read.  Steps nobody logged (simulated, predicted) get
        the train split's mean behaviour of plays with the same outcome
        (`BehaviourFill`).
      max_history: most recent history entries the model reads.
      learning_rate / epochs / batch_size / patience: training (early stopping on the
        validation loss, best weights restored).
      seed: initialisation and shuffling seed.
      propensity_clip: > 1 fits with inverse-propensity weights clipped there
        (`user_models.propensity`: the log must carry the logging policy's
        propensities); 0, the default, fits unweighted.
      exposure_input: the head also reads whether a track was exposed at random (1) or
        chosen by the logging policy (0); needed to fit with an `ExposureLog` (`fit(...,
        exposure=...)`; `fit_or_load_user_model` turns it on when the data has one).
        The model then answers the simulator's questions as exposed at random: P(listen)
        of a track an agent puts in front of the listener, not of one the logging
        policy chose for them because of their hidden taste (docs/agents.md, "the transfer
        gap"), except for the session's own logged line-up (`History.logged`).  Off,
        the network is the one before the input existed.
    """

    cascades = True
    fits_exposure = True  # `fit(..., exposure=ExposureLog)`
    leave_model_class = "LeaveHead"  # its P(leave): `user_models.leave_head`

    def __init__(self, embeddings: np.ndarray, units: int = 64, max_history: int = 20,
                 learning_rate: float = 3e-3, epochs: int = 20, batch_size: int = 256,
                 patience: int = 3, seed: int = 0, use_behaviour: bool = False,
                 exposure_input: bool = False, propensity_clip: float = 0.0):
        if units < 1 or max_history < 1:
            raise ConfigError("SequentialUserModel.units and max_history must be positive")
        if propensity_clip and not propensity_clip > 1.0:
            raise ConfigError(f"SequentialUserModel.propensity_clip must be 0 (unweighted) "
                              f"or > 1, got {propensity_clip}")
        self.embeddings = np.asarray(embeddings, np.float32)
        self.config = dict(units=int(units), max_history=int(max_history),
                           learning_rate=float(learning_rate), epochs=int(epochs),
                           batch_size=int(batch_size), patience=int(patience), seed=int(seed),
                           use_behaviour=bool(use_behaviour),
                           exposure_input=bool(exposure_input))
        if propensity_clip:  # only when set: saved configs before it load unchanged
            self.config["propensity_clip"] = float(propensity_clip)
        self.behaviour_dim = NUM_BEHAVIOUR_FEATURES if use_behaviour else 0
        # The fill rule lives in variables, so graphs traced before `fit` read its value.
        self._fill_listened = tf.Variable(tf.zeros(self.behaviour_dim), trainable=False)
        self._fill_skipped = tf.Variable(tf.zeros(self.behaviour_dim), trainable=False)
        self._fill = BehaviourFill(np.zeros(self.behaviour_dim, np.float32),
                                   np.zeros(self.behaviour_dim, np.float32))
        #: True once fitted with randomly exposed rows: the simulator's tracks are then
        #: read as exposed (`_exposure` gives the graphs their input).
        self._reads_exposure = False
        tf.random.set_seed(seed)
        self.net = SequentialResponseNet(self.embeddings, units, seed, exposure_input)
        self._build()
        self.history_: List[Dict[str, float]] = []
        self._respond_fn = tf.function(self._respond_graph, reduce_retracing=True)
        self._predict_fn = tf.function(self._predict_graph, reduce_retracing=True)
        self._greedy_fn = tf.function(self._greedy_graph, reduce_retracing=True)
        self._score_fn = tf.function(self._score_graph, reduce_retracing=True)

    @property
    def max_history(self) -> int:
        return self.config["max_history"]

    def _build(self):
        z = tf.zeros((1, 2), tf.int32)
        self.net((z, tf.zeros((1, 2)), tf.ones((1, 2), tf.bool), tf.zeros((1, NUM_CONTEXTS)),
                  tf.zeros((1, 2, self.behaviour_dim))))

    @property
    def behaviour_fill(self) -> BehaviourFill:
        return self._fill

    @behaviour_fill.setter
    def behaviour_fill(self, fill: BehaviourFill) -> None:
        """Kept as numpy (the history's fill, every step) and in the TF variables the
        cascade's graph reads."""
        self._fill = BehaviourFill(np.asarray(fill.listened, np.float32),
                                   np.asarray(fill.skipped, np.float32))
        self._fill_listened.assign(self._fill.listened)
        self._fill_skipped.assign(self._fill.skipped)

    def _behaviour(self, behaviour, responses: np.ndarray) -> np.ndarray:
        """[B, L, F] model input: logged behaviour with unlogged steps (NaN, or all of
        them when `behaviour` is None) filled by the rule; [B, L, 0] when not read."""
        B, L = responses.shape
        if not self.behaviour_dim:
            return np.zeros((B, L, 0), np.float32)
        if behaviour is None:
            behaviour = np.full((B, L, self.behaviour_dim), np.nan, np.float32)
        return self.behaviour_fill.fill(behaviour, responses)

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def context_one_hot(context: np.ndarray) -> np.ndarray:
        c = np.asarray(context, np.int64)
        c = np.where((c < 0) | (c >= NUM_CONTEXTS - 1), NUM_CONTEXTS - 1, c)
        return np.eye(NUM_CONTEXTS, dtype=np.float32)[c]

    def _recent(self, history: History):
        """The last max_history entries, left-aligned, as model inputs."""
        H = self.max_history
        n = history.length.astype(np.int64)
        idx = np.maximum(n - H, 0)[:, None] + np.arange(H)[None, :]
        valid = idx < n[:, None]
        safe = np.minimum(idx, max(history.tracks.shape[1] - 1, 0))
        beh = None
        if history.tracks.shape[1] == 0:
            tracks = np.full((len(n), H), -1, np.int32)
            resp = np.zeros((len(n), H), np.float32)
        else:
            tracks = np.where(valid, np.take_along_axis(history.tracks, safe, 1), -1)
            resp = np.where(valid, np.take_along_axis(history.responses, safe, 1), 0)
            if self.behaviour_dim and history.behaviour is not None:
                beh = np.take_along_axis(history.behaviour, safe[..., None], 1)
        beh = self._behaviour(beh, resp) * valid[..., None]
        return (tracks.astype(np.int32), resp.astype(np.float32), valid,
                self.context_one_hot(history.context), n.astype(np.int32), beh)

    # ------------------------------------------------------------------ graph functions
    def _run_slate(self, tracks, resp, mask, ctx, length, beh, slate, exposed, forced,
                   uniforms, mode):
        """The cascade over the slate's positions (a graph loop: any slate length).

        exposed: [B, K] the head's exposure input for each slate item (`_exposure`).

        mode: 'sample' (responses drawn with `uniforms`), 'forced' (teacher forcing with
        `forced`) or 'greedy' (each position conditioned on the likely outcome before).
        """
        h = self.net.encode(tracks, resp, mask, ctx, beh)
        K = tf.shape(slate)[1]
        H = tf.shape(tracks)[1]
        B = tf.shape(tracks)[0]
        mem_tracks = tf.concat([tracks, slate], 1)
        mem_resp = tf.concat([resp, tf.zeros([B, K])], 1)
        mem_mask = tf.concat([tf.cast(mask, tf.float32), tf.zeros([B, K])], 1)
        probs = tf.TensorArray(tf.float32, size=K)
        outcomes = tf.TensorArray(tf.float32, size=K)
        for k in tf.range(K):
            pos = (length + k + 1)[:, None]
            memory = (mem_tracks, mem_resp, mem_mask[:, None, :])
            logit = self.net.logits(h[:, None, :], slate[:, k:k + 1], ctx, pos, memory,
                                    exposed[:, k:k + 1])[:, 0]
            p = tf.sigmoid(logit)
            if mode == "sample":
                r = tf.cast(uniforms[:, k] < p, tf.float32)
            elif mode == "greedy":
                r = tf.cast(p >= 0.5, tf.float32)
            else:
                r = forced[:, k]
            probs = probs.write(k, p)
            outcomes = outcomes.write(k, r)
            slot = tf.one_hot(H + k, H + K)[None, :]
            mem_resp = mem_resp + slot * r[:, None]
            mem_mask = mem_mask + slot
            b = (r[:, None] * self._fill_listened[None, :]
                 + (1.0 - r[:, None]) * self._fill_skipped[None, :])  # not logged: the rule
            x = self.net.step_inputs(slate[:, k:k + 1], r[:, None], b[:, None, :])[:, 0]
            h, _ = self.net.cell(x, [h])
        return tf.transpose(probs.stack()), tf.transpose(outcomes.stack())

    def _respond_graph(self, tracks, resp, mask, ctx, length, beh, slate, exposed, uniforms):
        return self._run_slate(tracks, resp, mask, ctx, length, beh, slate, exposed, None,
                               uniforms, "sample")

    def _predict_graph(self, tracks, resp, mask, ctx, length, beh, slate, exposed, forced):
        return self._run_slate(tracks, resp, mask, ctx, length, beh, slate, exposed, forced,
                               None, "forced")[0]

    def _greedy_graph(self, tracks, resp, mask, ctx, length, beh, slate, exposed):
        return self._run_slate(tracks, resp, mask, ctx, length, beh, slate, exposed, None,
                               None, "greedy")[0]

    def _score_graph(self, tracks, resp, mask, ctx, length, beh, cands, exposed):
        """Every candidate [B, C] as the next track: the history is encoded once."""
        h = self.net.encode(tracks, resp, mask, ctx, beh)
        C = tf.shape(cands)[1]
        state = tf.tile(h[:, None, :], [1, C, 1])
        pos = tf.tile((length + 1)[:, None], [1, C])
        valid = tf.tile(tf.cast(mask, tf.float32)[:, None, :], [1, C, 1])
        return tf.sigmoid(self.net.logits(state, cands, ctx, pos, (tracks, resp, valid),
                                          exposed))

    def _exposure(self, history: History, tracks: np.ndarray) -> tf.Tensor:
        """float32 [B, K]: the exposure input for tracks [B, K] played next.

        0 everywhere for a model fitted without an exposure log.  Otherwise 1 (exposed
        at random, what a policy's pick is), except for tracks the logging policy lined
        up for this very session (`History.logged`: the logged session's tracks after
        the history), which were chosen for this listener the way the log's were."""
        tracks = np.asarray(tracks)
        if not self.reads_exposure:
            return tf.zeros(tracks.shape, tf.float32)
        return tf.constant((~history.lined_up(tracks)).astype(np.float32))

    # ------------------------------------------------------------------ interface
    def score_candidates(self, history, candidates):
        candidates = np.asarray(candidates)
        if candidates.ndim != 2 or candidates.shape[0] != history.batch_size:
            raise UserModelError(f"candidates must be [batch, C] with batch "
                                 f"{history.batch_size}, got shape {candidates.shape}")
        p = self._score_fn(*self._recent(history), tf.constant(candidates, tf.int32),
                           self._exposure(history, candidates))
        return check_probabilities(p.numpy().astype(np.float64), candidates.shape,
                                   type(self).__name__)

    def _predict(self, history, slate, slate_responses):
        inputs = (*self._recent(history), tf.constant(slate, tf.int32),
                  self._exposure(history, slate))
        if slate_responses is None:
            p = self._greedy_fn(*inputs)
        else:
            p = self._predict_fn(*inputs, tf.constant(np.asarray(slate_responses, np.float32)))
        return p.numpy().astype(np.float64)

    def _respond(self, history, slate, uniforms):
        p, r = self._respond_fn(*self._recent(history), tf.constant(slate, tf.int32),
                                self._exposure(history, slate),
                                tf.constant(uniforms[:, :slate.shape[1]], tf.float32))
        return p.numpy().astype(np.float64), r.numpy() > 0.5, None

    def predict_sessions(self, log: SessionLog) -> np.ndarray:
        """Teacher-forced P(listen) for every row of a log (aligned with log.tracks)."""
        tracks, skipped, mask = log.padded()
        ctx = self.context_one_hot(log.session_context())
        beh = self.log_behaviour(log, tracks.shape[1])
        out = []
        for b in range(0, log.num_sessions, 4096):
            sl = slice(b, b + 4096)
            logits = self.net.sequence_logits(tf.constant(tracks[sl]),
                                              tf.constant((~skipped[sl]).astype(np.float32)),
                                              tf.constant(mask[sl]), tf.constant(ctx[sl]),
                                              tf.constant(beh[sl]))
            out.append(tf.sigmoid(logits).numpy())
        probs = np.concatenate(out) if out else np.zeros((0, tracks.shape[1]))
        return probs[mask].astype(np.float64)

    def log_behaviour(self, log: SessionLog, width: int) -> np.ndarray:
        """[S, width, F] the log's behaviour as model input ([S, width, 0] when not read)."""
        if not self.behaviour_dim:
            return np.zeros((log.num_sessions, width, 0), np.float32)
        return padded_behaviour(log, width)

    # ------------------------------------------------------------------ training
    def training_arrays(self, log: SessionLog, width: int,
                        exposed: Optional[np.ndarray] = None) -> tuple:
        """The fit's arrays for `log`'s sessions padded to `width`: tracks, responses,
        row weights (0 on padding; inverse propensities when fitted with them), context
        one-hot, behaviour, exposure.  The one feature code of the in-memory fit (the
        whole log at once) and the streamed one (`fit_streamed`, a chunk at a time)."""
        t, s, m = log.padded(width)
        weight = m.astype(np.float32)
        clip = self.config.get("propensity_clip", 0.0)
        if clip and exposed is None:  # the logged rows; the slice's are unconfounded
            weight[m] = ips_weights(log, clip)
        return (t.astype(np.int32), (~s).astype(np.float32), weight,
                self.context_one_hot(log.session_context()),
                self.log_behaviour(log, width),
                np.zeros(t.shape, np.float32) if exposed is None else exposed)

    def training_signature(self) -> tuple:
        """The `tf.TensorSpec`s of `training_arrays` (rows and width unknown)."""
        f = tf.float32
        return (tf.TensorSpec([None, None], tf.int32), tf.TensorSpec([None, None], f),
                tf.TensorSpec([None, None], f), tf.TensorSpec([None, NUM_CONTEXTS], f),
                tf.TensorSpec([None, None, self.behaviour_dim], f),
                tf.TensorSpec([None, None], f))

    def _loss(self, t, r, w, ctx, beh, exp):
        """Mean cross-entropy over the rows, weighted (w = 0 on padding)."""
        logits = self.net.sequence_logits(t, r, w > 0, ctx, beh, exp)
        bce = tf.nn.sigmoid_cross_entropy_with_logits(labels=r, logits=logits)
        return tf.reduce_sum(bce * w) / tf.maximum(tf.reduce_sum(w), 1.0)

    def fit(self, train_log: SessionLog, val_log: SessionLog, verbose: bool = False,
            exposure: Optional[ExposureLog] = None) -> "SequentialUserModel":
        """Trains on `train_log` with early stopping on `val_log`'s loss.

        With `exposure` (a log of randomly exposed tracks, `ExposureLog`), 9 in 10 of its
        sessions join the training sessions and the rest the validation sessions, their
        exposed rows marked for the head's exposure input; the model then answers the
        simulator as for tracks exposed at random."""
        if exposure is not None and not self.config["exposure_input"]:
            raise ConfigError("SequentialUserModel.exposure_input = False: this model "
                              "cannot read an exposure log")
        if len(train_log.catalog) != self.embeddings.shape[0]:
            raise ConfigError(f"the log's catalogue has {len(train_log.catalog)} tracks but "
                              f"the embeddings have {self.embeddings.shape[0]} rows")
        c = self.config
        opt = tf.keras.optimizers.Adam(c["learning_rate"])
        net = self.net
        # Adam's slots made now, not in train_step's first call: a tf.function that
        # creates variables is traced twice (a second GRU trace, seconds per fit).
        opt.build(net.trainable_variables)
        self.track_ids = train_log.catalog.track_ids
        if self.behaviour_dim:
            self.behaviour_fill = BehaviourFill.fit(train_log)

        width = max(int(train_log.lengths.max(initial=1)), int(val_log.lengths.max(initial=1)))
        if exposure is not None:
            width = max(width, int(exposure.log.lengths.max(initial=1)))

        def arrays(log, exposed=None):
            return self.training_arrays(log, width, exposed)

        train, val = arrays(train_log), arrays(val_log)
        if exposure is not None:
            n = exposure.log.num_sessions
            held = np.random.default_rng([c["seed"], 5]).permutation(n) < n // 10

            def joined(data, rows):
                sub = ExposureLog(exposure.log.subset(np.nonzero(rows)[0]),
                                  exposure.explore_from)
                extra = arrays(sub.log, sub.exposed(width))
                return tuple(np.concatenate([a, b]) for a, b in zip(data, extra))

            train, val = joined(train, ~held), joined(val, held)

        loss_fn = tf.function(self._loss, reduce_retracing=True)

        @tf.function(reduce_retracing=True)
        def train_step(t, r, w, ctx, beh, exp):
            with tf.GradientTape() as tape:
                loss = loss_fn(t, r, w, ctx, beh, exp)
            grads = tape.gradient(loss, net.trainable_variables)
            opt.apply_gradients(zip(grads, net.trainable_variables))
            return loss

        def evaluate(data):
            n = len(data[0])
            tot, cnt = 0.0, 0.0
            for b in range(0, n, 4096):
                sl = slice(b, b + 4096)
                w = float(data[2][sl].sum())
                tot += float(loss_fn(*(tf.constant(x[sl]) for x in data))) * w
                cnt += w
            return tot / max(cnt, 1.0)

        self.history_ = train_with_early_stopping(
            len(train[0]), lambda idx: train_step(*(tf.constant(x[idx]) for x in train)),
            lambda: evaluate(val), net.get_weights, net.set_weights, epochs=c["epochs"],
            batch_size=c["batch_size"], patience=c["patience"], seed=c["seed"],
            verbose=verbose)
        self._reads_exposure = exposure is not None
        return self

    def fit_streamed(self, train: ShardedLog, val: ShardedLog, verbose: bool = False,
                     strategy: Optional[tf.distribute.Strategy] = None,
                     worker: Tuple[int, int] = (0, 1),
                     shuffle_buffer: int = 16_384) -> "SequentialUserModel":
        """Trains from Parquet shards a chunk at a time, with early stopping on `val`'s
        loss: memory is one chunk and the shuffle buffer, whatever the log's size.

        Under a `tf.distribute` strategy (`MultiWorkerMirroredStrategy` across
        processes, `python -m user_models.train --workers=N`) the model must be built
        inside `strategy.scope()`.  Worker `i` of `n` (`worker`) reads its own train
        shards (`assign_shards`); every worker takes the same number of steps per epoch
        (the log's sessions over the global batch, `batch_size`), the gradients are
        summed across workers, and every worker scores the whole validation log: the
        same weights, so the same early-stopping decision everywhere.

        Not streamed yet: an exposure log and propensity weights (both fit in memory,
        `fit`)."""
        c = self.config
        if c.get("propensity_clip"):
            raise ConfigError("SequentialUserModel.propensity_clip: propensity weights "
                              "are fitted in memory only (fit, not fit_streamed)")
        if len(train.catalog) != self.embeddings.shape[0]:
            raise ConfigError(f"the log's catalogue has {len(train.catalog)} tracks but "
                              f"the embeddings have {self.embeddings.shape[0]} rows")
        self.track_ids = train.catalog.track_ids
        if self.behaviour_dim:  # from every shard: the same rule on every worker
            self.behaviour_fill = BehaviourFill.fit_chunks(train.chunks())
        width = max(train.max_length, val.max_length)
        self.history_ = streamed_fit.fit_streamed(
            self.net.trainable_variables, self._loss,
            lambda log: self.training_arrays(log, width), self.training_signature(),
            train, val, learning_rate=c["learning_rate"], batch_size=c["batch_size"],
            epochs=c["epochs"], patience=c["patience"], seed=c["seed"], strategy=strategy,
            worker=worker, shuffle_buffer=shuffle_buffer, verbose=verbose)
        self._reads_exposure = False
        return self

    @property
    def reads_exposure(self) -> bool:
        """Whether the simulator's tracks are read as exposed at random (fitted with an
        exposure log)."""
        return self._reads_exposure

    # ------------------------------------------------------------------ persistence
    def save(self, directory: str) -> None:
        """Weights, embeddings and configuration, written atomically."""
        save_model_dir(directory, {"class": "SequentialUserModel", "config": self.config,
                                   "behaviour_fill": self.behaviour_fill.to_json(),
                                   "reads_exposure": self.reads_exposure,
                                   "history": self.history_},
                       self.embeddings, self.net.get_weights(), self.track_ids)

    @classmethod
    def load(cls, directory: str) -> "SequentialUserModel":
        meta = read_model_meta(directory, "SequentialUserModel")
        # Saved before the exposure input existed: a net without it.
        config = {"exposure_input": False, **meta["config"]}
        model = cls(np.load(os.path.join(directory, "embeddings.npy")), **config)
        model._reads_exposure = bool(meta.get("reads_exposure"))
        model.net.set_weights(load_weights(directory))
        if "behaviour_fill" in meta:
            model.behaviour_fill = BehaviourFill.from_json(meta["behaviour_fill"])
        model.history_ = meta.get("history", [])
        model.track_ids = read_track_ids(directory)
        return model

    #: The parts of the network that do not depend on the catalogue.
    _SHARED_LAYERS = ("proj", "init_state", "cell", "att_q", "att_k", "att_v", "hidden", "out")

    def remapped(self, rows, embeddings):
        model = type(self)(embeddings, **self.config)
        for name in self._SHARED_LAYERS:
            getattr(model.net, name).set_weights(getattr(self.net, name).get_weights())
        bias = self.net.track_bias.get_weights()[0]           # [T + 1, 1], last = padding
        rows = np.asarray(rows, np.int64)
        new_bias = np.concatenate([np.where(rows[:, None] >= 0, bias[np.maximum(rows, 0)], 0.0),
                                   bias[-1:]]).astype(np.float32)
        model.net.track_bias.set_weights([new_bias])
        model.behaviour_fill = self.behaviour_fill
        model._reads_exposure = self._reads_exposure
        model.history_ = list(self.history_)
        return model


@register_user_model("sequential_ips")
@gin.configurable
class PropensityWeightedSequentialUserModel(SequentialUserModel):
    """The GRU fitted with inverse-propensity weights (`user_models.propensity`): one of
    #23's leads against the logging policy's selection bias.  Needs a log with the
    logging policy's propensities (`ensure_synthetic_world.propensities = True` for the
    synthetic world).  Saved and reloaded as a `SequentialUserModel` (the same network).

    Measured on the default world (docs/offline_verdicts.md, "Inverse-propensity
    weights"): it ranks the close calls worse than the unweighted GRU.  The weights
    correct the current pick only; the history the GRU reads was picked for the
    listener too, and weights over the whole history leave under 1% of the log."""

    def __init__(self, embeddings: np.ndarray, propensity_clip: float = 10.0, **kwargs):
        super().__init__(embeddings, propensity_clip=propensity_clip, **kwargs)
