"""Logs of randomly exposed tracks: a platform's exploration slice, kept apart from the
main log.

In such a log each session's first `explore_from` tracks were played by the logging
policy and every later one was exposed at random from what is observable (see
`spotisim.data.world.exploration`).  A user model that reads which rows were exposed at
random can answer P(listen) for a track *put in front of* a listener, which is what a
simulator asks, instead of for a track chosen for them because of their taste.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from spotisim.data.session_log import SessionLog
from spotisim.errors import ConfigError


@dataclasses.dataclass
class ExposureLog:
    """A session log whose tracks after position `explore_from` were exposed at random."""

    log: SessionLog
    explore_from: int

    def __post_init__(self):
        if self.explore_from < 0:
            raise ConfigError(f"explore_from must be >= 0, got {self.explore_from}")

    def exposed(self, width: int) -> np.ndarray:
        """float32 [S, width]: 1 on the randomly exposed positions (padding included;
        mask it with the log's own mask)."""
        cols = np.arange(width)[None, :] >= self.explore_from
        return np.broadcast_to(cols, (self.log.num_sessions, width)).astype(np.float32)

    @property
    def num_exposed_rows(self) -> int:
        return int(np.maximum(self.log.lengths - self.explore_from, 0).sum())
