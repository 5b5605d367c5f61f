"""The random-exposure slice: a log kept apart from the main one, whose explored tracks
depend only on what the listener was played, read into the main log's catalogue."""

import json
import os

import numpy as np
import pytest

from tests.conftest import TINY_WORLD
from spotisim.data.datasets import load_dataset, read_exposure_log
from spotisim.data.session_log import read_session_log
from spotisim.data.synthetic import SyntheticWorld, WorldConfig, generate
from spotisim.data.world.common import first_distinct
from spotisim.errors import ConfigError, DataValidationError


@pytest.fixture(scope="module")
def world():
    return SyntheticWorld(WorldConfig(seed=3, **TINY_WORLD))


def test_exploration_replaces_only_the_tracks_after_explore_from(world):
    plain = world.simulate_sessions(np.random.default_rng(5), 200)
    explored = world.simulate_sessions(np.random.default_rng(5), 200, explore_from=10)
    # The same draws up to position 10: the logged start is the logging policy's.
    np.testing.assert_array_equal(plain["tracks"][:, :10], explored["tracks"][:, :10])
    np.testing.assert_array_equal(plain["listened"][:, :10], explored["listened"][:, :10])
    assert "explored" not in plain
    np.testing.assert_array_equal(explored["explored"][0], np.arange(20) >= 10)
    after = explored["tracks"][:, 10:]
    assert (after != plain["tracks"][:, 10:]).mean() > 0.9
    for row in explored["tracks"]:  # no repeats within a session
        assert len(set(row.tolist())) == len(row)


def test_explored_tracks_do_not_depend_on_the_hidden_taste(world):
    """Two sets of listeners with the same played tracks and responses get the same
    explored tracks from the same random stream: the generator reads nothing else."""
    policy = world.exploration_policy
    rng = np.random.default_rng(0)
    played = np.stack([rng.choice(world.config.num_tracks, 10, replace=False) for _ in range(50)])
    listened = rng.random((50, 10)) < 0.5
    a = policy.tracks(np.random.default_rng(9), played, listened, 10)
    b = policy.tracks(np.random.default_rng(9), played, listened, 10)
    np.testing.assert_array_equal(a, b)
    assert not (a[:, :, None] == played[:, None, :]).any()
    # About half of them are latent neighbours of a listened track.
    z = world.track_latent / np.linalg.norm(world.track_latent, axis=1, keepdims=True)
    near = policy.neighbours[np.where(listened, played, played[:, :1])]   # [n, 10, k]
    is_near = (a[:, :, None, None] == near[:, None]).any((-1, -2))
    assert 0.4 < is_near.mean() < 0.75
    closest = np.einsum("nkd,nld->nkl", z[a], z[played]).max(-1)
    random = np.einsum("nkd,nld->nkl", z[rng.integers(0, len(z), a.shape)], z[played]).max(-1)
    assert closest.mean() > random.mean() + 0.05


def test_first_distinct_skips_duplicates_and_excluded():
    props = np.array([[5, 5, 3, 1, 2], [7, 8, 7, 9, -1]])
    out = first_distinct(props, np.array([[3], [9]]), 3)
    np.testing.assert_array_equal(out, [[5, 1, 2], [7, 8, -1]])
    np.testing.assert_array_equal(first_distinct(np.array([[4]]), np.array([[-1]]), 3),
                                  [[4, -1, -1]])


@pytest.fixture(scope="module")
def explored_dir(tmp_path_factory):
    out = str(tmp_path_factory.mktemp("explored"))
    return generate(out, num_sessions=300, seed=3, config=WorldConfig(seed=3, **TINY_WORLD),
                    exploration_sessions=120, explore_from=10)


def test_the_main_log_is_the_same_bytes_with_an_exploration_log(explored_dir, tiny_world_dir):
    with open(os.path.join(tiny_world_dir["log"], "log_00000.csv"), "rb") as f:
        plain = f.read()
    with open(os.path.join(explored_dir["log"], "log_00000.csv"), "rb") as f:
        assert f.read() == plain
    with open(os.path.join(explored_dir["exploration"], "exploration.json")) as f:
        assert json.load(f) == {"explore_from": 10, "sessions": 120}


def test_load_dataset_reads_the_exposure_log_into_the_main_catalogue(explored_dir):
    data = load_dataset(explored_dir["log"], explored_dir["tracks"], explored_dir["hidden"],
                        explored_dir["world"], exposure_path=explored_dir["exploration"])
    ex = data.exposure
    assert ex.explore_from == 10 and ex.log.num_sessions == 120
    assert ex.log.catalog is not data.log.catalog
    np.testing.assert_array_equal(ex.log.catalog.track_ids, data.log.catalog.track_ids)
    # Play counts stay each log's own.
    assert data.log.catalog.play_counts.sum() == data.log.num_rows
    assert ex.log.catalog.play_counts.sum() == ex.log.num_rows
    exposed = ex.exposed(20)
    assert exposed.shape == (120, 20) and exposed[:, :10].sum() == 0 and exposed[:, 10:].all()
    assert ex.num_exposed_rows == int(np.maximum(ex.log.lengths - 10, 0).sum()) > 0
    with pytest.raises(ConfigError, match="records 10"):
        read_exposure_log(explored_dir["exploration"], data.log, 12)


def test_an_exposure_log_without_explore_from_or_with_unknown_tracks_is_refused(
        explored_dir, tiny_world_dir, tmp_path):
    main = read_session_log(explored_dir["log"], explored_dir["tracks"])
    csv = os.path.join(explored_dir["exploration"], "log_00000.csv")
    with pytest.raises(ConfigError, match="explore_from is needed"):
        read_exposure_log(csv, main, None)
    other = SyntheticWorld(WorldConfig(seed=4, **TINY_WORLD))  # other track ids
    bad = str(tmp_path / "x")
    generate(bad, num_sessions=5, seed=4, config=other.config, exploration_sessions=5)
    with pytest.raises(DataValidationError, match="not in the track table"):
        read_exposure_log(os.path.join(bad, "exploration"), main, None)


def test_neighbours_on_the_track_table_and_chains_are_opt_in(world, tmp_path):
    """`features` takes neighbours on the track table's z-scored features, not the hidden
    vectors; `chains` runs some sessions through a neighbourhood (each explored track a
    neighbour of the one before it, at a share drawn per session), from the taste-blind
    generator, and is recorded beside the slice; an unknown source is one error."""
    from spotisim.data.world.exploration import ExplorationPolicy, neighbour_vectors
    latent = ExplorationPolicy(world.config, world.catalogue)
    features = ExplorationPolicy(world.config, world.catalogue, neighbours_from="features")
    f = neighbour_vectors(world.catalogue, "features")
    assert f.shape == (world.config.num_tracks, 29)
    np.testing.assert_allclose(f.mean(0), 0, atol=1e-9)
    # Another neighbourhood than the hidden one, though related to it.
    same = (np.sort(latent.neighbours, 1) == np.sort(features.neighbours, 1)).all(1).mean()
    assert same < 0.5
    rng = np.random.default_rng(0)
    played = np.stack([rng.choice(world.config.num_tracks, 10, replace=False)
                       for _ in range(400)])
    listened = rng.random((400, 10)) < 0.5
    chained = ExplorationPolicy(world.config, world.catalogue, neighbours_from="features",
                                chains=True)
    plain = features.tracks(np.random.default_rng(9), played, listened, 10)
    chain = chained.tracks(np.random.default_rng(9), played, listened, 10)
    for out in (plain, chain):  # distinct and new, as before
        assert not (out[:, :, None] == played[:, None, :]).any()
        assert all(len(set(r.tolist())) == 10 for r in out)
    prev = np.concatenate([played[:, -1:], chain[:, :-1]], axis=1)
    follows = (chained.neighbours[prev] == chain[..., None]).any(-1)
    prev_plain = np.concatenate([played[:, -1:], plain[:, :-1]], axis=1)
    follows_plain = (features.neighbours[prev_plain] == plain[..., None]).any(-1)
    # About half the tracks follow their predecessor (share ~ U(0, 1)), and sessions
    # differ in how much: some run through a neighbourhood, some hardly.
    assert 0.35 < follows.mean() < 0.65 and follows_plain.mean() < 0.1
    per_session = follows.mean(1)
    assert per_session.min() <= 0.2 and per_session.max() >= 0.8
    out = generate(str(tmp_path / "w"), num_sessions=30, seed=3,
                   config=WorldConfig(seed=3, **TINY_WORLD), exploration_sessions=20,
                   exploration_neighbours="features", exploration_chains=True)
    with open(os.path.join(out["exploration"], "exploration.json")) as fh:
        assert json.load(fh) == {"explore_from": 10, "sessions": 20,
                                 "neighbours_from": "features", "chains": True}
    with pytest.raises(ConfigError, match="exploration_neighbours must be one of"):
        generate(str(tmp_path / "bad"), num_sessions=5, seed=3, config=world.config,
                 exploration_sessions=5, exploration_neighbours="hidden")


def test_a_slice_past_the_logs_cap_is_opt_in_and_leaves_by_the_hazard_alone(world, tmp_path):
    """`exploration_length` runs the slice's sessions past the log's 20-track cap (the
    main log keeps it): the same logged starts, longer sessions, none forced out at 20;
    a length for the main log, or under its cap, is one error."""
    capped = world.simulate_sessions(np.random.default_rng(5), 300, explore_from=10)
    longer = world.simulate_sessions(np.random.default_rng(5), 300, explore_from=10,
                                     length=40)
    np.testing.assert_array_equal(capped["tracks"][:, :10], longer["tracks"][:, :10])
    assert longer["tracks"].shape == (300, 40) and capped["length"].max() == 20
    assert (longer["length"] > 20).mean() > 0.2 and longer["length"].max() <= 40
    for row, n in zip(longer["tracks"], longer["length"]):
        assert (row[:n] >= 0).all() and len(set(row.tolist())) == 40
    with pytest.raises(ConfigError, match="for an exploration log"):
        world.simulate_sessions(np.random.default_rng(5), 3, length=40)
    with pytest.raises(ConfigError, match="at least max_length"):
        world.simulate_sessions(np.random.default_rng(5), 3, explore_from=10, length=15)
    out = generate(str(tmp_path / "w"), num_sessions=30, seed=3,
                   config=WorldConfig(seed=3, **TINY_WORLD), exploration_sessions=40,
                   exploration_length=40)
    with open(os.path.join(out["exploration"], "exploration.json")) as fh:
        assert json.load(fh) == {"explore_from": 10, "sessions": 40, "length": 40}
    data = load_dataset(out["log"], out["tracks"], out["hidden"], out["world"],
                        exposure_path=out["exploration"])
    assert data.exposure.log.lengths.max() > 20 >= data.log.lengths.max()
