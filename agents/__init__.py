"""Agents trained against the spotisim simulator (LIRD-DDPG, DQN, Action-Head DQN,
baselines). Built in issue #5."""
