"""User models built from others: to measure where a simulator's error comes from, and
to answer as several model classes together.

A learned simulator differs from the listeners it imitates in two answers: P(listen) of
each track (with the skip cascade inside a slate: position k reads the responses drawn
at positions < k) and P(leave) after it.  Swapping one answer for the truth's while
keeping the other says how much of a policy's offline error each one makes:

- `HybridUserModel(listen=A, leave=B)` responds with A's P(listen) and cascade and
  leaves with B's hazard, on the responses A drew;
- `ShadowedUserModel(responder, shadow)` responds exactly as `responder` (same draws,
  same episodes) and, on the way, asks `shadow` what *it* would have said of every track
  heard, teacher-forced on the responder's responses: the shadow's bias along the
  responder's own path, per slate position (position 1 reads no cascade, later ones do)
  and for P(leave).

Neither fits anything: both wrap fitted models for `experiments.offline_error`.

- `EnsembleUserModel(members, combine)` answers P(listen) with the members' mean, or
  with their minimum (pessimistic: a track is as likely to be listened to as the least
  hopeful class says), and leaves as its first member does.  An agent that learns
  against one model picks out that model's own errors (the winner's curse); a model of
  another class does not share them, where seeds of one class do (#23's lead "an
  ensemble across model classes rather than seeds").  `worst` is pessimistic on both
  answers: the lowest P(listen) and the highest P(leave) of the members
  (`WorstLeaveHazard`).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from spotisim.errors import ConfigError
from user_models.base import AbstractUserModel, History, Responses


class HybridUserModel(AbstractUserModel):
    """P(listen) and the cascade from `listen`, P(leave) from `leave` (on `listen`'s
    responses).  `leave_hazard` is `leave`'s, so a policy reading redundancy from the
    responder would read the leaving side's; the environment's scorer, not this model,
    is what policies observe."""

    def __init__(self, listen: AbstractUserModel, leave: AbstractUserModel):
        self.listen, self.leave = listen, leave
        self.cascades = listen.cascades
        self.max_slate_size = listen.max_slate_size
        self.leave_hazard = leave.leave_hazard

    def _predict(self, history, slate, slate_responses):
        return self.listen._predict(history, slate, slate_responses)

    def score_candidates(self, history, candidates):
        return self.listen.score_candidates(history, candidates)

    def _respond(self, history, slate, uniforms):
        probs, responses, _ = self.listen._respond(history, slate, uniforms)
        return probs, responses, self.leave.leave_probs(history, slate, responses)

    def leave_probs(self, history, slate, responses):
        return self.leave.leave_probs(history, slate, responses)


class ShadowedUserModel(AbstractUserModel):
    """Responds as `responder`; records what `shadow` says of the same heard tracks.

    `bias()` returns, over every heard track so far: the mean P(listen) of responder and
    shadow at slate position 1 and at later positions, and the mean P(leave) of each
    after the heard tracks (the shadow's hazard computed on the responder's responses).
    """

    def __init__(self, responder: AbstractUserModel, shadow: AbstractUserModel):
        self.responder, self.shadow = responder, shadow
        self.cascades = responder.cascades
        self.max_slate_size = responder.max_slate_size
        self.leave_hazard = responder.leave_hazard
        self.reset()

    def reset(self) -> None:
        """Forgets what was recorded (one policy's episodes at a time)."""
        self._sums: Dict[str, float] = {}

    def _add(self, key: str, values: np.ndarray, mask: np.ndarray) -> None:
        self._sums[key] = self._sums.get(key, 0.0) + float(np.asarray(values)[mask].sum())

    def _predict(self, history, slate, slate_responses):
        return self.responder._predict(history, slate, slate_responses)

    def score_candidates(self, history, candidates):
        return self.responder.score_candidates(history, candidates)

    def leave_probs(self, history, slate, responses):
        return self.responder.leave_probs(history, slate, responses)

    def respond(self, history: History, slate: np.ndarray, uniforms: np.ndarray,
                leaving: bool = True, sample_exit: bool = True) -> Responses:
        answer = self.responder.respond(history, slate, uniforms, leaving, sample_exit)
        responses = answer[1]
        # The responses the responder drew before it masked unheard positions are not
        # kept; unheard positions are never counted, so the masked ones serve.
        true_h = answer.hazards
        if true_h is None:
            true_h = self.responder.leave_probs(history, slate, responses)
        self.record(history, slate, answer, np.asarray(answer.heard, bool),
                    self.shadow.predict(history, slate, responses), true_h,
                    self.shadow.leave_probs(history, slate, responses))
        return answer

    def record(self, history, slate, answer, heard, shadow_p, true_h, shadow_h) -> None:
        """Adds one step's answers over its heard tracks (subclasses record more)."""
        first = np.zeros_like(heard)
        first[:, 0] = True
        for name, where in (("first", heard & first), ("later", heard & ~first)):
            self._add(f"{name}_n", np.ones(heard.shape), where)
            self._add(f"{name}_true", answer[0], where)
            self._add(f"{name}_shadow", shadow_p, where)
        if true_h is not None and shadow_h is not None:
            self._add("leave_n", np.ones(heard.shape), heard)
            self._add("leave_true", true_h, heard)
            self._add("leave_shadow", shadow_h, heard)

    def bias(self) -> Dict[str, Optional[float]]:
        """Means over the heard tracks recorded since `reset`: `p_listen_first_true`,
        `p_listen_first_shadow`, the same for `later` positions, and `p_leave_true`,
        `p_leave_shadow` (None where nothing was recorded)."""
        s = self._sums
        out: Dict[str, Optional[float]] = {}
        for name, label in (("first", "p_listen_first"), ("later", "p_listen_later"),
                            ("leave", "p_leave")):
            n = s.get(f"{name}_n", 0.0)
            for side in ("true", "shadow"):
                out[f"{label}_{side}"] = s[f"{name}_{side}"] / n if n else None
            out[f"{label}_n"] = int(n)
        return out


class WorstLeaveHazard:
    """The members' leave models as one: every hazard is the highest of theirs (along
    a logged sequence, `hazards`; right after a candidate if listened,
    `hazard_if_listened`); the redundancy a policy reads is the first one's measure.
    What an environment and the exposure recalibration ask of a leave model, for a
    `worst(...)` ensemble."""

    def __init__(self, models: Sequence):
        self.models = list(models)
        caps = [getattr(m, "cap", None) for m in self.models]
        self.cap = max(caps) if all(c is not None for c in caps) else None

    def hazards(self, tracks, listened):
        return np.max([m.hazards(tracks, listened) for m in self.models], axis=0)

    def hazard_if_listened(self, history, candidates):
        return np.max([m.hazard_if_listened(history, candidates) for m in self.models],
                      axis=0)

    def redundancy(self, history, candidates):
        return self.models[0].redundancy(history, candidates)

    def within_log(self) -> "WorstLeaveHazard":
        """Each member held to its log's support where it can be."""
        from user_models.exposure_calibration import within_log
        return WorstLeaveHazard([within_log(m) for m in self.models])


class EnsembleUserModel(AbstractUserModel):
    """P(listen) combined over `members` (each fitted already), position by position
    with the cascade of each member teacher-forced on the ensemble's own draws;
    P(leave) is the first member's, or with `worst` the highest of the members'.

    Why `worst`: an agent trained against a learned simulator drifts to the slates
    whose listeners every fit keeps too long (less diverse ones: docs/listeners.md).
    The members' leave models differ (class, time scales, and with
    `TasteUserModel.leave_space = 'taste'` the track space boredom is read in), so the
    highest of their hazards is the one a drift of that kind is least likely to fool.

    Args:
      members: fitted user models over the same catalogue.
      combine: 'mean' (average probability), 'min' (the lowest: pessimistic) or
        'worst' (the lowest P(listen) and the highest P(leave)).
    """

    COMBINE = {"mean": lambda ps: np.mean(ps, axis=0), "min": lambda ps: np.min(ps, axis=0),
               "worst": lambda ps: np.min(ps, axis=0)}

    def __init__(self, members: Sequence[AbstractUserModel], combine: str = "mean"):
        if len(members) < 2:
            raise ConfigError("an ensemble needs at least two user models")
        if combine not in self.COMBINE:
            raise ConfigError(f"ensemble combine {combine!r}: not one of "
                              f"{', '.join(self.COMBINE)}")
        self.members = list(members)
        self.combine = combine
        self.cascades = any(m.cascades for m in self.members)
        sizes = [m.max_slate_size for m in self.members if m.max_slate_size is not None]
        self.max_slate_size = min(sizes) if sizes else None
        self.leave_hazard = self.members[0].leave_hazard
        hazards = [m.leave_hazard for m in self.members if m.leave_hazard is not None]
        if combine == "worst" and hazards:
            self.leave_hazard = WorstLeaveHazard(hazards)

    def _predict(self, history, slate, slate_responses):
        return self.COMBINE[self.combine](
            [m._predict(history, slate, slate_responses) for m in self.members])

    def score_candidates(self, history, candidates):
        return self.COMBINE[self.combine](
            [m.score_candidates(history, candidates) for m in self.members])

    def leave_probs(self, history, slate, responses):
        if self.combine != "worst":
            return self.members[0].leave_probs(history, slate, responses)
        # A member that does not model leaving says nothing about it.
        hs = [h for h in (m.leave_probs(history, slate, responses) for m in self.members)
              if h is not None]
        return np.max(hs, axis=0) if hs else None
