"""The saved-model directory the Keras user models share: embeddings.npy, weights.npz
(the weight arrays in order), the catalogue's track ids and user_model.json (the class,
its configuration and whatever else the model records), written atomically."""

from __future__ import annotations

import json
import os
from typing import Optional, Sequence

import numpy as np

from spotisim.io_utils import atomic_dir
from user_models.catalog_alignment import write_track_ids


def save_model_dir(directory: str, meta: dict, embeddings: np.ndarray,
                   weights: Sequence[np.ndarray], track_ids: Optional[np.ndarray]) -> None:
    """Writes the directory; `meta` must hold "class" (what `load_user_model` reads)."""
    with atomic_dir(directory) as tmp:
        np.save(os.path.join(tmp, "embeddings.npy"), embeddings)
        np.savez(os.path.join(tmp, "weights.npz"), *[np.asarray(w) for w in weights])
        if track_ids is not None:
            write_track_ids(tmp, track_ids)
        with open(os.path.join(tmp, "user_model.json"), "w") as f:
            json.dump(meta, f, indent=1)


def load_weights(directory: str) -> list:
    """The weight arrays of a saved directory, in the order they were saved."""
    with np.load(os.path.join(directory, "weights.npz")) as w:
        return [w[f"arr_{i}"] for i in range(len(w.files))]


def write_fit_record(directory: str, report: dict) -> None:
    """A fit's report.json and the gin config it ran under (operative_config.gin),
    into `directory` (the temporary directory of an atomic output)."""
    import gin
    with open(os.path.join(directory, "report.json"), "w") as f:
        json.dump(report, f, indent=1)
    with open(os.path.join(directory, "operative_config.gin"), "w") as f:
        f.write(gin.operative_config_str())
