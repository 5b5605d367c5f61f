"""The user model a run trains against: fitted on the train split, or reused from a
cache keyed by the data's content, the embeddings, the class, its bindings and its
code; with its P(leave) model attached (`attach_leave_hazard`)."""

from __future__ import annotations

import hashlib
import os
from typing import Callable, Optional

import gin
import numpy as np

from spotisim.data.datasets import Dataset
from user_models import load_user_model
from user_models.base import AbstractUserModel
from user_models.ground_truth import GroundTruthUserModel
from user_models.leave_hazard import leave_model_class, load_leave_model
from user_models.sequential import SequentialUserModel


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


def _module_source(obj) -> str:
    """The source of the module defining `obj` ("" where Python cannot find it)."""
    import inspect
    module = inspect.getmodule(obj)
    try:
        return inspect.getsource(module) if module is not None else ""
    except (OSError, TypeError):
        return ""


@gin.configurable
def fit_or_load_user_model(data: Dataset, embeddings: np.ndarray,
                           model_ctor: Callable[..., AbstractUserModel] = SequentialUserModel,
                           directory: Optional[str] = None,
                           cache_dir: str = "runs/cache/user_models") -> AbstractUserModel:
    """The user model the agent trains against.

    Args:
      directory: a saved user model to use as is (any class: see `load_user_model`).
      model_ctor: otherwise, the class fitted on the train split (early stopping on
        validation).  A fitted model is cached under `cache_dir`, keyed by the content
        of the train and validation splits (`SessionLog.content_digest`), the
        embeddings, the class, its gin bindings and the source of its module (a cached
        model fitted on other data or by older code is not silently reused), and reused
        by later runs.  Where the data has a random-exposure log (`Dataset.exposure`)
        and the class reads one (`fits_exposure`), it is fitted with it too.
    """
    if directory:
        return attach_leave_hazard(load_user_model(directory), data, embeddings)
    name = getattr(model_ctor, "__name__", str(model_ctor))
    exposure = data.exposure if getattr(model_ctor, "fits_exposure", False) else None
    key = _digest(data.source, data.train.content_digest(), data.val.content_digest(),
                  *(() if exposure is None else
                    ((exposure.log.content_digest(), exposure.explore_from),)),
                  np.ascontiguousarray(embeddings).tobytes(), name,
                  sorted(gin.get_bindings(model_ctor).items()) if hasattr(gin, "get_bindings") else "",
                  _module_source(model_ctor))
    path = os.path.join(cache_dir, f"{name}-{key}")
    if os.path.exists(os.path.join(path, "user_model.json")):
        model = load_user_model(path)
    else:
        if exposure is None:
            model = model_ctor(embeddings=embeddings).fit(data.train, data.val)
        else:
            model = model_ctor(embeddings=embeddings, exposure_input=True).fit(
                data.train, data.val, exposure=exposure)
        model.save(path)
    return attach_leave_hazard(model, data, embeddings, cache_dir=path)


def attach_leave_hazard(model: AbstractUserModel, data: Dataset, embeddings: np.ndarray,
                        cache_dir: Optional[str] = None) -> AbstractUserModel:
    """Gives a learned user model its P(leave): its class's leave model
    (`leave_model_class`: the `LeaveHazard`, or the sequential model's `LeaveHead`)
    fitted on the train split's session lengths, early stopping on the validation split
    (cached beside the model, keyed by the leave model's code).  The ground truth keeps
    its own hazard."""
    if isinstance(model, GroundTruthUserModel):
        return model
    cls = leave_model_class(getattr(model, "leave_model_class", "LeaveHazard"))
    path = None
    if cache_dir is not None:
        code = _digest(_module_source(cls), _module_source(load_leave_model))
        path = os.path.join(cache_dir, f"{cls.__name__}-{code}.json")
        if os.path.exists(path):
            model.leave_hazard = load_leave_model(path, embeddings)
            return model
    model.leave_hazard = cls(embeddings).fit(data.train, data.val)
    if path is not None:
        model.leave_hazard.save(path)
    return model
