"""A learned simulator recalibrated off the logged path with a random-exposure slice.

Why: a log played by a recommender shows each listener tracks chosen *because* of a
taste the log does not show, so a model fitted on it answers P(listen | chosen for this
listener): too high for tracks a policy puts in front of a listener for other reasons,
most of all for tracks unlike the recent listens (BUILD_NOTES, "Offline verdicts").  A
platform keeps a slice of traffic exposed at random (`spotisim.data.exposure`); on it the
fitted model's answers can be compared with what listeners did, where nothing chose the
tracks for them.

The correction is small and fitted on that slice only (never on the ground truth):
- P(listen): logit' = a + b logit(p) + c rho, with p the model's teacher-forced P(listen)
  of each randomly exposed track and rho its redundancy (how close it is to the recent
  listens, from the model's own leave head: `leave_hazard.redundancy`);
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
import json
import os
from typing import Dict, Optional, Tuple

import numpy as np

from spotisim.data.exposure import ExposureLog
from spotisim.errors import UserModelError
from spotisim.io_utils import atomic_file
from user_models.base import AbstractUserModel, History
from user_models.evaluation import log_histories, predict_log

EPS = 1e-6


def _logit(p):
    p = np.clip(np.asarray(p, np.float64), EPS, 1 - EPS)
    return np.log(p) - np.log1p(-p)


def _sigmoid(x):
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
        p = _sigmoid(X @ w)
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


def within_log(leave_model):
    """The leave model held to its log's support where it can be (`LeaveHead.within_log`;
    a model without a recorded range, or of another class, as it is)."""
    if getattr(leave_model, "feature_max", None) is not None:
        return leave_model.within_log()
    return leave_model


def exposure_rows(model: AbstractUserModel, exposure: ExposureLog, leave_model=None
                  ) -> Tuple[Dict[str, np.ndarray], Dict[str, np.ndarray]]:
    """The randomly exposed rows of the slice, as the model sees them (its P(leave)
    from `leave_model`, default its own).

    Returns (listen rows: `logit_p`, `rho`, `listened`, `session`; leave rows:
    `logit_h`, `left`, `session`), every row after position `explore_from`."""
    log = exposure.log
    tracks, skipped, mask, context, listener, mood, _ = log_histories(log)
    S, L = tracks.shape
    probs = np.zeros((S, L))
    probs[mask] = predict_log(model, log)
    start = exposure.explore_from
    rho = np.zeros((S, L))
    for t in range(start, L):
        rows = np.nonzero(mask[:, t])[0]
        if len(rows) == 0:
            continue
        h = History(tracks[rows, :t].astype(np.int32), (~skipped[rows, :t]).astype(np.float32),
                    np.full(len(rows), t, np.int32), context[rows], listener[rows])
        rho[rows, t] = model.leave_hazard.redundancy(h, tracks[rows, t:t + 1])[:, 0]
    exposed = mask & (np.arange(L)[None, :] >= start)
    session = np.broadcast_to(np.arange(S)[:, None], (S, L))
    listen = {"logit_p": _logit(probs[exposed]), "rho": rho[exposed],
              "listened": (~skipped)[exposed], "session": session[exposed]}
    hz = (leave_model or model.leave_hazard).hazards(tracks, (~skipped).astype(np.float32))
    lengths = log.lengths
    cap = int(lengths.max())
    pos = np.arange(1, L + 1)[None, :]
    at_risk = exposed & (pos < cap) & (pos <= lengths[:, None]) & (hz > 0)
    leave = {"logit_h": _logit(hz[at_risk]),
             "left": (pos == lengths[:, None])[at_risk],
             "session": session[at_risk]}
    return listen, leave


@dataclasses.dataclass
class ExposureCalibration:
    """Fitted correction: `listen` = (a, b, c), `leave` = (v0, v1); `selection` holds
    the held-out log losses with and without it."""

    listen: Tuple[float, float, float] = (0.0, 1.0, 0.0)
    leave: Tuple[float, float] = (0.0, 1.0)
    selection: Dict[str, float] = dataclasses.field(default_factory=dict)

    @classmethod
    def fit(cls, model: AbstractUserModel, exposure: ExposureLog, holdout: float = 0.2,
            seed: int = 0, ridge: float = 1e-3) -> "ExposureCalibration":
        if getattr(model, "leave_hazard", None) is None:
            raise UserModelError(f"{type(model).__name__} has no leave model to calibrate "
                                 "(leave_hazard)")
        listen, leave = exposure_rows(model, exposure, within_log(model.leave_hazard))
        if len(listen["listened"]) < 50:
            raise UserModelError(f"the exposure slice has {len(listen['listened'])} "
                                 "randomly exposed rows: too few to calibrate on (50 at least)")
        held = np.random.default_rng(seed).random(exposure.log.num_sessions) < holdout

        def split(rows):
            h = held[rows["session"]]
            return ({k: v[~h] for k, v in rows.items()}, {k: v[h] for k, v in rows.items()})

        lt, lh = split(listen)
        vt, vh = split(leave)
        a = fit_logistic(np.stack([lt["logit_p"], lt["rho"]], 1), lt["listened"], ridge)
        v = fit_logistic(vt["logit_h"][:, None], vt["left"], ridge)
        out = cls(tuple(float(x) for x in a), tuple(float(x) for x in v))
        selection = {
            "listen_rows_held_out": int(len(lh["listened"])),
            "listen_log_loss_base": log_loss(_sigmoid(lh["logit_p"]), lh["listened"]),
            "listen_log_loss_calibrated": log_loss(out.listen_prob(_sigmoid(lh["logit_p"]),
                                                                   lh["rho"]), lh["listened"]),
            "leave_rows_held_out": int(len(vh["left"])),
            "leave_log_loss_base": log_loss(_sigmoid(vh["logit_h"]), vh["left"]),
            "leave_log_loss_calibrated": log_loss(out.leave_prob(_sigmoid(vh["logit_h"])),
                                                  vh["left"]),
            "mean_listened_held_out": float(np.mean(lh["listened"])) if len(lh["listened"]) else float("nan"),
            "mean_p_base_held_out": float(np.mean(_sigmoid(lh["logit_p"]))) if len(lh["listened"]) else float("nan"),
        }
        # Each part is kept only where it predicts the held-out sessions better.
        selection["listen_kept"] = bool(selection["listen_log_loss_calibrated"]
                                        < selection["listen_log_loss_base"])
        selection["leave_kept"] = bool(selection["leave_log_loss_calibrated"]
                                       < selection["leave_log_loss_base"])
        return cls(out.listen if selection["listen_kept"] else cls.listen,
                   out.leave if selection["leave_kept"] else cls.leave, selection)

    def listen_prob(self, p: np.ndarray, rho: np.ndarray) -> np.ndarray:
        a, b, c = self.listen
        return _sigmoid(a + b * _logit(p) + c * np.asarray(rho, np.float64))

    def leave_prob(self, h: np.ndarray) -> np.ndarray:
        h = np.asarray(h, np.float64)
        v0, v1 = self.leave
        return np.where(h > 0, _sigmoid(v0 + v1 * _logit(h)), 0.0)

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
        return cls(tuple(d["listen"]), tuple(d["leave"]), d.get("selection", {}))


class ExposureCalibratedUserModel(AbstractUserModel):
    """`base` with `calibration` applied to tracks not lined up by the logging policy,
    and its P(leave) held to the log's support (`within_log`: past the log's length cap
    the leave head's slow boredom levels would grow beyond anything it was fitted on).

    P(listen) of slate position k reads the redundancy of that track after the history
    and the slate's earlier tracks (with the responses the cascade conditions on), so
    the skip cascade runs through the corrected answers."""

    cascades = True

    def __init__(self, base: AbstractUserModel, calibration: ExposureCalibration):
        if getattr(base, "leave_hazard", None) is None:
            raise UserModelError(f"{type(base).__name__} has no leave model (leave_hazard)")
        self.base, self.calibration = base, calibration
        self.leave_hazard = base.leave_hazard
        self.leave_model = within_log(base.leave_hazard)
        self.max_slate_size = base.max_slate_size
        self.track_ids = base.track_ids

    def _calibrated(self, history, tracks, p, rho):
        return np.where(~history.lined_up(tracks),
                        self.calibration.listen_prob(p, rho), p)

    def _redundancy_at(self, history, slate, k, before):
        """The redundancy of slate position k after the history and the slate's earlier
        tracks, heard with responses `before` [B, k]."""
        h = history.extended(slate[:, :k], before) if k else history
        return self.leave_hazard.redundancy(h, slate[:, k:k + 1])[:, 0]

    def score_candidates(self, history, candidates):
        candidates = np.asarray(candidates)
        p = self.base.score_candidates(history, candidates)
        rho = self.leave_hazard.redundancy(history, candidates)
        return self._calibrated(history, candidates, p, rho)

    def _predict(self, history, slate, slate_responses):
        slate = np.asarray(slate)
        p = self.base._predict(history, slate, slate_responses)
        B, K = slate.shape
        rho = np.zeros((B, K))
        for k in range(K):
            before = (np.asarray(slate_responses, bool)[:, :k] if slate_responses is not None
                      else p[:, :k] >= 0.5)
            rho[:, k] = self._redundancy_at(history, slate, k, before)
        return self._calibrated(history, slate, p, rho)

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
            probs[:, k] = np.where(free[:, k], self.calibration.listen_prob(p, rho), p)
            responses[:, k] = uniforms[:, k] < probs[:, k]
        return probs, responses, None

    def leave_probs(self, history, slate, responses):
        slate = np.asarray(slate)
        ext = history.extended(slate, responses)
        hz = self.leave_model.hazards(ext.tracks, ext.responses)
        cols = history.length[:, None].astype(np.int64) + np.arange(slate.shape[1])[None, :]
        h = np.take_along_axis(hz, cols, axis=1)
        return np.where(~history.lined_up(slate), self.calibration.leave_prob(h), h)


def calibration_path(model_dir: str, exposure: ExposureLog) -> str:
    """Where the calibration on this exposure slice is cached beside the model."""
    import hashlib
    import inspect
    import sys
    key = hashlib.sha1((exposure.log.content_digest() + str(exposure.explore_from) +
                        inspect.getsource(sys.modules[__name__])).encode()).hexdigest()[:12]
    return os.path.join(model_dir, f"exposure_calibration-{key}.json")


def calibrated(model: AbstractUserModel, exposure: Optional[ExposureLog],
               model_dir: Optional[str] = None) -> ExposureCalibratedUserModel:
    """`model` recalibrated on `exposure` (cached in `model_dir` when given)."""
    if exposure is None:
        raise UserModelError("calibrating on an exposure slice needs one: generate the world "
                             "with ensure_synthetic_world.exploration_sessions > 0, or give "
                             "load_dataset.exposure_path (a team's own random-exposure log)")
    path = calibration_path(model_dir, exposure) if model_dir else None
    if path and os.path.exists(path):
        cal = ExposureCalibration.load(path)
    else:
        cal = ExposureCalibration.fit(model, exposure)
        if path:
            cal.save(path)
    return ExposureCalibratedUserModel(model, cal)
