"""A trained model scoring a log with other tracks: ids mapped explicitly, unseen tracks
placed by fold-in, never a silent wrong index; and the `user_models.evaluate` CLI."""

import json
import os

import numpy as np
import pytest

from spotisim.data.session_log import read_session_log
from spotisim.embeddings import fold_in
from spotisim.errors import UserModelError
from tests.spotisim.data.test_validation import good_rows, row, write_csv
from user_models import evaluate as evaluate_cli
from user_models import evaluation
from user_models.catalog_alignment import align_to_log
from user_models.logistic import LogisticUserModel
from user_models.sequential import SequentialUserModel


def test_fold_in_by_hand(tmp_path):
    # Sessions: a = t1 t2 t3, b = t2 t4, c = t1 t3.  Known: t1, t2; unknown: t3, t4.
    log = read_session_log(write_csv(tmp_path / "f.csv", good_rows()))
    v = np.array([[2.0, 0.0], [0.0, 2.0], [9.0, 9.0], [9.0, 9.0]], np.float32)
    out = fold_in(v, np.array([True, True, False, False]), log)
    np.testing.assert_array_equal(out[:2], v[:2])
    # t3 plays in a (known t1 + t2) and c (t1): (t1 + t2 + t1) / 3 = (4/3, 2/3),
    # rescaled to the known mean length 2.
    want = np.array([4 / 3, 2 / 3]) / np.linalg.norm([4 / 3, 2 / 3]) * 2
    np.testing.assert_allclose(out[2], want, rtol=1e-6)
    # t4 plays in b (t2 only): along t2.
    np.testing.assert_allclose(out[3], [0.0, 2.0], atol=1e-6)
    # A track sharing no session with a known one: the average track.
    lone = fold_in(v, np.array([True, True, True, False]), log.subset([0, 2]))
    np.testing.assert_allclose(lone[3], (v[0] + v[1] + v[2]) / 3
                               / np.linalg.norm((v[0] + v[1] + v[2]) / 3)
                               * np.linalg.norm(v[:3], axis=1).mean(), rtol=1e-6)


def _relabelled_log(tiny_world_dir, tmp_path, sessions=40, extra=True):
    """The first `sessions` sessions of the tiny world written in reverse order (so the
    catalogue's indices differ), plus a session of tracks no model has seen."""
    base = read_session_log(tiny_world_dir["log"], tiny_world_dir["tracks"])
    rows = []
    contexts = base.vocab["context_type"]
    for s in reversed(range(sessions)):
        tr, sk = base.session_tracks(s), base.session_skips(s)
        ctx = contexts[base.session_context()[s]]
        rows += [row(str(base.session_ids[s]), i + 1, len(tr),
                     base.catalog.track_ids[tr[i]], bool(sk[i]), context_type=ctx)
                 for i in range(len(tr))]
    if extra:
        rows += [row("new", i + 1, 4, f"never_seen_{i}", i % 2 == 0) for i in range(4)]
    return base, read_session_log(write_csv(tmp_path / "other.csv", rows))


@pytest.fixture(scope="module")
def fitted_pair(tiny_world_dir):
    from spotisim.embeddings import build_embeddings
    log = read_session_log(tiny_world_dir["log"], tiny_world_dir["tracks"])
    train, val, _ = log.split((0.8, 0.1, 0.1))
    emb = build_embeddings(train).aligned_to(log.catalog)
    seq = SequentialUserModel(emb, units=8, epochs=1).fit(train, val)
    logistic = LogisticUserModel(emb, epochs=1).fit(train, val)
    return seq, logistic


@pytest.mark.parametrize("which", [0, 1])
def test_same_sessions_under_another_catalogue_score_the_same(fitted_pair, tiny_world_dir,
                                                              tmp_path, which):
    model = fitted_pair[which]
    base, other = _relabelled_log(tiny_world_dir, tmp_path)
    assert not (other.catalog.track_ids[:10] == base.catalog.track_ids[:10]).all()
    aligned, info = align_to_log(model, other)
    assert info["unseen_tracks"] == 4
    assert info["unseen_row_share"] == pytest.approx(4 / other.num_rows)
    # The 40 known sessions, reversed, score exactly as they did in their own catalogue.
    p_other = evaluation.predict_log(aligned, other)
    known = other.session_of_row >= 1     # session 0 of `other` is base's session 39 ...
    p_base = evaluation.predict_log(model, base.subset(list(reversed(range(40)))))
    n = len(p_base)
    np.testing.assert_allclose(p_other[:n], p_base, rtol=1e-5, atol=1e-6)
    assert known.sum() > 0
    # Unseen tracks: placed vectors, never another track's row.
    unseen = other.catalog.indices([f"never_seen_{i}" for i in range(4)])
    assert (unseen >= 0).all()
    assert np.isfinite(aligned.embeddings[unseen]).all()
    # Without the mapping the model would index out of its catalogue (or, on a smaller
    # log, into the wrong tracks): a model with no recorded catalogue refuses.
    model_ids = model.track_ids
    try:
        model.track_ids = None
        with pytest.raises(UserModelError, match="records no catalogue"):
            align_to_log(model, other)
    finally:
        model.track_ids = model_ids


def test_sequential_survives_save_and_remap(fitted_pair, tiny_world_dir, tmp_path):
    from user_models import load_user_model
    seq = fitted_pair[0]
    seq.save(str(tmp_path / "m"))
    back = load_user_model(str(tmp_path / "m"))
    assert (back.track_ids == seq.track_ids).all()
    _, other = _relabelled_log(tiny_world_dir, tmp_path, sessions=10)
    a1, _ = align_to_log(seq, other)
    a2, _ = align_to_log(back, other)
    np.testing.assert_allclose(evaluation.predict_log(a1, other),
                               evaluation.predict_log(a2, other), rtol=1e-6)


def test_evaluate_cli(tiny_world_dir, tmp_path, capsys):
    import gin
    from spotisim.gin_utils import parse_gin
    from user_models import train
    out = str(tmp_path / "run")
    gin.clear_config()
    try:
        parse_gin(["sequential"], [
            f"load_dataset.log_path = '{tiny_world_dir['log']}'",
            f"load_dataset.tracks_path = '{tiny_world_dir['tracks']}'",
            f"train_user_model.output_dir = '{out}'",
            "train_user_model.compare = ['repeat_last_label', 'logistic']",
            "SequentialUserModel.units = 8", "SequentialUserModel.epochs = 1",
            "LogisticUserModel.epochs = 1"], [train.CONFIG_DIR])
        train.train_user_model(verbose=False)
    finally:
        gin.clear_config()
    assert sorted(os.listdir(os.path.join(out, "baselines"))) == ["logistic", "repeat_last_label"]
    _, other = _relabelled_log(tiny_world_dir, tmp_path, sessions=30)
    path = write_csv(tmp_path / "other2.csv", [])  # header only: an error
    assert evaluate_cli.main(["--model_dir", out, "--log_path", path]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "Traceback" not in err
    result_path = str(tmp_path / "eval.json")
    assert evaluate_cli.main(["--model_dir=" + out, "--log_path=" + str(tmp_path / "other.csv"),
                              "--out=" + result_path]) == 0
    printed = capsys.readouterr().out
    assert "4 of" in printed and "minus repeat_last_label" in printed
    with open(result_path) as f:
        result = json.load(f)
    assert set(result["reports"]) == {"model", "logistic", "repeat_last_label"}
    for name, rep in result["reports"].items():
        for key in ("accuracy", "auc", "mssd_average_accuracy", "mssd_first_prediction_accuracy"):
            assert 0.0 <= rep[key] <= 1.0, (name, key)
        assert ("vs_repeat_last_label" in rep) == (name != "repeat_last_label")
    assert result["catalog_mapping"]["model"]["unseen_tracks"] == 4
    # Not a model directory: one line, exit 1.
    assert evaluate_cli.main(["--model_dir", str(tmp_path), "--log_path", path]) == 1
    assert "neither a saved user model" in capsys.readouterr().err


def test_unseen_tracks_with_a_track_table_use_their_features(fitted_pair, tiny_world_dir,
                                                             tmp_path):
    """A model on acoustic embeddings, scoring a log whose track table adds two tracks
    with the features of two known ones: the new tracks get exactly those vectors."""
    import pyarrow as pa
    import pyarrow.csv as pacsv
    from spotisim.data.synthetic import write_table
    seq = fitted_pair[0]
    table = pacsv.read_csv(tiny_world_dir["tracks"])
    ids = table.column("track_id").to_pylist()
    extra = table.slice(0, 2).set_column(0, "track_id", pa.array(["new_a", "new_b"]))
    tracks_path = str(tmp_path / "tracks.csv")
    write_table(pa.concat_tables([table, extra]), tracks_path)
    rows = [row("s", i + 1, 4, t, i % 2 == 1) for i, t in enumerate([ids[5], "new_a", ids[7], "new_b"])]
    log = read_session_log(write_csv(tmp_path / "log.csv", rows), tracks_path)
    aligned, info = align_to_log(seq, log)
    assert info["unseen_tracks"] == 2 and info["unseen_representation"].startswith("acoustic")
    new = log.catalog.indices(["new_a", "new_b"])
    old = seq.track_ids.tolist()
    np.testing.assert_allclose(aligned.embeddings[new],
                               seq.embeddings[[old.index(ids[0]), old.index(ids[1])]],
                               rtol=1e-4, atol=1e-4)
    # Without the track table the same log falls back to fold-in.
    _, info = align_to_log(seq, read_session_log(str(tmp_path / "log.csv")))
    assert info["unseen_representation"].startswith("fold-in")
