"""A learned simulator recalibrated off the logged path with a random-exposure slice.

Why: a log played by a recommender shows each listener tracks chosen *because* of a
taste the log does not show, so a model fitted on it answers P(listen | chosen for this
listener): too high for tracks a policy puts in front of a listener for other reasons,
most of all for tracks unlike the recent listens (docs/offline_verdicts.md).  A
platform keeps a slice of traffic exposed at random (`spotisim.data.exposure`); on it the
fitted model's answers can be compared with what listeners did, where nothing chose the
tracks for them.

The correction is small and fitted on that slice only (never on the ground truth):
- P(listen): logit' = a + b logit(p) + c rho [+ d popularity] [+ e support], with p the
  model's teacher-forced P(listen) of each randomly exposed track, rho its redundancy
  (how close it is to the recent listens, from the model's own leave head:
  `leave_hazard.redundancy`), and, each only where the slice's held-out sessions show
  it predicts the listens better, the track's popularity in the log and (opt-in) the
  pair's co-play support (how often the log played the track with the listened
  history: `user_models.log_support`; the log's support, as ROLeR and DORL read it);
- P(leave): logit' = v0 + v1 logit(h), with h the leave head's hazard after each
  randomly exposed track (at-risk positions before the log's length cap).
Both are logistic regressions (Newton's method, a small ridge), fitted on 80% of the
slice's sessions; the other 20% give the held-out log loss of the model with and
without each part, and a part is kept only where it predicts those sessions better:
how a team chooses, with what it has (`ExposureCalibration.selection`).

`ExposureCalibratedUserModel` applies it to every track except those the logging
policy lined up for the episode's session (`History.logged`), which were chosen the way
the log's were.  Policies keep observing the base model's answers where they observe
any (its `leave_hazard` is the base model's).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import os
import sys
from typing import Dict, Optional, Tuple

import numpy as np

from spotisim.data.exposure import ExposureLog
from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file
from user_models.base import AbstractUserModel, History
from user_models.evaluation import log_histories, predict_log

EPS = 1e-6


def logit(p):
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-np.asarray(x, np.float64)))


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-3,
                 iterations: int = 50) -> np.ndarray:
    """Weights [1 + F] (intercept first) of a logistic regression of y on x [N, F],
    by Newton's method with a ridge on the non-intercept weights."""
    x = np.asarray(x, np.float64).reshape(len(y), -1)
    X = np.concatenate([np.ones((len(x), 1)), x], axis=1)
    y = np.asarray(y, np.float64)
    w = np.zeros(X.shape[1])
    pen = np.full(X.shape[1], ridge * len(y))
    pen[0] = 0.0
    for _ in range(iterations):
        p = sigmoid(X @ w)
        grad = X.T @ (p - y) + pen * w
        hess = (X * (p * (1 - p))[:, None]).T @ X + np.diag(pen) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return w


def log_loss(p: np.ndarray, y: np.ndarray) -> float:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    y = np.asarray(y, np.float64)
    return float(-(y * np.log(p) + (1 - y) * np.log1p(-p)).mean()) if len(y) else float("nan")


def row_log_loss(p: np.ndarray, y: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    y = np.asarray(y, np.float64)
    return -(y * np.log(p) + (1 - y) * np.log1p(-p))


def clustered_mean(values: np.ndarray, sessions: np.ndarray):
    """The mean of per-row `values` and its standard error with rows clustered by
    session (rows of one session are not independent)."""
    values = np.asarray(values, np.float64)
    if len(values) == 0:
        return 0.0, float("inf")
    _, codes = np.unique(sessions, return_inverse=True)
    sums = np.bincount(codes, weights=values)
    counts = np.bincount(codes)
    mean = float(values.sum() / counts.sum())
    resid = sums - mean * counts
    se = float(np.sqrt((resid ** 2).sum()) / counts.sum())
    return mean, se


def within_log(leave_model):
    """The leave model held to its log's support where it can be (`LeaveHead.within_log`;
    a model without a recorded range, or of another class, as it is; a `worst(...)`
    ensemble's, member by member)."""
    from user_models.composite import WorstLeaveHazard
    if isinstance(leave_model, WorstLeaveHazard):
        return leave_model.within_log()
    if getattr(leave_model, "feature_max", None) is not None:
        return leave_model.within_log()
    return leave_model


def exposure_rows(model: AbstractUserModel, exposure: ExposureLog, leave_model=None,
                  support=None) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """The randomly exposed rows of the slice, as the model sees them (its P(leave)
    from `leave_model`, default its own).

    Returns (listen rows: `logit_p`, `rho`, `listened`, `session`, `track`, and with a
    `support` (`CoPlaySupport`) the row's co-play `support`; leave rows: `logit_h`,
    `left`, `session`, `position` (1-based), and the exposed track's `rho` and
    `listened`), every row after position `explore_from`."""
    log = exposure.log
    tracks, skipped, mask, context, listener, mood, _ = log_histories(log)
    S, L = tracks.shape
    probs = np.zeros((S, L))
    probs[mask] = predict_log(model, log)
    start = exposure.explore_from
    rho = np.zeros((S, L))
    sup = np.zeros((S, L))
    for t in range(start, L):
        rows = np.nonzero(mask[:, t])[0]
        if len(rows) == 0:
            continue
        h = History(tracks[rows, :t].astype(np.int32), (~skipped[rows, :t]).astype(np.float32),
                    np.full(len(rows), t, np.int32), context[rows], listener[rows])
        rho[rows, t] = model.leave_hazard.redundancy(h, tracks[rows, t:t + 1])[:, 0]
        if support is not None:
            sup[rows, t] = support.support(h.tracks, h.responses, tracks[rows, t:t + 1])[:, 0]
    exposed = mask & (np.arange(L)[None, :] >= start)
    session = np.broadcast_to(np.arange(S)[:, None], (S, L))
    listen = {"logit_p": logit(probs[exposed]), "rho": rho[exposed],
              "listened": (~skipped)[exposed], "session": session[exposed],
              "track": tracks[exposed].astype(np.int64)}
    if support is not None:
        listen["support"] = sup[exposed]
    hz = (leave_model or model.leave_hazard).hazards(tracks, (~skipped).astype(np.float32))
    lengths = log.lengths
    cap = int(lengths.max())
    pos = np.arange(1, L + 1)[None, :]
    at_risk = exposed & (pos < cap) & (pos <= lengths[:, None]) & (hz > 0)
    leave = {"logit_h": logit(hz[at_risk]),
             "left": (pos == lengths[:, None])[at_risk],
             "session": session[at_risk], "rho": rho[at_risk],
             "listened": (~skipped)[at_risk],
             "position": np.broadcast_to(pos, at_risk.shape)[at_risk]}
    return listen, leave


def past_cap_bands(position: np.ndarray, cap: int) -> np.ndarray:
    """float [..., 3]: whether the 1-based `position` lies 1-10, 11-20 or more than 20
    tracks past `cap` (the log's longest session)."""
    pos = np.asarray(position)[..., None]
    lo = np.array([cap, cap + 10, cap + 20])
    hi = np.array([cap + 10, cap + 20, np.iinfo(np.int64).max])
    return ((pos > lo) & (pos <= hi)).astype(np.float64)


def slice_leave_rows(model: AbstractUserModel,
                     exposure: ExposureLog) -> Optional[Dict[str, np.ndarray]]:
    """The slice's at-risk rows after its randomly exposed tracks (positions past
    `explore_from`, before the log's cap: the rows `exposure_rows` calibrates P(leave)
    on), each with the P(leave) the simulator itself gives there (`leave_probs`: any
    model, recalibrated ones and ensembles included, teacher-forced on the logged
    responses): `h`, `left`, `session`.

    Why beside `exposure_rows`: that one reads one leave model's raw hazard, to fit a
    correction on; this one scores what a finished simulator answers, so that
    simulators leaving by different models can be compared on the same rows (the
    choice of `experiments.alignment`, "the slice's joint log loss").  None for a model
    that does not model leaving."""
    log = exposure.log
    tracks, skipped, mask, context, listener, _, _ = log_histories(log)
    S, L = tracks.shape
    lengths = log.lengths
    cap = int(lengths.max())
    h_all = np.zeros((S, L))
    for t in range(exposure.explore_from, min(L, cap - 1)):  # 0-based: the track at t
        rows = np.nonzero(mask[:, t] & (lengths > t))[0]
        if len(rows) == 0:
            continue
        hist = History(tracks[rows, :t].astype(np.int32),
                       (~skipped[rows, :t]).astype(np.float32),
                       np.full(len(rows), t, np.int32), context[rows], listener[rows])
        h = model.leave_probs(hist, tracks[rows, t:t + 1].astype(np.int32),
                              (~skipped[rows, t:t + 1]))
        if h is None:
            return None
        h_all[rows, t] = np.asarray(h)[:, 0]
    pos = np.arange(1, L + 1)[None, :]
    at_risk = mask & (pos > exposure.explore_from) & (pos < cap) & (pos <= lengths[:, None])
    session = np.broadcast_to(np.arange(S)[:, None], (S, L))
    return {"h": h_all[at_risk], "left": (pos == lengths[:, None])[at_risk],
            "session": session[at_risk]}


@dataclasses.dataclass
class ExposureCalibration:
    """Fitted correction: `listen` = (a, b, c), or (a, b, c, d) with the track's
    popularity in the log (`popularity_feature`) as a fourth input, `leave` = (v0, v1);
    `support` = (weight, mean, sd) of the pair's co-play support (`CoPlaySupport`,
    standardised by the slice's mean and sd; weight 0: not read); `past_cap` = the
    weights of three position bands past the leave model's cap `cap` (cap+1..cap+10,
    cap+11..cap+20, beyond), added to P(leave)'s logit there (empty: not read; only a
    slice whose sessions run past the log's cap can show them); `selection` holds the
    held-out log losses with and without each part."""

    listen: Tuple[float, ...] = (0.0, 1.0, 0.0)
    leave: Tuple[float, float] = (0.0, 1.0)
    selection: Dict[str, float] = dataclasses.field(default_factory=dict)
    support: Tuple[float, float, float] = (0.0, 0.0, 1.0)
    past_cap: Tuple[float, ...] = ()
    cap: int = 0

    @classmethod
    def fit(cls, model: AbstractUserModel, exposure: ExposureLog, holdout: float = 0.2,
            seed: int = 0, ridge: float = 1e-3,
            popularity: Optional[np.ndarray] = None,
            support=None, folds: int = 0) -> "ExposureCalibration":
        """Fits the correction on 80% of the slice's sessions and keeps each part only
        where it predicts the other 20% better.  The optional inputs, the tracks'
        `popularity` (per catalogue track, `popularity_feature`) and then the pairs'
        co-play `support` (a `CoPlaySupport` of the training log), are each added to
        P(listen) only where they predict the sessions left out better by more than
        their noise (a paired difference twice its session-clustered standard error):
        a gain the slice cannot tell from chance changes nothing.  The sessions left out
        are the 20%, or with `folds` > 1 every session, in that many folds of
        cross-validation (each fold predicted by the fit on the others: more power, as
        the co-play support needed, 1.0 standard error on the 20%, 3.9 across 5 folds)."""
        if getattr(model, "leave_hazard", None) is None:
            raise UserModelError(f"{type(model).__name__} has no leave model to calibrate "
                                 "(leave_hazard)")
        listen, leave = exposure_rows(model, exposure, within_log(model.leave_hazard),
                                      support)
        if len(listen["listened"]) < 50:
            raise UserModelError(f"the exposure slice has {len(listen['listened'])} "
                                 "randomly exposed rows: too few to calibrate on (50 at least)")
        held = np.random.default_rng(seed).random(exposure.log.num_sessions) < holdout

        def split(rows):
            h = held[rows["session"]]
            return ({k: v[~h] for k, v in rows.items()}, {k: v[h] for k, v in rows.items()})

        lt, lh = split(listen)
        vt, vh = split(leave)
        scale = (0.0, 1.0)
        if support is not None:
            scale = (float(lt["support"].mean()), max(float(lt["support"].std()), 1e-9))

        def inputs(rows, extras):
            cols = [rows["logit_p"], rows["rho"]]
            if "popularity" in extras:
                cols.append(np.asarray(popularity, np.float64)[rows["track"]])
            if "support" in extras:
                cols.append((rows["support"] - scale[0]) / scale[1])
            return np.stack(cols, 1)

        def fitted(extras):
            a = fit_logistic(inputs(lt, extras), lt["listened"], ridge)
            p = sigmoid(np.concatenate([np.ones((len(lh["listened"]), 1)),
                                        inputs(lh, extras)], axis=1) @ a)
            return tuple(float(x) for x in a), log_loss(p, lh["listened"]), \
                row_log_loss(p, lh["listened"])

        if folds == 1 or folds < 0:
            raise UserModelError(f"ExposureCalibration.fit: folds must be 0 (the 20% held "
                                 f"out decides) or at least 2, got {folds}")
        fold_of = np.random.default_rng([seed, 1]).integers(
            0, max(folds, 1), exposure.log.num_sessions)[listen["session"]]

        def left_out_losses(extras):
            """(row log losses of the sessions left out, their sessions)."""
            if not folds:
                return fitted(extras)[2], lh["session"]
            out = np.zeros(len(listen["listened"]))
            for i in range(folds):
                te = fold_of == i
                a = fit_logistic(inputs({k: v[~te] for k, v in listen.items()}, extras),
                                 listen["listened"][~te], ridge)
                x = np.concatenate([np.ones((int(te.sum()), 1)),
                                    inputs({k: v[te] for k, v in listen.items()}, extras)], 1)
                out[te] = row_log_loss(sigmoid(x @ a), listen["listened"][te])
            return out, listen["session"]

        kept: Tuple[str, ...] = ()
        weights, loss, _ = fitted(kept)
        rows, sessions = left_out_losses(kept)
        extra_selection: Dict[str, float] = {}
        candidates = (["popularity"] if popularity is not None else []) + \
            (["support"] if support is not None else [])
        for extra in candidates:
            w2, loss2, _ = fitted(kept + (extra,))
            rows2, _ = left_out_losses(kept + (extra,))
            gain, se = clustered_mean(rows - rows2, sessions)
            extra_selection.update({f"listen_log_loss_without_{extra}": loss,
                                    f"listen_log_loss_with_{extra}": loss2,
                                    f"{extra}_gain": gain, f"{extra}_gain_se": se})
            if gain > 2 * se:
                kept, weights, loss, rows = kept + (extra,), w2, loss2, rows2
        listen_w = weights[:3] + ((weights[3],) if "popularity" in kept else ())
        support_w = ((weights[-1], scale[0], scale[1]) if "support" in kept
                     else cls.support)
        v = fit_logistic(vt["logit_h"][:, None], vt["left"], ridge)
        leave_cap = int(getattr(model.leave_hazard, "cap", None) or 0)
        past_w: Tuple[float, ...] = ()
        band_selection: Dict[str, float] = {}
        if leave_cap and (vt["position"] > leave_cap).any() and (vh["position"] > leave_cap).any():
            # Past the log's cap the leave model never saw a listener: each band's
            # level, kept only where the held-out sessions show it by more than their
            # noise (the rule of the optional P(listen) inputs above).
            def with_bands(rows):
                return np.concatenate([rows["logit_h"][:, None],
                                       past_cap_bands(rows["position"], leave_cap)], 1)
            v2 = fit_logistic(with_bands(vt), vt["left"], ridge)
            rows1 = row_log_loss(sigmoid(v[0] + v[1] * vh["logit_h"]), vh["left"])
            rows2 = row_log_loss(sigmoid(np.c_[np.ones(len(vh["left"])), with_bands(vh)] @ v2),
                                  vh["left"])
            gain, se = clustered_mean(rows1 - rows2, vh["session"])
            band_selection = {"leave_log_loss_without_past_cap": float(rows1.mean()),
                              "leave_log_loss_with_past_cap": float(rows2.mean()),
                              "past_cap_gain": gain, "past_cap_gain_se": se,
                              "past_cap_rows_held_out": int((vh["position"] > leave_cap).sum())}
            if gain > 2 * se:
                v, past_w = v2[:2], tuple(float(x) for x in v2[2:])
        out = cls(listen_w, tuple(float(x) for x in v), {}, support_w, past_w,
                  leave_cap if past_w else 0)
        selection = {
            "listen_rows_held_out": int(len(lh["listened"])),
            "listen_log_loss_base": log_loss(sigmoid(lh["logit_p"]), lh["listened"]),
            "listen_log_loss_calibrated": loss,
            "listen_uses_popularity": "popularity" in kept,
            "listen_uses_support": "support" in kept,
            **extra_selection,
            "leave_rows_held_out": int(len(vh["left"])),
            "leave_log_loss_base": log_loss(sigmoid(vh["logit_h"]), vh["left"]),
            "leave_log_loss_calibrated": log_loss(out.leave_prob(sigmoid(vh["logit_h"]),
                                                                 vh["position"]), vh["left"]),
            **band_selection,
            "mean_listened_held_out": float(np.mean(lh["listened"])) if len(lh["listened"]) else float("nan"),
            "mean_p_base_held_out": float(np.mean(sigmoid(lh["logit_p"]))) if len(lh["listened"]) else float("nan"),
        }
        # Each part is kept only where it predicts the held-out sessions better.
        selection["listen_kept"] = bool(selection["listen_log_loss_calibrated"]
                                        < selection["listen_log_loss_base"])
        selection["leave_kept"] = bool(selection["leave_log_loss_calibrated"]
                                       < selection["leave_log_loss_base"])
        return cls(out.listen if selection["listen_kept"] else cls.listen,
                   out.leave if selection["leave_kept"] else cls.leave, selection,
                   out.support if selection["listen_kept"] else cls.support,
                   out.past_cap if selection["leave_kept"] else (),
                   out.cap if selection["leave_kept"] else 0)

    @property
    def uses_popularity(self) -> bool:
        return len(self.listen) == 4

    @property
    def uses_support(self) -> bool:
        return self.support[0] != 0.0

    def listen_prob(self, p: np.ndarray, rho: np.ndarray,
                    popularity: Optional[np.ndarray] = None,
                    support: Optional[np.ndarray] = None) -> np.ndarray:
        """Corrected P(listen); `popularity` (of the same tracks) when `uses_popularity`,
        `support` (their co-play support after the history) when `uses_support`."""
        a, b, c = self.listen[:3]
        x = a + b * logit(p) + c * np.asarray(rho, np.float64)
        if self.uses_popularity:
            if popularity is None:
                raise UserModelError("this exposure calibration reads the tracks' "
                                     "popularity: give it (popularity_feature)")
            x = x + self.listen[3] * np.asarray(popularity, np.float64)
        if self.uses_support:
            if support is None:
                raise UserModelError("this exposure calibration reads the pairs' co-play "
                                     "support: give it (CoPlaySupport)")
            w, mean, sd = self.support
            x = x + w * (np.asarray(support, np.float64) - mean) / sd
        return sigmoid(x)

    def leave_prob(self, h: np.ndarray, position: Optional[np.ndarray] = None) -> np.ndarray:
        """Corrected P(leave) from the leave model's `h`, after the track at 1-based
        `position` in the session (needed when `past_cap` is read)."""
        h = np.asarray(h, np.float64)
        v0, v1 = self.leave
        x = v0 + v1 * logit(h)
        if self.past_cap:
            if position is None:
                raise UserModelError("this exposure calibration reads the position past "
                                     "the log's cap: give it")
            x = x + past_cap_bands(position, self.cap) @ np.asarray(self.past_cap)
        return np.where(h > 0, sigmoid(x), 0.0)

    @property
    def improves(self) -> bool:
        """Whether the held-out log loss of P(listen) is lower with the correction."""
        return bool(self.selection.get("listen_kept"))

    def save(self, path: str) -> None:
        with atomic_file(path) as f:
            json.dump(dataclasses.asdict(self), f, indent=1)

    @classmethod
    def load(cls, path: str) -> "ExposureCalibration":
        with open(path) as f:
            d = json.load(f)
        return cls(tuple(d["listen"]), tuple(d["leave"]), d.get("selection", {}),
                   tuple(d.get("support", cls.support)), tuple(d.get("past_cap", ())),
                   int(d.get("cap", 0)))


class ExposureCalibratedUserModel(AbstractUserModel):
    """`base` with `calibration` applied to tracks not lined up by the logging policy,
    and its P(leave) held to the log's support (`within_log`: past the log's length cap
    the leave head's slow boredom levels would grow beyond anything it was fitted on).

    P(listen) of slate position k reads the redundancy of that track after the history
    and the slate's earlier tracks (with the responses the cascade conditions on), so
    the skip cascade runs through the corrected answers."""

    cascades = True

    def __init__(self, base: AbstractUserModel, calibration: ExposureCalibration,
                 popularity: Optional[np.ndarray] = None, support=None):
        if getattr(base, "leave_hazard", None) is None:
            raise UserModelError(f"{type(base).__name__} has no leave model (leave_hazard)")
        if calibration.uses_popularity and popularity is None:
            raise UserModelError("this exposure calibration reads the tracks' popularity: "
                                 "give it (popularity_feature)")
        if calibration.uses_support and support is None:
            raise UserModelError("this exposure calibration reads the pairs' co-play "
                                 "support: give it (CoPlaySupport)")
        self.base, self.calibration = base, calibration
        self.support = support if calibration.uses_support else None
        self.popularity = None if popularity is None else np.asarray(popularity, np.float64)
        self.leave_hazard = base.leave_hazard
        self.leave_model = within_log(base.leave_hazard)
        self.max_slate_size = base.max_slate_size
        self.track_ids = base.track_ids

    def _popularity(self, tracks):
        return None if self.popularity is None else self.popularity[np.asarray(tracks)]

    def _support(self, history, tracks):
        """The co-play support of `tracks` [B, K] after `history` (None: not read)."""
        if self.support is None:
            return None
        return self.support.support(history.tracks, history.responses, tracks)

    def _calibrated(self, history, tracks, p, rho, support=None):
        return np.where(~history.lined_up(tracks), self.calibration.listen_prob(
            p, rho, self._popularity(tracks), support), p)

    def _after(self, history, slate, k, before):
        """The history before slate position k: the slate's earlier tracks heard with
        responses `before` [B, k] after `history`."""
        return history.extended(slate[:, :k], before) if k else history

    def _redundancy_at(self, history, slate, k, before):
        """The redundancy of slate position k after the history and the slate's earlier
        tracks, heard with responses `before` [B, k]."""
        return self.leave_hazard.redundancy(self._after(history, slate, k, before),
                                            slate[:, k:k + 1])[:, 0]

    def _support_at(self, history, slate, k, before):
        s = self._support(self._after(history, slate, k, before), slate[:, k:k + 1])
        return None if s is None else s[:, 0]

    def score_candidates(self, history, candidates):
        candidates = np.asarray(candidates)
        p = self.base.score_candidates(history, candidates)
        rho = self.leave_hazard.redundancy(history, candidates)
        return self._calibrated(history, candidates, p, rho,
                                self._support(history, candidates))

    def _predict(self, history, slate, slate_responses):
        slate = np.asarray(slate)
        p = self.base._predict(history, slate, slate_responses)
        B, K = slate.shape
        rho = np.zeros((B, K))
        sup = None if self.support is None else np.zeros((B, K))
        for k in range(K):
            before = (np.asarray(slate_responses, bool)[:, :k] if slate_responses is not None
                      else p[:, :k] >= 0.5)
            rho[:, k] = self._redundancy_at(history, slate, k, before)
            if sup is not None:
                sup[:, k] = self._support_at(history, slate, k, before)
        return self._calibrated(history, slate, p, rho, sup)

    def _respond(self, history, slate, uniforms):
        """The cascade through the corrected answers: position k's P(listen) is the
        base model's, teacher-forced on the responses drawn before it, corrected with
        the redundancy after the history and the slate's earlier tracks."""
        slate = np.asarray(slate)
        B, K = slate.shape
        responses = np.zeros((B, K), bool)
        probs = np.zeros((B, K))
        free = ~history.lined_up(slate)
        for k in range(K):
            p = self.base._predict(history, slate, responses)[:, k]
            rho = self._redundancy_at(history, slate, k, responses[:, :k])
            probs[:, k] = np.where(free[:, k], self.calibration.listen_prob(
                p, rho, self._popularity(slate[:, k]),
                self._support_at(history, slate, k, responses[:, :k])), p)
            responses[:, k] = uniforms[:, k] < probs[:, k]
        return probs, responses, None

    def leave_probs(self, history, slate, responses):
        slate = np.asarray(slate)
        ext = history.extended(slate, responses)
        hz = self.leave_model.hazards(ext.tracks, ext.responses)
        cols = history.length[:, None].astype(np.int64) + np.arange(slate.shape[1])[None, :]
        h = np.take_along_axis(hz, cols, axis=1)
        return np.where(~history.lined_up(slate), self.calibration.leave_prob(h, cols + 1), h)


def popularity_feature(play_counts: np.ndarray) -> np.ndarray:
    """Per catalogue track, log(1 + plays in the log), standardised: the popularity the
    calibration may read (what most-popular policies pick by, and what the slice's
    popularity-drawn exposures show the model mis-rates)."""
    x = np.log1p(np.asarray(play_counts, np.float64))
    return (x - x.mean()) / max(float(x.std()), 1e-12)


def calibration_path(model_dir: str, exposure: ExposureLog,
                     popularity: Optional[np.ndarray] = None, support=None,
                     folds: int = 0) -> str:
    """Where the calibration on this exposure slice is cached beside the model."""
    import hashlib
    pop = "" if popularity is None else hashlib.sha1(
        np.ascontiguousarray(popularity, np.float64).tobytes()).hexdigest()
    sup = "" if support is None else hashlib.sha1(
        support.keys.tobytes() + support.counts.tobytes()).hexdigest()
    key = hashlib.sha1((exposure.log.content_digest() + str(exposure.explore_from) + pop +
                        sup + (f"folds{folds}" if folds else "") +
                        _SOURCE_AT_IMPORT).encode()).hexdigest()[:12]
    return os.path.join(model_dir, f"exposure_calibration-{key}.json")


def calibrated(model: AbstractUserModel, exposure: Optional[ExposureLog],
               model_dir: Optional[str] = None,
               popularity: Optional[np.ndarray] = None,
               support=None, folds: int = 0) -> ExposureCalibratedUserModel:
    """`model` recalibrated on `exposure` (cached in `model_dir` when given); with
    `popularity` (`popularity_feature`) and `support` (`CoPlaySupport` of the training
    log) the calibration may read them, where that predicts the held-out slice
    sessions better (`folds`: decided by cross-validation, `ExposureCalibration.fit`)."""
    if exposure is None:
        raise UserModelError("calibrating on an exposure slice needs one: generate the world "
                             "with ensure_synthetic_world.exploration_sessions > 0, or give "
                             "load_dataset.exposure_path (a team's own random-exposure log)")
    path = (calibration_path(model_dir, exposure, popularity, support, folds)
            if model_dir else None)
    if path and os.path.exists(path):
        cal = ExposureCalibration.load(path)
    else:
        cal = ExposureCalibration.fit(model, exposure, popularity=popularity, support=support,
                                      folds=folds)
        if path:
            cal.save(path)
    return ExposureCalibratedUserModel(model, cal, popularity, support)


#: This module's code as it was imported, for the calibration cache's key: read at
#: import, not when a key is made, so that a job keys its calibrations by the code it
#: runs even when the file is edited while it runs (found 2026-12-07: a probe started
#: before an edit stored its calibrations under the edited code's key).
_SOURCE_AT_IMPORT = inspect.getsource(sys.modules[__name__])
