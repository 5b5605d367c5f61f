"""The leave models by name: what a saved leave model's file says it is, loaded."""

from __future__ import annotations

import json
import os

import numpy as np

from spotisim.errors import UserModelError
from user_models.leave_hazard import LeaveHazard


def leave_model_class(name: str):
    """The leave model class of that name ("LeaveHazard" or "LeaveHead")."""
    if name == "LeaveHead":
        from user_models.leave_head import LeaveHead
        return LeaveHead
    if name != "LeaveHazard":
        raise UserModelError(f"unknown leave model class {name!r} (LeaveHazard, LeaveHead)")
    return LeaveHazard


def leave_vectors(model, embeddings: np.ndarray) -> np.ndarray:
    """The track vectors `model`'s leave model reads boredom in: the run's `embeddings`,
    or the model's own space where it has one (`TasteUserModel.leave_space`)."""
    own = getattr(model, "leave_vectors", None)
    return embeddings if own is None else own(embeddings)


def load_leave_model(path: str, embeddings: np.ndarray):
    """A saved `LeaveHazard` or `LeaveHead`, by the class its file names."""
    if not os.path.exists(path):
        raise UserModelError(f"{path}: no saved leave model")
    with open(path) as f:
        name = json.load(f).get("class", "LeaveHazard")
    try:
        cls = leave_model_class(name)
    except UserModelError as exc:
        raise UserModelError(f"{path}: {exc}") from None
    return cls.load(path, embeddings)
