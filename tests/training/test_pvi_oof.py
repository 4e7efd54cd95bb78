"""`pvi` from held-out predictions: asking for it alone runs the cross-fit, and the column is
log2 p_oof(y|x) - log2 prior(y) from the folds' stored probabilities."""

import numpy as np
from scipy.stats import spearmanr

from scoring import store
from scoring.training.pipeline import score
from tests.conftest import digits_config


def test_pvi_alone_triggers_the_cross_fit_and_reads_out_of_fold_probabilities(cache_dir):
    cfg = digits_config(300, runs=1, epochs=3, noise_fraction=0.1, scores=("pvi",))
    rd = store.RunDir(score(cfg, cache_dir, show_progress=False))
    folds = [rd.read_fold(f) for f in range(cfg.cv_folds)]  # written: pvi asked for them
    frame = store.read_scores(rd.path)
    labels = frame["label"].to_numpy()
    oof = np.zeros((len(labels), 10))
    for fold in folds:
        oof[fold["index"]] = fold["probs"]
    assert sorted(np.concatenate([f["index"] for f in folds])) == list(range(len(labels)))
    prior = np.bincount(labels, minlength=10) / len(labels)
    given = oof[np.arange(len(labels)), labels]
    expected = np.log2(np.maximum(given, 1e-12)) - np.log2(prior[labels])
    np.testing.assert_allclose(frame["pvi"], expected, rtol=1e-6, atol=1e-6)
    for c in np.unique(labels):  # within a class: exactly the out-of-fold p(y|x) order
        mask = labels == c
        assert spearmanr(frame["pvi"][mask], given[mask]).statistic > 1 - 1e-12
    assert "pvi__run0" not in rd.read_scores_per_run()  # computed once, not per run
