"""The catalogue: genres (centroids, Zipf-like sizes), tracks with a latent vector near
their genre's centroid, a latent popularity, an id, and MSSD track features correlated
with the latent (so acoustic features carry taste information, as in MSSD)."""

from __future__ import annotations

from typing import Dict

import numpy as np
import pyarrow as pa

from spotisim.data.schema import ACOUSTIC_VECTOR_COLUMNS, TRACK_COLUMNS, TRACK_SCHEMA
from spotisim.data.world.common import sigmoid as _sigmoid, unit as _unit, uuid_strings
from spotisim.data.world.config import WorldConfig


class Catalogue:
    """Tracks and genres of one world (arrays indexed by track)."""

    def __init__(self, config: WorldConfig, genre_centroids: np.ndarray,
                 track_genre: np.ndarray, track_latent: np.ndarray,
                 track_popularity: np.ndarray, track_ids: np.ndarray,
                 track_features: Dict[str, np.ndarray]):
        self.config = config
        self.genre_centroids = genre_centroids
        self.track_genre = track_genre
        self.track_latent = track_latent
        self.track_popularity = track_popularity
        self.track_ids = track_ids
        self.track_features = track_features

    @staticmethod
    def genre_weights(config: WorldConfig) -> np.ndarray:
        """P(genre) for tracks and listeners' main genres: Zipf-like sizes."""
        w = 1.0 / np.arange(1, config.num_genres + 1) ** 0.7
        return w / w.sum()

    @classmethod
    def generate(cls, config: WorldConfig, rng: np.random.Generator) -> "Catalogue":
        """Draws the catalogue from `rng` (the world's stream: its draws come first)."""
        c = config
        D = c.latent_dim
        genre_centroids = _unit(rng.normal(size=(c.num_genres, D)))
        track_genre = rng.choice(c.num_genres, size=c.num_tracks, p=cls.genre_weights(c))
        track_latent = _unit(genre_centroids[track_genre]
                             + 0.55 * rng.normal(size=(c.num_tracks, D)))
        track_popularity = rng.normal(size=c.num_tracks)
        track_ids = np.array(["t_" + u for u in uuid_strings(rng, c.num_tracks)], dtype=object)
        out = cls(c, genre_centroids, track_genre, track_latent, track_popularity, track_ids, {})
        out._make_track_features(rng)
        return out

    def _make_track_features(self, rng: np.random.Generator) -> None:
        c = self.config
        T, D = c.num_tracks, c.latent_dim
        z = self.track_latent
        mix = rng.normal(size=(D, 12)) * 0.9
        raw = z @ mix + 0.35 * rng.normal(size=(T, 12))
        sig = _sigmoid(raw)
        f: Dict[str, np.ndarray] = {}
        f["acousticness"] = sig[:, 0] ** 1.5
        f["energy"] = np.clip(1.0 - 0.7 * f["acousticness"] + 0.3 * sig[:, 1] - 0.15, 0, 1)
        f["danceability"] = np.clip(0.5 * sig[:, 2] + 0.4 * f["energy"], 0, 1)
        f["beat_strength"] = np.clip(0.6 * f["danceability"] + 0.3 * sig[:, 3], 0, 1)
        f["bounciness"] = np.clip(0.5 * f["beat_strength"] + 0.4 * sig[:, 4], 0, 1)
        f["valence"] = sig[:, 5]
        f["liveness"] = np.clip(0.05 + 0.6 * sig[:, 6] ** 3, 0, 1)
        f["speechiness"] = np.clip(0.02 + 0.5 * sig[:, 7] ** 4, 0, 1)
        f["instrumentalness"] = sig[:, 8] ** 3
        f["mechanism"] = np.clip(0.7 * (1 - f["acousticness"]) + 0.3 * sig[:, 9], 0, 1)
        f["organism"] = np.clip(0.7 * f["acousticness"] + 0.3 * sig[:, 10], 0, 1)
        f["flatness"] = 0.85 + 0.2 * sig[:, 11]
        f["dyn_range_mean"] = 4.0 + 8.0 * (1 - f["energy"]) + rng.gamma(2.0, 1.0, T)
        f["loudness"] = np.clip(-25.0 + 20.0 * f["energy"] + rng.normal(0, 2.0, T), -60, 0)
        f["tempo"] = np.clip(70 + 70 * f["danceability"] + 25 * rng.normal(size=T), 40, 220)
        f["duration"] = np.clip(np.exp(rng.normal(np.log(215.0), 0.3, T)), 30, 1200)
        f["release_year"] = np.clip(2018 - np.floor(rng.exponential(9.0, T)), 1950, 2018).astype(np.int64)
        f["us_popularity_estimate"] = 90.0 + 9.999 * _sigmoid(1.6 * self.track_popularity)
        f["key"] = rng.integers(0, 12, T)
        f["time_signature"] = rng.choice([3, 4, 5], size=T, p=[0.08, 0.88, 0.04])
        f["mode"] = np.where(f["valence"] + 0.2 * rng.normal(size=T) > 0.45, "major", "minor")
        proj = rng.normal(size=(D, 8)) / np.sqrt(D) * 1.5
        av = np.tanh(z @ proj + 0.1 * rng.normal(size=(T, 8)))
        for i, name in enumerate(ACOUSTIC_VECTOR_COLUMNS):
            f[name] = av[:, i]
        self.track_features = f

    def track_table(self) -> pa.Table:
        """The MSSD track-features table of this world."""
        cols = {"track_id": pa.array(self.track_ids.tolist(), pa.string())}
        for spec in TRACK_COLUMNS[1:]:
            v = self.track_features[spec.name]
            if spec.kind == "float":
                v = np.round(v.astype(np.float64), 6)
            cols[spec.name] = pa.array(v, spec.arrow_type)
        return pa.table([cols[s.name] for s in TRACK_COLUMNS], schema=TRACK_SCHEMA)
