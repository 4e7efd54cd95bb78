"""Several annotators: CROWDLAB's scores against cleanlab called directly and by hand, the
annotator ranking on annotators of known quality, and Dawid–Skene on the same votes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

with warnings.catch_warnings():  # cleanlab silences warnings process-wide on import
    from cleanlab.multiannotator import get_label_quality_multiannotator

from scoring.data.annotators import NO_VOTE, majority_vote
from scoring.data.dawid_skene import dawid_skene
from scoring.errors import InputError
from scoring.scores import REGISTRY, compute
from scoring.scores.annotators import (
    annotator_agreement,
    annotator_stats,
    consensus_label,
    consensus_quality,
    crowdlab,
)
from scoring.scores.registry import available

N, K = 400, 4
NAMES = ["right", "mostly", "random"]


@pytest.fixture(scope="module")
def known() -> dict[str, np.ndarray]:
    """Truth, three annotators (always right; right 80% and silent 10% of the time; uniformly
    random) and a good out-of-fold model (right about 90% of the time)."""
    rng = np.random.default_rng(3)
    truth = rng.integers(0, K, size=N)
    other = (truth + rng.integers(1, K, size=N)) % K
    mostly = np.where(rng.random(N) < 0.8, truth, other)
    mostly[rng.random(N) < 0.1] = NO_VOTE
    votes = np.stack([truth, mostly, rng.integers(0, K, size=N)], axis=1)  # (N, 3)
    logits = 2.5 * np.eye(K)[truth] + rng.normal(size=(N, K))
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)  # (N, K)
    return {"truth": truth, "votes": votes.astype(np.int64), "probs": probs}


def _cleanlab(votes: np.ndarray, probs: np.ndarray) -> dict:
    wide = np.where(votes >= 0, votes, np.nan).astype(float)
    return get_label_quality_multiannotator(wide, probs, verbose=False)


def test_scores_are_cleanlabs_crowdlab(known):
    votes, probs = known["votes"], known["probs"]
    direct = _cleanlab(votes, probs)
    per_example = direct["label_quality"]
    np.testing.assert_array_equal(
        consensus_label(annotations=votes, oof_probs=probs), per_example["consensus_label"]
    )
    np.testing.assert_allclose(
        consensus_quality(annotations=votes, oof_probs=probs),
        per_example["consensus_quality_score"],
    )
    np.testing.assert_allclose(
        annotator_agreement(annotations=votes, oof_probs=probs),
        per_example["annotator_agreement"],
    )
    stats = direct["annotator_stats"].sort_index()
    table = {row["annotator"]: row for row in annotator_stats(votes, probs, NAMES)}
    for a, name in enumerate(NAMES):
        assert table[name]["quality"] == pytest.approx(stats.loc[a, "annotator_quality"])
        assert table[name]["agreement"] == pytest.approx(stats.loc[a, "agreement_with_consensus"])
        assert table[name]["examples_labelled"] == stats.loc[a, "num_examples_labeled"]


def test_agreement_and_the_table_by_hand(known):
    votes, probs = known["votes"], known["probs"]
    agreed = consensus_label(annotations=votes, oof_probs=probs).astype(int)  # (N,)
    voted = votes >= 0
    same = (votes == agreed[:, None]) & voted  # (N, 3)
    np.testing.assert_allclose(
        annotator_agreement(annotations=votes, oof_probs=probs), same.sum(1) / voted.sum(1)
    )
    table = {row["annotator"]: row for row in annotator_stats(votes, probs, NAMES)}
    for a, name in enumerate(NAMES):
        assert table[name]["examples_labelled"] == voted[:, a].sum()
        assert table[name]["agreement"] == pytest.approx(same[:, a].sum() / voted[:, a].sum())


def test_known_annotators_are_ranked_and_the_consensus_is_right(known):
    votes, probs, truth = known["votes"], known["probs"], known["truth"]
    table = annotator_stats(votes, probs, NAMES)
    assert [row["annotator"] for row in table] == ["right", "mostly", "random"]  # best first
    assert table[0]["quality"] > table[1]["quality"] + 0.05 > table[2]["quality"] + 0.1
    agreed = consensus_label(annotations=votes, oof_probs=probs)
    majority = majority_vote(votes, K)
    # The majority loses three-way splits and half the right/random ties; CROWDLAB weighs the
    # annotators by their agreement and brings in the model, which settles most of them.
    assert (agreed == truth).mean() >= 0.95
    assert (agreed == truth).mean() > (majority == truth).mean() + 0.05
    # Lowest consensus quality where the annotators split.
    quality = consensus_quality(annotations=votes, oof_probs=probs)
    unanimous = (votes == votes[:, :1]) | (votes < 0)
    assert quality[unanimous.all(1)].mean() > quality[~unanimous.all(1)].mean()


def test_an_annotator_without_votes_here_gets_none(known):
    """After --limit an annotator may have voted on none of the kept rows."""
    votes, probs = known["votes"], known["probs"]
    silent = np.concatenate([votes, np.full((N, 1), NO_VOTE)], axis=1)
    table = {r["annotator"]: r for r in annotator_stats(silent, probs, [*NAMES, "away"])}
    assert table["away"] == {
        "annotator": "away",
        "examples_labelled": 0,
        "quality": None,
        "agreement": None,
    }
    np.testing.assert_array_equal(
        consensus_label(annotations=silent, oof_probs=probs),
        consensus_label(annotations=votes, oof_probs=probs),
    )


def test_the_global_random_state_is_left_alone(known):
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    crowdlab(annotations=known["votes"][:50], oof_probs=known["probs"][:50])  # not cached
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_bad_votes_are_refused(known):
    votes, probs = known["votes"].copy(), known["probs"]
    with pytest.raises(InputError, match=r"^annotations: .*got a vote 4"):
        crowdlab(annotations=np.where(votes == 3, 4, votes), oof_probs=probs)
    one = votes.copy()
    one[:, 1:] = NO_VOTE
    with pytest.raises(InputError, match="two or more annotators"):
        crowdlab(annotations=one, oof_probs=probs)
    empty = votes.copy()
    empty[5] = NO_VOTE
    with pytest.raises(InputError, match="example 5 has none"):
        crowdlab(annotations=empty, oof_probs=probs)
    with pytest.raises(InputError, match="names: expected 3 annotator names"):
        annotator_stats(votes, probs, ["a", "b"])


def test_registry_entries_and_availability():
    keys = ["consensus_label", "consensus_quality", "annotator_agreement"]
    assert [k for k, s in REGISTRY.items() if s.label_valued] == ["consensus_label"]
    for key in keys:
        assert REGISTRY[key].needs == ("annotations", "oof_probs")
        assert not REGISTRY[key].higher_is_harder  # low quality / agreement = suspect
    assert available(list(REGISTRY), has_annotations=False) == [
        k for k in REGISTRY if k not in keys
    ]
    assert available(list(REGISTRY), has_annotations=True) == list(REGISTRY)
    with pytest.raises(InputError, match="needs the recorded array annotations"):
        compute("consensus_quality", {"oof_probs": np.full((3, 2), 0.5)})


def test_runs_without_annotators_leave_them_out_or_refuse_them():
    from scoring.config import DataConfig, ScoreConfig
    from scoring.training.steps import _score_keys

    digits = DataConfig(source="digits")
    assert "consensus_quality" not in _score_keys(ScoreConfig(data=digits))
    with pytest.raises(InputError, match="consensus_quality need several annotators"):
        _score_keys(ScoreConfig(data=digits, scores=("el2n", "consensus_quality")))
    voted = DataConfig(source="x.parquet", annotator_cols=("a", "b"))
    annotator_scores = ("consensus_label", "consensus_quality", "annotator_agreement")
    keys = _score_keys(ScoreConfig(data=voted))
    assert [k for k in keys if k in annotator_scores] == list(annotator_scores)


def test_dawid_skene_finds_the_random_annotator_from_the_votes_alone(known):
    """Without a model, votes cannot tell the always-right annotator from the mostly-right
    one where those two disagree (the third votes at random): Dawid–Skene rates both high,
    the random one low, and beats the majority, but not CROWDLAB with a good model."""
    votes, truth, probs = known["votes"], known["truth"], known["probs"]
    fit = dawid_skene(votes, K)
    assert min(fit.accuracy[:2]) > 0.8 and fit.accuracy[2] < 0.35
    accuracy = (fit.labels == truth).mean()
    assert accuracy > (majority_vote(votes, K) == truth).mean()
    assert accuracy < (consensus_label(annotations=votes, oof_probs=probs) == truth).mean()
    np.testing.assert_allclose(fit.posterior.sum(axis=1), 1.0)
    np.testing.assert_allclose(fit.confusion.sum(axis=2), 1.0)


def test_dawid_skene_by_hand_on_unanimous_votes():
    """Two annotators who always agree: the posterior is their vote, the prior the shares."""
    votes = np.array([[0, 0], [1, 1], [1, 1], [2, 2]])
    fit = dawid_skene(votes, 3, smooth=1e-9)
    np.testing.assert_array_equal(fit.labels, [0, 1, 1, 2])
    np.testing.assert_allclose(fit.prior, [0.25, 0.5, 0.25], atol=1e-6)
    np.testing.assert_allclose(fit.accuracy, [1.0, 1.0], atol=1e-6)
    with pytest.raises(InputError, match="a vote on every example"):
        dawid_skene(np.array([[0, -1], [-1, -1]]), 2)
