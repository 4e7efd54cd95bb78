"""Suspect ranking, easiest/hardest, default detector and the noise table, by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from scoring.errors import InputError
from scoring.read import suspects
from scoring.read.views import RunView

# Six examples, two classes; examples 102 and 105 had their labels flipped.
#   el2n (higher = harder):  order 102 .9, 105 .8, 101 .5, 103 .3, 104 .2, 100 .1
#   aum (lower = harder):    order 101 -.5, 103 0, 102 .2, 105 .5, 100 1, 104 2
TABLE = pd.DataFrame(
    {
        "id": [100, 101, 102, 103, 104, 105],
        "label": [0, 1, 0, 1, 0, 1],
        "true_label": [0, 1, 1, 1, 0, 0],
        "noisy": [False, False, True, False, False, True],
        "el2n": [0.1, 0.5, 0.9, 0.3, 0.2, 0.8],
        "aum": [1.0, -0.5, 0.2, 0.0, 2.0, 0.5],
        "pred": [0, 0, 1, 1, 0, 0],
        "pred_prob": [0.9, 0.6, 0.7, 0.8, 0.95, 0.55],
        "given_prob": [0.9, 0.4, 0.3, 0.8, 0.95, 0.45],
    }
)
NAMES = ["cat", "dog"]


def _view(
    tmp_path: Path,
    table: pd.DataFrame = TABLE,
    aurocs: dict[str, float | None] | None = None,
    input_cols: list[str] | None = None,
) -> RunView:
    directions = {"el2n": True, "aum": False, "prototype": True, "tie": True, "gap": True}
    scores = {}
    for key in [c for c in table.columns if c in directions]:
        scores[key] = {"higher_is_harder": directions[key]}
        if aurocs is not None:
            scores[key]["noise_auroc"] = aurocs.get(key)
    config = {
        "dataset": {
            "label_names": NAMES,
            "modality": "image",
            "input_cols": input_cols or ["image"],
        },
        "recipe": {"name": "mlp"},
    }
    return RunView(tmp_path, config, {"scores": scores}, table.copy())


def _clean(table: pd.DataFrame = TABLE) -> pd.DataFrame:
    return table.drop(columns=["true_label", "noisy"])


def test_rank_suspects_orients_by_direction(tmp_path):
    view = _view(tmp_path)
    got = suspects.rank_suspects(view, "aum", 3)
    assert got["id"].tolist() == [101, 103, 102]
    assert got["given"].tolist() == ["dog", "dog", "cat"]
    assert got["predicted"].tolist() == ["cat", "dog", "dog"]
    assert got["aum"].tolist() == [-0.5, 0.0, 0.2]
    assert got["pred_prob"].tolist() == [0.6, 0.8, 0.7]
    assert got["given_prob"].tolist() == [0.4, 0.8, 0.3]
    assert got["noisy"].tolist() == [False, False, True]
    assert got["true"].tolist() == ["dog", "dog", "dog"]
    assert got["row"].tolist() == [1, 3, 2]
    assert suspects.rank_suspects(view, "el2n", 2)["id"].tolist() == [102, 105]


def test_rank_suspects_without_noise_has_no_noisy_column(tmp_path):
    got = suspects.rank_suspects(_view(tmp_path, _clean()), "el2n", 100)  # k clipped to 6
    assert len(got) == 6 and "noisy" not in got.columns and "true" not in got.columns


def test_ties_keep_order_and_nan_ranks_last(tmp_path):
    table = TABLE.assign(tie=[1.0, 1.0, 1.0, 0.0, 0.0, 0.0], gap=[np.nan, 3, 1, 2, np.nan, 0])
    view = _view(tmp_path, table)
    assert suspects.rank_suspects(view, "tie", 6)["id"].tolist() == [100, 101, 102, 103, 104, 105]
    assert suspects.rank_suspects(view, "gap", 6)["id"].tolist() == [101, 103, 102, 105, 100, 104]
    easiest, _ = suspects.extremes(view, "gap", 6)
    assert easiest["id"].tolist() == [105, 102, 103, 101, 100, 104]


def test_extremes_all_classes_and_one_class(tmp_path):
    view = _view(tmp_path)
    easiest, hardest = suspects.extremes(view, "aum", 2)
    assert hardest["id"].tolist() == [101, 103]
    assert easiest["id"].tolist() == [104, 100]
    easiest, hardest = suspects.extremes(view, "el2n", 2, label=0)  # class cat: 100, 102, 104
    assert hardest["id"].tolist() == [102, 104]
    assert easiest["id"].tolist() == [100, 104]
    assert set(hardest["given"]) == {"cat"}


@pytest.mark.parametrize(
    "call",
    [
        lambda v: suspects.rank_suspects(v, "forgetting", 3),  # score not in the run
        lambda v: suspects.rank_suspects(v, "el2n", 0),
        lambda v: suspects.extremes(v, "el2n", 2, label=2),
        lambda v: suspects.noise_table(v, [0]),
    ],
)
def test_bad_requests_raise_input_error(tmp_path, call):
    with pytest.raises(InputError):
        call(_view(tmp_path))


def test_default_detector_never_reads_the_noise_mask(tmp_path):
    # aum found the injected noise best, but the choice is the fixed preference: the mask
    # measures detectors, it does not pick the one a user sees (issue 22).
    view = _view(tmp_path, aurocs={"el2n": 0.9, "aum": 0.6})
    assert suspects.default_detector(view) == "aum"
    view = _view(tmp_path, aurocs={"el2n": 0.6, "aum": 0.9})
    assert suspects.default_detector(view) == "aum"
    reason = suspects.default_reason(view)
    assert "first available" in reason and "AUROC 0.900 on this run's injected noise" in reason
    noisy_without_aum = _view(tmp_path, TABLE.drop(columns=["aum"]), aurocs={"el2n": 0.1})
    assert suspects.default_detector(noisy_without_aum) == "el2n"


def test_default_detector_without_noise_follows_preference(tmp_path):
    assert suspects.default_detector(_view(tmp_path, _clean())) == "aum"  # before el2n
    only_el2n = _clean().drop(columns=["aum"])
    assert suspects.default_detector(_view(tmp_path, only_el2n)) == "el2n"
    other = _clean().drop(columns=["aum", "el2n"]).assign(prototype=np.arange(6.0))
    assert suspects.default_detector(_view(tmp_path, other)) == "prototype"
    with pytest.raises(InputError):
        suspects.default_detector(_view(tmp_path, _clean().drop(columns=["aum", "el2n"])))


def test_noise_table_by_hand(tmp_path):
    view = _view(tmp_path, aurocs={"el2n": 1.0, "aum": 0.5})
    got = suspects.noise_table(view, [2, 4])
    assert got.columns.tolist() == [
        "score",
        "auroc",
        "precision@2",
        "recall@2",
        "precision@4",
        "recall@4",
    ]
    # el2n: top 2 = 102, 105 (both noisy); top 4 adds 101, 103.
    # aum: top 2 = 101, 103 (clean); top 4 adds 102, 105.
    assert got.to_dict("records") == [
        {"score": "el2n", "auroc": 1.0, "precision@2": 1.0, "recall@2": 1.0,
         "precision@4": 0.5, "recall@4": 1.0},
        {"score": "aum", "auroc": 0.5, "precision@2": 0.0, "recall@2": 0.0,
         "precision@4": 0.5, "recall@4": 1.0},
    ]  # fmt: skip
    default = suspects.noise_table(view)  # k = n_noisy, 2 n_noisy = 2, 4
    assert default.columns.tolist() == got.columns.tolist()


def test_noise_table_needs_noise(tmp_path):
    with pytest.raises(InputError, match="no injected noise"):
        suspects.noise_table(_view(tmp_path, _clean()))


def test_load_images_upscales_with_nearest_neighbour(tmp_path):
    view = _view(tmp_path)
    assert suspects.load_images(view, [0]) is None  # older run: no examples folder
    (tmp_path / "examples").mkdir()
    grey = np.arange(6, dtype=np.uint8)[:, None, None, None] * np.ones((1, 8, 8, 1), np.uint8)
    np.save(tmp_path / "examples" / "images.npy", grey)
    got = suspects.load_images(view, [2, 0], size=64)
    assert got.shape == (2, 64, 64) and got.dtype == np.uint8
    assert (got[0] == 2).all() and (got[1] == 0).all()
    colour = np.zeros((6, 4, 4, 3), np.uint8)
    colour[:, 0, 0] = 255  # one corner pixel becomes a 2x2 block
    np.save(tmp_path / "examples" / "images.npy", colour)
    got = suspects.load_images(view, [5], size=10)
    assert got.shape == (1, 8, 8, 3)
    assert (got[0, :2, :2] == 255).all() and (got[0, 2:, :] == 0).all()
    np.save(tmp_path / "examples" / "images.npy", colour[:3])  # does not match the table
    assert suspects.load_images(view, [0]) is None


def test_load_texts_names_inputs_after_the_dataset(tmp_path):
    view = _view(tmp_path, input_cols=["premise", "hypothesis"])
    assert suspects.load_texts(view, [100]) is None
    (tmp_path / "examples").mkdir()
    pd.DataFrame(
        {"id": [100, 101, 102], "text": ["p0", "p1", "p2"], "text_pair": ["h0", "h1", "h2"]}
    ).to_parquet(tmp_path / "examples" / "texts.parquet")
    got = suspects.load_texts(view, [102, 100])
    assert got.to_dict("records") == [
        {"id": 102, "premise": "p2", "hypothesis": "h2"},
        {"id": 100, "premise": "p0", "hypothesis": "h0"},
    ]


def _consensus_view(tmp_path: Path, noisy: bool = True) -> RunView:
    """TABLE's six examples (102 and 105 flipped) with consensus, cl_quality and a label-free
    score; AUROCs as a summary would hold them."""
    table = TABLE.assign(
        consensus=[0.1, 0.5, 0.9, 0.3, 0.2, 0.8],  # higher = suspect: top 2 = 102, 105
        el2n=[0.1, 0.9, 0.8, 0.3, 0.2, 0.5],  # top 2 = 101, 102
        cl_quality=[0.9, 0.8, 0.1, 0.2, 0.7, 0.6],  # lower = suspect: top 2 = 102, 103
        prototype=[0.0, 1, 2, 3, 4, 5],  # label-free: top 2 = 105, 104
    )
    aurocs = {"consensus": 1.0, "el2n": 0.75, "aum": 0.5, "cl_quality": 0.625, "prototype": 0.9}
    higher = {"consensus": True, "el2n": True, "aum": False, "cl_quality": False, "prototype": True}
    if not noisy:
        table = _clean(table)
    scores = {
        k: {"higher_is_harder": h, **({"noise_auroc": aurocs[k]} if noisy else {})}
        for k, h in higher.items()
    }
    config = {"dataset": {"label_names": NAMES, "modality": "image", "input_cols": ["image"]}}
    return RunView(tmp_path, config, {"scores": scores}, table)


def test_consensus_is_the_default_with_or_without_noise(tmp_path):
    clean = _consensus_view(tmp_path, noisy=False)
    assert suspects.default_detector(clean) == "consensus"
    assert "without knowing which single score" in suspects.default_reason(clean)
    assert "AUROC" not in suspects.default_reason(clean)
    # With noise it stays the default (the mask picks no detector), and says how it did.
    noisy = _consensus_view(tmp_path)
    assert suspects.default_detector(noisy) == "consensus"
    assert "AUROC 1.000 on this run's injected noise" in suspects.default_reason(noisy)


def test_consensus_comparison_by_hand(tmp_path):
    got = suspects.consensus_comparison(_consensus_view(tmp_path))
    # The label-free prototype (0.9) is never the best single detector: el2n (0.75) is.
    assert got.to_dict("records") == [
        {"detector": "consensus", "score": "consensus", "auroc": 1.0, "precision@2": 1.0},
        {"detector": "best single: `el2n`", "score": "el2n", "auroc": 0.75, "precision@2": 0.5},
        {"detector": "cleanlab: `cl_quality`", "score": "cl_quality", "auroc": 0.625,
         "precision@2": 0.5},
    ]  # fmt: skip
    assert suspects.consensus_comparison(_consensus_view(tmp_path, noisy=False)) is None
    assert suspects.consensus_comparison(_view(tmp_path, aurocs={"el2n": 1.0})) is None


def _heldout_view(tmp_path: Path) -> RunView:
    """TABLE's view with ten held-out rows written where the run keeps them:
    suggested_prob .95 .95 .9 .9 .8 .8 .7 .7 .6 .55; the suggestion is wrong on rows 3 (.9),
    6 and 7 (.7) and 9 (.55)."""
    from scoring import store

    held = pd.DataFrame(
        {
            "id": np.arange(200, 210),
            "label": [0, 1, 0, 1, 0, 1, 0, 1, 0, 1],
            "given_prob": 0.5,
            "suggested": [0, 1, 0, 0, 0, 1, 1, 0, 0, 0],
            "suggested_prob": [0.95, 0.95, 0.9, 0.9, 0.8, 0.8, 0.7, 0.7, 0.6, 0.55],
            "cl_quality": 0.5,
            "cl_issue": 0.0,
        }
    )
    held.to_parquet(store.RunDir(tmp_path).heldout_file)
    return _view(tmp_path)


def test_relabel_precision_by_hand(tmp_path):
    view = _heldout_view(tmp_path)
    assert suspects.relabel_precision(view, 0.95) == (1.0, 2)
    assert suspects.relabel_precision(view, 0.9) == (0.75, 4)  # row 3 wrong
    assert suspects.relabel_precision(view, 0.7) == (0.625, 8)  # rows 3, 6, 7 wrong
    assert suspects.relabel_precision(view, 0.5) == (0.6, 10)  # and row 9
    assert suspects.relabel_precision(view, 0.99) == (None, 0)
    assert suspects.relabel_precision(_view(tmp_path / "none"), 0.5) == (None, 0)
    with pytest.raises(InputError):
        suspects.relabel_precision(view, 1.5)


def test_safe_threshold_needs_precision_and_enough_rows(tmp_path):
    view = _heldout_view(tmp_path)
    # At 0.50-0.70 the rows >= t are 6/10, ..., 5/8 right; at 0.71-0.80, 5 of 6 (.833).
    assert suspects.safe_threshold(view, 0.7, min_rows=4) == 0.71
    assert suspects.safe_threshold(view, 0.8, min_rows=4) == 0.71
    # 0.81-0.90: 3 of 4 (.75); 0.91-0.95: 2 of 2.
    assert suspects.safe_threshold(view, 0.85, min_rows=4) is None
    assert suspects.safe_threshold(view, 0.9, min_rows=2) == 0.91  # (.95, .95): 2 of 2
    assert suspects.safe_threshold(view, 0.9, min_rows=3) is None  # 0.9 is the last with 4
    assert suspects.safe_threshold(view) is None  # 10 held-out rows: too few to tell
    with pytest.raises(InputError):
        suspects.safe_threshold(view, 0.5)
