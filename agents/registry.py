"""One registry of agents: each agent module declares, beside its factory, what the
runner needs to know about it (its name in reports, the kind of track sampler its
action needs, how to compute its TD errors for prioritized replay), so the runner, the
evaluation and the distributed learner know no agent by name.

Add an agent by writing one module whose gin-configurable factory is decorated with
`@register_agent(name, sampler, td_errors)` (below `@gin.configurable`), then bind
`run_experiment.agent_fn = @your_factory` in a gin file.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from typing import Callable, Dict

from spotisim.errors import ConfigError

SAMPLER_KINDS = ("weights", "index", "slate")


@dataclasses.dataclass(frozen=True)
class AgentSpec:
    """What the runner needs to know about an agent.

    Attributes:
      name: the agent's name in reports and metrics ("lird_ddpg").
      sampler: the track sampler its action needs: "weights" (K weight vectors),
        "index" (one candidate) or "slate" (K candidate indices).
      td_errors: (agent, experience [B, 2, ...]) -> |TD error| [B], the priorities of
        prioritized replay.
    """

    name: str
    sampler: str
    td_errors: Callable


_BY_FACTORY: Dict[Callable, AgentSpec] = {}


def register_agent(name: str, sampler: str, td_errors: Callable):
    """Decorator for an agent factory: registers its `AgentSpec`, and every agent the
    factory creates carries it as `agent.spotisim_spec`."""
    if sampler not in SAMPLER_KINDS:
        raise ConfigError(f"register_agent({name!r}): sampler must be one of {SAMPLER_KINDS}")
    spec = AgentSpec(name, sampler, td_errors)

    def decorate(factory: Callable) -> Callable:
        @functools.wraps(factory)
        def create(*args, **kwargs):
            agent = factory(*args, **kwargs)
            agent.spotisim_spec = spec
            return agent
        _BY_FACTORY[inspect.unwrap(factory)] = spec
        return create
    return decorate


def agent_spec(agent_fn: Callable) -> AgentSpec:
    """The spec of a registered factory (as gin passes it, decorated or not).

    Raises:
      ConfigError: the factory was not registered with `register_agent`.
    """
    spec = _BY_FACTORY.get(inspect.unwrap(agent_fn))
    if spec is None:
        raise ConfigError(f"run_experiment.agent_fn: {getattr(agent_fn, '__name__', agent_fn)!r} "
                          "is not a registered agent factory (decorate it with "
                          "agents.registry.register_agent)")
    return spec


def agent_spec_by_name(name: str) -> AgentSpec:
    """The spec registered under `name` (what a run's metrics.json records)."""
    load_builtin_agents()
    for spec in _BY_FACTORY.values():
        if spec.name == name:
            return spec
    raise ConfigError(f"no registered agent named {name!r} "
                      f"(registered: {', '.join(s.name for s in _BY_FACTORY.values())})")


#: Every agent module shipped with the project (each registers its factory on import).
BUILTIN_AGENT_MODULES = ("agents.lird_ddpg", "agents.dqn", "agents.dqn_ranked",
                         "agents.ah_dqn")


def load_builtin_agents() -> None:
    """Imports every shipped agent module: their factories are then registered, and
    known to gin by name (`@create_lird_ddpg_agent`)."""
    import importlib
    for module in BUILTIN_AGENT_MODULES:
        importlib.import_module(module)
