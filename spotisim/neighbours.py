"""Item-to-item neighbour tables: each track's most similar tracks (cosine of their
embeddings), the candidates an item-to-item generator proposes after a listen
(`LogEpisodeSampler.neighbour_share`).

Why two methods: the exact table compares every track with every other, so its cost is
quadratic in the catalogue (a million tracks: 10^12 similarities, hours on two cores).
Above `neighbour_table.exact_up_to` tracks the table is approximate, the way retrieval
systems do it (an inverted file, as FAISS's IVF): the catalogue is cut into about
sqrt(T) clusters by spherical k-means, and each track is compared only with the tracks
of the `probes` clusters nearest its own.  Memory is one block of similarities at a time
in both.  `neighbour_recall` measures how many of the exact neighbours the approximate
table finds (`benchmarks/large_catalogue.py` prints it).
"""

from __future__ import annotations

import gin
import numpy as np

from spotisim.errors import ConfigError

#: Similarities held at once (float32): about 64 MB.
_BLOCK_ELEMENTS = 16 * 1024 * 1024


def _unit(embeddings: np.ndarray) -> np.ndarray:
    e = np.asarray(embeddings, np.float32)
    return e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-9)


def _top_k(sim: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's k largest entries, largest first."""
    top = np.argpartition(-sim, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sim, top, 1), axis=1)
    return np.take_along_axis(top, order, 1)


def nearest_neighbours(embeddings: np.ndarray, k: int, block: int = 1024) -> np.ndarray:
    """int32 [T, k]: each track's k most similar other tracks (cosine), best first.

    Exact, in blocks of rows (memory O(block x T)); quadratic in the catalogue."""
    e = _unit(embeddings)
    T = len(e)
    k = min(k, T - 1)
    out = np.empty((T, k), np.int32)
    for b in range(0, T, block):
        sim = e[b:b + block] @ e.T
        rows = np.arange(sim.shape[0])
        sim[rows, b + rows] = -np.inf
        out[b:b + block] = _top_k(sim, k)
    return out


def spherical_kmeans(e: np.ndarray, clusters: int, rng: np.random.Generator,
                     sample: int = 100_000, iterations: int = 10) -> np.ndarray:
    """float32 [clusters, d] unit centroids of the unit rows `e`, fitted on a sample of
    at most `sample` rows (an empty cluster takes a random row anew)."""
    rows = e[rng.choice(len(e), min(len(e), max(sample, clusters)), replace=False)]
    centroids = rows[rng.choice(len(rows), clusters, replace=False)].copy()
    for _ in range(iterations):
        assign = assign_to_centroids(rows, centroids)
        sums = np.zeros_like(centroids)
        np.add.at(sums, assign, rows)
        counts = np.bincount(assign, minlength=clusters)
        empty = counts == 0
        sums[empty] = rows[rng.choice(len(rows), int(empty.sum()))]
        centroids = _unit(sums)
    return centroids


def assign_to_centroids(e: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """int64 [len(e)]: each row's most similar centroid, in blocks."""
    block = max(1, _BLOCK_ELEMENTS // len(centroids))
    return np.concatenate([np.argmax(e[b:b + block] @ centroids.T, axis=1)
                           for b in range(0, len(e), block)]) if len(e) else np.zeros(0, np.int64)


def approximate_neighbours(embeddings: np.ndarray, k: int, clusters: int = 0,
                           probes: int = 16, seed: int = 0) -> np.ndarray:
    """int32 [T, k]: each track's k most similar other tracks (cosine) among those of
    the `probes` clusters nearest its own (an inverted file), best first.

    Args:
      clusters: how many clusters (0: about sqrt(T)).
      probes: clusters searched per track (its own and the next nearest centroids);
        more finds more of the exact neighbours, at a cost linear in it.  A cluster
        whose probes hold fewer than k other tracks searches further clusters.
    """
    e = _unit(embeddings)
    T = len(e)
    k = min(k, T - 1)
    if k < 1:
        return np.zeros((T, 0), np.int32)
    clusters = int(clusters) or max(1, int(round(np.sqrt(T))))
    clusters = min(clusters, T)
    if probes < 1:
        raise ConfigError(f"approximate_neighbours.probes must be positive, got {probes}")
    rng = np.random.default_rng(seed)
    centroids = spherical_kmeans(e, clusters, rng)
    assign = assign_to_centroids(e, centroids)
    order = np.argsort(assign, kind="stable")
    bounds = np.searchsorted(assign[order], np.arange(clusters + 1))
    members = [order[bounds[c]:bounds[c + 1]] for c in range(clusters)]
    sizes = bounds[1:] - bounds[:-1]
    near = np.argsort(-(centroids @ centroids.T), axis=1, kind="stable")
    out = np.empty((T, k), np.int32)
    for c in range(clusters):
        own = members[c]
        if len(own) == 0:
            continue
        reach = min(probes, clusters)
        while reach < clusters and sizes[near[c, :reach]].sum() < k + 1:
            reach += 1
        cand = np.concatenate([members[j] for j in near[c, :reach]])
        ce = e[cand]
        rows_per_block = max(1, _BLOCK_ELEMENTS // len(cand))
        for b in range(0, len(own), rows_per_block):
            q = own[b:b + rows_per_block]
            sim = e[q] @ ce.T
            sim[cand[None, :] == q[:, None]] = -np.inf   # not its own neighbour
            out[q] = cand[_top_k(sim, k)]
    return out


@gin.configurable
def neighbour_table(embeddings: np.ndarray, k: int, exact_up_to: int = 50_000,
                    probes: int = 16, seed: int = 0) -> np.ndarray:
    """int32 [T, k]: the neighbour table the episode samplers draw from: exact up to
    `exact_up_to` tracks (every catalogue of the synthetic worlds and the MSSD slices),
    an inverted file with `probes` clusters per track above it."""
    if len(embeddings) <= exact_up_to:
        return nearest_neighbours(embeddings, k)
    return approximate_neighbours(embeddings, k, probes=probes, seed=seed)


def neighbour_recall(embeddings: np.ndarray, table: np.ndarray, queries: int = 1_000,
                     seed: int = 0) -> float:
    """Share of the exact k nearest neighbours that `table` lists, over a seeded sample
    of `queries` tracks (exact for the sample only: O(queries x T))."""
    e = _unit(embeddings)
    T, k = table.shape
    q = np.random.default_rng(seed).choice(T, min(queries, T), replace=False)
    found, block = 0, max(1, _BLOCK_ELEMENTS // T)
    for b in range(0, len(q), block):
        rows = q[b:b + block]
        sim = e[rows] @ e.T
        sim[np.arange(len(rows)), rows] = -np.inf
        exact = _top_k(sim, k)
        found += sum(len(np.intersect1d(exact[i], table[r])) for i, r in enumerate(rows))
    return found / (len(q) * k)


def neighbours_per_track(neighbour_share: float, pool_size: int, history_length: int) -> int:
    """How many neighbours of each history track a pool may draw on."""
    return max(1, int(np.ceil(2 * neighbour_share * pool_size / history_length)))
