"""Neighbour tables: the exact one, the inverted file that replaces it above
`neighbour_table.exact_up_to` tracks, and the recall that compares them."""

import numpy as np
import pytest

from spotisim.errors import ConfigError
from spotisim.neighbours import (approximate_neighbours, nearest_neighbours, neighbour_recall,
                                 neighbour_table)


def clustered(n=3000, clusters=30, d=16, spread=0.3, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, d))
    return (centres[rng.integers(0, clusters, n)] + spread * rng.standard_normal((n, d))
            ).astype(np.float32)


def test_searching_every_cluster_is_the_exact_table():
    e = clustered(800, 10)
    exact = nearest_neighbours(e, 5)
    full = approximate_neighbours(e, 5, clusters=10, probes=10)
    np.testing.assert_array_equal(full, exact)


def test_the_inverted_file_finds_most_exact_neighbours_and_never_the_track_itself():
    e = clustered()
    table = approximate_neighbours(e, 10, probes=4)
    assert table.shape == (3000, 10) and table.dtype == np.int32
    assert (table != np.arange(3000)[:, None]).all()
    assert all(len(set(row)) == 10 for row in table.tolist())
    recall = neighbour_recall(e, table, queries=500)
    assert 0.9 <= recall <= 1.0
    # A table of random tracks finds about k / T of them.
    rng = np.random.default_rng(1)
    assert neighbour_recall(e, rng.integers(0, 3000, (3000, 10)), queries=500) < 0.02
    assert neighbour_recall(e, nearest_neighbours(e, 10), queries=500) == 1.0


def test_a_small_cluster_searches_further_until_it_has_k_tracks():
    e = clustered(200, 4)
    e[:3] = 50.0 * np.eye(16, dtype=np.float32)[:3] + e[:3]   # three far-off tracks
    table = approximate_neighbours(e, 20, clusters=20, probes=1)
    assert (table >= 0).all() and (table != np.arange(200)[:, None]).all()
    assert all(len(set(row)) == 20 for row in table.tolist())


def test_the_table_is_exact_up_to_its_size_and_approximate_above():
    e = clustered(600, 6)
    np.testing.assert_array_equal(neighbour_table(e, 5), nearest_neighbours(e, 5))
    approx = neighbour_table(e, 5, exact_up_to=100, probes=2)
    np.testing.assert_array_equal(approx, approximate_neighbours(e, 5, probes=2))
    with pytest.raises(ConfigError, match="probes"):
        approximate_neighbours(e, 5, probes=0)
