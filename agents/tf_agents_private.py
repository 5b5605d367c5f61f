"""The one place this project reads TF-Agents' private attributes.

Why: the TD errors of prioritized replay must be computed the way each agent's own loss
computes them, and TF-Agents 0.19 keeps what that takes (the discount, the target
networks, DQN's next-state values) in private attributes with no public accessor; the
Reverb observer's trajectory writer likewise has no public close.  Reading them here
only means an upgrade of TF-Agents is checked in one module: `CHECKED_AGAINST` is the
version every accessor below was read from (`tf_agents/agents/dqn/dqn_agent.py`,
`ddpg/ddpg_agent.py`, `td3/td3_agent.py`, `replay_buffers/reverb_utils.py`), and
`check_version` says so once when another version is installed.
"""

from __future__ import annotations

import warnings

from tf_agents.agents.ddpg import ddpg_agent
from tf_agents.agents.dqn import dqn_agent
from tf_agents.agents.td3 import td3_agent

CHECKED_AGAINST = "0.19.0"


def check_version() -> None:
    """Warns when the installed TF-Agents is not the version these accessors were read
    from (they may then have moved).  Run once, at import: the accessors below sit on
    the training path."""
    import tf_agents
    if getattr(tf_agents, "__version__", CHECKED_AGAINST) != CHECKED_AGAINST:
        warnings.warn(f"agents/tf_agents_private.py reads TF-Agents {CHECKED_AGAINST}'s "
                      f"private attributes; TF-Agents {tf_agents.__version__} is installed")


check_version()


def discount(agent) -> float:
    """The agent's gamma (DqnAgent, DdpgAgent, Td3Agent: `_gamma`)."""
    return agent._gamma


def dqn_next_q_values(agent, next_time_steps):
    """(Double) DQN's value of the next state, as its loss computes it."""
    return agent._compute_next_q_values(next_time_steps, ())


def dqn_q_network(agent):
    return agent._q_network


def ddpg_networks(agent):
    """(target actor, target critics, critic) of a DdpgAgent or a Td3Agent: one target
    critic for DDPG, two for TD3 (whose loss takes the smaller), and the critic whose
    value the TD error compares with."""
    if isinstance(agent, td3_agent.Td3Agent):
        return (agent._target_actor_network,
                (agent._target_critic_network_1, agent._target_critic_network_2),
                agent._critic_network_1)
    return agent._target_actor_network, (agent._target_critic_network,), agent._critic_network


def optimizers_and_variables(agent) -> list:
    """[(optimizer, the variables its train step updates)] of a DqnAgent, DdpgAgent or
    Td3Agent, or of an agent with `_optimizer` and `_q_network` (ours: `AhDqnAgent`);
    [] for any other."""
    if isinstance(agent, td3_agent.Td3Agent):
        return [(agent._actor_optimizer, agent._actor_network.trainable_variables),
                (agent._critic_optimizer, agent._critic_network_1.trainable_variables
                 + agent._critic_network_2.trainable_variables)]
    if isinstance(agent, ddpg_agent.DdpgAgent):
        return [(agent._actor_optimizer, agent._actor_network.trainable_variables),
                (agent._critic_optimizer, agent._critic_network.trainable_variables)]
    if isinstance(agent, dqn_agent.DqnAgent) or (hasattr(agent, "_optimizer")
                                                 and hasattr(agent, "_q_network")):
        return [(agent._optimizer, agent._q_network.trainable_variables)]
    return []


def close_trajectory_writer(observer) -> None:
    """Closes the Reverb writer of a `ReverbAddTrajectoryObserver` (no public close
    that releases it without writing the cached steps)."""
    observer._writer.close()
