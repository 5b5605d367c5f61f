"""Metric arithmetic by hand, and the train CLI end to end on a tiny world."""

import json
import os

import gin
import numpy as np
import pytest

from user_models import evaluation


def test_metrics_by_hand():
    y = np.array([1, 0, 1, 0], bool)
    p = np.array([0.9, 0.8, 0.7, 0.1])
    # Pairs (pos, neg): (.9,.8) (.9,.1) (.7,.8) (.7,.1) -> 3 of 4 ranked right.
    assert evaluation.roc_auc(y, p) == pytest.approx(0.75)
    assert evaluation.log_loss(y, p) == pytest.approx(
        -np.mean(np.log([0.9, 0.2, 0.7, 0.9])))
    # Bins: .1 -> bin 1 (y 0), .7 -> 7 (y 1), .8 -> 8 (y 0), .9 -> 9 (y 1):
    # |.1-0| + |.7-1| + |.8-0| + |.9-1| = 1.3 over 4.
    assert evaluation.calibration_error(y, p) == pytest.approx(1.3 / 4)


def test_average_accuracy_by_hand():
    correct = np.array([[True, False, True], [False, True, False]])
    mask = np.array([[True, True, True], [True, True, False]])
    # Session 1: (1*1/1 + 0 + 1*2/3) / 3 = 5/9; session 2: (0 + 1*1/2) / 2 = 1/4.
    aa, first = evaluation.average_accuracy(correct, mask)
    assert aa == pytest.approx((5 / 9 + 1 / 4) / 2)
    assert first == pytest.approx(0.5)


@pytest.mark.slow  # end to end (CI runs it; -m 'not slow' skips it)
def test_train_cli_end_to_end(tiny_world_dir, tmp_path, capsys):
    from user_models import load_user_model
    from user_models import train
    out = str(tmp_path / "run")
    gin.clear_config()
    try:
        assert train.main.__name__ == "main"
        from spotisim.gin_utils import parse_gin
        parse_gin(["sequential"], [
            f"load_dataset.log_path = '{tiny_world_dir['log']}'",
            f"load_dataset.tracks_path = '{tiny_world_dir['tracks']}'",
            f"load_dataset.hidden_path = '{tiny_world_dir['hidden']}'",
            f"load_dataset.world_path = '{tiny_world_dir['world']}'",
            f"train_user_model.output_dir = '{out}'",
            "SequentialUserModel.units = 8", "SequentialUserModel.epochs = 2",
        ], [train.CONFIG_DIR])
        report = train.train_user_model()
    finally:
        gin.clear_config()
    printed = capsys.readouterr().out
    assert "ground_truth (Bayes limit)" in printed and "model: SequentialUserModel" in printed
    with open(os.path.join(out, "report.json")) as f:
        saved = json.load(f)
    assert saved["reports"].keys() == report["reports"].keys()
    gt = saved["reports"]["ground_truth (Bayes limit)"]
    assert 0.5 < gt["auc"] <= 1.0 and 0 < gt["mssd_average_accuracy"] < 1
    assert "SequentialUserModel.units = 8" in open(os.path.join(out, "operative_config.gin")).read()
    model = load_user_model(os.path.join(out, "model"))
    assert model.config["units"] == 8
    # A run cut while saving (the disk fills as the embeddings are written) leaves the
    # earlier output whole: no new model beside the old report.
    from spotisim.embeddings import TrackEmbeddings
    before = {f: open(os.path.join(out, f), "rb").read()
              for f in ("report.json", "model/user_model.json")}

    def full_disk(self, directory):
        raise OSError(28, "No space left on device")
    original = TrackEmbeddings.save
    TrackEmbeddings.save = full_disk
    gin.clear_config()
    try:
        parse_gin(["sequential"], [
            f"load_dataset.log_path = '{tiny_world_dir['log']}'",
            f"train_user_model.output_dir = '{out}'",
            "train_user_model.compare = []",
            "SequentialUserModel.units = 4", "SequentialUserModel.epochs = 1",
        ], [train.CONFIG_DIR])
        with pytest.raises(OSError):
            train.train_user_model(verbose=False)
    finally:
        TrackEmbeddings.save = original
        gin.clear_config()
    assert {f: open(os.path.join(out, f), "rb").read() for f in before} == before
    assert not [f for f in os.listdir(tmp_path) if f.startswith(".tmp-")]


def test_bad_gin_input():
    from spotisim.errors import ConfigError
    from spotisim.gin_utils import parse_gin
    from user_models import train
    gin.clear_config()
    try:
        with pytest.raises(ConfigError, match="unknown gin config 'nope'"):
            parse_gin(["nope"], [], [train.CONFIG_DIR])
        with pytest.raises(ConfigError, match="unitz"):
            parse_gin(["sequential"], ["SequentialUserModel.unitz = 3"], [train.CONFIG_DIR])
        # An unclosed bracket fails in gin's tokenizer, not as a SyntaxError.
        with pytest.raises(ConfigError, match=r"'SequentialUserModel.units = \(': not gin "
                                              "syntax"):
            parse_gin([], ["SequentialUserModel.units = ("], [train.CONFIG_DIR])
    finally:
        gin.clear_config()


def test_every_shipped_config_parses_as_the_command_line_reads_it():
    """In a fresh process (nothing imported yet), each config in user_models/configs
    parses through the command line's own path: the models they name are registered."""
    import subprocess
    import sys
    from user_models import train
    names = sorted(f[:-4] for f in os.listdir(train.CONFIG_DIR) if f.endswith(".gin"))
    assert {"logistic", "lird", "sequential", "taste"} <= set(names)
    code = ("import gin\nfrom user_models import train\n"
            f"for name in {names!r}:\n"
            "    gin.clear_config()\n"
            "    train.parse_config([name], [])\n"
            "    print(name, gin.query_parameter('train_user_model.model_ctor'))\n")
    root = os.path.dirname(os.path.dirname(train.CONFIG_DIR))
    done = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "logistic @LogisticUserModel" in done.stdout
    assert "lird @LirdSimulatorUserModel" in done.stdout
