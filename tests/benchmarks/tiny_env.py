"""The tiny world and slate environment the benchmark scripts' tests play on."""

import numpy as np

from spotisim.data.synthetic import SyntheticWorld, WorldConfig
from spotisim.environment import PlaylistEnvironment
from spotisim.episode_samplers import SyntheticEpisodeSampler
from spotisim.track_samplers import SlateIndicesTrackSampler
from tests.conftest import TINY_WORLD
from user_models.ground_truth import GroundTruthUserModel


def tiny_truth():
    """(world, its ground-truth user model, the true track latents as embeddings)."""
    world = SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))
    return world, GroundTruthUserModel(world), world.track_latent.astype(np.float32)


def slate_env(world, truth, emb, batch_size: int) -> PlaylistEnvironment:
    """Slates of 3 from pools of 40 after a 10-track history, seed 4: every call, the
    same episode starts."""
    return PlaylistEnvironment(truth, SlateIndicesTrackSampler(3, 40, emb.shape[1]),
                               SyntheticEpisodeSampler(world, 10, 40), emb,
                               batch_size=batch_size, seed=4)
