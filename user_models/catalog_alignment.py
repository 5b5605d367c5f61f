"""A trained user model reading a log with other tracks than it was trained on.

A model's track indices mean rows of the catalogue it was fitted with
(`AbstractUserModel.track_ids`, saved with the model).  To score another log, its track
ids are mapped explicitly onto those rows; tracks the model never saw get a documented
representation, never a random or borrowed row: their track-table features when the
log comes with a track table and the model's vectors are acoustic
(`acoustic_placement`), otherwise a place among the known tracks they share sessions
with (`spotisim.embeddings.fold_in`); the model is then rebuilt for the log's catalogue
(`AbstractUserModel.remapped`).  A model that records no catalogue cannot be
mapped and says so: never a silent wrong index.
"""

from __future__ import annotations

import os
from typing import Optional, Tuple

import numpy as np

from spotisim.data.catalog import TrackCatalog
from spotisim.data.session_log import SessionLog
from spotisim.embeddings import fold_in
from spotisim.errors import UserModelError

TRACK_IDS_FILE = "track_ids.txt"


def write_track_ids(directory: str, track_ids) -> None:
    """One track id per line (ids are checked for line breaks when read from a log)."""
    with open(os.path.join(directory, TRACK_IDS_FILE), "w", encoding="utf-8") as f:
        f.write("\n".join(map(str, track_ids)))


def read_track_ids(directory: str) -> Optional[np.ndarray]:
    """The saved catalogue of a model directory, or None when it has none."""
    path = os.path.join(directory, TRACK_IDS_FILE)
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return np.asarray(text.split("\n") if text else [], dtype=object)


FOLD_IN = ("fold-in: mean vector of the known tracks sharing its sessions "
           "(spotisim.embeddings.fold_in)")
ACOUSTIC = "acoustic: its track-table features, scaled as the model's known tracks are"


def acoustic_placement(catalog: TrackCatalog, vectors: np.ndarray, known: np.ndarray
                       ) -> Optional[np.ndarray]:
    """Vectors for unknown tracks from their track-table features, when the model's
    vectors are the features themselves up to a per-column scale and shift (acoustic
    embeddings: z-scored features).  The scale and shift are fitted on the known
    tracks; None when the log has no track table or the vectors are not acoustic."""
    if not catalog.has_features or catalog.features.shape[1] != vectors.shape[1] \
            or known.sum() < 3:
        return None
    raw, v = catalog.features[known].astype(np.float64), vectors[known].astype(np.float64)
    out = vectors.copy()
    for j in range(v.shape[1]):
        x = np.stack([raw[:, j], np.ones(len(raw))], axis=1)
        coef, *_ = np.linalg.lstsq(x, v[:, j], rcond=None)
        resid = np.abs(x @ coef - v[:, j]).max()
        if resid > 1e-3 * (np.abs(v[:, j]).max() + 1e-6):
            return None   # not an affine image of this feature: not acoustic
        out[~known, j] = coef[0] * catalog.features[~known, j] + coef[1]
    return out.astype(np.float32)


def align_to_log(model, log: SessionLog) -> Tuple[object, dict]:
    """`model` rebuilt to read `log`'s track indices, and what the mapping found.

    Returns:
      (model, info): info holds tracks (in the log's catalogue), unseen_tracks (not in
      the model's), unseen_row_share (share of the log's rows playing one) and how
      unseen tracks are represented.
    """
    catalog = log.catalog
    if getattr(model, "catalog_free", False):
        return model, {"tracks": len(catalog), "unseen_tracks": 0, "unseen_row_share": 0.0,
                       "unseen_representation": "not needed (the model reads no track)"}
    own = getattr(model, "track_ids", None)
    if own is None:
        raise UserModelError(
            f"{type(model).__name__} records no catalogue (saved before catalogues were "
            "recorded, or never fitted), so its track indices cannot be mapped onto "
            "another log: re-train it")
    pos = TrackCatalog(own).indices(catalog.track_ids)
    unseen = pos < 0
    info = {"tracks": int(len(catalog)), "unseen_tracks": int(unseen.sum()),
            "unseen_row_share": float(unseen[log.tracks].mean()) if log.num_rows else 0.0,
            "unseen_representation": FOLD_IN}
    if len(own) == len(catalog) and (pos == np.arange(len(catalog))).all():
        return model, info
    embeddings = getattr(model, "embeddings", None)
    vectors = None
    if embeddings is not None:
        vectors = np.zeros((len(catalog), embeddings.shape[1]), np.float32)
        vectors[~unseen] = embeddings[pos[~unseen]]
        placed = acoustic_placement(catalog, vectors, ~unseen) if unseen.any() else None
        if placed is not None:
            vectors, info["unseen_representation"] = placed, ACOUSTIC
        else:
            vectors = fold_in(vectors, ~unseen, log)
    aligned = model.remapped(pos, vectors)
    aligned.track_ids = np.asarray(catalog.track_ids, dtype=object)
    return aligned, info
