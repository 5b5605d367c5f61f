"""Track embeddings: acoustic (z-scored features) and item2vec learned from sessions."""

import numpy as np
import pytest

from spotisim.embeddings import (Item2VecTrainer, TrackEmbeddings, acoustic_embeddings,
                                 build_embeddings)
from spotisim.errors import ConfigError


def test_acoustic_embeddings_are_zscored(tiny_log):
    e = acoustic_embeddings(tiny_log.catalog)
    assert e.vectors.shape == (len(tiny_log.catalog), len(tiny_log.catalog.feature_names))
    np.testing.assert_allclose(e.vectors.mean(0), 0, atol=1e-4)
    varying = e.vectors.std(0) > 0
    np.testing.assert_allclose(e.vectors.std(0)[varying], 1, atol=1e-3)
    assert build_embeddings(tiny_log).source == "acoustic"


def test_item2vec_learns_and_round_trips(tiny_log, tmp_path):
    trainer = Item2VecTrainer(dim=8, epochs=30, batch_size=32, num_sampled=16, seed=1)
    e = trainer.fit(tiny_log)
    assert e.vectors.shape == (len(tiny_log.catalog), 8)
    assert np.isfinite(e.vectors).all()
    # Full-softmax loss on a fixed probe: chance is log(300) = 5.70.
    assert trainer.probe_loss_before == pytest.approx(np.log(len(tiny_log.catalog)), abs=0.01)
    assert trainer.probe_loss_after < trainer.probe_loss_before - 0.2
    again = Item2VecTrainer(dim=8, epochs=30, batch_size=32, num_sampled=16, seed=1).fit(tiny_log)
    np.testing.assert_allclose(again.vectors, e.vectors, rtol=1e-4, atol=1e-6)
    e.save(str(tmp_path / "emb"))
    back = TrackEmbeddings.load(str(tmp_path / "emb"))
    np.testing.assert_array_equal(back.vectors, e.vectors)
    np.testing.assert_array_equal(back.aligned_to(tiny_log.catalog), e.vectors)
    np.testing.assert_allclose(np.linalg.norm(back.normalized(), axis=1), 1, atol=1e-5)


def test_item2vec_on_real_slice_without_track_table(mssd_sample_path):
    from spotisim.data.session_log import read_session_log
    log = read_session_log(mssd_sample_path)
    with pytest.raises(ConfigError, match="item2vec"):
        acoustic_embeddings(log.catalog)
    e = build_embeddings(log, trainer=Item2VecTrainer(dim=4, epochs=1, num_sampled=8))
    assert e.source.startswith("item2vec") and e.vectors.shape == (8609, 4)
