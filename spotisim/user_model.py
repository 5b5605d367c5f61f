"""The user-model interface every simulator part talks to.  It lives in the simulator's
own package (the simulator defines what it needs; `user_models` implements it), so
`spotisim` never imports upward into `user_models`.

A user model answers "will this listener listen to (not skip) each track of this slate,
heard in order, after this history?".  It is called once per environment step for the
whole batch of listeners (vectorised), never once per listener.
"""

from __future__ import annotations

import abc
import dataclasses
from typing import Optional, Tuple

import numpy as np

from spotisim.errors import UserModelError


@dataclasses.dataclass
class History:
    """What B listeners have heard so far in their episodes (arrays [B, ...]).

    Attributes:
      tracks: int32 [B, H] catalog indices, oldest first, left-aligned; -1 = padding.
      responses: float32 [B, H] 1 = listened, 0 = skipped (0 on padding).
      length: int32 [B] number of valid entries per row.
      context: int16 [B] context_type code (see schema.CONTEXT_TYPES); -1 = unknown.
      listener: int64 [B] listener id where known (synthetic world); -1 otherwise.
      hidden: optional float [B, Dh] hidden per-episode state that only the ground truth
        may read (the synthetic session mood).  Learned models must ignore it.
      behaviour: optional float32 [B, H, F] the logged behaviour of each heard track
        (`spotisim.data.behaviour`); NaN rows are steps nobody logged (simulated or
        predicted), which a model reading behaviour fills by its rule.  None: no step
        was logged.
      logged: optional int [B, M] the tracks the logging policy lined up for this
        session after the history (-1 pad), when the episode starts from a logged
        session: the tracks chosen for this listener the way the log's were, which a
        model fitted with an exposure log tells apart from tracks exposed at random.
      profile: optional float32 [B, P] what each listener did before this session
        (`spotisim.data.profiles`: built only from the listener's earlier sessions;
        its last column is 1 where the listener has one).  None, or a row with 0
        there: a new or anonymous listener, for whom a model with memory gives its
        session-only answer.
    """

    tracks: np.ndarray
    responses: np.ndarray
    length: np.ndarray
    context: np.ndarray
    listener: np.ndarray
    hidden: Optional[np.ndarray] = None
    behaviour: Optional[np.ndarray] = None
    logged: Optional[np.ndarray] = None
    profile: Optional[np.ndarray] = None

    @property
    def batch_size(self) -> int:
        return int(self.tracks.shape[0])

    def take(self, idx: np.ndarray) -> "History":
        return History(self.tracks[idx], self.responses[idx], self.length[idx],
                       self.context[idx], self.listener[idx],
                       None if self.hidden is None else self.hidden[idx],
                       None if self.behaviour is None else self.behaviour[idx],
                       None if self.logged is None else self.logged[idx],
                       None if self.profile is None else self.profile[idx])

    def extended(self, tracks: np.ndarray, responses: np.ndarray) -> "History":
        """This history with `tracks` [B, k] (and their responses) heard after it."""
        tracks = np.asarray(tracks)
        B, k = tracks.shape
        width = int(self.length.max(initial=0)) + k
        out_t = np.full((B, max(width, 1)), -1, np.int32)
        out_r = np.zeros((B, max(width, 1)), np.float32)
        w0 = min(self.tracks.shape[1], width)
        out_t[:, :w0] = self.tracks[:, :w0]
        out_r[:, :w0] = self.responses[:, :w0]
        cols = self.length[:, None].astype(np.int64) + np.arange(k)[None, :]
        rows = np.arange(B)[:, None]
        out_t[rows, cols] = tracks
        out_r[rows, cols] = np.asarray(responses, np.float32)
        out_b = None
        if self.behaviour is not None:  # the new steps were not logged: NaN
            out_b = np.full((B, max(width, 1), self.behaviour.shape[2]), np.nan, np.float32)
            out_b[:, :w0] = self.behaviour[:, :w0]
            out_b[rows, cols] = np.nan
        return History(out_t, out_r, (self.length + k).astype(np.int32), self.context,
                       self.listener, self.hidden, out_b, self.logged, self.profile)

    def lined_up(self, tracks: np.ndarray) -> np.ndarray:
        """bool [B, K]: which of `tracks` [B, K] the logging policy lined up for this
        session after the history (`logged`; all False without it)."""
        tracks = np.asarray(tracks)
        if self.logged is None or not np.size(self.logged):
            return np.zeros(tracks.shape, bool)
        logged = np.asarray(self.logged)
        return (tracks[:, :, None] == logged[:, None, :]).any(-1) & (tracks >= 0)

    @classmethod
    def empty(cls, batch_size: int, context: Optional[np.ndarray] = None) -> "History":
        ctx = np.full(batch_size, -1, np.int16) if context is None else np.asarray(context, np.int16)
        return cls(np.full((batch_size, 0), -1, np.int32), np.zeros((batch_size, 0), np.float32),
                   np.zeros(batch_size, np.int32), ctx, np.full(batch_size, -1, np.int64))


class Responses(tuple):
    """What `respond` returns: unpacks as (probabilities [B, K], responses bool [B, K],
    left bool [B] or None) and also carries `heard` bool [B, K]: False for the slate
    positions after the listener left (never played, so neither listened nor skipped),
    and `hazards` float [B, K] or None: the model's P(leave) after each position."""

    def __new__(cls, probs: np.ndarray, responses: np.ndarray, left: Optional[np.ndarray],
                heard: Optional[np.ndarray] = None, hazards: Optional[np.ndarray] = None):
        self = super().__new__(cls, (probs, responses, left))
        self.heard = np.ones(np.shape(responses), bool) if heard is None else heard
        self.hazards = hazards
        return self


def read_model_meta(directory: str, expected_class: str) -> dict:
    """The user_model.json of a saved model, checked to hold `expected_class`."""
    import json
    import os
    path = os.path.join(directory, "user_model.json")
    if not os.path.exists(path):
        raise UserModelError(f"{directory}: not a saved user model (user_model.json missing)")
    with open(path) as f:
        meta = json.load(f)
    if meta.get("class") != expected_class:
        raise UserModelError(f"{directory}: holds a {meta.get('class')}, not a {expected_class}")
    return meta


def check_probabilities(p: np.ndarray, shape: Tuple[int, ...], who: str) -> np.ndarray:
    """Raises UserModelError unless `p` is a finite array of probabilities of `shape`."""
    p = np.asarray(p)
    if p.shape != shape:
        raise UserModelError(f"{who} returned probabilities of shape {p.shape}, "
                             f"expected {shape} (batch, slate size)")
    if not np.isfinite(p).all():
        raise UserModelError(f"{who} returned NaN or infinite probabilities")
    if (p < 0).any() or (p > 1).any():
        raise UserModelError(f"{who} returned probabilities outside [0, 1] "
                             f"(min {p.min():.4g}, max {p.max():.4g})")
    return p


class AbstractUserModel(abc.ABC):
    """P(listen) for each position of a slate, given the history; batched.

    Template methods: `predict` and `respond` validate inputs and outputs once, so
    subclasses implement only `_predict` (and, when they can do the cascade faster in one
    go, `_respond`).
    """

    #: True when the probability of slate position k depends on the responses at
    #: positions < k (the skip cascade).  When False, `respond` needs one `_predict`.
    cascades: bool = True
    #: The longest slate the model can score (None: any length).
    max_slate_size: Optional[int] = None
    #: P(leave) after a track, learned from session lengths (a `LeaveHazard` or a
    #: `LeaveHead`), or None: a model without one never ends a session by itself.
    leave_hazard = None
    #: How a learned model of this class learns leaving: the class fitted on the train
    #: split's session lengths (`experiments.run.attach_leave_hazard`).  The simple
    #: fitted hazard by default; the sequential model has a Keras leave head.
    leave_model_class = "LeaveHazard"
    #: The catalogue the model's track indices point into (row i = track_ids[i]):
    #: recorded by `fit`, saved with the model, read by
    #: `user_models.catalog_alignment.align_to_log`.  None: unknown.
    track_ids: Optional[np.ndarray] = None
    #: True for a model whose answers do not depend on which track is which.
    catalog_free: bool = False

    def fit(self, train_log, val_log, verbose: bool = False) -> "AbstractUserModel":
        """Learns from a training log (early stopping on the validation log).  Models
        with nothing to learn return themselves."""
        return self

    def save(self, directory: str) -> None:
        raise UserModelError(f"{type(self).__name__} cannot be saved")

    def remapped(self, rows: np.ndarray, embeddings: Optional[np.ndarray]) -> "AbstractUserModel":
        """A copy of this model reading another catalogue: new track i is this model's
        track rows[i], or unseen when rows[i] < 0; `embeddings` [T_new, d] gives every
        new track's vector (unseen ones already placed).  Per-track parameters of
        unseen tracks take the value of a track never played in training.  Use
        `catalog_alignment.align_to_log` rather than calling this directly."""
        raise UserModelError(f"{type(self).__name__} cannot be mapped onto another "
                             "catalogue")

    def predict(self, history: History, slate: np.ndarray,
                slate_responses: Optional[np.ndarray] = None) -> np.ndarray:
        """P(listen) [B, K] for each slate position.

        Args:
          history: what each listener heard so far.
          slate: int [B, K] track indices, heard in order.
          slate_responses: optional bool [B, K]: the actual outcomes of the slate so far.
            Position k's probability is conditioned on positions < k of it (teacher
            forcing).  When None (outcomes unknown), a cascading model conditions on its
            own most likely outcome of each earlier position (p >= 0.5: listened).
        """
        slate = np.asarray(slate)
        if slate.ndim != 2 or slate.shape[0] != history.batch_size:
            raise UserModelError(f"slate must be [batch, K] with batch "
                                 f"{history.batch_size}, got shape {slate.shape}")
        if self.max_slate_size is not None and slate.shape[1] > self.max_slate_size:
            raise UserModelError(f"{type(self).__name__} scores slates of at most "
                                 f"{self.max_slate_size} tracks, got {slate.shape[1]}")
        p = self._predict(history, slate, slate_responses)
        return check_probabilities(p, slate.shape, type(self).__name__)

    def score_candidates(self, history: History, candidates: np.ndarray) -> np.ndarray:
        """P(listen) [B, C] of each candidate as the very next track (each on its own,
        not as a slate).  What the greedy policy ranks by, and the per-candidate feature
        `PlaylistEnvironment` can observe.  Models that can encode a history once and
        score all its candidates override this; the default repeats the history."""
        candidates = np.asarray(candidates)
        B, C = candidates.shape
        if B != history.batch_size:
            raise UserModelError(f"candidates must be [batch, C] with batch "
                                 f"{history.batch_size}, got shape {candidates.shape}")
        rows = np.repeat(np.arange(B), C)
        return self.predict(history.take(rows), candidates.reshape(-1, 1))[:, 0].reshape(B, C)

    def leave_probs(self, history: History, slate: np.ndarray,
                    responses: np.ndarray) -> Optional[np.ndarray]:
        """P(the listener leaves) [B, K] right after each slate position, given the
        responses to the slate; None for a model that does not model leaving.

        The default asks `leave_hazard` (fitted on session lengths) about the history
        extended by the slate; the ground truth answers with the world's own hazard."""
        if self.leave_hazard is None:
            return None
        K = slate.shape[1]
        ext = history.extended(slate, responses)
        hz = self.leave_hazard.hazards(ext.tracks, ext.responses)
        cols = history.length[:, None].astype(np.int64) + np.arange(K)[None, :]
        return np.take_along_axis(hz, cols, axis=1)

    def respond(self, history: History, slate: np.ndarray, uniforms: np.ndarray,
                leaving: bool = True, sample_exit: bool = True) -> "Responses":
        """Samples the listener's responses to a slate, position by position.

        Args:
          history: what each listener heard so far.
          slate: int [B, K].
          uniforms: float [B, K + 1] uniform draws from the environment's RNG; column k
            decides position k's response, the last one when the listener leaves.
          leaving: whether the listener may leave (models that model it).  The exit is
            checked after every track: with hazards h_k (`leave_probs`), the listener
            has left by position k when u < 1 - prod_{j<=k} (1 - h_j) (one draw u, the
            inverse of the leaving time's distribution); tracks after that are not heard
            (response 0).
          sample_exit: with False the exit is not drawn (every track is heard, `left` is
            None) and only the hazards are returned (`Responses.hazards`), for
            environments that take leaving in expectation (see
            `PlaylistEnvironment.expected_leaving`).

        Returns:
          `Responses`: (probabilities [B, K], responses bool [B, K], left bool [B] or
          None), with `.heard` [B, K].
        """
        slate = np.asarray(slate)
        probs, responses, hz = self._respond(history, slate, uniforms)
        check_probabilities(probs, slate.shape, type(self).__name__)
        if not leaving:
            hz = None
        elif hz is None:
            hz = self.leave_probs(history, slate, responses)
        if hz is None:
            return Responses(probs, responses, None)
        check_probabilities(hz, slate.shape, f"{type(self).__name__}.leave_probs")
        if not sample_exit:
            return Responses(probs, responses, None, hazards=hz)
        gone = uniforms[:, -1:] < 1.0 - np.cumprod(1.0 - hz, axis=1)   # [B, K]
        heard = np.concatenate([np.ones_like(gone[:, :1]), ~gone[:, :-1]], axis=1)
        return Responses(probs, responses & heard, gone[:, -1], heard, hz)

    @abc.abstractmethod
    def _predict(self, history: History, slate: np.ndarray,
                 slate_responses: Optional[np.ndarray]) -> np.ndarray:
        """Subclasses: P(listen) [B, K]."""

    def _respond(self, history, slate, uniforms):
        """Default cascade: K teacher-forced predictions (one when not `cascades`).

        Returns (probabilities, responses, hazards): `hazards` [B, K] is P(leave) after
        each position when the model computed it on the way (the ground truth, whose
        replay of the history serves both), else None and `respond` asks
        `leave_probs`."""
        B, K = slate.shape
        if not self.cascades:
            probs = self._predict(history, slate, None)
            return probs, uniforms[:, :K] < probs, None
        responses = np.zeros((B, K), bool)
        probs = np.zeros((B, K))
        for k in range(K):
            p = self._predict(history, slate, responses)
            probs[:, k] = p[:, k]
            responses[:, k] = uniforms[:, k] < p[:, k]
        return probs, responses, None
