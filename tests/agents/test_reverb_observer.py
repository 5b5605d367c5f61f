"""ActorTaggedObserver: a batched environment's steps become Reverb items per parallel
episode, never across an episode boundary, each tagged with the actor's id."""

import numpy as np

from agents.reverb_observer import ActorTaggedObserver


def test_observer_writes_pairs_per_lane_never_across_episodes():
    """3 parallel episodes for 5 steps; lane 1's episode ends at step 2.  Pairs are
    written per lane, none spans the boundary, each tagged with the actor id."""
    import reverb
    import tensorflow as tf
    from tf_agents.specs import array_spec, tensor_spec
    from tf_agents.trajectories import trajectory as tj

    spec = tj.Trajectory(
        step_type=array_spec.ArraySpec((), np.int32), observation=array_spec.ArraySpec((2,), np.float32),
        action=array_spec.ArraySpec((), np.int32), policy_info=(),
        next_step_type=array_spec.ArraySpec((), np.int32), reward=array_spec.ArraySpec((), np.float32),
        discount=array_spec.ArraySpec((), np.float32))
    signature = tensor_spec.add_outer_dim(
        (tensor_spec.from_spec(spec), tf.TensorSpec((), tf.int32)))
    server = reverb.Server([reverb.Table("t", reverb.selectors.Fifo(), reverb.selectors.Fifo(),
                                         max_size=100, max_times_sampled=1,
                                         rate_limiter=reverb.rate_limiters.MinSize(1),
                                         signature=signature)])
    client = reverb.Client(f"localhost:{server.port}")
    obs = ActorTaggedObserver(client, "t", 3, actor_index=7)
    F, M, L = 0, 1, 2
    step_types = [[F, F, F], [M, M, M], [M, L, M], [M, F, M], [M, M, M]]
    next_types = [[M, M, M], [M, L, M], [M, F, M], [M, M, M], [M, M, M]]
    for t in range(5):
        obs(tj.Trajectory(
            step_type=np.array(step_types[t], np.int32),
            observation=np.stack([np.full(2, 10 * lane + t, np.float32) for lane in range(3)]),
            action=np.arange(3, dtype=np.int32), policy_info=(),
            next_step_type=np.array(next_types[t], np.int32),
            reward=np.ones(3, np.float32), discount=np.ones(3, np.float32)))
    obs.flush()
    # Lanes 0 and 2: 4 pairs each.  Lane 1: steps 0-2 (2 pairs), boundary dropped, then
    # steps 3-4 (1 pair).
    assert client.server_info()["t"].current_size == 4 + 3 + 4
    items = list(client.sample("t", num_samples=11))
    pairs = []
    for steps in items:  # one item: its 2 time steps, each the flattened (step, actor id)
        assert len(steps) == 2
        assert all(int(step.data[-1]) == 7 for step in steps)
        pairs.append(tuple(int(step.data[1][0]) for step in steps))   # observation[0]
    # Each pair is two consecutive steps of one lane; lane 1's LAST -> FIRST (12, 13)
    # is never written.
    assert sorted(pairs) == [(0, 1), (1, 2), (2, 3), (3, 4), (10, 11), (11, 12), (13, 14),
                             (20, 21), (21, 22), (22, 23), (23, 24)]
    obs.close()
    server.stop()
