"""|TD error| per transition for any registered agent: the priorities of prioritized
replay (the distributed learner writes them back to Reverb after every gradient step).
Each agent module declares how its TD errors are computed (`agents.registry`)."""

from __future__ import annotations

import tensorflow as tf


def td_errors(agent, experience) -> tf.Tensor:
    """|TD error| [B] of each transition pair in `experience` ([B, 2, ...]).

    Raises:
      ValueError: an agent not made by a registered factory.
    """
    spec = getattr(agent, "spotisim_spec", None)
    if spec is None and callable(getattr(agent, "td_errors", None)):
        return agent.td_errors(experience)   # an agent that computes its own (AH-DQN)
    if spec is None:
        raise ValueError(f"prioritized replay: {type(agent).__name__} was not made by a "
                         "registered agent factory (agents.registry.register_agent)")
    return spec.td_errors(agent, experience)
