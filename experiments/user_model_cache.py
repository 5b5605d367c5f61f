"""The user model a run trains against: fitted on the train split, or reused from a
cache keyed by the data's content, the embeddings, the class, its bindings and its
code; with its P(leave) model attached (`attach_leave_hazard`)."""

from __future__ import annotations

import hashlib
import os
from typing import Callable, List, Optional, Tuple

import gin
import numpy as np

from spotisim import determinism
from spotisim.data.datasets import Dataset
from spotisim.errors import ConfigError
from user_models import load_user_model
from user_models.base import AbstractUserModel
from user_models.exposure_calibration import calibrated, popularity_feature
from user_models.ground_truth import GroundTruthUserModel
from user_models.leave_models import leave_model_class, leave_vectors, load_leave_model
from user_models.sequential import SequentialUserModel


def _digest(*parts) -> str:
    h = hashlib.sha1()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
    return h.hexdigest()[:16]


#: The project's packages: a fit depends on the source of those it reaches.
PROJECT_PACKAGES = ("spotisim", "user_models")


def _project_modules(obj) -> list:
    """The project modules the module defining `obj` reaches through its globals
    (modules it imports, and the modules of the classes and functions it imports),
    transitively, sorted by name: what a fit by `obj` runs."""
    import inspect
    import sys
    start = inspect.getmodule(obj)
    seen, todo = {}, [start] if start is not None else []
    while todo:
        module = todo.pop()
        if module.__name__ in seen:
            continue
        seen[module.__name__] = module
        for value in vars(module).values():
            name = (value.__name__ if inspect.ismodule(value)
                    else getattr(value, "__module__", None))
            if (isinstance(name, str) and name.split(".")[0] in PROJECT_PACKAGES
                    and name not in seen and name in sys.modules):
                todo.append(sys.modules[name])
    return [seen[n] for n in sorted(seen)]


def _module_source(obj) -> str:
    """The source of every project module a fit by `obj` reaches ("" for one Python
    cannot read): an edit to a helper (`early_stopping.py`, `saving.py`) refits."""
    import inspect
    parts = []
    for module in _project_modules(obj):
        try:
            parts.append(f"# {module.__name__}\n{inspect.getsource(module)}")
        except (OSError, TypeError):
            pass
    return "\n".join(parts)


@gin.configurable
def fit_or_load_user_model(data: Dataset, embeddings: np.ndarray,
                           model_ctor: Callable[..., AbstractUserModel] = SequentialUserModel,
                           directory: Optional[str] = None,
                           cache_dir: str = "runs/cache/user_models",
                           use_exposure: bool = True,
                           calibrate_on_exposure: bool = False) -> AbstractUserModel:
    """The user model the agent trains against.

    Args:
      directory: a saved user model to use as is (any class: see `load_user_model`).
      model_ctor: otherwise, the class fitted on the train split (early stopping on
        validation).  A fitted model is cached under `cache_dir`, keyed by the content
        of the train and validation splits (`SessionLog.content_digest`), the
        embeddings, the class, its gin bindings, the source of every project module
        its module reaches, and the versions and machine settings the numbers depend
        on (`spotisim.determinism.fingerprint`: TensorFlow, Keras, numpy, instruction
        set, thread pools), so a cached model fitted on other data, by older code or
        under other settings is not silently reused; reused by later runs.  Where the data has a random-exposure log (`Dataset.exposure`)
        and the class reads one (`fits_exposure`), it is fitted with it too, unless
        `use_exposure` is False or the slice is held for calibration.
      calibrate_on_exposure: recalibrate the fitted model off the logged path on the
        data's random-exposure slice (`user_models.exposure_calibration`; the model is
        then fitted without the slice, which is kept for the correction).
    """
    if data.train_shards is not None:
        if calibrate_on_exposure:
            raise ConfigError("fit_or_load_user_model.calibrate_on_exposure: a log on shards "
                              "has no exposure slice to calibrate on")
        return shard_user_model(data, embeddings, model_ctor, directory, cache_dir)
    if directory:
        return attach_leave_hazard(load_user_model(directory), data, embeddings)
    name = getattr(model_ctor, "__name__", str(model_ctor))
    exposure = (data.exposure if use_exposure and not calibrate_on_exposure
                and getattr(model_ctor, "fits_exposure", False) else None)
    key = _digest(data.source, data.train.content_digest(), data.val.content_digest(),
                  *(() if exposure is None else
                    ((exposure.log.content_digest(), exposure.explore_from),)),
                  np.ascontiguousarray(embeddings).tobytes(), name,
                  sorted(_gin_bindings(model_ctor).items()),
                  _module_source(model_ctor), sorted(determinism.fingerprint().items()))
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
    model = attach_leave_hazard(model, data, embeddings, cache_dir=path)
    if calibrate_on_exposure:
        support = log_support(data)
        model = calibrated(model, data.exposure, model_dir=path,
                           popularity=_log_popularity(data), support=support,
                           folds=SUPPORT_FOLDS if support is not None else 0)
    return model


def _log_popularity(data: Dataset) -> Optional[np.ndarray]:
    """Each catalogue track's popularity in the log (`popularity_feature`), which the
    exposure calibration may read; None where the catalogue has no play counts."""
    counts = getattr(data.log.catalog, "play_counts", None)
    return None if counts is None else popularity_feature(counts)


_SUPPORT: dict = {}
#: With the co-play support offered, the calibration's optional inputs are decided by
#: this many folds of cross-validation over the slice (the 20% held out is too few to
#: see the support's gain).
SUPPORT_FOLDS = 5


@gin.configurable
def log_support(data: Dataset, enabled: bool = False):
    """The co-play support of the data's training split (`CoPlaySupport`), offered to
    the exposure calibration when `enabled` (built once per training split in a
    process), the optional inputs then decided by `SUPPORT_FOLDS`-fold
    cross-validation; None otherwise.  Off by default: measured on the default world,
    the slice keeps it, yet it raises every policy's offline listens and widens the gap
    between agents and the policies that read no model (docs/offline_verdicts.md,
    "Co-play support")."""
    if not enabled:
        return None
    from user_models.log_support import CoPlaySupport
    key = data.train.content_digest()
    if key not in _SUPPORT:
        _SUPPORT.clear()
        _SUPPORT[key] = CoPlaySupport.from_log(data.train)
    return _SUPPORT[key]


def _gin_bindings(model_ctor) -> dict:
    """The gin bindings of a model class ({} for a class gin does not configure: the
    heuristic baselines)."""
    try:
        return gin.get_bindings(model_ctor)
    except ValueError:
        return {}


def shards_fingerprint(paths) -> bytes:
    """What identifies Parquet shards' content without reading them whole: each
    shard's name, size and last 64 KB (the footer: row groups, offsets, statistics)."""
    h = hashlib.sha1()
    for path in paths:
        size = os.path.getsize(path)
        h.update(f"{os.path.basename(path)}:{size}:".encode())
        with open(path, "rb") as f:
            f.seek(max(0, size - 65536))
            h.update(f.read())
    return h.digest()


def shard_user_model(data: Dataset, embeddings: np.ndarray,
                     model_ctor: Callable[..., AbstractUserModel] = SequentialUserModel,
                     directory: Optional[str] = None,
                     cache_dir: str = "runs/cache/user_models") -> AbstractUserModel:
    """The user model of a run on shards (`load_dataset.log_shards`), with its P(leave).

    `directory`: a streamed fit's output (`python -m user_models.train --log_shards`:
    model/ and leave_model.json) or a saved model, mapped onto the run's catalogue
    (`align_to_log`).  Otherwise the model is fitted from the data's training shards,
    validating on its validation shards, in this process (`train_streamed`), once:
    cached under `cache_dir`, keyed as an in-memory fit is but with the shards'
    fingerprints (`shards_fingerprint`) in place of the splits' content.  A fit
    without leave_model.json gets its leave model fitted on the training sample."""
    from spotisim.embeddings import TrackEmbeddings
    from user_models.catalog_alignment import align_to_log
    from user_models.streamed_train import LEAVE_MODEL_FILE, train_streamed
    fit_dir = directory
    if not fit_dir:
        name = getattr(model_ctor, "__name__", str(model_ctor))
        key = _digest(shards_fingerprint(data.train_shards.shards),
                      shards_fingerprint(data.val_shards.shards),
                      np.ascontiguousarray(embeddings).tobytes(), name,
                      sorted(_gin_bindings(model_ctor).items()), _module_source(model_ctor),
                      _module_source(train_streamed), sorted(determinism.fingerprint().items()))
        fit_dir = os.path.join(cache_dir, f"{name}-shards-{key}")
        if not os.path.exists(os.path.join(fit_dir, "model", "user_model.json")):
            run_embeddings = TrackEmbeddings(np.asarray(embeddings, np.float32),
                                             np.asarray(data.log.catalog.track_ids, object),
                                             "the run's")
            train_streamed(None, fit_dir, verbose=False, model_ctor=model_ctor,
                           shard_lists=(data.train_shards.shards, data.val_shards.shards),
                           embeddings=run_embeddings, chunk_rows=data.train_shards.chunk_rows)
    inner = os.path.join(fit_dir, "model")
    model, _ = align_to_log(load_user_model(inner if os.path.isdir(inner) else fit_dir),
                            data.log)
    leave_path = os.path.join(fit_dir, LEAVE_MODEL_FILE)
    if os.path.exists(leave_path):
        model.leave_hazard = load_leave_model(leave_path, leave_vectors(model, embeddings))
        return model
    return attach_leave_hazard(model, data, embeddings)


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
    embeddings = leave_vectors(model, embeddings)  # its own space, where it has one
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


#: The suffix naming a registered model recalibrated on the data's exposure slice
#: (`sequential+calibrated`: `user_models.exposure_calibration`).
CALIBRATED = "calibrated"


def ensemble_members(name: str) -> Optional[Tuple[str, List[str]]]:
    """('mean', 'min' or 'worst', member names) for an ensemble's name, `mean(a,b)`,
    `min(a,b,c)` or `worst(a,b)` (`user_models.composite.EnsembleUserModel`); None for
    other names."""
    for combine in ("mean", "min", "worst"):
        if name.startswith(combine + "(") and name.endswith(")"):
            return combine, [m.strip() for m in name[len(combine) + 1:-1].split(",")]
    return None


def _calibrated_ensemble(name: str) -> Optional[str]:
    """The ensemble of `<ensemble>+calibrated` (None for other names)."""
    suffix = "+" + CALIBRATED
    if name.endswith(suffix) and ensemble_members(name[:-len(suffix)]) is not None:
        return name[:-len(suffix)]
    return None


def calibrated_ensemble(ensemble: str, data: Dataset, embeddings: np.ndarray,
                        cache_dir: Optional[str] = None) -> AbstractUserModel:
    """An ensemble (`min(...)`) recalibrated on the data's exposure slice as one model:
    the ensemble ranks like its members' pessimist, and the slice sets its level.  The
    calibration is cached under `cache_dir`, keyed by the name, the data, the code of
    `user_models/` and the gin bindings of every registered user model (a member
    configured otherwise, `TasteUserModel.leave_space` say, is another ensemble; the
    key lacked them until 2026-12-07) (default: where `fit_or_load_user_model` caches
    models)."""
    import glob
    if cache_dir is None:
        try:
            cache_dir = gin.query_parameter("fit_or_load_user_model.cache_dir")
        except ValueError:
            cache_dir = "runs/cache/user_models"
    model = user_model_by_name(ensemble, data, embeddings)
    sources = "".join(open(f).read() for f in sorted(glob.glob(os.path.join(
        os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "user_models", "*.py"))))
    from user_models.registry import learned_user_models
    bindings = sorted((name, sorted(_gin_bindings(cls).items()))
                      for name, cls in learned_user_models().items())
    key = _digest(ensemble, data.source, data.train.content_digest(),
                  data.val.content_digest(), sources,
                  sorted(determinism.fingerprint().items()),
                  *([bindings] if any(b for _, b in bindings) else []))
    directory = os.path.join(cache_dir, f"ensemble-{key}")
    os.makedirs(directory, exist_ok=True)
    support = log_support(data)
    return calibrated(model, data.exposure, model_dir=directory,
                      popularity=_log_popularity(data), support=support,
                      folds=SUPPORT_FOLDS if support is not None else 0)


#: A name ending in "+memory" is that model with memory of each listener's earlier
#: sessions (`user_models.memory`; logs with listener ids).
MEMORY = "memory"


#: The suffix of a user model whose P(leave) knows its survivors are the patient ones
#: (`user_models.frailty`: gamma frailty fitted on the log's session lengths).
FRAILTY = "frailty"


def _suffix_base(name: str, suffix: str) -> Optional[str]:
    """The model of `<name>+<suffix>` (None for other names): for the suffixes that
    wrap any model (`+memory`, `+frailty`)."""
    suffix = "+" + suffix
    return name[:-len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else None


def _memory_base(name: str) -> Optional[str]:
    return _suffix_base(name, MEMORY)


def _frailty_base(name: str) -> Optional[str]:
    return _suffix_base(name, FRAILTY)


_PROFILES: dict = {}


def listener_profiles(data: Dataset, embeddings: np.ndarray):
    """The `ListenerProfiles` of the data's whole log (every split's sessions find their
    listener's earlier ones in it), built once per log and embeddings; None for a log
    without listener ids."""
    from spotisim.data.profiles import ListenerProfiles
    if not data.log.has_listeners:
        return None
    key = (data.log.content_digest(), _digest(np.ascontiguousarray(embeddings).tobytes()))
    if key not in _PROFILES:
        _PROFILES.clear()
        _PROFILES[key] = ListenerProfiles.build(data.log, embeddings)
    return _PROFILES[key]


_FRAILTY: dict = {}


def with_frailty(model: AbstractUserModel, data: Dataset) -> AbstractUserModel:
    """`model` leaving as the log's listeners who stayed do (`FrailtyUserModel`), its
    frailty fitted on the training split and checked on the validation split (once per
    log and leave model in a process; printed, since it is a choice a team reads)."""
    from user_models.frailty import FrailtyUserModel, fit_frailty
    if model.leave_hazard is None:
        raise ConfigError(f"+{FRAILTY}: {type(model).__name__} has no leave model")
    key = (data.log.content_digest(), id(model.leave_hazard))
    if key not in _FRAILTY or _FRAILTY[key][0] is not model.leave_hazard:
        # The leave model is kept with its fit, so its id names no other while cached.
        _FRAILTY[key] = (model.leave_hazard,
                         fit_frailty(model.leave_hazard, data.train, data.val))
        f = _FRAILTY[key][1]
        print(f"frailty of {type(model).__name__}'s leave model: alpha {f.alpha:.2f}, theta "
              f"{f.theta:.2f}; validation log-likelihood per session {f.val_as_is:.4f} as "
              f"is, {f.val_scaled:.4f} scaled, {f.val_frailty:.4f} frail (gain se "
              f"{f.val_gain_se:.4f}: {'kept' if f.kept else 'not kept'})", flush=True)
    return FrailtyUserModel(model, _FRAILTY[key][1])


def check_user_model_name(name: str, setting: str = "user model") -> None:
    """Raises ConfigError, naming `setting`, unless `user_model_by_name` can know
    `name` (checked before anything is fitted, trained or written)."""
    from user_models.registry import learned_user_models
    registered = learned_user_models()
    for suffix in (MEMORY, FRAILTY):  # wrap any model but the truth
        base = _suffix_base(name, suffix)
        if base is not None:
            if base == "ground_truth":
                raise ConfigError(f"{setting} {name!r}: the ground truth needs no {suffix}")
            check_user_model_name(base, setting)
            return
    whole = _calibrated_ensemble(name)
    if whole is not None:
        check_user_model_name(whole, setting)
        return
    ensemble = ensemble_members(name)
    if ensemble is not None:
        if len(ensemble[1]) < 2:
            raise ConfigError(f"{setting} {name!r}: an ensemble needs at least two models")
        for member in ensemble[1]:
            if member == "ground_truth" or ensemble_members(member) is not None:
                raise ConfigError(f"{setting} {name!r}: an ensemble's members are learned "
                                  f"models, not {member!r}")
            check_user_model_name(member, setting)
        return
    base, plus, suffix = name.partition("+")
    if name == "ground_truth" or name in registered or os.path.isdir(name) or (
            plus and suffix == CALIBRATED and base in registered):
        return
    raise ConfigError(f"{setting} {name!r}: not one of ground_truth, "
                      f"{', '.join(registered)} (each may end in '+{CALIBRATED}': "
                      "recalibrated on the data's exposure slice), an ensemble of them "
                      "('mean(sequential,taste)', 'min(...)', either ending in "
                      "'+calibrated'), nor a saved user-model directory (any of them may "
                      f"end in '+{MEMORY}': with memory of each listener's earlier "
                      f"sessions, or in '+{FRAILTY}': leaving as listeners who stayed "
                      "do)")


def user_model_by_name(name: str, data: Dataset, embeddings: np.ndarray) -> AbstractUserModel:
    """A user model the command lines and configs name: `ground_truth` (synthetic data
    only), a registered learned model (`sequential`, `logistic`, ...; fitted on the
    data or reused from the cache), the same ending in `+calibrated` (recalibrated on
    the data's exposure slice), an ensemble of those (`mean(sequential,taste)`,
    `min(...)`: `EnsembleUserModel`; ending in `+calibrated`, recalibrated as one
    model), or a saved user-model directory; any of them ending in `+memory`, with
    memory of each listener's earlier sessions (`user_models.memory`), or in
    `+frailty`, its P(leave) for the listeners who stayed (`user_models.frailty`,
    fitted on the training split's session lengths)."""
    from user_models.composite import EnsembleUserModel
    from user_models.memory import with_memory
    from user_models.registry import learned_user_models
    check_user_model_name(name)
    base = _memory_base(name)
    if base is not None:
        profiles = listener_profiles(data, embeddings)
        if profiles is None:
            raise ConfigError(f"user model {name!r}: {data.source} has no listener ids "
                              "(the listener_id column) to remember listeners by")
        return with_memory(user_model_by_name(base, data, embeddings), data.val, profiles,
                           embeddings)
    base = _frailty_base(name)
    if base is not None:
        return with_frailty(user_model_by_name(base, data, embeddings), data)
    ensemble = ensemble_members(name)
    if ensemble is not None:
        return EnsembleUserModel([user_model_by_name(m, data, embeddings)
                                  for m in ensemble[1]], ensemble[0])
    whole = _calibrated_ensemble(name)
    if whole is not None:  # an ensemble recalibrated as one model
        return calibrated_ensemble(whole, data, embeddings)
    if name == "ground_truth":
        if not data.synthetic:
            raise ConfigError("user model 'ground_truth' needs the synthetic world's data")
        return GroundTruthUserModel(data.world)
    registered = learned_user_models()
    if name in registered:
        return fit_or_load_user_model(data, embeddings, model_ctor=registered[name],
                                      calibrate_on_exposure=False)
    base, _, suffix = name.partition("+")
    if suffix == CALIBRATED and base in registered:
        return fit_or_load_user_model(data, embeddings, model_ctor=registered[base],
                                      calibrate_on_exposure=True)
    return load_user_model(name)
