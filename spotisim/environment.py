"""The simulated listening environment, after Spotify's design: an `AbstractEnvironment`
owns a user model, a track sampler, an episode sampler and an episode tracker (plus a
termination rule); `PlaylistEnvironment` wires them together.  It contains no model math.

Every environment is natively batched: it runs B episodes side by side, and one step
makes one user-model call for all of them.  An episode that ended is restarted at the
next step (its action is ignored), which is what TF-Agents' batched environments expect.
"""

from __future__ import annotations

import abc
from typing import Dict, Optional

import gin
import numpy as np
from tf_agents.specs import array_spec

from spotisim.common_draws import keyed_uniforms
from spotisim.episode_samplers import AbstractEpisodeSampler
from spotisim.episode_tracker import EpisodeTracker
from spotisim.errors import ConfigError
from spotisim.observation import Observer, log_popularity
from spotisim.rewards import AbstractReward, PositionDiscountedListens, reward_in_expectation
from spotisim.termination import AnyOf, PoolExhausted, TerminationRule, UserLeft, take_lanes
from spotisim.track_samplers import AbstractTrackSampler
from spotisim.user_model import AbstractUserModel, History


class StepResult(tuple):
    """What one step returns for the B episodes.

    Unpacks as Spotify's `(observation, reward, done)`; also carries `terminal` and
    `first`.

    observation: the next observations (dict of [B, ...] arrays).
    reward: float32 [B].
    done: bool [B], the episode ended with this step.
    terminal: bool [B], it ended because the listener is gone (discount 0), not a limit.
    first: bool [B], the episode was (re)started at this step; reward is 0.
    continuation: float [B], the probability that the episode goes on past this step
      when leaving is taken in expectation (`PlaylistEnvironment.expected_leaving`),
      else 1: the TF-Agents discount of a step that did not terminate.
    """

    def __new__(cls, observation: Dict[str, np.ndarray], reward: np.ndarray,
                done: np.ndarray, terminal: np.ndarray, first: np.ndarray,
                continuation: Optional[np.ndarray] = None):
        self = super().__new__(cls, (observation, reward, done))
        self.terminal = terminal
        self.first = first
        self.continuation = (np.ones(np.shape(reward), np.float32) if continuation is None
                             else continuation)
        return self

    @property
    def observation(self) -> Dict[str, np.ndarray]:
        return self[0]

    @property
    def reward(self) -> np.ndarray:
        return self[1]

    @property
    def done(self) -> np.ndarray:
        return self[2]


class AbstractEnvironment(abc.ABC):
    """A simulated listening environment of B parallel episodes.

    Public `reset` / `step` check and delegate; subclasses implement `_reset` / `_step`.
    """

    _user_model: AbstractUserModel = None
    _track_sampler: AbstractTrackSampler = None
    _episode_tracker: EpisodeTracker = None
    _episode_sampler: AbstractEpisodeSampler = None
    _termination: TerminationRule = None

    def __init__(self, batch_size: int):
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self._started = False

    def reset(self) -> Dict[str, np.ndarray]:
        """Starts B new episodes; returns their observations."""
        obs = self._reset()
        self._started = True
        return obs

    def step(self, action: np.ndarray) -> StepResult:
        """Recommends one slate per episode (action [B, *action_space().shape])."""
        if not self._started:
            obs = self.reset()
            z = np.zeros(self.batch_size, bool)
            return StepResult(obs, np.zeros(self.batch_size, np.float32), z, z, ~z)
        return self._step(action)

    def reseed(self, seed: int) -> None:
        """Restarts the environment's random stream from `seed`: a training segment's
        start (`agents.training.Trainer`), so that a resumed run draws what an
        uninterrupted one draws.  Subclasses with a random stream implement it."""
        raise NotImplementedError(f"{type(self).__name__} cannot be reseeded")

    @abc.abstractmethod
    def observation_space(self) -> Dict[str, array_spec.ArraySpec]:
        """Spec of one (unbatched) observation."""

    def action_space(self) -> array_spec.BoundedArraySpec:
        """Spec of one (unbatched) action: the track sampler's."""
        return self._track_sampler.action_spec()

    @abc.abstractmethod
    def _reset(self) -> Dict[str, np.ndarray]:
        """Subclasses: restart every episode."""

    @abc.abstractmethod
    def _step(self, action: np.ndarray) -> StepResult:
        """Subclasses: one step of every episode."""


@gin.configurable
class PlaylistEnvironment(AbstractEnvironment):
    """Playlist continuation: each step recommends a slate of K tracks from the episode's
    candidate pool; the user model answers P(listen) per position (a listener hears them
    in order); responses are sampled with the environment's seeded RNG (or, in
    evaluations, from common random numbers: `use_keyed_draws`).

    The environment keeps the episode loop: starts, responses, history, rewards.  Its
    parts decide the rest: what an agent observes (`spotisim.observation.Observer`), why
    an episode ends (`spotisim.termination`: the listener left, the configured rules, the
    pool ran out), what a slate earns (`spotisim.rewards`).

    Observation (per episode): the state window of the last N tracks as embeddings with
    their responses, a validity mask and their track ids, and (optionally) the candidate
    pool's embeddings, track ids and a mask of candidates not yet recommended.  The ids
    let lookup policies (popularity, user-model greedy) work from the observation.  The
    window starts as the episode's
    history (logged responses included); then listened tracks enter it (skipped ones
    too when `state_includes_skips`), so a fully skipped slate leaves the state as it was.
    The user model always sees the whole history, skips included.

    Reward: a `spotisim.rewards` part (default: sum_k position_discount^k * listened_k,
    1.0 = plain count of listens); tracks after the listener left earn nothing.

    Args:
      user_model / track_sampler / episode_sampler / episode_tracker / termination: the
        parts (tracker and termination default to a fresh tracker and
        AnyOf(MaxSteps(20), ConsecutiveSkips(6))).
      embeddings: float [T, d] track embeddings (catalog order).
      batch_size: B, episodes run side by side.
      state_length: N, tracks in the observation window.
      position_discount: reward discount per slate position (used when no `reward`
        part is given).
      reward: the reward part (`spotisim.rewards`); it names the report's reward.
      observe_candidates: include the pool in the observation (needed by DQN / AH-DQN;
        LIRD scores the pool inside the track sampler and can leave it out).  None: as
        the track sampler says (`AbstractTrackSampler.observes_candidates`).
      observe_scores: observe the scorer's P(listen) of each candidate
        (`candidate_scores`; sets `candidate_scorer` to `scorer`; needs the pool in the
        observation, and is ignored without it).
      score_features: extend the candidate features a feature-reading track sampler
        (LIRD's weights) scores with the scorer's answers (sets `feature_scorer` to
        `scorer`; other samplers ignore it).
      scorer: the learned model whose answers `observe_scores` and `score_features`
        show (default: `user_model`); the main job passes the model the agent trains
        against, also when `user_model` is swapped for evaluation.
      state_includes_skips: skipped tracks also enter the observation window.
      candidate_scorer: a user model whose P(listen) of each candidate as the next track
        (`score_candidates`) is observed as `candidate_scores` (needs
        observe_candidates).  It is the *learned* model an agent may use at decision
        time, kept the same when the responding model is swapped (for instance for the
        ground truth in an online evaluation), so the ground truth never leaks into
        the observation.
      observe_leave_risk: with a `candidate_scorer` that models leaving, also observe
        its P(leave) right after each candidate were it listened to next
        (`candidate_leave`, from the scorer's `leave_hazard`): what a boredom-aware
        policy weighs against P(listen).
      feature_scorer: a learned user model whose answers extend the candidate features
        the *track sampler* scores (not the observation): [embedding, logit P(listen),
        logit P(leave right after, if listened)] of each candidate, so a LIRD weight
        vector can weigh a likely listen against a listener who stays (the sampler's
        embedding_dim is then d + 2).  Like `candidate_scorer`, it is the model the
        agent trains against, kept when the responding model is swapped.
      score_popularity: with the feature scorer, the candidate features also hold each
        track's log play count in the episode sampler's log, z-scored
        (`observation.log_popularity`), before the model's answers: [embedding,
        popularity, logit P(listen), logit P(leave)] (embedding_dim d + 3), and the
        observation holds it as `candidate_popularity` (other samplers ignore it).
        Why: on the returning world the weights that beat most popular mix the model's
        answers with the popularity (docs/listeners.md), which the embedding holds
        only as one acoustic column.
      score_redundancy: with the feature scorer, the candidate features also hold each
        candidate's redundancy with the recent listens as the scorer's leave model
        measures it (`leave_hazard.redundancy`), after the popularity and before the
        model's answers (one column more), observed as `candidate_redundancy`.  Why:
        the redundancy-aware greedy's penalty is this measure, and its mix with the log
        popularity beats most popular on the returning world, while logit P(leave)
        reads it only at positions where the model lets a listener leave
        (docs/listeners.md).
      simulate_leaving: the listener may leave after any track, with the user model's
        P(leave) (`AbstractUserModel.leave_probs`), sampled with this environment's
        RNG; the episode then ends as a termination (discount 0).  Off reproduces the
        worlds before leaving was simulated (`myopic_world.gin`).
      expected_leaving: take leaving in expectation instead of drawing the exit (for
        environments that *train* agents; evaluation always draws it).  The listener
        never leaves in the sampled trajectory; position k's reward is weighted by the
        probability that they are still there to hear it, prod_{j<k} (1 - h_j), and the
        step's discount is the probability that they stay through the slate,
        prod_j (1 - h_j).  Every policy's expected return is the same as with drawn
        exits (the exit is drawn independently of the responses, given the hazards), but
        a TD target now sees the model's P(leave) instead of one coin flip of it: the
        cost of boring a listener reaches the value estimate without the variance of
        episodes that end or go on at random.  Episodes end at the step limit or when
        the listener gives up.
      seed: seeds the environment's RNG (episode draws and responses).
    """

    def __init__(self, user_model: AbstractUserModel, track_sampler: AbstractTrackSampler,
                 episode_sampler: AbstractEpisodeSampler, embeddings: np.ndarray,
                 episode_tracker: Optional[EpisodeTracker] = None,
                 termination: Optional[TerminationRule] = None, batch_size: int = 1,
                 state_length: int = 10, position_discount: float = 1.0,
                 observe_candidates: Optional[bool] = None, state_includes_skips: bool = False,
                 observe_scores: bool = False, score_features: bool = False,
                 scorer: Optional[AbstractUserModel] = None,
                 candidate_scorer: Optional[AbstractUserModel] = None,
                 observe_leave_risk: bool = False,
                 feature_scorer: Optional[AbstractUserModel] = None,
                 simulate_leaving: bool = True, expected_leaving: bool = False,
                 reward: Optional[AbstractReward] = None, score_popularity: bool = False,
                 score_redundancy: bool = False, seed: int = 0):
        super().__init__(batch_size)
        if observe_candidates is None:
            observe_candidates = track_sampler.observes_candidates
        # The switches name what to observe; `scorer` (default: the user model) is the
        # learned model that answers, kept when the responding model is swapped.
        if observe_scores and observe_candidates and candidate_scorer is None:
            candidate_scorer = scorer if scorer is not None else user_model
        if score_features and track_sampler.reads_features and feature_scorer is None:
            feature_scorer = scorer if scorer is not None else user_model
        self.simulate_leaving = bool(simulate_leaving)
        if expected_leaving and not simulate_leaving:
            raise ConfigError("PlaylistEnvironment.expected_leaving needs simulate_leaving = True")
        self.expected_leaving = bool(expected_leaving)
        if candidate_scorer is not None and not observe_candidates:
            raise ConfigError("candidate_scorer needs observe_candidates=True")
        if observe_leave_risk and getattr(candidate_scorer, "leave_hazard", None) is None:
            raise ConfigError("PlaylistEnvironment.observe_leave_risk needs a candidate_scorer "
                              "with a leave_hazard (PlaylistEnvironment.observe_scores = True "
                              "and a learned user model)")
        if feature_scorer is not None and getattr(feature_scorer, "leave_hazard", None) is None:
            raise ConfigError("PlaylistEnvironment.feature_scorer needs a learned user model "
                              "with a leave_hazard")
        self._user_model = user_model
        self._track_sampler = track_sampler
        self._episode_sampler = episode_sampler
        self._episode_tracker = episode_tracker if episode_tracker is not None else EpisodeTracker()
        # Every way an episode ends, the configured rules (`_termination`) between the
        # listener leaving and the pool running out (`last_reasons` says which ended it).
        self._ends = AnyOf([UserLeft(), termination if termination is not None else AnyOf(),
                            PoolExhausted(track_sampler.slate_size)])
        self._ends.reset(self.batch_size)
        emb = np.asarray(embeddings, np.float32)
        if emb.ndim != 2 or emb.shape[0] != episode_sampler.num_tracks:
            raise ConfigError(f"embeddings must be [num_tracks={episode_sampler.num_tracks}, "
                              f"d], got shape {emb.shape}")
        if state_length < 1:
            raise ConfigError(f"state_length must be >= 1, got {state_length}")
        popularity = None
        if score_popularity and track_sampler.reads_features:  # other samplers ignore it
            if feature_scorer is None:
                raise ConfigError("PlaylistEnvironment.score_popularity extends the model's "
                                  "answers among the candidate features: it needs "
                                  "PlaylistEnvironment.score_features = True and a track "
                                  "sampler that reads features (LIRD's)")
            log = getattr(episode_sampler, "log", None)
            if log is None:
                raise ConfigError("PlaylistEnvironment.score_popularity reads the play counts "
                                  f"of the episode sampler's log; {type(episode_sampler).__name__}"
                                  " has no log")
            popularity = log_popularity(log.catalog.play_counts)
        redundancy = bool(score_redundancy and track_sampler.reads_features)
        if redundancy and (feature_scorer is None or not observe_candidates):
            raise ConfigError("PlaylistEnvironment.score_redundancy extends the model's "
                              "answers among the candidate features: it needs "
                              "PlaylistEnvironment.score_features = True, observed "
                              "candidates and a track sampler that reads features (LIRD's)")
        self._observer = Observer(emb, state_length, episode_sampler.pool_size,
                                  observe_candidates, candidate_scorer, observe_leave_risk,
                                  feature_scorer, popularity, redundancy)
        # The track sampler's pool and feature width come from the other parts.
        track_sampler.bind(episode_sampler.pool_size,
                           emb.shape[1] + self._observer.feature_width)
        if not 0.0 < position_discount <= 1.0:
            raise ConfigError(f"position_discount must be in (0, 1], got {position_discount}")
        self._emb = emb
        self.state_length = int(state_length)
        self.slate_size = track_sampler.slate_size
        self.pool_size = track_sampler.pool_size
        self.reward = reward if reward is not None else PositionDiscountedListens(position_discount)
        self.max_reward = self.reward.max_reward(self.slate_size)
        self.state_includes_skips = bool(state_includes_skips)
        self._seed = seed
        self._rng = np.random.default_rng(seed)
        self._next_episode = 0
        # Common random numbers (`use_keyed_draws`): None draws responses from the
        # stream; else the draw stream, with episodes counted from `_draw_base`.
        self._draw_stream: Optional[int] = None
        self._draw_base = 0
        B, N = self.batch_size, self.state_length
        self._hist_cap = episode_sampler.history_length + 8 * self.slate_size
        self._h_tracks = np.full((B, self._hist_cap), -1, np.int32)
        self._h_resp = np.zeros((B, self._hist_cap), np.float32)
        self._h_len = np.zeros(B, np.int32)
        # The logged behaviour of each heard track, for a user model that reads it
        # (NaN: not logged, e.g. simulated; the model fills it by its rule).
        self._behaviour_dim = int(getattr(user_model, "behaviour_dim", 0) or 0)
        self._h_beh = None
        if self._behaviour_dim:
            episode_sampler.with_behaviour = True
            self._h_beh = np.full((B, self._hist_cap, self._behaviour_dim), np.nan, np.float32)
        self._w_tracks = np.full((B, N), -1, np.int32)
        self._w_resp = np.zeros((B, N), np.float32)
        self._cands = np.zeros((B, self.pool_size), np.int32)
        self._avail = np.ones((B, self.pool_size), bool)
        self._context = np.zeros(B, np.int16)
        self._listener = np.full(B, -1, np.int64)
        self._hidden: Optional[np.ndarray] = None
        self._logged: Optional[np.ndarray] = None  # each lane's EpisodeStart.logged
        self._profile: Optional[np.ndarray] = None  # each lane's EpisodeStart.profile
        self._log_listener = np.full(B, -1, np.int64)
        self._key = np.zeros(B, np.int64)
        self._episode = np.zeros(B, np.int64)
        self._steps = np.zeros(B, np.int64)
        self._needs_reset = np.zeros(B, bool)

    @property
    def _termination(self) -> TerminationRule:
        """The configured termination rules (within `_ends`)."""
        return self._ends.rules[1]

    @property
    def observe_candidates(self) -> bool:
        return self._observer.observe_candidates

    @property
    def observe_leave_risk(self) -> bool:
        return self._observer.observe_leave_risk

    # ------------------------------------------------------------------ specs
    def observation_space(self):
        return self._observer.spec()

    # ------------------------------------------------------------------ state access
    @property
    def embeddings(self) -> np.ndarray:
        return self._emb

    @property
    def episode_tracker(self) -> EpisodeTracker:
        return self._episode_tracker

    @property
    def episode_sampler(self) -> AbstractEpisodeSampler:
        """Where the episodes start (a log's sessions, its shards, fresh listeners)."""
        return self._episode_sampler

    @property
    def history_length(self) -> int:
        """Tracks heard before each episode starts (its episode sampler's N): what a
        replay of the log matches an episode's first slates against."""
        return int(self._episode_sampler.history_length)

    def candidate_tracks(self) -> np.ndarray:
        """int [B, C] each episode's pool (catalog indices)."""
        return self._cands.copy()

    def available(self) -> np.ndarray:
        """bool [B, C] candidates not yet recommended."""
        return self._avail.copy()

    @property
    def episodes_started(self) -> int:
        """How many episodes this environment has started (episode ids run from 0)."""
        return int(self._next_episode)

    def episode_keys(self) -> np.ndarray:
        """int64 [B] each current episode's origin (the logged session index for
        `LogEpisodeSampler`), as the episode tracker records it."""
        return self._key.copy()

    def history(self, rows: Optional[np.ndarray] = None) -> History:
        """What the listeners of `rows` (default all) have heard so far."""
        rows = np.arange(self.batch_size) if rows is None else rows
        # `take` copies the rows: a caller never holds the environment's own buffers.
        return History(self._h_tracks, self._h_resp, self._h_len, self._context,
                       self._listener, self._hidden, self._h_beh, self._logged,
                       self._profile).take(rows)

    def restart_rng(self) -> None:
        """Restarts the environment's random stream from its seed, so that the next
        reset draws the same episode starts (and the same response draws) as the first
        one did: what lets several policies be evaluated, one after another, on the same
        starts (`agents.evaluate.run_episodes`)."""
        self._rng = np.random.default_rng(self._seed)
        self._draw_base = self._next_episode
        self._episode_sampler.restart(self._seed)

    def fork(self, rows: np.ndarray, seed: int) -> "PlaylistEnvironment":
        """A new environment whose lanes are copies of this one's lanes `rows`, in the
        middle of their episodes, with its own tracker and random stream (`seed`): what
        a planner rolls alternatives out in (benchmarks/headroom.py).  The parts (user
        model, samplers) are shared, not copied."""
        rows = np.asarray(rows, np.int64)
        new = take_lanes(self, rows, self.batch_size, shared=("_emb",))
        new._observer = take_lanes(self._observer, rows, self.batch_size,
                                   shared=("_emb", "_emb_padded"))
        new.batch_size = len(rows)
        new._ends = self._ends.take_lanes(rows)
        new._episode_tracker = EpisodeTracker()
        new._rng = np.random.default_rng(seed)
        new._draw_stream = None
        return new

    def use_keyed_draws(self, stream: Optional[int]) -> Optional[int]:
        """Responses drawn from common random numbers (`spotisim.common_draws`): the
        uniforms of the i-th episode started since the last `restart_rng`, at its t-th
        step, depend only on (seed, `stream`, i, t), so paired policies (and a simulator
        and the ground truth) meet the same luck on the same start.  None returns to
        the sequential stream (training).  Returns the previous setting."""
        previous, self._draw_stream = self._draw_stream, (None if stream is None
                                                          else int(stream))
        return previous

    def reseed(self, seed: int) -> None:
        self._seed = int(seed)
        self.restart_rng()

    # ------------------------------------------------------------------ episodes
    def _start(self, rows: np.ndarray) -> None:
        start = self._episode_sampler.sample(self._rng, len(rows))
        n0 = start.history_tracks.shape[1]
        self._h_tracks[rows] = -1
        self._h_resp[rows] = 0.0
        self._h_tracks[rows, :n0] = start.history_tracks
        self._h_resp[rows, :n0] = start.history_responses
        self._h_len[rows] = start.history_length
        if self._h_beh is not None:
            self._h_beh[rows] = np.nan
            if start.history_behaviour is not None:
                self._h_beh[rows, :n0] = start.history_behaviour
        # Window = the last N history entries, right-aligned (newest last).
        N = self.state_length
        idx = start.history_length[:, None] - N + np.arange(N)[None, :]
        valid = idx >= 0
        safe = np.clip(idx, 0, n0 - 1)
        self._w_tracks[rows] = np.where(valid, np.take_along_axis(start.history_tracks, safe, 1), -1)
        self._w_resp[rows] = np.where(valid, np.take_along_axis(start.history_responses, safe, 1), 0)
        self._cands[rows] = start.candidates
        self._avail[rows] = True
        self._context[rows] = start.context
        self._listener[rows] = start.listener
        if start.hidden is not None:
            if self._hidden is None:
                self._hidden = np.zeros((self.batch_size, start.hidden.shape[1]))
            self._hidden[rows] = start.hidden
        if start.logged is not None:
            M = start.logged.shape[1]
            if self._logged is None:
                self._logged = np.full((self.batch_size, M), -1, np.int32)
            elif self._logged.shape[1] < M:
                self._logged = np.pad(self._logged, ((0, 0), (0, M - self._logged.shape[1])),
                                      constant_values=-1)
            self._logged[rows] = -1
            self._logged[rows, :M] = start.logged
        if start.profile is not None:
            if self._profile is None:
                self._profile = np.zeros((self.batch_size, start.profile.shape[1]), np.float32)
            self._profile[rows] = start.profile
        elif self._profile is not None:
            self._profile[rows] = 0.0     # no profile: a new listener
        self._log_listener[rows] = -1 if start.log_listener is None else start.log_listener
        self._key[rows] = start.key
        self._episode[rows] = self._next_episode + np.arange(len(rows))
        self._next_episode += len(rows)
        self._steps[rows] = 0
        self._needs_reset[rows] = False
        mask = np.zeros(self.batch_size, bool)
        mask[rows] = True
        self._ends.reset_episodes(mask)

    def _observation(self) -> Dict[str, np.ndarray]:
        return self._observer.observe(self._w_tracks, self._w_resp, self._cands, self._avail,
                                      self.history)

    def model_features(self, rows: np.ndarray) -> np.ndarray:
        """float32 [R, C, 2]: logit P(listen) and logit P(leave if listened) of
        each candidate of `rows`, from the feature scorer (see the class docstring);
        the log popularity (`score_popularity`) and the redundancy
        (`score_redundancy`) come before them."""
        return self._observer.model_features(rows, self.history(rows), self._cands[rows])

    def _reset(self):
        self._start(np.arange(self.batch_size))
        return self._observation()

    def _grow_history(self, needed: int) -> None:
        if needed <= self._hist_cap:
            return
        new_cap = max(needed, 2 * self._hist_cap)
        pad = new_cap - self._hist_cap
        self._h_tracks = np.pad(self._h_tracks, ((0, 0), (0, pad)), constant_values=-1)
        self._h_resp = np.pad(self._h_resp, ((0, 0), (0, pad)))
        if self._h_beh is not None:
            self._h_beh = np.pad(self._h_beh, ((0, 0), (0, pad), (0, 0)),
                                 constant_values=np.nan)
        self._hist_cap = new_cap

    def _step(self, action):
        B, K = self.batch_size, self.slate_size
        first = self._needs_reset.copy()
        if first.any():
            self._start(np.nonzero(first)[0])
        rows = np.nonzero(~first)[0]
        reward = np.zeros(B, np.float32)
        done = np.zeros(B, bool)
        terminal = np.zeros(B, bool)
        continuation = np.ones(B, np.float32)
        if len(rows):
            action = np.asarray(action)
            act = action[rows] if action.ndim and action.shape[0] == B else action
            cand_emb = self._emb[self._cands[rows]]
            if self._observer.feature_scorer is not None:
                cand_emb = np.concatenate([cand_emb, self.model_features(rows)], axis=-1)
            pos = self._track_sampler.select(act, cand_emb, self._avail[rows])
            slate = np.take_along_axis(self._cands[rows], pos, axis=1)
            if self._draw_stream is None:
                uniforms = self._rng.random((len(rows), K + 1))
            else:
                uniforms = keyed_uniforms(self._seed, self._draw_stream,
                                          self._episode[rows] - self._draw_base,
                                          self._steps[rows], K + 1)
            answer = self._user_model.respond(self.history(rows), slate, uniforms,
                                              leaving=self.simulate_leaving,
                                              sample_exit=not self.expected_leaving)
            probs, responses, left = answer
            heard = getattr(answer, "heard", np.ones_like(responses, dtype=bool))
            hz = getattr(answer, "hazards", None)
            if self.expected_leaving and hz is not None:
                r, continuation[rows] = reward_in_expectation(self.reward, responses, hz)
            else:
                r = self.reward(responses, heard)
            self._avail[rows[:, None], pos] = False
            self._append(rows, slate, responses)
            self._steps[rows] += 1
            ended, term = self._ends.update(responses, left, rows,
                                            pool_left=self._avail[rows].sum(axis=1))
            reason = self._ends.last_reasons
            reward[rows], done[rows], terminal[rows] = r, ended, term & ended
            self._needs_reset[rows] = ended
            self._episode_tracker.record(self._episode[rows], self._steps[rows] - 1,
                                         self._key[rows], slate, probs, responses, r, ended,
                                         heard=heard, end_reason=reason,
                                         listener=self._log_listener[rows],
                                         stay=continuation[rows])
        return StepResult(self._observation(), reward, done, terminal, first, continuation)

    def _append(self, rows: np.ndarray, slate: np.ndarray, responses: np.ndarray) -> None:
        """Adds a heard slate to the full history and updates the observation window."""
        K, N = self.slate_size, self.state_length
        self._grow_history(int(self._h_len[rows].max()) + K)
        cols = self._h_len[rows][:, None] + np.arange(K)[None, :]
        self._h_tracks[rows[:, None], cols] = slate
        self._h_resp[rows[:, None], cols] = responses
        self._h_len[rows] += K
        # Window: keep entries that enter, in slate order, and drop the oldest.
        enters = np.ones_like(responses) if self.state_includes_skips else responses
        n_in = enters.sum(axis=1)
        # Stable order: entering tracks first, keeping slate order.
        order = np.argsort(~enters, axis=1, kind="stable")
        new_t = np.take_along_axis(slate, order, axis=1)
        new_r = np.take_along_axis(responses.astype(np.float32), order, axis=1)
        comb_t = np.concatenate([self._w_tracks[rows], new_t], axis=1)   # [R, N + K]
        comb_r = np.concatenate([self._w_resp[rows], new_r], axis=1)
        start = (n_in)[:, None] + np.arange(N)[None, :]                   # window slides by n_in
        self._w_tracks[rows] = np.take_along_axis(comb_t, start, axis=1)
        self._w_resp[rows] = np.take_along_axis(comb_r, start, axis=1)
