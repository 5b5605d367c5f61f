"""Agents trained against the spotisim simulator (LIRD-DDPG, DQN, Action-Head DQN,
baselines). Built in issue #5."""

import spotisim  # noqa: F401  (quiets TensorFlow start-up logging before TF loads)

