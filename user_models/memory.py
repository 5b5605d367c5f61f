"""User models with memory: any learned model, corrected by what the listener did in
earlier sessions (`History.profile`, `spotisim.data.profiles`).

Why a correction on top of a session model rather than a new network: every learned
class (GRU, taste, logistic, ensembles, recalibrated ones) gets memory the same way,
and a listener never seen before gets exactly the session model's answer, since the
correction applies only where the profile is known.  What the session cannot show is
mostly where the listener's taste lies before the first listens and how picky the
listener is (the synthetic world's hidden taste and bias); a profile built from many
earlier listens estimates both.

The correction is two logistic regressions on the base model's own answers, fitted on
a log the base model did not train on (the validation split, which with listener ids
lies after the training split in time, so its listeners' profiles come from earlier
sessions):
- P(listen): logit' = a + b logit(p) + w . f(profile, track), with f the cosine of the
  track to the earlier listens and to the earlier skips, the log of the earlier
  sessions' count, that count times the listen cosine, and the earlier listen rate;
- P(leave): logit' = v0 + v1 logit(h) + u . g(profile), with g the earlier listen rate,
  mean session length and the log of the earlier sessions' count.
80% of the log's sessions fit them, the other 20% measure them, and each part is kept
only where it predicts those held-out sessions better (`selection`).
"""

from __future__ import annotations

import dataclasses
from typing import Dict, Optional, Tuple

import numpy as np

from spotisim.data.profiles import ListenerProfiles
from spotisim.data.session_log import SessionLog
from spotisim.errors import UserModelError
from user_models.base import AbstractUserModel, History
from user_models.evaluation import predict_log
from user_models.exposure_calibration import fit_logistic, log_loss, logit, sigmoid
from user_models.leave_features import at_risk_rows, unit


def listen_features(profile: np.ndarray, unit_vectors: np.ndarray,
                    tracks: np.ndarray) -> np.ndarray:
    """float [B, K, 5]: what the profile [B, P] says of each track [B, K], given the
    catalogue's unit track vectors [T, d]."""
    d = (profile.shape[1] - 4) // 2
    e = unit_vectors[np.maximum(tracks, 0)]
    cos_l = np.einsum("bd,bkd->bk", profile[:, :d], e)
    cos_s = np.einsum("bd,bkd->bk", profile[:, d:2 * d], e)
    n = np.broadcast_to(profile[:, 2 * d, None], cos_l.shape)
    rate = np.broadcast_to(profile[:, 2 * d + 1, None], cos_l.shape)
    return np.stack([cos_l, cos_s, n, n * cos_l, rate], axis=-1)


def leave_features(profile: np.ndarray) -> np.ndarray:
    """float [B, 3]: the earlier listen rate, mean length and log session count."""
    d = (profile.shape[1] - 4) // 2
    return profile[:, [2 * d + 1, 2 * d + 2, 2 * d]].astype(np.float64)


@dataclasses.dataclass
class MemoryCorrection:
    """The fitted weights: `listen` = (a, b, w1..w5), `leave` = (v0, v1, u1..u3); an
    empty tuple is a part not kept.  `selection`: held-out log losses."""

    listen: Tuple[float, ...] = ()
    leave: Tuple[float, ...] = ()
    selection: Dict[str, float] = dataclasses.field(default_factory=dict)

    def to_json(self) -> dict:
        return {"listen": list(self.listen), "leave": list(self.leave),
                "selection": self.selection}


def _rows(base: AbstractUserModel, log: SessionLog, profiles: np.ndarray,
          track_vectors: np.ndarray):
    """Listen rows (x, y, session) and leave rows (x, y, session) of `log` whose
    listener has a profile, as the base model answers them."""
    S = log.num_sessions
    known_s = profiles[:, -1] > 0.5
    sess = log.session_of_row
    p = predict_log(base, log)
    unit_vectors = unit(np.asarray(track_vectors, np.float64))
    feats = listen_features(profiles[sess], unit_vectors, log.tracks[:, None])[:, 0]
    keep = known_s[sess]
    listen = (np.column_stack([logit(p), feats])[keep], (~log.skipped)[keep], sess[keep])
    leave = None
    if getattr(base, "leave_hazard", None) is not None:
        tracks, skipped, mask = log.padded()
        hz = base.leave_hazard.hazards(tracks, (~skipped).astype(np.float32))
        at_risk, event = at_risk_rows(log.lengths, tracks.shape[1], 1, int(log.lengths.max()))
        at_risk &= (hz > 0) & known_s[:, None]
        srow = np.broadcast_to(np.arange(S)[:, None], at_risk.shape)[at_risk]
        x = np.column_stack([logit(hz[at_risk]), leave_features(profiles)[srow]])
        leave = (x, event[at_risk], srow)
    return listen, leave


def _fit_part(x, y, sess, fit_sessions, name, selection):
    """Weights fitted on the rows of `fit_sessions`, kept only where they predict the
    other sessions' rows better than the base answer (x[:, 0] is its logit)."""
    if x is None or len(y) == 0:
        return ()
    fit = np.isin(sess, fit_sessions)
    if fit.sum() < 50 or (~fit).sum() < 50 or len(np.unique(y[fit])) < 2:
        return ()
    w = fit_logistic(x[fit], y[fit])
    held = ~fit
    before = log_loss(sigmoid(x[held, 0]), y[held])
    after = log_loss(sigmoid(w[0] + x[held] @ w[1:]), y[held])
    selection[f"{name}_base"], selection[f"{name}_memory"] = before, after
    return tuple(float(v) for v in w) if after < before else ()


class MemoryUserModel(AbstractUserModel):
    """`base` corrected by each listener's profile (`History.profile`); the base
    answer, unchanged, where there is none."""

    def __init__(self, base: AbstractUserModel, track_vectors: np.ndarray,
                 correction: MemoryCorrection):
        self.base, self.correction = base, correction
        self.track_vectors = np.asarray(track_vectors, np.float64)
        self._unit_vectors = unit(self.track_vectors)   # once, not on every step
        self.leave_hazard = getattr(base, "leave_hazard", None)
        self.max_slate_size = base.max_slate_size
        self.track_ids = base.track_ids
        self.cascades = base.cascades

    @property
    def embeddings(self):
        """The base model's track representation (None when it has none)."""
        return getattr(self.base, "embeddings", None)

    def remapped(self, rows, embeddings) -> "MemoryUserModel":
        """The same memory over the base model remapped onto another catalogue; the
        profile's track vectors are then `embeddings` (see `AbstractUserModel.
        remapped`)."""
        return MemoryUserModel(self.base.remapped(rows, embeddings),
                               self.track_vectors[np.maximum(np.asarray(rows), 0)]
                               if embeddings is None else embeddings,
                               self.correction)

    # ------------------------------------------------------------------ fitting
    @classmethod
    def fit_on(cls, base: AbstractUserModel, log: SessionLog, profiles: ListenerProfiles,
               track_vectors: np.ndarray, holdout: float = 0.2, seed: int = 0
               ) -> "MemoryUserModel":
        """The correction of `base` fitted on `log` (one the base model did not train
        on), whose sessions' profiles `profiles` holds."""
        prof = profiles.for_log(log)
        listen, leave = _rows(base, log, prof, track_vectors)
        perm = np.random.default_rng(seed).permutation(log.num_sessions)
        fit_sessions = perm[int(round(holdout * log.num_sessions)):]
        selection: Dict[str, float] = {"known_sessions": float((prof[:, -1] > 0.5).sum())}
        w_listen = _fit_part(*listen, fit_sessions, "listen", selection)
        w_leave = _fit_part(*leave, fit_sessions, "leave", selection) if leave else ()
        return cls(base, track_vectors, MemoryCorrection(w_listen, w_leave, selection))

    # ------------------------------------------------------------------ answers
    def _listen_corrected(self, prof: np.ndarray, tracks: np.ndarray,
                          p: np.ndarray) -> np.ndarray:
        """P(listen) [B, K] of `tracks` [B, K], the base model's `p` corrected where the
        profile [B, P] is known."""
        w = self.correction.listen
        f = listen_features(prof, self._unit_vectors, tracks)
        z = w[0] + w[1] * logit(p) + f @ np.asarray(w[2:])
        return np.where((prof[:, -1] > 0.5)[:, None], sigmoid(z), p)

    def _corrected(self, history: History, tracks: np.ndarray, p: np.ndarray) -> np.ndarray:
        if not self.correction.listen or history.profile is None:
            return p
        return self._listen_corrected(np.asarray(history.profile, np.float64), tracks, p)

    def correct_log_rows(self, log: SessionLog, p: np.ndarray,
                         profiles: Optional[np.ndarray]) -> np.ndarray:
        """The teacher-forced P(listen) of every row of `log`, from the base model's
        `p` [R] and the log's sessions' profiles [S, P] (None: the base answers)."""
        if not self.correction.listen or profiles is None:
            return p
        prof = np.asarray(profiles, np.float64)[log.session_of_row]
        return self._listen_corrected(prof, log.tracks[:, None], np.asarray(p)[:, None])[:, 0]

    def _predict(self, history, slate, slate_responses):
        slate = np.asarray(slate)
        return self._corrected(history, slate, self.base._predict(history, slate,
                                                                    slate_responses))

    def score_candidates(self, history, candidates):
        candidates = np.asarray(candidates)
        return self._corrected(history, candidates,
                               self.base.score_candidates(history, candidates))

    def leave_probs(self, history, slate, responses):
        h = self.base.leave_probs(history, slate, responses)
        v = self.correction.leave
        if h is None or not v or history.profile is None:
            return h
        prof = np.asarray(history.profile, np.float64)
        z = v[0] + v[1] * logit(h) + (leave_features(prof) @ np.asarray(v[2:]))[:, None]
        return np.where((prof[:, -1] > 0.5)[:, None], sigmoid(z), h)


def with_memory(base: AbstractUserModel, val_log: SessionLog, profiles: ListenerProfiles,
                track_vectors: np.ndarray) -> MemoryUserModel:
    """`base` with memory fitted on `val_log`; a log without listener ids gives the base
    model's answers (nothing to remember)."""
    if not val_log.has_listeners:
        raise UserModelError("a user model with memory needs a log with listener ids "
                             "(the listener_id column)")
    return MemoryUserModel.fit_on(base, val_log, profiles, track_vectors)
