"""|TD error| per transition for each agent: the priorities of prioritized replay (the
distributed learner writes them back to Reverb after every gradient step).  AH-DQN
exposes them itself; for DDPG, TD3 and DQN they are recomputed beside the TF-Agents
agent from its own networks, as its loss computes them."""

from __future__ import annotations

import tensorflow as tf
from tf_agents.agents.ddpg import ddpg_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.td3 import td3_agent
from tf_agents.trajectories import trajectory

from agents.ah_dqn import AhDqnAgent


def _transitions(experience):
    return trajectory.experience_to_transitions(experience, squeeze_time_dim=True)


def _ddpg(agent, experience):
    ts, ps, nts = _transitions(experience)
    target_a, _ = agent._target_actor_network(nts.observation, step_type=nts.step_type)
    target_q, _ = agent._target_critic_network((nts.observation, target_a),
                                               step_type=nts.step_type)
    target = nts.reward + agent._gamma * nts.discount * target_q
    q, _ = agent._critic_network((ts.observation, ps.action), step_type=ts.step_type)
    return tf.abs(target - q)


def _td3(agent, experience):
    ts, ps, nts = _transitions(experience)
    target_a, _ = agent._target_actor_network(nts.observation, step_type=nts.step_type)
    inputs = (nts.observation, target_a)
    q_next = tf.minimum(agent._target_critic_network_1(inputs, step_type=nts.step_type)[0],
                        agent._target_critic_network_2(inputs, step_type=nts.step_type)[0])
    target = nts.reward + agent._gamma * nts.discount * q_next
    q, _ = agent._critic_network_1((ts.observation, ps.action), step_type=ts.step_type)
    return tf.abs(target - q)


def _dqn(agent, experience):
    ts, ps, nts = _transitions(experience)
    target = nts.reward + agent._gamma * nts.discount * agent._compute_next_q_values(nts, ())
    q, _ = agent._q_network(ts.observation, step_type=ts.step_type)
    q = tf.gather(q, tf.cast(ps.action, tf.int32), batch_dims=1)
    return tf.abs(target - q)


def td_errors(agent, experience) -> tf.Tensor:
    """|TD error| [B] of each transition pair in `experience` ([B, 2, ...]).

    Raises:
      ValueError: an agent type without TD errors here.
    """
    if isinstance(agent, AhDqnAgent):
        return agent.td_errors(experience)
    if isinstance(agent, ddpg_agent.DdpgAgent):
        return _ddpg(agent, experience)
    if isinstance(agent, td3_agent.Td3Agent):
        return _td3(agent, experience)
    if isinstance(agent, dqn_agent.DqnAgent):
        return _dqn(agent, experience)
    raise ValueError(f"prioritized replay: no TD errors for {type(agent).__name__}")
