"""One registry of agents: the runner learns an agent's name, track sampler and TD-error
function from its factory, never from the factory's name."""

import gin
import pytest

from agents.ah_dqn import create_ah_dqn_agent
from agents.dqn import create_dqn_agent
from agents.lird_ddpg import create_lird_ddpg_agent
from agents.registry import agent_spec, agent_spec_by_name, register_agent
from spotisim.errors import ConfigError


def test_each_agent_module_declares_its_spec():
    assert (agent_spec(create_lird_ddpg_agent).name, agent_spec(create_lird_ddpg_agent).sampler) \
        == ("lird_ddpg", "weights")
    assert agent_spec(create_dqn_agent).sampler == "index"
    assert agent_spec(create_ah_dqn_agent).sampler == "slate"
    assert agent_spec_by_name("ah_dqn") is agent_spec(create_ah_dqn_agent)
    from agents.dqn_ranked import create_dqn_ranked_agent
    assert agent_spec(create_dqn_ranked_agent).sampler == "slate"
    assert agent_spec_by_name("dqn_ranked") is agent_spec(create_dqn_ranked_agent)


def test_a_new_agent_needs_no_naming_convention():
    """A factory named anything registers itself; gin's wrapper finds the same spec."""
    @gin.configurable("my_policy_maker_for_tests")
    @register_agent("mine", sampler="slate", td_errors=lambda agent, exp: None)
    def my_policy_maker(time_step_spec, action_spec):
        class Agent:
            pass
        return Agent()

    spec = agent_spec(my_policy_maker)
    assert (spec.name, spec.sampler) == ("mine", "slate")
    assert my_policy_maker(None, None).spotisim_spec is spec   # carried by what it makes

    def unregistered(time_step_spec, action_spec):
        return None
    with pytest.raises(ConfigError, match="not a registered agent factory"):
        agent_spec(unregistered)
    with pytest.raises(ConfigError, match="sampler must be one of"):
        register_agent("bad", sampler="cards", td_errors=None)


def test_every_builtin_agent_is_found_by_name_alone():
    """In a fresh process nothing imported an agent module: the registry loads every
    built-in one itself (dqn_ranked was left out once)."""
    import os
    import subprocess
    import sys
    code = ("from agents.registry import agent_spec_by_name\n"
            "print(' '.join(agent_spec_by_name(n).sampler for n in "
            "('lird_ddpg', 'dqn', 'dqn_ranked', 'ah_dqn')))")
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    out = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.split() == ["weights", "index", "slate", "slate"]
