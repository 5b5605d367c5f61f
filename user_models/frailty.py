"""A learned P(leave) that knows its survivors are the patient ones (gamma frailty).

Why: listeners differ in how readily they leave, and the log does not say who is
patient.  Along a session the impatient leave first, so the listeners still there at
track 40 leave less often than the log's average listener with the same history.  A
leave model fitted on the log without that (`LeaveHead`, `LeaveHazard`: nothing reads
the position) answers with the average listener at every length.  Episodes run far past
the log's 20-track cap, where the difference grows: along the truth's episodes the
learned hazard drifts 10-20% above the truth's past track 40 while the truth's falls
(docs/offline_verdicts.md, "Leaving where the log does not reach": on the default
world the log shows no frailty, theta = 0).

The correction is the textbook one, fitted on the log alone: each listener's hazard is
the model's scaled by an unseen frailty Z ~ Gamma(mean 1, variance theta), in
continuous time per track, lambda_t = -log(1 - h_t) the model's hazard as an intensity:

    S(L) = (1 + theta * L) ** (-1 / theta),   L_t = alpha * sum_{s <= t} lambda_s,

the chance to have stayed through the cumulative intensity L (theta = 0: exp(-L), the
model as it is when alpha = 1).  The hazard after track t for a listener who stayed so
far is 1 - S(L_t) / S(L_{t-1}).  (alpha, theta) maximise the likelihood of the training
split's session lengths (censored at the cap) on a grid; the validation split's
likelihood says whether the frailty is worth keeping (`FrailtyFit.kept`).

`FrailtyUserModel` applies it to any model: each slate position's P(leave), as the
model answers it (recalibrated or not), times the frailty's ratio along the whole
episode so far.
"""

from __future__ import annotations

import dataclasses
from typing import Optional, Tuple

import numpy as np

from user_models.base import AbstractUserModel
from user_models.leave_features import at_risk_rows

#: The grids (alpha, theta) are searched on: alpha coarse (then refined by 0.05 around
#: the best, for the best theta and for theta = 0), theta as is.
ALPHAS = np.round(np.arange(0.5, 3.0001, 0.25), 4)
THETAS = np.round(np.concatenate([np.arange(0.0, 2.0, 0.1), np.arange(2.0, 8.0001, 0.5)]), 4)
FINE = np.round(np.arange(-0.25, 0.2501, 0.05), 4)


def survival(cumulative: np.ndarray, theta: float) -> np.ndarray:
    """S(L) = E[exp(-Z L)] for Z ~ Gamma(mean 1, variance theta)."""
    cumulative = np.asarray(cumulative, np.float64)
    if theta <= 0:
        return np.exp(-cumulative)
    return (1.0 + theta * cumulative) ** (-1.0 / theta)


def frail_hazards(hazards: np.ndarray, at_risk: np.ndarray, alpha: float,
                  theta: float) -> np.ndarray:
    """float [B, H]: the hazard after each at-risk entry for a listener who stayed
    through the entries before it (0 where not at risk)."""
    lam = np.where(at_risk, -np.log1p(-np.clip(hazards, 0.0, 1.0 - 1e-9)), 0.0)
    after = alpha * np.cumsum(lam, axis=1)
    before = after - alpha * lam
    h = 1.0 - survival(after, theta) / survival(before, theta)
    return np.where(at_risk, h, 0.0)


def log_likelihood(hazards: np.ndarray, at_risk: np.ndarray, event: np.ndarray,
                   alpha: float, theta: float) -> np.ndarray:
    """float [S]: each session's log-likelihood of its length (an event row: it left
    there; no event: censored after its last at-risk row)."""
    h = np.clip(frail_hazards(hazards, at_risk, alpha, theta), 1e-12, 1 - 1e-12)
    stay = np.where(at_risk & ~event, np.log1p(-h), 0.0).sum(1)
    leave = np.where(event, np.log(h), 0.0).sum(1)
    return stay + leave


@dataclasses.dataclass
class FrailtyFit:
    """The fitted frailty and what the log says of it."""

    alpha: float
    theta: float
    #: Mean log-likelihood per validation session: the model as it is, the best alpha
    #: alone (theta = 0), and with the frailty; and the standard error of the gain.
    val_as_is: float
    val_scaled: float
    val_frailty: float
    val_gain_se: float

    @property
    def kept(self) -> bool:
        """Kept where the validation sessions' likelihood gains over the scaled model
        by more than two standard errors (what a team can see, no ground truth)."""
        return self.val_frailty - self.val_scaled > 2 * self.val_gain_se


def session_rows(leave_model, log) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(hazards, at_risk, event) [S, H] of a log's sessions under `leave_model`."""
    tracks, skipped, mask = log.padded()
    hazards = leave_model.hazards(tracks, mask & ~skipped)
    cap = leave_model.cap or tracks.shape[1] + 1
    at_risk, event = at_risk_rows(np.asarray(log.lengths), tracks.shape[1],
                                  leave_model.first_at_risk, cap)
    return hazards, at_risk, event


def fit_frailty(leave_model, train_log, val_log) -> FrailtyFit:
    """(alpha, theta) by the training split's likelihood on the grids; the validation
    split's likelihood of the model as it is, scaled, and frail."""
    h, r, e = session_rows(leave_model, train_log)

    def best_alpha(theta, alphas):
        lls = [float(log_likelihood(h, r, e, a, theta).sum()) for a in alphas]
        i = int(np.argmax(lls))
        return lls[i], float(alphas[i])

    coarse = {float(t): best_alpha(t, ALPHAS) for t in THETAS}
    refined = {t: best_alpha(t, np.maximum(coarse[t][1] + FINE, 0.05))
               for t in {0.0, max(coarse, key=lambda t: coarse[t][0])}}
    theta = max(refined, key=lambda t: refined[t][0])
    best = (refined[theta][0], refined[theta][1], theta)
    best_scaled = refined[0.0]
    vh, vr, ve = session_rows(leave_model, val_log)
    as_is = log_likelihood(vh, vr, ve, 1.0, 0.0)
    scaled = log_likelihood(vh, vr, ve, best_scaled[1], 0.0)
    frail = log_likelihood(vh, vr, ve, best[1], best[2])
    gain = frail - scaled
    se = float(gain.std(ddof=1) / np.sqrt(max(len(gain), 1))) if len(gain) > 1 else 0.0
    return FrailtyFit(best[1], best[2], float(as_is.mean()), float(scaled.mean()),
                      float(frail.mean()), se)


class FrailtyUserModel(AbstractUserModel):
    """`model`, whose P(leave) after each slate position is multiplied by the frailty's
    ratio (frail / as fitted) along the whole episode so far; P(listen) unchanged."""

    def __init__(self, model: AbstractUserModel, fit: FrailtyFit):
        self.model, self.fit = model, fit
        self.cascades = model.cascades
        self.max_slate_size = model.max_slate_size
        self.leave_hazard = model.leave_hazard

    def _predict(self, history, slate, slate_responses):
        return self.model._predict(history, slate, slate_responses)

    def score_candidates(self, history, candidates):
        return self.model.score_candidates(history, candidates)

    def _respond(self, history, slate, uniforms):
        probs, responses, _ = self.model._respond(history, slate, uniforms)
        return probs, responses, self.leave_probs(history, slate, responses)

    def leave_probs(self, history, slate, responses) -> Optional[np.ndarray]:
        h = self.model.leave_probs(history, slate, responses)
        if h is None:
            return None
        slate = np.asarray(slate)
        ext = history.extended(slate, responses)
        base = self.leave_hazard.hazards(ext.tracks, ext.responses)
        t = np.arange(1, base.shape[1] + 1)[None, :]
        at_risk = (t <= ext.length[:, None]) & (t >= self.leave_hazard.first_at_risk)
        frail = frail_hazards(base, at_risk, self.fit.alpha, self.fit.theta)
        cols = history.length[:, None].astype(np.int64) + np.arange(slate.shape[1])[None, :]
        b = np.take_along_axis(base, cols, axis=1)
        f = np.take_along_axis(frail, cols, axis=1)
        ratio = np.where(b > 1e-12, f / np.maximum(b, 1e-12), 1.0)
        return np.clip(h * ratio, 0.0, 1.0)
