"""`GroundTruthUserModel`: the synthetic world's hidden response model behind the
user-model interface.  It is the "online" user population for alignment studies and the
Bayes limit for learned user models.

It needs the episode's hidden key (listener, context, mood: `History.listener`,
`History.context`, `History.hidden`), which the synthetic episode samplers provide, and
replays the history through the world's state dynamics, so the answer is exactly what the
world itself would give.
"""

from __future__ import annotations


import gin
import numpy as np

from spotisim.data.synthetic import ListenerState, SyntheticWorld
from spotisim.errors import UserModelError
from user_models.base import AbstractUserModel, History


@gin.configurable
class GroundTruthUserModel(AbstractUserModel):
    """Exact P(listen) of the synthetic world.

    Args:
      world: the `SyntheticWorld` whose listeners the episodes carry.

    P(leave) (`leave_probs`) is the world's hazard after each track, without the log's
    20-track cap: the simulator's episodes run past anything logged.
    """

    cascades = True

    def save(self, directory: str) -> None:
        """Saves the world it answers for (the model is the world)."""
        self.world.save(directory)

    @classmethod
    def load(cls, directory: str) -> "GroundTruthUserModel":
        return cls(SyntheticWorld.load(directory))

    def __init__(self, world: SyntheticWorld):
        self.world = world
        # The world's hidden response model is what this model answers with.
        self.response = world.response

    def state_after(self, history: History) -> ListenerState:
        """The hidden state of each listener after its history (vectorised replay)."""
        return self._replay(history)[0]

    def hazards_along(self, history: History, cap: bool = False) -> np.ndarray:
        """float [B, H]: the world's P(leave) after each entry of the history (0 past a
        row's length), with or without the log's length cap: the true hazard a learned
        leave model is measured against."""
        return self._replay(history, record=True, cap=cap)[1]

    def _replay(self, history: History, record: bool = False, cap: bool = False):
        if history.hidden is None or (history.listener < 0).any():
            raise UserModelError(
                "GroundTruthUserModel needs the synthetic listener key (listener id and "
                "session mood) in the history: use an episode sampler over a synthetic "
                "world or a synthetic log with its hidden_sessions.parquet")
        w = self.world
        B = history.batch_size
        mood = np.asarray(history.hidden, np.float64)
        taste = self._unit(w.listener_taste[history.listener] + w.config.mood_weight * mood)
        state = ListenerState(history.listener, history.context.astype(np.int64), mood,
                              taste, np.zeros(B, np.int64), np.ones(B, np.int64))
        hazards = np.zeros(history.tracks.shape) if record else None
        for t in range(int(history.length.max()) if B else 0):
            valid = t < history.length
            if not valid.any():
                break
            tracks = np.where(valid, history.tracks[:, t], 0)
            nxt = self.response.advance(state, tracks, history.responses[:, t] > 0.5)
            state = ListenerState(
                state.listener, state.context, state.mood,
                *(self._keep_where(valid, getattr(nxt, f), getattr(state, f))
                  for f in ("taste", "streak", "position", "satiety", "centroid", "boredom")))
            if record:
                hazards[:, t] = np.where(valid, self.response.leave_prob(state, cap=cap), 0.0)
        return state, hazards

    @staticmethod
    def _keep_where(valid, after, before):
        """Per row, the state after the track where `valid`, else as before (None: a
        mechanism the world does not have, or one not started yet, read as zeros)."""
        if after is None:
            return None
        before = np.zeros_like(after) if before is None else before
        mask = valid.reshape((-1,) + (1,) * (np.ndim(after) - 1))
        return np.where(mask, after, before)

    @staticmethod
    def _unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)

    def _predict(self, history, slate, slate_responses):
        state = self.state_after(history)
        B, K = slate.shape
        probs = np.zeros((B, K))
        for k in range(K):
            probs[:, k] = self.response.listen_prob(state, slate[:, k:k + 1])[:, 0]
            if k + 1 < K:
                r = (probs[:, k] >= 0.5) if slate_responses is None \
                    else np.asarray(slate_responses)[:, k]
                state = self.response.advance(state, slate[:, k], r)
        return probs

    def score_candidates(self, history, candidates):
        """P(listen) [B, C] of each candidate as the next track: one replay of the
        history, then every candidate scored against the same state."""
        candidates = np.asarray(candidates)
        if candidates.ndim != 2 or candidates.shape[0] != history.batch_size:
            raise UserModelError(f"candidates must be [batch, C] with batch "
                                 f"{history.batch_size}, got shape {candidates.shape}")
        return self.response.listen_prob(self.state_after(history), candidates)

    def _respond(self, history, slate, uniforms):
        state = self.state_after(history)
        B, K = slate.shape
        probs = np.zeros((B, K))
        responses = np.zeros((B, K), bool)
        hazards = np.zeros((B, K))
        for k in range(K):
            probs[:, k] = self.response.listen_prob(state, slate[:, k:k + 1])[:, 0]
            responses[:, k] = uniforms[:, k] < probs[:, k]
            state = self.response.advance(state, slate[:, k], responses[:, k])
            hazards[:, k] = self.response.leave_prob(state, cap=False)
        return probs, responses, hazards

    def leave_probs(self, history, slate, responses):
        state = self.state_after(history)
        K = slate.shape[1]
        out = np.zeros(slate.shape)
        for k in range(K):
            state = self.response.advance(state, slate[:, k], np.asarray(responses)[:, k])
            out[:, k] = self.response.leave_prob(state, cap=False)
        return out
