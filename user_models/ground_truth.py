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
      model_leaving: whether `respond` also reports that the listener left (the world's
        session-ending hazard after the slate).
    """

    cascades = True

    def save(self, directory: str) -> None:
        """Saves the world it answers for (the model is the world)."""
        self.world.save(directory)

    @classmethod
    def load(cls, directory: str) -> "GroundTruthUserModel":
        return cls(SyntheticWorld.load(directory))

    def __init__(self, world: SyntheticWorld, model_leaving: bool = False):
        self.world = world
        self.model_leaving = bool(model_leaving)

    def state_after(self, history: History) -> ListenerState:
        """The hidden state of each listener after its history (vectorised replay)."""
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
        for t in range(int(history.length.max()) if B else 0):
            valid = t < history.length
            if not valid.any():
                break
            tracks = np.where(valid, history.tracks[:, t], 0)
            nxt = w.advance(state, tracks, history.responses[:, t] > 0.5)
            satiety = None  # a world without satiation never has one
            if nxt.satiety is not None:
                before = 0.0 if state.satiety is None else state.satiety
                satiety = np.where(valid[:, None], nxt.satiety, before)
            state = ListenerState(
                state.listener, state.context, state.mood,
                np.where(valid[:, None], nxt.taste, state.taste),
                np.where(valid, nxt.streak, state.streak),
                np.where(valid, nxt.position, state.position), satiety)
        return state

    @staticmethod
    def _unit(x):
        return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-9)

    def _predict(self, history, slate, slate_responses):
        state = self.state_after(history)
        B, K = slate.shape
        probs = np.zeros((B, K))
        for k in range(K):
            probs[:, k] = self.world.listen_prob(state, slate[:, k:k + 1])[:, 0]
            if k + 1 < K:
                r = (probs[:, k] >= 0.5) if slate_responses is None \
                    else np.asarray(slate_responses)[:, k]
                state = self.world.advance(state, slate[:, k], r)
        return probs

    def _respond(self, history, slate, uniforms):
        state = self.state_after(history)
        B, K = slate.shape
        probs = np.zeros((B, K))
        responses = np.zeros((B, K), bool)
        for k in range(K):
            probs[:, k] = self.world.listen_prob(state, slate[:, k:k + 1])[:, 0]
            responses[:, k] = uniforms[:, k] < probs[:, k]
            state = self.world.advance(state, slate[:, k], responses[:, k])
        left = None
        if self.model_leaving:
            left = uniforms[:, K] < self.world.leave_prob(state, cap=False)
        return probs, responses, left
