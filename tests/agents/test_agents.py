"""Agents: each trains on a tiny environment with finite losses and valid actions; the
known bugs of public LIRD code are absent (actor ascent, whole-state encoder, zero-mean
noise, next-state TD target, no repeats); PolicySaver and checkpoints round-trip."""

import numpy as np
import pytest
import tensorflow as tf
from tf_agents.policies import policy_saver
from tf_agents.specs import tensor_spec
from tf_agents.utils import common

from agents.ah_dqn import AhDqnAgent
from agents.baselines import (GreedyUserModelPolicy, nearest_neighbour_policy,
                              popularity_policy, random_policy)
from agents.dqn import create_dqn_agent
from agents.dqn_ranked import RankedDqnAgent
from agents.lird_ddpg import create_lird_ddpg_agent
from agents.networks import CandidateQNetwork, HistoryEncoder
from agents.training import train_agent
from spotisim.builder import EnvironmentBuilder
from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.episode_samplers import SyntheticEpisodeSampler
from spotisim.termination import MaxSteps
from spotisim.track_samplers import (CandidateIndexTrackSampler, ContinuousWeightsTrackSampler,
                                     SlateIndicesTrackSampler)
from tests.conftest import TINY_WORLD
from user_models.ground_truth import GroundTruthUserModel

POOL, K, D, B = 30, 3, 9, 4


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))


def build(world, sampler, observe_candidates=True, batch_size=B):
    emb = np.concatenate([world.track_latent, world.track_popularity[:, None]], 1)
    return EnvironmentBuilder(GroundTruthUserModel(world), sampler,
                              SyntheticEpisodeSampler(world, 10, POOL), emb,
                              batch_size=batch_size, termination=MaxSteps(6), seed=1,
                              observe_candidates=observe_candidates)


def make(world, kind):
    tf.random.set_seed(0)
    if kind in ("lird_ddpg", "lird_td3", "lird_slate"):
        b = build(world, ContinuousWeightsTrackSampler(K, POOL, D),
                  observe_candidates=kind == "lird_slate")
        env = b.get_tf_py_environment()
        return b, env, create_lird_ddpg_agent(env.time_step_spec(), env.action_spec(), units=16,
                                              twin_critics=kind == "lird_td3",
                                              slate_critic=kind == "lird_slate",
                                              history_prior=2.0 if kind == "lird_td3" else 0.0)
    if kind == "dqn":
        b = build(world, CandidateIndexTrackSampler(K, POOL, D))
        env = b.get_tf_py_environment()
        return b, env, create_dqn_agent(env.time_step_spec(), env.action_spec(), units=16)
    b = build(world, SlateIndicesTrackSampler(K, POOL, D))
    env = b.get_tf_py_environment()
    cls = RankedDqnAgent if kind == "dqn_ranked" else AhDqnAgent
    agent = cls(env.time_step_spec(), env.action_spec(),
                CandidateQNetwork(env.observation_spec(), units=16))
    agent.initialize()
    return b, env, agent


@pytest.mark.parametrize("kind", ["lird_ddpg", "lird_td3", "lird_slate", "dqn", "ah_dqn",
                                  "dqn_ranked"])
def test_trains_with_finite_loss_and_valid_actions(world, kind):
    builder, env, agent = make(world, kind)
    log = train_agent(agent, env, num_iterations=8, batch_size=16, initial_collect_steps=6)
    assert len(log.losses) == 8 and np.isfinite(log.losses).all()
    assert log.train_steps == 8
    time_step = env.reset()
    action = agent.policy.action(time_step).action
    spec = env.action_spec()
    assert action.shape[1:] == spec.shape and action.dtype == spec.dtype
    a = action.numpy()
    assert (a >= spec.minimum).all() and (a <= spec.maximum).all()
    # No track twice within an episode, whatever the agent did while collecting.
    rec = builder.environment.episode_tracker.arrays()
    for ep in np.unique(rec["episode_id"]):
        tracks = rec["slate"][rec["episode_id"] == ep].ravel()
        assert len(set(tracks.tolist())) == len(tracks)


def test_ah_dqn_slates_are_distinct_and_available(world):
    _, env, agent = make(world, "ah_dqn")
    time_step = env.reset()
    mask = time_step.observation["candidate_mask"].numpy().copy()
    mask[:, :POOL - 5] = 0  # only five candidates left
    obs = dict(time_step.observation, candidate_mask=tf.constant(mask))
    t2 = time_step._replace(observation=obs)
    for policy in (agent.policy, agent.collect_policy):
        a = policy.action(t2).action.numpy()
        for row in a:
            assert len(set(row.tolist())) == K
            assert all(r >= POOL - 5 for r in row)


def _perturb_target(agent, scale=0.5, seed=7):
    """Makes the target network differ from the online one (`initialize` copies it)."""
    rng = np.random.default_rng(seed)
    for v in agent._target_q_network.variables:
        v.assign(v + scale * rng.standard_normal(v.shape).astype(np.float32))


def _pairs(agent, t0, a0, t1, first_step_type):
    """A batch of transition pairs (t0, a0) -> (t1, the policy's action), whose first
    steps have the given step types (LAST marks a pair that spans two episodes)."""
    from tf_agents.trajectories import trajectory
    a1 = agent.policy.action(t1).action

    def stack(x, y):
        return tf.stack([tf.convert_to_tensor(x), tf.convert_to_tensor(y)], 1)

    return trajectory.Trajectory(
        step_type=stack(first_step_type, t1.step_type), observation=tf.nest.map_structure(
            stack, t0.observation, t1.observation),
        action=stack(a0, a1), policy_info=(),
        next_step_type=stack(t1.step_type, t1.step_type),
        reward=stack(t1.reward, t1.reward), discount=stack(t1.discount, t1.discount))


def test_ah_dqn_td_target_uses_the_next_state(world):
    """r' + gamma * discount' * sum of the *target* network's Q over the top-K of the
    *online* network among the still-available candidates: with the two networks made
    different, a terminal row (discount 0) and a row with only two candidates left."""
    _, env, agent = make(world, "ah_dqn")
    _perturb_target(agent)
    t0 = env.reset()
    t1 = env.step(agent.policy.action(t0).action)
    mask = t1.observation["candidate_mask"].numpy().copy()
    mask[1] = 0
    mask[1, [4, 9]] = 1                                     # fewer than K left
    obs = dict(t1.observation, candidate_mask=tf.constant(mask))
    discount = np.array([0.0, 1.0, 0.5, 1.0], np.float32)  # row 0 terminal
    t1 = t1._replace(observation=obs, discount=tf.constant(discount))
    q_online = agent._q_network(obs)[0].numpy()
    q_target = agent._target_q_network(obs)[0].numpy()
    assert np.abs(q_online - q_target).max() > 0.1          # the networks do differ
    avail = mask > 0
    value = np.zeros(B)
    for b in range(B):
        best = [c for c in np.argsort(-q_online[b]) if avail[b, c]][:K]
        value[b] = q_target[b, best].sum()
    expected = t1.reward.numpy() + 0.9 * discount * value
    got = agent.td_targets(t1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[0] == pytest.approx(float(t1.reward.numpy()[0]))   # terminal: reward only


def test_ranked_dqn_learns_the_lead_with_a_double_dqn_target(world):
    """The Q-ranked DQN: its TD target is r' + gamma * discount' * Q_target(s', the
    online network's best available candidate) (one candidate, not a slate's sum), 0
    past the end; its loss fits Q of each slate's *lead* (action[:, 0]) only; its policy
    shows the K best candidates by Q, best first."""
    from tf_agents.trajectories import time_step as ts
    _, env, agent = make(world, "dqn_ranked")
    _perturb_target(agent)
    t0 = env.reset()
    a0 = agent.policy.action(t0).action
    q0 = agent._q_network(t0.observation)[0].numpy()
    avail0 = t0.observation["candidate_mask"].numpy() > 0
    for b in range(B):   # the policy's slate is the top-K by Q
        assert a0.numpy()[b].tolist() == [c for c in np.argsort(-q0[b]) if avail0[b, c]][:K]
    t1 = env.step(a0)
    mask = t1.observation["candidate_mask"].numpy().copy()
    mask[1] = 0
    mask[1, [4, 9]] = 1
    obs = dict(t1.observation, candidate_mask=tf.constant(mask))
    discount = np.array([0.0, 1.0, 0.5, 1.0], np.float32)
    t1 = t1._replace(observation=obs, discount=tf.constant(discount))
    q_online = agent._q_network(obs)[0].numpy()
    q_target = agent._target_q_network(obs)[0].numpy()
    best = np.where(mask > 0, q_online, -np.inf).argmax(1)
    value = q_target[np.arange(B), best]
    expected = t1.reward.numpy() + 0.9 * discount * value
    got = agent.td_targets(t1).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-5)
    assert got[0] == pytest.approx(float(t1.reward.numpy()[0]))   # terminal: reward only
    # The loss: squared error of the lead's Q, over pairs not starting at LAST.
    first = np.array([ts.StepType.MID, ts.StepType.LAST, ts.StepType.MID, ts.StepType.MID],
                     np.int32)
    exp = _pairs(agent, t0, a0, t1, first)
    q_lead = q0[np.arange(B), a0.numpy()[:, 0]]
    err = (got - q_lead) ** 2
    assert float(agent.loss(exp)) == pytest.approx(err[first != ts.StepType.LAST].mean(),
                                                   rel=1e-5)


def test_ah_dqn_loss_is_squared_td_error_over_pairs_not_starting_at_last(world):
    """The loss is the mean squared TD error over the transition pairs whose first step
    is not LAST (a LAST -> FIRST pair spans two episodes and must not train)."""
    from tf_agents.trajectories import time_step as ts
    _, env, agent = make(world, "ah_dqn")
    _perturb_target(agent)
    t0 = env.reset()
    a0 = agent.policy.action(t0).action
    t1 = env.step(a0)
    first = np.array([ts.StepType.MID, ts.StepType.LAST, ts.StepType.MID, ts.StepType.LAST],
                     np.int32)
    exp = _pairs(agent, t0, a0, t1, first)
    q = agent._q_network(t0.observation)[0].numpy()
    q_slate = np.take_along_axis(q, a0.numpy(), 1).sum(1)
    err = (agent.td_targets(t1).numpy() - q_slate) ** 2
    valid = first != ts.StepType.LAST
    want = err[valid].mean()
    assert float(agent.loss(exp)) == pytest.approx(want, rel=1e-5)
    assert abs(err.mean() - want) > 1e-3                   # masking changes the answer
    huber = AhDqnAgent(env.time_step_spec(), env.action_spec(),
                       CandidateQNetwork(env.observation_spec(), units=16), td_loss="huber")
    with pytest.raises(Exception, match="td_loss"):
        AhDqnAgent(env.time_step_spec(), env.action_spec(),
                   CandidateQNetwork(env.observation_spec(), units=16), td_loss="l1")
    assert huber._td_loss is not agent._td_loss


@pytest.mark.parametrize("slate_critic", [False, True])
def test_ddpg_actor_update_increases_q_on_a_fixed_critic(world, slate_critic):
    """Through `agent.train()` (critic and actor losses, both optimizers, target updates)
    with the critic's learning rate 0: the critic's weights do not move, and the actor
    ascends it (its Q on the batch's states goes up): the sign bug of public LIRD code,
    which descended Q, would make it go down."""
    from agents.training import Trainer
    builder, env, _ = make(world, "lird_slate" if slate_critic else "lird_ddpg")
    agent = create_lird_ddpg_agent(env.time_step_spec(), env.action_spec(), units=16,
                                   critic_learning_rate=0.0, actor_learning_rate=1e-2,
                                   slate_critic=slate_critic)
    trainer = Trainer(agent, env, batch_size=8, initial_collect_steps=4)
    trainer._build_functions()
    trainer._init_driver.run()
    exp = next(trainer._it)
    obs = tf.nest.map_structure(lambda t: t[:, 0], exp.observation)

    def q_of_policy():
        a, _ = agent._actor_network(obs)
        return float(tf.reduce_mean(agent._critic_network((obs, a))[0]))

    critic = [v.numpy().copy() for v in agent._critic_network.trainable_variables]
    actor = [v.numpy().copy() for v in agent._actor_network.trainable_variables]
    before = q_of_policy()
    for _ in range(5):
        agent.train(exp)
    assert q_of_policy() > before
    for old, v in zip(critic, agent._critic_network.trainable_variables):
        np.testing.assert_array_equal(old, v.numpy())
    assert any(not np.array_equal(old, v.numpy())
               for old, v in zip(actor, agent._actor_network.trainable_variables))


def test_encoder_reads_the_whole_window():
    enc = HistoryEncoder(8)
    rng = np.random.default_rng(0)
    obs = {"history": tf.constant(rng.normal(size=(1, 10, 5)), tf.float32),
           "responses": tf.ones((1, 10)), "history_mask": tf.ones((1, 10))}
    base = enc(obs).numpy()
    for pos in (0, 4, 9):  # oldest, middle, newest
        h = obs["history"].numpy().copy()
        h[0, pos] += 1.0
        changed = enc(dict(obs, history=tf.constant(h))).numpy()
        assert np.abs(changed - base).max() > 1e-4, f"position {pos} ignored"
    r = obs["responses"].numpy().copy()
    r[0, 9] = 0.0
    assert np.abs(enc(dict(obs, responses=tf.constant(r))).numpy() - base).max() > 1e-4


def test_exploration_noise_is_zero_mean(world):
    _, env, agent = make(world, "lird_ddpg")
    time_step = env.reset()
    greedy = agent.policy.action(time_step).action.numpy()
    explore = common.function(agent.collect_policy.action)  # 400 calls: one graph, not eager
    noise = np.stack([explore(time_step).action.numpy() - greedy for _ in range(400)])
    # OU process: correlated steps, but centred on 0 (clipping at the bounds aside).
    assert abs(noise.mean()) < 0.05
    assert noise.std() > 0.05


def test_policy_saver_round_trip(world, tmp_path):
    for kind in ("ah_dqn", "lird_ddpg"):
        _, env, agent = make(world, kind)
        train_agent(agent, env, num_iterations=2, batch_size=8, initial_collect_steps=4)
        path = str(tmp_path / kind)
        policy_saver.PolicySaver(agent.policy, batch_size=None).save(path)
        loaded = tf.saved_model.load(path)
        time_step = env.reset()
        np.testing.assert_allclose(loaded.action(time_step).action.numpy(),
                                   agent.policy.action(time_step).action.numpy(), rtol=1e-5)


def test_checkpoint_restores(world, tmp_path):
    _, env, agent = make(world, "ah_dqn")
    train_agent(agent, env, num_iterations=3, batch_size=8, initial_collect_steps=4)
    ckpt = common.Checkpointer(str(tmp_path / "ckpt"), agent=agent,
                               global_step=agent.train_step_counter)
    ckpt.save(agent.train_step_counter)
    saved = [v.numpy().copy() for v in agent._q_network.variables]
    for v in agent._q_network.variables:
        v.assign(tf.zeros_like(v))
    common.Checkpointer(str(tmp_path / "ckpt"), agent=agent,
                        global_step=agent.train_step_counter).initialize_or_restore()
    for v, s in zip(agent._q_network.variables, saved):
        np.testing.assert_array_equal(v.numpy(), s)
    assert int(agent.train_step_counter.numpy()) == 3


def test_baselines(world):
    builder = build(world, SlateIndicesTrackSampler(K, POOL, D))
    env = builder.get_tf_py_environment()
    tss, acs = env.time_step_spec(), env.action_spec()
    time_step = env.reset()
    obs = time_step.observation
    pop = np.exp(world.track_popularity)
    a = popularity_policy(tss, acs, pop).action(time_step).action.numpy()
    ids = obs["candidate_ids"].numpy()
    for row, cand in zip(a, ids):
        assert pop[cand[row]].tolist() == sorted(pop[cand], reverse=True)[:K]
    r1 = random_policy(tss, acs, seed=1).action(time_step).action.numpy()
    assert all(len(set(r)) == K for r in r1)
    nn = nearest_neighbour_policy(tss, acs).action(time_step).action.numpy()
    assert nn.shape == (B, K)
    greedy = GreedyUserModelPolicy(tensor_spec.to_array_spec(tss),
                                   tensor_spec.to_array_spec(acs),
                                   GroundTruthUserModel(world), builder.environment)
    py_ts = tf.nest.map_structure(lambda t: t.numpy(), time_step)
    g = greedy.action(py_ts).action
    # Greedy picks the K highest ground-truth P(listen) among the candidates.
    hist = builder.environment.history()
    for b in range(B):
        p = GroundTruthUserModel(world).predict(
            hist.take(np.full(POOL, b)), ids[b].reshape(-1, 1))[:, 0]
        assert sorted(g[b].tolist()) == sorted(np.argsort(-p)[:K].tolist())


class _PlantedRedundancy:
    """A leave model whose redundancy is planted: 1 for the candidates in `hot`
    (per row), 0 elsewhere."""

    def __init__(self, hot):
        self.hot = hot

    def redundancy(self, history, candidates):
        return np.stack([np.isin(c, h) for c, h in zip(candidates, self.hot)]) * 1.0


def test_redundancy_greedy_trades_p_listen_against_planted_redundancy(world):
    """logit P(listen) - penalty x redundancy, both from the model: penalty 0 is greedy;
    a penalty above the logit spread avoids every redundant candidate; in between, the
    slate is the top K of the penalised score computed by hand."""
    from agents.baselines import RedundancyGreedyPolicy
    from spotisim.errors import ConfigError
    builder = build(world, SlateIndicesTrackSampler(K, POOL, D))
    env = builder.get_tf_py_environment()
    tss = tensor_spec.to_array_spec(env.time_step_spec())
    acs = tensor_spec.to_array_spec(env.action_spec())
    py_ts = tf.nest.map_structure(lambda t: t.numpy(), env.reset())
    ids = py_ts.observation["candidate_ids"]
    model = GroundTruthUserModel(world)
    p = model.score_candidates(builder.environment.history(), ids)
    logit = np.log(p / (1 - p))
    greedy_top = np.argsort(-logit, axis=1)[:, :K]
    # Redundant: the greedy slate's tracks and the next two best.
    hot = np.take_along_axis(ids, np.argsort(-logit, axis=1)[:, :K + 2], 1)
    model.leave_hazard = _PlantedRedundancy(hot)
    pick = lambda pen: RedundancyGreedyPolicy(  # noqa: E731
        tss, acs, model, builder.environment, penalty=pen).action(py_ts).action
    for b in range(B):
        assert sorted(pick(0.0)[b].tolist()) == sorted(greedy_top[b].tolist())
    big = pick(1e3)
    for b in range(B):
        assert not set(ids[b][big[b]]) & set(hot[b])  # none of the redundant ones
        cold = [c for c in range(POOL) if ids[b][c] not in hot[b]]
        assert sorted(big[b].tolist()) == sorted(sorted(cold, key=lambda c: -logit[b, c])[:K])
    # A penalty between: the top K of logit - penalty x redundancy.
    # (half the logit gap between the best track and the best unredundant one, so the
    # best redundant ones stay and the rest give way: a logit scale, not P's)
    ranked = np.sort(logit, axis=1)[:, ::-1]
    pen = float(np.median(ranked[:, 0] - ranked[:, K + 2])) / 2
    mid = pick(pen)
    red = model.leave_hazard.redundancy(None, ids)
    mixed = 0
    for b in range(B):
        want = np.argsort(-(logit[b] - pen * red[b]), kind="stable")[:K]
        assert sorted(mid[b].tolist()) == sorted(want.tolist())
        mixed += 0 < red[b][mid[b]].sum() < K
    assert mixed  # the test's premise: some slate mixes redundant and fresh tracks
    with pytest.raises(ConfigError, match="penalty"):
        RedundancyGreedyPolicy(tss, acs, model, builder.environment, penalty=-1.0)
    with pytest.raises(ConfigError, match="GroundTruthUserModel has no leave model"):
        RedundancyGreedyPolicy(tss, acs, GroundTruthUserModel(world), builder.environment)


def test_replay_skip_rate_by_hand(tiny_log):
    from agents.evaluate import replay_skip_rate
    s = 0
    tracks, skips = tiny_log.session_tracks(s), tiny_log.session_skips(s)
    # Recommend the session's 11th and 12th tracks plus a track from its history.
    slates = np.array([[tracks[10], tracks[0], tracks[11]]])
    rate, n = replay_skip_rate(np.array([s]), slates, tiny_log, history_length=10)
    assert n == 2
    assert rate == pytest.approx(np.mean([skips[10], skips[11]]))


def test_logging_policy_replays_the_logged_continuation(tiny_world_dir, tiny_log):
    """Slate after slate it recommends the session's next logged tracks in logged
    order, then falls back to the most played; `logged_track_skip_rate` scores
    exactly those replayed tracks."""
    from agents.baselines import LoggedSessionPolicy
    from agents.evaluate import logged_track_skip_rate, run_episodes
    from spotisim.episode_samplers import LogEpisodeSampler
    N = 10
    sampler = LogEpisodeSampler(tiny_log, N, POOL, hidden_sessions=tiny_world_dir["hidden"])
    world = SyntheticWorld.load(tiny_world_dir["world"])
    builder = EnvironmentBuilder(GroundTruthUserModel(world), SlateIndicesTrackSampler(K, POOL, D),
                                 sampler, np.zeros((len(tiny_log.catalog), D), np.float32),
                                 batch_size=B, termination=MaxSteps(6), seed=2,
                                 simulate_leaving=False)  # whole episodes: replay, not leaving
    env = builder.get_tf_env()
    policy = LoggedSessionPolicy(env.time_step_spec(), env.action_spec(), tiny_log,
                                 builder.environment, N, tiny_log.catalog.play_counts)
    ts = env.reset()
    keys = builder.environment.episode_keys()
    recommended = [[] for _ in range(B)]
    for _ in range(5):
        action = policy.action(ts).action
        ids = ts.observation["candidate_ids"]
        for b in range(B):
            recommended[b].append(ids[b][action[b]])
        ts = env.step(action)
    for b in range(B):
        rest = tiny_log.session_tracks(int(keys[b]))[N:]
        got = np.concatenate(recommended[b])
        n = min(len(rest), len(got))
        assert got[:n].tolist() == rest[:n].tolist()      # the logged order
        if len(rest) < len(got):                           # then the most played
            fill = got[len(rest):len(rest) + K]
            pops = tiny_log.catalog.play_counts[fill]
            assert (np.diff(pops) <= 0).all()
    # The metric counts only recommended tracks from the logged continuation.
    slates = np.array([[tiny_log.session_tracks(0)[N], tiny_log.session_tracks(0)[0], -1]])
    rate, n = logged_track_skip_rate(np.array([0]), slates, np.array([[False, True, True]]),
                                     tiny_log, N)
    assert n == 1 and rate == 1.0
    out = run_episodes(policy, env, B, replay_log=tiny_log, history_length=N)
    # The same starts again (run_episodes restarts the stream): each episode plays 6
    # slates of K, its first min(len(rest), 6 K) tracks are the logged continuation, and
    # exactly those count, with the simulated responses to them.
    assert (builder.environment.episode_keys() == keys).all()
    a = builder.environment.episode_tracker.arrays()
    counted, listened = 0, 0
    for b, ep in enumerate(np.unique(a["episode_id"])[:B]):
        rows = a["episode_id"] == ep
        n = min(len(tiny_log.session_tracks(int(keys[b]))[N:]), 6 * K)
        counted += n
        listened += int(a["responses"][rows].ravel()[:n].sum())
    assert out["logged_track_count"] == counted and out["replay_count"] == counted
    assert out["logged_track_skip_rate"] == pytest.approx(1 - listened / counted)


@pytest.mark.parametrize("kind", ["lird_ddpg", "lird_td3", "lird_slate", "dqn", "ah_dqn"])
def test_td_errors_for_prioritized_replay(world, kind):
    """The priorities the distributed learner writes back: one finite |TD error| per
    transition, and for AH-DQN exactly |target - sum of the slate's Qs|."""
    from tf_agents.replay_buffers import tf_uniform_replay_buffer
    from tf_agents.drivers import dynamic_step_driver
    from agents.priorities import td_errors
    builder, env, agent = make(world, kind)
    buf = tf_uniform_replay_buffer.TFUniformReplayBuffer(agent.collect_data_spec, env.batch_size,
                                                         max_length=50)
    dynamic_step_driver.DynamicStepDriver(env, agent.collect_policy, [buf.add_batch],
                                          num_steps=4 * env.batch_size).run()
    exp, _ = buf.get_next(sample_batch_size=8, num_steps=2)
    err = td_errors(agent, exp).numpy()
    assert err.shape == (8,) and np.isfinite(err).all() and (err >= 0).all() and err.max() > 0
    if kind == "ah_dqn":
        from tf_agents.trajectories import trajectory
        ts_, ps, nts = trajectory.experience_to_transitions(exp, squeeze_time_dim=True)
        q = agent._q_network(ts_.observation)[0].numpy()
        q_slate = np.take_along_axis(q, ps.action.numpy(), 1).sum(1)
        target = agent.td_targets(nts).numpy()
        np.testing.assert_allclose(err, np.abs(target - q_slate), rtol=1e-5, atol=1e-5)


def test_lird_actor_history_prior_starts_at_the_listened_direction(world):
    """With history_prior, a fresh actor's weight vectors point along the window's mean
    listened embedding (the plain actor's are near zero and direction-less)."""
    from agents.networks import LirdActorNetwork
    b = build(world, ContinuousWeightsTrackSampler(K, POOL, D), observe_candidates=False)
    env = b.get_tf_py_environment()
    obs = env.reset().observation
    w_l = obs["responses"] * obs["history_mask"]
    m = tf.reduce_sum(obs["history"] * w_l[..., None], 1).numpy()
    prior = LirdActorNetwork(env.observation_spec(), env.action_spec(), units=8, history_prior=2.0)
    plain = LirdActorNetwork(env.observation_spec(), env.action_spec(), units=8)
    wp, wn = prior(obs)[0].numpy(), plain(obs)[0].numpy()
    assert wp.shape == wn.shape == (B, K, D)
    listened = w_l.numpy().sum(1) > 0
    assert listened.any()
    m, wq = m[listened], wp[listened]
    cos = np.einsum("bkd,bd->bk", wq, m) / (np.linalg.norm(wq, axis=-1) * np.linalg.norm(m, axis=-1)[:, None])
    assert (cos > 0.9).all()
    assert np.abs(wn).max() < 0.1 and np.abs(wq).max() > 0.5
    # Nothing listened yet: no prior, the plain actor's output.
    assert np.abs(wp[~listened]).max(initial=0.0) < 0.1
    assert np.abs(wp).max() <= 1.0


def test_lird_actor_score_and_leave_priors_start_at_a_leave_aware_greedy():
    """With score features ([embedding, logit P(listen), logit P(leave if listened)]), a
    fresh actor with score_prior s and leave_prior l weighs P(listen) by tanh(s) x bound
    and P(leave) by -tanh(l) x bound, the embedding by about 0: each weight vector ranks
    candidates by logit P(listen) - tanh(l) / tanh(s) x logit P(leave).  Weights as wide
    as the embedding alone are refused by name."""
    from agents.networks import LirdActorNetwork
    from spotisim.errors import ConfigError
    N, C, d, bound = 5, 7, 4, 1.5
    obs_spec = {"history": tf.TensorSpec((N, d), tf.float32),
                "responses": tf.TensorSpec((N,), tf.float32),
                "history_mask": tf.TensorSpec((N,), tf.float32),
                "candidates": tf.TensorSpec((C, d), tf.float32)}
    act_spec = tensor_spec.BoundedTensorSpec((K, d + 2), tf.float32, -bound, bound)
    rng = np.random.default_rng(0)
    obs = {"history": tf.constant(rng.normal(size=(2, N, d)), tf.float32),
           "responses": tf.constant(rng.integers(0, 2, (2, N)), tf.float32),
           "history_mask": tf.ones((2, N)),
           "candidates": tf.constant(rng.normal(size=(2, C, d)), tf.float32)}
    tf.random.set_seed(0)
    w = LirdActorNetwork(obs_spec, act_spec, units=8, score_prior=2.0, leave_prior=0.5)(obs)[0].numpy()
    np.testing.assert_allclose(w[..., -2], np.tanh(2.0) * bound, atol=0.02)
    np.testing.assert_allclose(w[..., -1], -np.tanh(0.5) * bound, atol=0.02)
    assert np.abs(w[..., :d]).max() < 0.02
    # No leave prior: the P(leave) weight is about 0 (the greedy start, as before).
    w0 = LirdActorNetwork(obs_spec, act_spec, units=8, score_prior=2.0)(obs)[0].numpy()
    assert np.abs(w0[..., -1]).max() < 0.02
    narrow = tensor_spec.BoundedTensorSpec((K, d), tf.float32, -bound, bound)
    with pytest.raises(ConfigError, match="score_features"):
        LirdActorNetwork(obs_spec, narrow, units=8, leave_prior=0.5)
    # With the log popularity among the features ([embedding, popularity, logit
    # P(listen), logit P(leave)]): popularity_prior weighs it by tanh(p) x bound, and
    # the slate critic reads the features in the same order.
    from agents.networks import sampler_features
    pop_spec = dict(obs_spec, candidate_popularity=tf.TensorSpec((C,), tf.float32))
    wide = tensor_spec.BoundedTensorSpec((K, d + 3), tf.float32, -bound, bound)
    pop = tf.constant(rng.normal(size=(2, C)), tf.float32)
    wp = LirdActorNetwork(pop_spec, wide, units=8, score_prior=2.0, popularity_prior=1.0)(
        dict(obs, candidate_popularity=pop))[0].numpy()
    np.testing.assert_allclose(wp[..., d], np.tanh(1.0) * bound, atol=0.02)
    np.testing.assert_allclose(wp[..., d + 1], np.tanh(2.0) * bound, atol=0.02)
    assert np.abs(wp[..., d + 2]).max() < 0.02 and np.abs(wp[..., :d]).max() < 0.02
    with pytest.raises(ConfigError, match="score_popularity"):
        LirdActorNetwork(obs_spec, act_spec, units=8, popularity_prior=1.0)
    full = dict(obs, candidate_popularity=pop,
                candidate_scores=tf.fill((2, C), 0.5), candidate_leave=tf.fill((2, C), 0.5))
    f = sampler_features(full, d + 3).numpy()
    np.testing.assert_allclose(f[..., d], full["candidate_popularity"].numpy())
    np.testing.assert_allclose(f[..., d + 1:], 0.0, atol=1e-6)   # logit 0.5
    # With the redundancy too ([embedding, popularity, redundancy, logit P(listen),
    # logit P(leave)]): redundancy_prior subtracts tanh(r) x bound at its column, the
    # popularity keeps its own, and the slate critic reads the same order.
    both_spec = dict(pop_spec, candidate_redundancy=tf.TensorSpec((C,), tf.float32))
    wider = tensor_spec.BoundedTensorSpec((K, d + 4), tf.float32, -bound, bound)
    red = tf.constant(rng.uniform(size=(2, C)), tf.float32)
    wr = LirdActorNetwork(both_spec, wider, units=8, score_prior=2.0, popularity_prior=1.0,
                          redundancy_prior=0.5)(
        dict(obs, candidate_popularity=pop, candidate_redundancy=red))[0].numpy()
    np.testing.assert_allclose(wr[..., d], np.tanh(1.0) * bound, atol=0.02)
    np.testing.assert_allclose(wr[..., d + 1], -np.tanh(0.5) * bound, atol=0.02)
    np.testing.assert_allclose(wr[..., d + 2], np.tanh(2.0) * bound, atol=0.02)
    assert np.abs(wr[..., d + 3]).max() < 0.02
    with pytest.raises(ConfigError, match="score_redundancy"):
        LirdActorNetwork(pop_spec, wide, units=8, redundancy_prior=1.0)
    f2 = sampler_features(dict(full, candidate_redundancy=red), d + 4).numpy()
    np.testing.assert_allclose(f2[..., d], pop.numpy())
    np.testing.assert_allclose(f2[..., d + 1], red.numpy())
    np.testing.assert_allclose(f2[..., d + 2:], 0.0, atol=1e-6)
    from types import SimpleNamespace
    for bad in ("x", float("nan")):
        with pytest.raises(ConfigError, match="leave_prior must be a finite number"):
            create_lird_ddpg_agent(SimpleNamespace(observation=obs_spec), act_spec,
                                   leave_prior=bad)


def test_slate_critic_values_the_slate_the_sampler_picks(world):
    """At a low temperature the critic's soft picks are the track sampler's slate (no
    repeats, unavailable candidates never picked), so Q reads the tracks actually
    played; a LIRD env without the pool in its observation is refused by name."""
    from agents.networks import LirdSlateCriticNetwork
    from spotisim.errors import ConfigError
    from spotisim.track_samplers import fill_slate
    b = build(world, ContinuousWeightsTrackSampler(K, POOL, D))
    env = b.get_tf_py_environment()
    obs = env.reset().observation
    mask = obs["candidate_mask"].numpy().copy()
    mask[:, :5] = 0  # as if already recommended
    obs = dict(obs, candidate_mask=tf.constant(mask))
    action = tf.constant(np.random.default_rng(0).uniform(-1, 1, (B, K, D)), tf.float32)
    critic = LirdSlateCriticNetwork((env.observation_spec(), env.action_spec()), units=8,
                                    temperature=0.01)
    picks = critic.soft_picks(obs, action).numpy()                       # [B, K, C]
    np.testing.assert_allclose(picks.sum(-1), 1.0, rtol=1e-5)
    scores = np.einsum("bkd,bcd->bkc", action.numpy(), obs["candidates"].numpy())
    hard = fill_slate(scores, mask > 0)
    np.testing.assert_array_equal(picks.argmax(-1), hard)
    assert picks[:, :, :5].max() < 1e-4
    q, _ = critic((obs, action))
    assert q.shape == (B,) and np.isfinite(q.numpy()).all()
    # Q depends on the action only through the slate: weights that pick the same
    # tracks get the same value.
    q_scaled, _ = critic((obs, action * 0.5))
    np.testing.assert_allclose(q_scaled.numpy(), q.numpy(), rtol=1e-5)
    plain = build(world, ContinuousWeightsTrackSampler(K, POOL, D), observe_candidates=False)
    penv = plain.get_tf_py_environment()
    with pytest.raises(ConfigError, match="observe_candidates"):
        create_lird_ddpg_agent(penv.time_step_spec(), penv.action_spec(), slate_critic=True)
    with pytest.raises(ConfigError, match="critic_temperature"):
        create_lird_ddpg_agent(env.time_step_spec(), env.action_spec(), slate_critic=True,
                               critic_temperature=0.0)


def test_policies_evaluated_one_after_another_play_the_same_starts(world):
    """run_episodes on one environment, twice, with two different policies: both play
    the same episode starts (the random stream restarts from the seed), so differences
    between policies are paired; a third run repeats the first exactly."""
    from tf_agents.policies import py_policy
    from tf_agents.trajectories import policy_step

    from agents.evaluate import run_episodes
    builder = build(world, SlateIndicesTrackSampler(K, POOL, D), batch_size=6)
    env = builder.get_tf_env()

    class Ordered(py_policy.PyPolicy):
        """The first (or last) K available candidates; remembers the first state."""

        def __init__(self, last):
            super().__init__(env.time_step_spec(), env.action_spec())
            self.last, self.first_history = last, None

        def _action(self, time_step, policy_state):
            obs = time_step.observation
            if self.first_history is None:
                self.first_history = obs["history_ids"].copy()
            order = np.argsort(obs["candidate_mask"] * -1, axis=1, kind="stable")
            n = obs["candidate_mask"].sum(1, keepdims=True)
            idx = np.arange(K)[None, :] if not self.last else n - 1 - np.arange(K)[None, :]
            return policy_step.PolicyStep(np.take_along_axis(order, idx, 1).astype(np.int32))

    first, other, again = Ordered(False), Ordered(True), Ordered(False)
    a = run_episodes(first, env, 6)
    b = run_episodes(other, env, 6)
    c = run_episodes(again, env, 6)
    np.testing.assert_array_equal(first.first_history, other.first_history)
    assert c["episode_rewards"] == a["episode_rewards"]
    assert b["episode_rewards"] != a["episode_rewards"]


def test_evaluation_with_leaving_in_expectation_weights_slates_by_survival(world):
    """A listener who listens to everything and leaves after each track with
    probability h: with leaving in expectation, every episode of m slates is worth
    exactly sum_{i < 3m} (1 - h)^i listens (each track weighted by the chance to still
    be there); with drawn exits the same on average."""
    from tf_agents.policies import random_py_policy

    from agents.evaluate import run_episodes
    from user_models.base import AbstractUserModel

    h, m = 0.1, 6

    class ListensLeavesAtRate(AbstractUserModel):
        cascades = False

        def _predict(self, history, slate, slate_responses):
            return np.ones(slate.shape)

        def leave_probs(self, history, slate, responses):
            return np.full(slate.shape, h)

    emb = np.concatenate([world.track_latent, world.track_popularity[:, None]], 1)

    def evaluate(expected, n):
        builder = EnvironmentBuilder(ListensLeavesAtRate(), SlateIndicesTrackSampler(K, POOL, D),
                                     SyntheticEpisodeSampler(world, 10, POOL), emb,
                                     batch_size=n, termination=MaxSteps(m), seed=1,
                                     simulate_leaving=True, expected_leaving=expected)
        env = builder.get_tf_py_environment()
        policy = random_py_policy.RandomPyPolicy(env.time_step_spec(), env.action_spec(),
                                                 seed=0)
        return run_episodes(policy, env, n)

    exact = sum((1 - h) ** i for i in range(K * m))
    out = evaluate(True, 8)
    np.testing.assert_allclose(out["episode_rewards"], exact, rtol=1e-5)
    drawn = evaluate(False, 2000)
    se = drawn["episode_reward_sd"] / np.sqrt(2000)
    assert abs(drawn["mean_episode_reward"] - exact) < 4 * se


def test_trainer_modes_train_the_same_amount_and_the_default_repeats(world):
    """`Trainer.deterministic = False` (replay sampled ahead, in the background) trains
    as much: 8 gradient steps after (6 initial + 8) batched collect steps of B lanes;
    the deterministic default gives the same losses twice for the same seed."""
    from agents.training import Trainer
    from experiments.runner import scoped_op_determinism

    @scoped_op_determinism
    def train(det):
        tf.keras.utils.set_random_seed(0)
        builder, env, agent = make(world, "dqn")
        trainer = Trainer(agent, env, batch_size=16, initial_collect_steps=6,
                          deterministic=det)
        return trainer, trainer.run(8)

    losses = {}
    for mode, det in (("a", True), ("b", True), ("prefetch", False)):
        trainer, log = train(det)
        assert len(log.losses) == 8 and np.isfinite(log.losses).all(), mode
        assert log.env_steps == (6 + 8) * B and int(trainer.iteration.numpy()) == 8, mode
        # The drivers count steps that are not episode boundaries; the buffer also
        # holds the boundary (LAST -> FIRST) frames, so at least that many.
        assert int(trainer.buffer.num_frames()) >= (6 + 8) * B, mode
        losses[mode] = log.losses
    assert losses["a"] == losses["b"]


def test_a_segments_train_step_is_traced_once(world):
    """The first segment's first step creates the optimizer's variables; that does not
    trace the train step a second time (a trace costs seconds).  (Batches of 4 of 6
    sampled pairs, seeded: here every batch comes whole, so a batch that came smaller
    would be the only other cause of a retrace.)"""
    from agents.training import Trainer
    b, env, agent = make(world, "lird_ddpg")
    trainer = Trainer(agent, env, batch_size=4, initial_collect_steps=2, seed=0)
    trainer.run(6)
    assert trainer._train_step.experimental_get_tracing_count() == 1


def test_segments_mask_the_cut_and_a_resumed_ddpg_trainer_ends_where_one_run_does(world,
                                                                                   tmp_path):
    """Segments of 3 iterations (4 lanes, episodes of 6 slates): each segment start
    cuts the episodes in progress and starts new ones, so the replay holds pairs
    (MID, FIRST) that are no transitions; none is ever sampled, like the (LAST, FIRST)
    boundaries.  And LIRD-DDPG (OU exploration noise, whose state is a variable),
    restored from the checkpoint at 6 into fresh objects, ends at 9 where the
    uninterrupted trainer does, variable for variable."""
    from agents.training import Trainer

    def fresh():
        b, env, agent = make(world, "lird_ddpg")
        return Trainer(agent, env, batch_size=16, initial_collect_steps=4, segment_every=3,
                       seed=5, reseed_env=b.environment.reseed)

    whole = fresh()
    saved = {}

    def save_at_6(i, loss):
        if i + 1 == 6:
            saved["path"] = tf.train.Checkpoint(**whole.checkpoint_items()).save(
                str(tmp_path / "ckpt"))

    whole.run(9, save_at_6)
    step_type = whole.buffer.gather_all().step_type.numpy()  # [B, T]
    first = step_type[:, 1:] == 0
    cut = first & (step_type[:, :-1] != 2)  # into a FIRST, not from a LAST
    # Two segment starts (at 3 and 6) cut every lane (none had just ended there).
    assert cut.sum() == 2 * B and cut.any(axis=1).all()
    for _ in range(30):
        pair = next(whole._it)
        assert not pair.is_first()[:, 1].numpy().any()
        assert not pair.is_last()[:, 0].numpy().any()

    resumed = fresh()
    tf.train.Checkpoint(**resumed.checkpoint_items()).restore(saved["path"])
    assert int(resumed.iteration.numpy()) == 6
    resumed.run(9)
    a, b = whole.agent.variables, resumed.agent.variables
    assert len(a) == len(b) > 0
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.numpy(), y.numpy(), err_msg=x.name)
