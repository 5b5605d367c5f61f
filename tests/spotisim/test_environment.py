"""PlaylistEnvironment + EnvironmentBuilder + TFAgtPyEnvironment: specs, invariants,
termination, determinism, tracker output, bad input, batching, TF-Agents drivers."""

import numpy as np
import pyarrow.parquet as pq
import pytest
from tf_agents.environments import utils as env_utils
from tf_agents.trajectories import time_step as ts

from spotisim.builder import EnvironmentBuilder, TFAgtPyEnvironment
from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.environment import PlaylistEnvironment
from spotisim.episode_samplers import LogEpisodeSampler, SyntheticEpisodeSampler
from spotisim.episode_tracker import EpisodeTracker
from spotisim.errors import ActionError, ConfigError, UserModelError
from spotisim.termination import AnyOf, ConsecutiveSkips, MaxSteps
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler)
from tests.conftest import TINY_WORLD
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel

SAMPLERS = [ContinuousWeightsTrackSampler, CandidateIndexTrackSampler, SlateIndicesTrackSampler]
POOL, K, D = 40, 3, 9


class AlwaysListens(AbstractUserModel):
    """P(listen) 1; P(leave) after each slate position from `hazards(history, slate)`."""

    cascades = False

    def __init__(self, hazards):
        self.hazards = hazards

    def _predict(self, history, slate, slate_responses):
        return np.ones(slate.shape)

    def leave_probs(self, history, slate, responses):
        return self.hazards(history, slate)


class ConstantUserModel(AbstractUserModel):
    """P(listen) = p everywhere; counts its calls."""

    cascades = False

    def __init__(self, p=0.5):
        self.p = p
        self.calls = 0
        self.batch_sizes = []

    def _predict(self, history, slate, slate_responses):
        self.calls += 1
        self.batch_sizes.append(history.batch_size)
        return np.full(slate.shape, self.p)


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))


def embeddings(world):
    return np.concatenate([world.track_latent, world.track_popularity[:, None]], 1)


def make_env(world, sampler_cls=SlateIndicesTrackSampler, batch_size=1, user_model=None,
             termination=None, seed=0, tracker=None, **kw):
    kw.setdefault("simulate_leaving", False)  # the tests of leaving turn it on
    return PlaylistEnvironment(
        user_model or GroundTruthUserModel(world), sampler_cls(K, POOL, D),
        SyntheticEpisodeSampler(world, 10, POOL), embeddings(world),
        episode_tracker=tracker, termination=termination, batch_size=batch_size, seed=seed,
        **kw)


def random_actions(env, rng):
    spec = env.action_space()
    shape = (env.batch_size,) + spec.shape
    if np.issubdtype(spec.dtype, np.integer):
        return rng.integers(spec.minimum, spec.maximum + 1, shape).astype(spec.dtype)
    return rng.uniform(spec.minimum, spec.maximum, shape).astype(spec.dtype)


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
@pytest.mark.parametrize("batch_size", [1, 5])
def test_validate_py_environment(world, sampler_cls, batch_size):
    env = TFAgtPyEnvironment(make_env(world, sampler_cls, batch_size))
    assert env.batched == (batch_size > 1)
    env_utils.validate_py_environment(env, episodes=3)


@pytest.mark.parametrize("sampler_cls", SAMPLERS)
def test_invariants_over_many_steps(world, sampler_cls):
    env = make_env(world, sampler_cls, batch_size=6,
                   termination=AnyOf([MaxSteps(12), ConsecutiveSkips(6)]))
    rng = np.random.default_rng(0)
    obs = env.reset()
    spec = env.observation_space()
    for _ in range(40):
        for name, s in spec.items():
            assert obs[name].shape == (6,) + s.shape and obs[name].dtype == s.dtype
        r = env.step(random_actions(env, rng))
        obs = r.observation
    # Each episode: slate size K, no track twice, none from its history.
    a = env.episode_tracker.arrays()
    # The reward (plain listens: position discount 1, no leaving here) is each step's
    # count of listened tracks, all K heard; steps that restarted an episode earn 0.
    assert a["heard"].all()
    np.testing.assert_array_equal(a["reward"], a["responses"].sum(1))
    assert a["reward"].sum() == a["responses"].sum() > 0
    assert a["slate"].shape[1] == K
    for ep in np.unique(a["episode_id"]):
        tracks = a["slate"][a["episode_id"] == ep].ravel()
        assert len(set(tracks.tolist())) == len(tracks)


def test_episode_cycle_and_reset_after_last(world):
    env = TFAgtPyEnvironment(make_env(world, termination=MaxSteps(3)))
    types = [env.reset().step_type]
    rng = np.random.default_rng(0)
    for _ in range(8):
        types.append(env.step(random_actions(env.env, rng)[0]).step_type)
    F, M, L = ts.StepType.FIRST, ts.StepType.MID, ts.StepType.LAST
    assert [int(t) for t in types] == [F, M, M, L, F, M, M, L, F]
    # A time limit is a truncation: discount stays 1 on LAST.
    env.reset()
    for _ in range(3):
        last = env.step(np.zeros(K, np.int32))
    assert last.is_last() and last.discount == 1.0


def test_with_several_lanes_only_the_ended_episode_restarts(world):
    """B = 3, lane 1 leaves after its first slate (hazard 1 there), the others go on:
    at the next step lane 1 is FIRST with reward 0 and its action is ignored (no slate
    recorded for it, no candidate used), while lanes 0 and 2 step normally."""

    def lane_one_leaves(history, slate):
        hz = np.zeros(slate.shape)
        hz[history.listener == model.leaver, -1] = 1.0
        return hz

    model = AlwaysListens(lane_one_leaves)
    tracker = EpisodeTracker()
    env = make_env(world, batch_size=3, user_model=model, tracker=tracker,
                   simulate_leaving=True, termination=AnyOf([MaxSteps(20)]))
    tf_env = TFAgtPyEnvironment(env)
    tf_env.reset()
    model.leaver = env.history().listener[1]
    assert (env.history().listener != model.leaver).sum() == 2   # only lane 1 leaves
    a = np.tile(np.arange(K, dtype=np.int32), (3, 1))
    t1 = tf_env.step(a)
    assert [int(x) for x in t1.step_type] == [ts.StepType.MID, ts.StepType.LAST, ts.StepType.MID]
    np.testing.assert_array_equal(t1.reward, [3, 3, 3])
    avail_before = env.available()
    t2 = tf_env.step(a + K)
    assert [int(x) for x in t2.step_type] == [ts.StepType.MID, ts.StepType.FIRST, ts.StepType.MID]
    np.testing.assert_array_equal(t2.reward, [3, 0, 3])
    assert env.available()[1].all()                              # a fresh pool, nothing used
    assert avail_before[0].sum() - env.available()[0].sum() == K
    rec = tracker.arrays()
    assert len(rec["episode_id"]) == 3 + 2                       # no record for lane 1's ignored action
    assert sorted(rec["episode_id"][-2:].tolist()) == [0, 2]


def test_consecutive_skips_terminate_with_discount_zero(world):
    env = TFAgtPyEnvironment(make_env(world, user_model=ConstantUserModel(0.0),
                                      termination=AnyOf([MaxSteps(20), ConsecutiveSkips(4)])))
    env.reset()
    steps = [env.step(np.array([0, 1, 2], np.int32)) for _ in range(4)]
    assert [bool(s.is_last()) for s in steps] == [False, False, False, True]
    assert steps[-1].discount == 0.0 and all(s.reward == 0 for s in steps)


def test_window_updates(world):
    env = make_env(world, user_model=ConstantUserModel(0.0))
    obs0 = env.reset()
    r = env.step(np.array([[0, 1, 2]], np.int32))
    # Everything skipped: the state does not move.
    for name in ("history", "responses", "history_mask"):
        np.testing.assert_array_equal(r.observation[name], obs0[name])
    assert env.history().length[0] == 13  # but the user model heard all three
    env2 = make_env(world, user_model=ConstantUserModel(1.0))
    env2.reset()
    cands = env2.candidate_tracks()[0]
    r2 = env2.step(np.array([[4, 5, 6]], np.int32))
    np.testing.assert_array_equal(r2.observation["history"][0, -3:],
                                  env2.embeddings[cands[[4, 5, 6]]])
    assert r2.observation["responses"][0, -3:].tolist() == [1, 1, 1]
    assert r2.reward[0] == 3.0
    assert r2.observation["candidate_mask"][0, [4, 5, 6]].tolist() == [0, 0, 0]


def test_position_discount(world):
    env = make_env(world, user_model=ConstantUserModel(1.0), position_discount=0.9)
    env.reset()
    r = env.step(np.array([[0, 1, 2]], np.int32))
    assert r.reward[0] == pytest.approx(1 + 0.9 + 0.81)
    assert env.max_reward == pytest.approx(2.71)


def test_same_seed_same_episodes(world):
    def run(seed):
        env = make_env(world, batch_size=4, seed=seed)
        rng = np.random.default_rng(1)
        env.reset()
        for _ in range(15):
            env.step(random_actions(env, rng))
        return env.episode_tracker.arrays()

    a, b, c = run(7), run(7), run(8)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name])
    assert not np.array_equal(a["slate"], c["slate"])


def test_tracker_parquet_equals_what_was_stepped(world, tmp_path):
    tracker = EpisodeTracker(str(tmp_path / "ep.parquet"))
    env = make_env(world, batch_size=3, tracker=tracker)
    env.reset()
    rng = np.random.default_rng(2)
    rewards = []
    for _ in range(5):
        r = env.step(random_actions(env, rng))
        rewards.append(r.reward[~r.first])
    table = pq.read_table(tracker.flush()).to_pydict()
    np.testing.assert_allclose(table["reward"], np.concatenate(rewards), rtol=1e-6)
    assert len(table["slate"]) == 15 and all(len(s) == K for s in table["slate"])
    resp = np.array(table["responses"])
    np.testing.assert_allclose(resp.sum(1), table["reward"])


def test_one_user_model_call_per_step(world):
    um = ConstantUserModel(0.5)
    env = make_env(world, batch_size=8, user_model=um, termination=MaxSteps(50))
    env.reset()
    rng = np.random.default_rng(0)
    for _ in range(5):
        env.step(random_actions(env, rng))
    assert um.calls == 5 and um.batch_sizes == [8] * 5


def test_bad_actions_and_models(world):
    env = make_env(world)
    env.reset()
    with pytest.raises(ActionError, match="shape"):
        env.step(np.array([[0, 1]], np.int32))
    with pytest.raises(ActionError, match="outside"):
        env.step(np.array([[0, 1, POOL]], np.int32))
    with pytest.raises(ActionError, match="integer"):
        env.step(np.array([[0.0, 1.0, 2.0]]))
    bad = make_env(world, user_model=ConstantUserModel(np.nan))
    bad.reset()
    with pytest.raises(UserModelError, match="NaN"):
        bad.step(np.array([[0, 1, 2]], np.int32))
    over = make_env(world, user_model=ConstantUserModel(1.5))
    over.reset()
    with pytest.raises(UserModelError, match=r"outside \[0, 1\]"):
        over.step(np.array([[0, 1, 2]], np.int32))


def test_bad_configuration(world):
    with pytest.raises(ConfigError, match="pool_size"):
        PlaylistEnvironment(GroundTruthUserModel(world), SlateIndicesTrackSampler(K, 30, D),
                            SyntheticEpisodeSampler(world, 10, POOL), embeddings(world))
    with pytest.raises(ConfigError, match="embedding_dim"):
        PlaylistEnvironment(GroundTruthUserModel(world), SlateIndicesTrackSampler(K, POOL, 4),
                            SyntheticEpisodeSampler(world, 10, POOL), embeddings(world))
    with pytest.raises(ConfigError, match="position_discount"):
        make_env(world, position_discount=0.0)


def test_pool_exhaustion_ends_the_episode(world):
    env = make_env(world, termination=MaxSteps(100))
    env.reset()
    dones = [bool(env.step(np.array([[0, 1, 2]], np.int32)).done[0]) for _ in range(POOL // K)]
    assert dones == [False] * (POOL // K - 1) + [True]  # 13 slates use 39 of 40


def test_builder_with_log_sampler_and_driver(tiny_log, tiny_world_dir, world):
    import tensorflow as tf
    from tf_agents.drivers import dynamic_step_driver
    from tf_agents.policies import random_tf_policy

    saved = SyntheticWorld.load(tiny_world_dir["world"])
    builder = EnvironmentBuilder(
        GroundTruthUserModel(saved), CandidateIndexTrackSampler(K, POOL, D),
        LogEpisodeSampler(tiny_log, 10, POOL, hidden_sessions=tiny_world_dir["hidden"]),
        np.concatenate([saved.track_latent, saved.track_popularity[:, None]], 1)[
            saved_index(saved, tiny_log)],
        batch_size=4, seed=3, termination=MaxSteps(5))
    tf_env = builder.get_tf_py_environment()
    assert tf_env.batch_size == 4
    policy = random_tf_policy.RandomTFPolicy(tf_env.time_step_spec(), tf_env.action_spec())
    steps = []
    driver = dynamic_step_driver.DynamicStepDriver(tf_env, policy, observers=[steps.append],
                                                   num_steps=40)
    driver.run()
    # The driver counts environment steps that are not episode boundaries (LAST->FIRST).
    counted = sum(int(tf.reduce_sum(tf.cast(~t.is_boundary(), tf.int32))) for t in steps)
    assert 40 <= counted < 44
    assert sum(int(tf.reduce_sum(tf.cast(t.is_first(), tf.int32))) for t in steps) >= 8
    summary = builder.environment.episode_tracker.summary()
    # 40 counted steps over 4 lanes of 5-slate episodes: 8 episodes end, at least.
    assert summary["episodes"] >= 8
    # The tracker's skip rate agrees with the rewards the driver saw (reward = listens:
    # no position discount), over the tracks heard.
    a = builder.environment.episode_tracker.arrays()
    listens = sum(float(tf.reduce_sum(t.reward)) for t in steps)
    assert summary["skip_rate"] == pytest.approx(1.0 - listens / a["heard"].sum())


def saved_index(world, log):
    """Rows of the world's track arrays in the log catalogue's order."""
    from spotisim.data.catalog import TrackCatalog
    return TrackCatalog(world.track_ids).indices(log.catalog.track_ids)


def test_parts_are_gin_configurable(world):
    import gin
    gin.clear_config()
    try:
        gin.parse_config("""
            SlateIndicesTrackSampler.slate_size = 2
            SlateIndicesTrackSampler.pool_size = 30
            SlateIndicesTrackSampler.embedding_dim = 9
            SyntheticEpisodeSampler.pool_size = 30
            SyntheticEpisodeSampler.history_length = 5
            MaxSteps.max_steps = 4
            PlaylistEnvironment.position_discount = 0.5
            PlaylistEnvironment.state_length = 7
        """)
        env = EnvironmentBuilder(ConstantUserModel(1.0), SlateIndicesTrackSampler(),
                                 SyntheticEpisodeSampler(world), embeddings(world),
                                 termination=MaxSteps()).environment
        obs = env.reset()
        assert obs["history"].shape == (1, 7, D) and obs["candidates"].shape == (1, 30, D)
        rewards = [env.step(np.array([[0, 1]], np.int32)) for _ in range(4)]
        assert rewards[0].reward[0] == pytest.approx(1.5) and rewards[-1].done[0]
        assert obs["history_mask"].sum() == 5  # history of 5 in a window of 7
    finally:
        gin.clear_config()


def test_step_unpacks_as_spotify_tuple_and_runs_the_keras_model(world):
    from user_models.sequential import SequentialUserModel
    emb = embeddings(world).astype(np.float32)
    env = make_env(world, user_model=SequentialUserModel(emb, units=8), batch_size=4)
    env.reset()
    obs, reward, done = env.step(np.zeros((4, K), np.int32))
    assert reward.shape == (4,) and done.dtype == bool and obs["history"].shape[0] == 4
    assert env.episode_tracker.arrays()["predicted"].shape == (4, K)
    env_utils.validate_py_environment(TFAgtPyEnvironment(env), episodes=2)


def test_candidate_scores_come_from_the_scorer_not_the_responding_model(world):
    """With a candidate_scorer the observation holds its P(listen) per candidate; the
    responding model (here the ground truth) never shows through."""
    scorer = ConstantUserModel(0.25)
    env = make_env(world, batch_size=3, candidate_scorer=scorer, termination=MaxSteps(4))
    tf_env = TFAgtPyEnvironment(env)
    env_utils.validate_py_environment(tf_env, episodes=2)
    obs = env.reset()
    assert obs["candidate_scores"].shape == (3, POOL)
    np.testing.assert_allclose(obs["candidate_scores"], 0.25)
    gt = GroundTruthUserModel(world)
    obs = env.step(np.tile(np.arange(K, dtype=np.int32), (3, 1))).observation
    expected = gt.score_candidates(env.history(), env.candidate_tracks())
    assert not np.allclose(obs["candidate_scores"], expected)
    np.testing.assert_allclose(obs["candidate_scores"], 0.25)
    with pytest.raises(ConfigError, match="observe_candidates"):
        make_env(world, candidate_scorer=scorer, observe_candidates=False)


def leaves_on_second_slate(history, slate):
    """Hazard 1 right after the second track of the episode's second slate, else 0."""
    hz = np.zeros(slate.shape)
    second = history.length == 10 + slate.shape[1]   # history of 10, one slate heard
    hz[second, 1] = 1.0
    return hz


def test_a_listener_who_leaves_ends_the_episode_with_discount_0(world, tmp_path):
    """Leaving ends the episode (discount 0, whatever the termination rule), the track
    after the exit is not heard (no reward, not a skip), the tracker says why, and with
    B > 1 the next step restarts only the episodes that ended."""
    tracker = EpisodeTracker()
    env = TFAgtPyEnvironment(make_env(world, batch_size=3, user_model=AlwaysListens(leaves_on_second_slate),
                                      tracker=tracker, simulate_leaving=True,
                                      termination=AnyOf([MaxSteps(20)])))
    t0 = env.reset()
    assert (t0.step_type == ts.StepType.FIRST).all()
    a = np.zeros((3, K), np.int32)
    t1 = env.step(a)
    np.testing.assert_array_equal(t1.reward, [3, 3, 3])       # three listens each
    assert (t1.step_type == ts.StepType.MID).all() and (t1.discount == 1).all()
    t2 = env.step(a)
    np.testing.assert_array_equal(t2.reward, [2, 2, 2])       # left after track 2 of 3
    assert (t2.step_type == ts.StepType.LAST).all() and (t2.discount == 0).all()
    t3 = env.step(a)                                           # restart: action ignored
    assert (t3.step_type == ts.StepType.FIRST).all() and (t3.reward == 0).all()
    rec = tracker.arrays()
    np.testing.assert_array_equal(rec["heard"][-3:], [[True, True, False]] * 3)
    np.testing.assert_array_equal(rec["end_reason"], [0, 0, 0, 1, 1, 1])  # 1 = left
    assert tracker.summary()["skip_rate"] == 0.0               # the unheard track is no skip
    # Leaving off: the same model never leaves.
    quiet = make_env(world, batch_size=3, user_model=AlwaysListens(leaves_on_second_slate),
                     termination=AnyOf([MaxSteps(20)]))
    quiet.reset()
    quiet.step(a)
    assert not quiet.step(a).done.any()


def half_leave_after_second_track(history, slate):
    """P(leave) 0.5 after the second track of every slate, 0 elsewhere."""
    hz = np.zeros(slate.shape)
    hz[:, 1] = 0.5
    return hz


def test_expected_leaving_weights_rewards_and_discounts_by_the_chance_to_stay(world):
    """In expectation: nobody leaves, position k earns prod_{j<k} (1 - h_j) of its
    listen, and the step's discount is the chance to stay through the slate."""
    env = TFAgtPyEnvironment(make_env(world, batch_size=2, user_model=AlwaysListens(half_leave_after_second_track),
                                      simulate_leaving=True, expected_leaving=True,
                                      termination=AnyOf([MaxSteps(4)])))
    env.reset()
    a = np.zeros((2, K), np.int32)
    for step in range(4):
        t = env.step(a)
        np.testing.assert_allclose(t.reward, [1 + 1 + 0.5] * 2)
        if step < 3:
            assert (t.step_type == ts.StepType.MID).all()
            np.testing.assert_allclose(t.discount, 0.5)
    assert (t.step_type == ts.StepType.LAST).all()           # the step limit ends it
    with pytest.raises(ConfigError, match="simulate_leaving"):
        make_env(world, expected_leaving=True, simulate_leaving=False)


def test_expected_leaving_keeps_every_policys_expected_return(world):
    """The ground truth's own hazards, one fixed policy: the mean return with drawn exits
    and the mean discounted return in expectation agree (within 4 standard errors over
    400 episodes), and they are not the return of a listener who never leaves."""
    cfg = dict(TINY_WORLD, boredom_weight=0.5, leave_base=-1.5)
    w = SyntheticWorld(WorldConfig(seed=5, **cfg))
    truth = GroundTruthUserModel(w)

    def returns(expected, leaving=True):
        env = make_env(w, batch_size=400, user_model=truth, simulate_leaving=leaving,
                       expected_leaving=expected, termination=AnyOf([MaxSteps(5)]), seed=11)
        tf_env = TFAgtPyEnvironment(env)
        tf_env.reset()
        total, alive = np.zeros(400), np.ones(400)
        for _ in range(5):
            t = tf_env.step(np.tile(np.arange(K, dtype=np.int32) + 3 * _, (400, 1)))
            total += alive * t.reward
            alive = alive * t.discount * (t.step_type != ts.StepType.LAST)
        return total

    drawn, expected, never = returns(False), returns(True), returns(False, leaving=False)
    se = np.sqrt(drawn.var() / len(drawn) + expected.var() / len(expected))
    assert abs(drawn.mean() - expected.mean()) < 4 * se
    assert expected.mean() < never.mean() - 4 * se
    assert expected.std() < drawn.std()                       # the point: less variance


def test_lird_features_reuse_the_observed_answers(world, tiny_log):
    """When the sampler's feature scorer is the observed scorer, the features are the
    observation's answers for the same states (no second scoring call), and equal to
    scoring again."""
    from user_models.leave_hazard import LeaveHazard
    emb = embeddings(world)
    scorer = GroundTruthUserModel(world)
    scorer.leave_hazard = LeaveHazard(emb).fit(tiny_log)
    calls = []
    score = scorer.score_candidates
    scorer.score_candidates = lambda h, c: calls.append(len(c)) or score(h, c)
    env = PlaylistEnvironment(
        GroundTruthUserModel(world), ContinuousWeightsTrackSampler(K, POOL, D + 2),
        SyntheticEpisodeSampler(world, 10, POOL), emb, batch_size=4, seed=0,
        feature_scorer=scorer, candidate_scorer=scorer, observe_leave_risk=True,
        simulate_leaving=False, observe_candidates=True)
    obs = env.reset()
    env.step(np.random.default_rng(0).uniform(-1, 1, (4, K, D + 2)).astype(np.float32))
    assert calls == [4, 4]                       # one per observation, none for the features
    feats = env.model_features(np.array([1, 3]))
    p = np.clip(score(env.history(np.array([1, 3])), env.candidate_tracks()[[1, 3]]), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(feats[..., 0], np.log(p / (1 - p)), rtol=1e-5)
    assert obs["candidate_scores"].shape == (4, POOL)


def test_feature_scorer_extends_what_lird_weights_score(world, tiny_log):
    """With a feature scorer the weights sampler scores [embedding, logit P(listen),
    logit P(leave if listened)]: a weight vector that is 1 on the P(listen) coordinate
    and 0 elsewhere picks exactly the scorer's greedy slate."""
    from user_models.leave_hazard import LeaveHazard
    emb = embeddings(world)
    scorer = GroundTruthUserModel(world)
    scorer.leave_hazard = LeaveHazard(emb).fit(tiny_log)
    with pytest.raises(ConfigError, match="embedding_dim"):
        make_env(world, ContinuousWeightsTrackSampler, feature_scorer=scorer)
    env = PlaylistEnvironment(
        GroundTruthUserModel(world), ContinuousWeightsTrackSampler(K, POOL, D + 2),
        SyntheticEpisodeSampler(world, 10, POOL), emb, batch_size=4, seed=0,
        feature_scorer=scorer, simulate_leaving=False, observe_candidates=False)
    env.reset()
    feats = env.model_features(np.arange(4))                      # [4, C, 2]
    p = scorer.score_candidates(env.history(), env.candidate_tracks())
    np.testing.assert_allclose(feats[..., 0], np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)
    w = np.zeros((4, K, D + 2), np.float32)
    w[:, :, D] = 1.0
    greedy = np.argsort(-p, axis=1, kind="stable")[:, :K]
    slate_ids = np.take_along_axis(env.candidate_tracks(), greedy, 1)
    env.step(w)
    np.testing.assert_array_equal(env.episode_tracker.arrays()["slate"], slate_ids)
    # Weight on the leave coordinate alone: the slate of lowest leave risk.
    env2 = PlaylistEnvironment(
        GroundTruthUserModel(world), ContinuousWeightsTrackSampler(K, POOL, D + 2),
        SyntheticEpisodeSampler(world, 10, POOL), emb, batch_size=4, seed=0,
        feature_scorer=scorer, simulate_leaving=False, observe_candidates=False)
    env2.reset()
    risk = env2.model_features(np.arange(4))[..., 1]
    w2 = np.zeros((4, K, D + 2), np.float32)
    w2[:, :, D + 1] = -1.0
    env2.step(w2)
    picked = env2.episode_tracker.arrays()["slate"]
    calm = np.take_along_axis(env2.candidate_tracks(), np.argsort(risk, 1, kind="stable")[:, :K], 1)
    np.testing.assert_array_equal(np.sort(picked, 1), np.sort(calm, 1))


def test_the_log_popularity_joins_what_lird_weights_score(tiny_log, tiny_world_dir):
    """`score_popularity`: the candidate features are [embedding, z-scored log(1 +
    plays), logit P(listen), logit P(leave)] (the popularity read from the episode
    sampler's log, by hand on a tiny case), the observation shows it, and a weight on
    that coordinate alone picks the most played candidates.  Without a feature scorer,
    or with a sampler that has no log, it is refused by name."""
    from spotisim.observation import log_popularity
    from user_models.leave_hazard import LeaveHazard
    np.testing.assert_allclose(log_popularity(np.array([0, 1, 3])),
                               [-np.sqrt(1.5), 0.0, np.sqrt(1.5)], atol=1e-6)
    np.testing.assert_allclose(log_popularity(np.array([5, 5])), [0.0, 0.0])
    saved = SyntheticWorld.load(tiny_world_dir["world"])
    emb = np.concatenate([saved.track_latent, saved.track_popularity[:, None]], 1)[
        saved_index(saved, tiny_log)].astype(np.float32)
    scorer = GroundTruthUserModel(saved)
    scorer.leave_hazard = LeaveHazard(emb).fit(tiny_log)

    def env_with(**kw):
        return PlaylistEnvironment(
            GroundTruthUserModel(saved), ContinuousWeightsTrackSampler(K, POOL, D + 3),
            LogEpisodeSampler(tiny_log, 10, POOL, hidden_sessions=tiny_world_dir["hidden"]),
            emb, batch_size=4, seed=0, simulate_leaving=False, observe_candidates=True,
            **kw)

    env = env_with(feature_scorer=scorer, score_popularity=True)
    obs = env.reset()
    pop = log_popularity(tiny_log.catalog.play_counts)[env.candidate_tracks()]
    np.testing.assert_allclose(obs["candidate_popularity"], pop)
    feats = env.model_features(np.arange(4))                      # [4, C, 3]
    assert feats.shape == (4, POOL, 3)
    np.testing.assert_allclose(feats[..., 0], pop)
    p = np.clip(scorer.score_candidates(env.history(), env.candidate_tracks()), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(feats[..., 1], np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)
    w = np.zeros((4, K, D + 3), np.float32)
    w[:, :, D] = 1.0
    counts = tiny_log.catalog.play_counts[env.candidate_tracks()]
    before = env.candidate_tracks().copy()
    env.step(w)
    picked = env.episode_tracker.arrays()["slate"]
    top = np.take_along_axis(before, np.argsort(-counts, 1, kind="stable")[:, :K], 1)
    np.testing.assert_array_equal(np.sort(tiny_log.catalog.play_counts[picked], 1),
                                  np.sort(tiny_log.catalog.play_counts[top], 1))
    with pytest.raises(ConfigError, match="score_popularity.*score_features"):
        env_with(score_popularity=True)
    with pytest.raises(ConfigError, match="SyntheticEpisodeSampler has no log"):
        PlaylistEnvironment(
            GroundTruthUserModel(saved), ContinuousWeightsTrackSampler(K, POOL, D + 3),
            SyntheticEpisodeSampler(saved, 10, POOL), emb, feature_scorer=scorer,
            score_popularity=True)


def test_the_redundancy_joins_what_lird_weights_score(tiny_log, tiny_world_dir):
    """`score_redundancy`: the candidate features are [embedding, popularity,
    redundancy, logit P(listen), logit P(leave)], the redundancy max(0, e_c . centroid of
    the recent listens) of the scorer's leave model (computed here by hand from the
    history), observed as `candidate_redundancy`; a negative weight on it alone picks
    the least redundant candidates.  Without a feature scorer it is refused by name."""
    from user_models.leave_hazard import LeaveHazard
    saved = SyntheticWorld.load(tiny_world_dir["world"])
    emb = np.concatenate([saved.track_latent, saved.track_popularity[:, None]], 1)[
        saved_index(saved, tiny_log)].astype(np.float32)
    scorer = GroundTruthUserModel(saved)
    hazard = scorer.leave_hazard = LeaveHazard(emb).fit(tiny_log)

    def env_with(**kw):
        return PlaylistEnvironment(
            GroundTruthUserModel(saved), ContinuousWeightsTrackSampler(K, POOL, D + 4),
            LogEpisodeSampler(tiny_log, 10, POOL, hidden_sessions=tiny_world_dir["hidden"]),
            emb, batch_size=4, seed=0, simulate_leaving=False, observe_candidates=True,
            **kw)

    env = env_with(feature_scorer=scorer, score_popularity=True, score_redundancy=True)
    obs = env.reset()
    h, cands = env.history(), env.candidate_tracks()
    # By hand: the centroid of recent listens, c <- unit(keep c + (1 - keep) e), over
    # each history's listened tracks in order.
    unit_emb = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    want = np.zeros(cands.shape)
    for b in range(4):
        c = None
        for t, r in zip(h.tracks[b], h.responses[b]):
            if t >= 0 and r > 0.5:
                e = unit_emb[t]
                c = e if c is None else hazard.keep * c + (1 - hazard.keep) * e
                c = c / np.linalg.norm(c)
        want[b] = 0.0 if c is None else np.maximum(unit_emb[cands[b]] @ c, 0.0)
    assert want.max() > 0.1
    np.testing.assert_allclose(obs["candidate_redundancy"], want, atol=1e-5)
    feats = env.model_features(np.arange(4))                      # [4, C, 4]
    assert feats.shape == (4, POOL, 4)
    np.testing.assert_allclose(feats[..., 1], want, atol=1e-5)
    p = np.clip(scorer.score_candidates(h, cands), 1e-4, 1 - 1e-4)
    np.testing.assert_allclose(feats[..., 2], np.log(p / (1 - p)), rtol=1e-4, atol=1e-4)
    w = np.zeros((4, K, D + 4), np.float32)
    w[:, :, D + 1] = -1.0
    before = cands.copy()
    env.step(w)
    picked = env.episode_tracker.arrays()["slate"]
    calm = np.take_along_axis(before, np.argsort(want, 1, kind="stable")[:, :K], 1)
    np.testing.assert_array_equal(np.sort(picked, 1), np.sort(calm, 1))
    with pytest.raises(ConfigError, match="score_redundancy.*score_features"):
        env_with(score_redundancy=True)


def test_state_includes_skips_decides_what_enters_the_window(world):
    """The observation window gains a slate's listened tracks, in slate order, and
    drops as many of its oldest; with `state_includes_skips` every heard track enters
    (skips with response 0).  Same seed, same slate: the same responses in both."""
    N = 10
    obs, rec = {}, {}
    for flag in (False, True):
        env = make_env(world, SlateIndicesTrackSampler, batch_size=4, seed=3,
                       state_includes_skips=flag)
        before = env.reset()
        after = env.step(np.tile(np.arange(K), (4, 1))).observation
        obs[flag] = (before, after)
        rec[flag] = env.episode_tracker.arrays()
    np.testing.assert_array_equal(rec[False]["slate"], rec[True]["slate"])
    np.testing.assert_array_equal(rec[False]["responses"], rec[True]["responses"])
    slate, resp = rec[True]["slate"], rec[True]["responses"]
    assert (~resp).any() and resp.any()        # skips and listens both occur here
    before, after = obs[True]
    np.testing.assert_array_equal(after["history_ids"][:, -K:], slate)
    np.testing.assert_array_equal(after["responses"][:, -K:], resp.astype(np.float32))
    np.testing.assert_array_equal(after["history_ids"][:, :N - K], before["history_ids"][:, K:])
    before, after = obs[False]
    for b in range(4):
        listened = slate[b][resp[b]]
        n = len(listened)
        np.testing.assert_array_equal(after["history_ids"][b, N - n:], listened)
        np.testing.assert_array_equal(after["history_ids"][b, :N - n],
                                      before["history_ids"][b, n:])
        assert (after["responses"][b, N - n:] == 1).all()
