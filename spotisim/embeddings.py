"""Track embeddings: the vectors user models, track samplers and agents use to compare
tracks.

Two sources:
  * `acoustic_embeddings`: the track table's features, z-scored (needs a track table).
  * `Item2VecTrainer`: learned from sessions alone (what the real MSSD slice needs, as it
    ships without a track table): a Keras model predicts a held-out track of a session
    from the mean embedding of the others (the LIRD write-up's scheme), trained with
    sampled softmax so it scales to large catalogues.
Both are returned as a `TrackEmbeddings` that saves and loads with its track ids.
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Optional

import gin
import numpy as np

from spotisim.data.catalog import TrackCatalog
from spotisim.data.session_log import SessionLog
from spotisim.errors import ConfigError, DataValidationError
from spotisim.io_utils import atomic_dir


@dataclasses.dataclass
class TrackEmbeddings:
    """A [T, d] float32 matrix aligned with a catalog's track indices."""

    vectors: np.ndarray
    track_ids: np.ndarray
    source: str

    @property
    def dim(self) -> int:
        return int(self.vectors.shape[1])

    def normalized(self) -> np.ndarray:
        """Rows scaled to unit length (cosine similarity becomes a dot product)."""
        n = np.linalg.norm(self.vectors, axis=1, keepdims=True)
        return (self.vectors / np.maximum(n, 1e-8)).astype(np.float32)

    def save(self, directory: str) -> None:
        with atomic_dir(directory) as tmp:
            np.save(os.path.join(tmp, "vectors.npy"), self.vectors.astype(np.float32))
            with open(os.path.join(tmp, "embeddings.json"), "w") as f:
                json.dump({"source": self.source, "track_ids": self.track_ids.tolist()}, f)

    @classmethod
    def load(cls, directory: str) -> "TrackEmbeddings":
        with open(os.path.join(directory, "embeddings.json")) as f:
            meta = json.load(f)
        vectors = np.load(os.path.join(directory, "vectors.npy"))
        return cls(vectors, np.asarray(meta["track_ids"], dtype=object), meta["source"])

    def aligned_to(self, catalog: TrackCatalog) -> np.ndarray:
        """Vectors reordered to `catalog`'s indices; raises if a track is missing."""
        pos = TrackCatalog(self.track_ids).indices(catalog.track_ids)
        if (pos < 0).any():
            missing = catalog.track_ids[int(np.argmax(pos < 0))]
            raise DataValidationError(f"track {missing!r} has no embedding; re-train the "
                                      "embeddings on a log that covers the catalogue")
        return self.vectors[pos]


def acoustic_embeddings(catalog: TrackCatalog) -> TrackEmbeddings:
    """The track table's numeric features, z-scored per column."""
    if not catalog.has_features:
        raise ConfigError("acoustic embeddings need a track table; without one use "
                          "item2vec embeddings (embeddings learned from sessions)")
    return TrackEmbeddings(catalog.normalized_features(), catalog.track_ids, "acoustic")


@gin.configurable
@dataclasses.dataclass
class Item2VecTrainer:
    """Learns track embeddings from co-occurrence within sessions.

    For every session and epoch one track is held out at random; the model predicts it
    from the mean embedding of the session's other tracks.  Output weights are separate
    (as in word2vec); the input embeddings are the result.

    Attributes:
      dim: embedding size (the LIRD write-up uses 300).
      epochs: passes over the sessions.
      batch_size: sessions per gradient step.
      num_sampled: negative classes per step for sampled softmax.
      learning_rate: Adam learning rate.
      seed: seeds the hold-out draws and the initialisation.
    """

    dim: int = 32
    epochs: int = 10
    batch_size: int = 256
    num_sampled: int = 64
    learning_rate: float = 0.01
    seed: int = 0

    def _model(self, T: int):
        """(variables [in, out_w, out_b], one sampled-softmax Adam step on (context,
        target), the full-softmax loss of (context, target)): what the in-memory and
        the streamed fit share."""
        import tensorflow as tf
        tf.random.set_seed(self.seed)
        init = tf.keras.initializers.RandomUniform(-0.5 / self.dim, 0.5 / self.dim, seed=self.seed)
        emb = tf.Variable(init((T + 1, self.dim)), name="item2vec/in")  # row T = padding
        out_w = tf.Variable(tf.zeros((T, self.dim)), name="item2vec/out_w")
        out_b = tf.Variable(tf.zeros((T,)), name="item2vec/out_b")
        opt = tf.keras.optimizers.Adam(self.learning_rate)
        num_sampled = int(min(self.num_sampled, max(T - 1, 1)))

        @tf.function(reduce_retracing=True)
        def train_step(ctx, target):
            with tf.GradientTape() as tape:
                vecs = tf.nn.embedding_lookup(emb, ctx)  # [B, L, d]
                valid = tf.cast(ctx < T, tf.float32)[..., None]
                mean = tf.reduce_sum(vecs * valid, 1) / tf.maximum(tf.reduce_sum(valid, 1), 1.0)
                loss = tf.reduce_mean(tf.nn.sampled_softmax_loss(
                    out_w, out_b, labels=tf.cast(target[:, None], tf.int64), inputs=mean,
                    num_sampled=num_sampled, num_classes=T))
            grads = tape.gradient(loss, [emb, out_w, out_b])
            opt.apply_gradients(zip(grads, [emb, out_w, out_b]))
            return loss

        def full_loss(ctx, target):
            vecs = tf.nn.embedding_lookup(emb, ctx)
            valid = tf.cast(ctx < T, tf.float32)[..., None]
            mean = tf.reduce_sum(vecs * valid, 1) / tf.maximum(tf.reduce_sum(valid, 1), 1.0)
            logits = tf.matmul(mean, out_w, transpose_b=True) + out_b
            return float(tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(
                target, logits)))

        return (emb, out_w, out_b), train_step, full_loss

    @staticmethod
    def _usable(log: SessionLog, width: Optional[int] = None):
        """(tracks, mask) [S', L] of the log's sessions of two tracks or more, padded to
        `width` (default: the log's longest session)."""
        tracks, _, mask = log.padded(width)
        keep = mask.sum(axis=1) >= 2
        return tracks[keep], mask[keep]

    @staticmethod
    def _probe(tracks: np.ndarray, mask: np.ndarray, T: int):
        """A fixed probe (the last track of up to 512 sessions held out, scored with the
        full softmax): a deterministic measure of what training achieved."""
        lengths = mask.sum(axis=1)
        probe = np.arange(min(512, len(tracks)))
        target = tracks[probe, lengths[probe] - 1]
        ctx = np.where(mask[probe], tracks[probe], T)
        ctx[probe, lengths[probe] - 1] = T
        return ctx, target

    @staticmethod
    def _held_out(tracks: np.ndarray, mask: np.ndarray, T: int, rng: np.random.Generator):
        """(context, target): one track of each session held out at random."""
        lengths = mask.sum(axis=1)
        held = (rng.random(len(tracks)) * lengths).astype(np.int64)
        target = tracks[np.arange(len(tracks)), held]
        ctx = np.where(mask, tracks, T)
        ctx[np.arange(len(tracks)), held] = T
        return ctx, target

    def _check(self) -> None:
        if self.dim < 1 or self.epochs < 1:
            raise ConfigError("Item2VecTrainer.dim and epochs must be positive")

    def fit(self, log: SessionLog, verbose: bool = False) -> TrackEmbeddings:
        import tensorflow as tf

        self._check()
        T = len(log.catalog)
        tracks, mask = self._usable(log)
        if len(tracks) == 0:
            raise DataValidationError("item2vec needs sessions of at least two tracks")
        rng = np.random.default_rng(self.seed)
        (emb, _, _), train_step, full_loss = self._model(T)
        probe = self._probe(tracks, mask, T)
        self.probe_loss_before = full_loss(*probe)
        self.history = []
        for epoch in range(self.epochs):
            ctx, target = self._held_out(tracks, mask, T, rng)
            order = rng.permutation(len(tracks))
            losses = []
            for b in range(0, len(order), self.batch_size):
                idx = order[b:b + self.batch_size]
                losses.append(float(train_step(tf.constant(ctx[idx], tf.int32),
                                               tf.constant(target[idx], tf.int32))))
            self.history.append(float(np.mean(losses)))
            if verbose:
                print(f"item2vec epoch {epoch + 1}/{self.epochs} loss {self.history[-1]:.4f}")
        self.probe_loss_after = full_loss(*probe)
        # A track of the catalogue no training session played keeps no random initial
        # vector: it gets the average track (`fold_in` with nothing to place it from).
        trained = np.bincount(tracks[mask], minlength=T) > 0
        vectors = fold_in(emb.numpy()[:T], trained, log.subset(np.zeros(0, np.int64)))
        return TrackEmbeddings(vectors, log.catalog.track_ids, f"item2vec(dim={self.dim})")

    def fit_streamed(self, log, shuffle_buffer: int = 65_536,
                     verbose: bool = False) -> TrackEmbeddings:
        """`fit` from a `ShardedLog`, a chunk at a time: each epoch holds one track of
        every session out (drawn per chunk, seeded by the epoch) and trains on the
        sessions shuffled in a buffer.  Memory: the vectors, one chunk and the buffer."""
        import tensorflow as tf

        self._check()
        T = len(log.catalog)
        (emb, _, _), train_step, full_loss = self._model(T)
        probe, trained, width = None, np.zeros(T, bool), log.max_length
        for chunk in log.chunks():   # the probe from the first sessions; what was played
            tracks, mask = self._usable(chunk)
            if probe is None and len(tracks):
                probe = self._probe(tracks, mask, T)
            trained[tracks[mask]] = True
        if probe is None:
            raise DataValidationError("item2vec needs sessions of at least two tracks")
        self.probe_loss_before = full_loss(*probe)
        signature = (tf.TensorSpec([None, width], tf.int32), tf.TensorSpec([None], tf.int32))
        self.history = []
        for epoch in range(self.epochs):
            rng = np.random.default_rng([self.seed, epoch])

            def pairs(chunk, rng=rng):
                tracks, mask = self._usable(chunk, width)
                ctx, target = self._held_out(tracks, mask, T, rng)
                return ctx.astype(np.int32), target.astype(np.int32)

            losses = [float(train_step(ctx, target)) for ctx, target in log.batches(
                pairs, signature, batch_size=self.batch_size, shuffle_buffer=shuffle_buffer,
                seed=self.seed, epoch=epoch)]
            self.history.append(float(np.mean(losses)))
            if verbose:
                print(f"item2vec epoch {epoch + 1}/{self.epochs} loss {self.history[-1]:.4f}")
        self.probe_loss_after = full_loss(*probe)
        empty = next(log.chunks()).subset(np.zeros(0, np.int64))
        vectors = fold_in(emb.numpy()[:T], trained, empty)
        return TrackEmbeddings(vectors, log.catalog.track_ids, f"item2vec(dim={self.dim})")


@gin.configurable
def build_embeddings(log: SessionLog, source: str = "auto",
                     trainer: Optional[Item2VecTrainer] = None,
                     unlabelled: Optional[SessionLog] = None) -> TrackEmbeddings:
    """Chooses the embedding source: 'acoustic', 'item2vec', or 'auto' (acoustic when
    the log came with a track table, item2vec otherwise).

    `unlabelled`: a log over the same catalogue (typically the whole log, of which `log`
    is the train split) whose track ids, not labels, place the tracks item2vec never
    saw in `log` (`fold_in`).  Acoustic vectors need no placing."""
    if source == "auto":
        source = "acoustic" if log.catalog.has_features else "item2vec"
    if source == "acoustic":
        return acoustic_embeddings(log.catalog)
    if source == "item2vec":
        emb = (trainer or Item2VecTrainer()).fit(log)
        if unlabelled is not None:
            played = np.bincount(log.tracks, minlength=len(log.catalog)) > 0
            if len(played) != len(unlabelled.catalog):
                raise ConfigError("build_embeddings: the unlabelled log has another "
                                  "catalogue than the training log")
            emb = dataclasses.replace(emb, vectors=fold_in(emb.vectors, played, unlabelled),
                                      source=emb.source + "+fold-in")
        return emb
    raise ConfigError(f"build_embeddings.source must be 'auto', 'acoustic' or 'item2vec', "
                      f"got {source!r}")


def shard_embeddings(log) -> TrackEmbeddings:
    """Embeddings of a `ShardedLog`'s catalogue: acoustic vectors when it has a track
    table; else item2vec, fitted from the shards a chunk at a time
    (`Item2VecTrainer.fit_streamed`)."""
    if log.catalog.has_features:
        return acoustic_embeddings(log.catalog)
    return Item2VecTrainer().fit_streamed(log)


def dataset_embeddings(data) -> TrackEmbeddings:
    """A run's embeddings of a `Dataset`: `build_embeddings` of its train split, the
    tracks it never played placed from the whole log; for a log on shards
    (`Dataset.train_shards`), `shard_embeddings` of every training shard rather than
    of the sample read whole."""
    if getattr(data, "train_shards", None) is not None:
        return shard_embeddings(data.train_shards)
    return build_embeddings(data.train, unlabelled=data.log)


def fold_in(vectors: np.ndarray, known: np.ndarray, log: SessionLog) -> np.ndarray:
    """Vectors for the tracks not in `known`, placed from their sessions in `log`.

    The documented representation of a track a model never saw: the mean vector of the
    known tracks it shares sessions with in `log` (item2vec's own prediction of a track
    from its context, using track ids only, never labels), scaled to the known vectors'
    mean length.  A track that shares no session with a known track gets the mean of
    the known vectors (the "average track").

    Args:
      vectors: float [T, d], rows of unknown tracks ignored.
      known: bool [T] which rows are real.
      log: sessions whose track indices point into the same T rows.

    Returns:
      float32 [T, d]: known rows unchanged, unknown rows folded in.
    """
    vectors = np.asarray(vectors, np.float32)
    known = np.asarray(known, bool)
    out = vectors.copy()
    if known.all():
        return out
    if not known.any():
        raise DataValidationError("no track of the catalogue has a vector: nothing to "
                                  "place unseen tracks from")
    mean_norm = float(np.linalg.norm(vectors[known], axis=1).mean())
    average = vectors[known].mean(0)
    session = log.session_of_row
    is_known = known[log.tracks]
    d = vectors.shape[1]
    # Per session: the sum and count of its known tracks' vectors.
    sums = np.zeros((log.num_sessions, d), np.float64)
    np.add.at(sums, session[is_known], vectors[log.tracks[is_known]])
    counts = np.bincount(session[is_known], minlength=log.num_sessions).astype(np.float64)
    # Per unknown track: the sums over the sessions it was played in.
    rows = np.nonzero(~is_known)[0]
    acc = np.zeros((len(vectors), d), np.float64)
    np.add.at(acc, log.tracks[rows], sums[session[rows]])
    n = np.bincount(log.tracks[rows], weights=counts[session[rows]], minlength=len(vectors))
    placed = np.where(n[:, None] > 0, acc / np.maximum(n, 1)[:, None], average[None, :])
    norms = np.maximum(np.linalg.norm(placed, axis=1, keepdims=True), 1e-9)
    placed = placed / norms * mean_norm
    out[~known] = placed[~known].astype(np.float32)
    return out
