"""The grid filter (`app_pages._filters.filter_mask`) on hand-made frames: search over texts
and ids, class / split / flagged / decided filters, their combination, no match."""

from __future__ import annotations

import pandas as pd
import pytest

from app_pages._filters import Filters, filter_mask

EV = pd.DataFrame(
    {
        "id": [10, 11, 12, 13, 14, 123],
        "split": ["train", "train", "heldout", "train", "heldout", "train"],
        "label": ["pos", "neg", "pos", "neg", "neg", "pos"],
        "flagged": [True, False, True, False, False, True],
    },
    index=[5, 4, 3, 2, 1, 0],  # ranked frames keep a shuffled index: the mask must follow it
)
TEXTS = pd.DataFrame(
    {  # in another order than EV, with an id EV lacks: matched by id, not by position
        "id": [123, 14, 13, 12, 11, 10, 99],
        "premise": ["Item 10 arrived", "GOOD job", "bad", "meh", "so-so", "a good film", "good"],
        "hypothesis": ["fine", "ok", "a+b (x)", "Goodness", "nope", "ok", "good"],
    }
)
NO_DECISIONS = pd.DataFrame({"id": pd.Series([], dtype="int64"), "action": []})
DECIDED = pd.DataFrame({"id": [11, 14], "action": ["keep", "drop"]})


def _ids(filters: Filters, texts=TEXTS, latest=NO_DECISIONS) -> list[int]:
    mask = filter_mask(EV, latest, filters, texts)
    assert mask.index.equals(EV.index) and mask.dtype == bool
    return EV.loc[mask, "id"].tolist()


def test_no_filter_keeps_every_row():
    assert _ids(Filters()) == EV["id"].tolist()
    assert not Filters().active
    assert _ids(Filters(search="   ")) == EV["id"].tolist()  # blank search is no search


def test_search_is_a_case_insensitive_substring_of_any_text_column():
    assert _ids(Filters(search="good")) == [10, 12, 14]  # "a good film", "Goodness", "GOOD job"
    assert _ids(Filters(search="GoOd")) == [10, 12, 14]
    assert _ids(Filters(search="  good ")) == [10, 12, 14]  # surrounding blanks ignored
    assert _ids(Filters(search="fine")) == [123]  # second column
    assert _ids(Filters(search="a+b (x)")) == [13]  # taken literally, not as a pattern
    assert Filters(search="good").active


def test_hash_id_looks_up_the_id_only():
    assert _ids(Filters(search="#123")) == [123]
    assert _ids(Filters(search="# 11")) == [11]
    assert _ids(Filters(search="#10")) == [10]  # not 123, whose text holds "10"
    assert _ids(Filters(search="#7")) == []


def test_bare_integer_matches_the_id_or_a_text_holding_it():
    assert _ids(Filters(search="10")) == [10, 123]  # id 10; "Item 10 arrived"
    assert _ids(Filters(search="13")) == [13]


def test_image_runs_search_ids_only():
    assert _ids(Filters(search="#12"), texts=None) == [12]
    assert _ids(Filters(search="12"), texts=None) == [12]  # not 123: ids match whole
    assert _ids(Filters(search="good"), texts=None) == []


def test_class_split_flagged_and_decided_filters():
    assert _ids(Filters(classes=("pos",))) == [10, 12, 123]
    assert _ids(Filters(classes=("pos", "neg"))) == EV["id"].tolist()
    assert _ids(Filters(splits=("heldout",))) == [12, 14]
    assert _ids(Filters(splits=("train", "heldout"))) == EV["id"].tolist()
    assert _ids(Filters(flagged="yes")) == [10, 12, 123]
    assert _ids(Filters(flagged="no")) == [11, 13, 14]
    assert _ids(Filters(decided="yes"), latest=DECIDED) == [11, 14]
    assert _ids(Filters(decided="no"), latest=DECIDED) == [10, 12, 13, 123]
    assert _ids(Filters(decided="yes")) == []  # no decision yet


def test_filters_combine_with_and():
    combined = Filters(search="good", classes=("pos",), flagged="yes", decided="no")
    assert _ids(combined, latest=DECIDED) == [10, 12]
    assert _ids(Filters(search="good", splits=("train",))) == [10]
    assert _ids(Filters(search="good", classes=("neg",), decided="no"), latest=DECIDED) == []


def test_nothing_matches_gives_an_all_false_mask():
    mask = filter_mask(EV, NO_DECISIONS, Filters(search="zebra"), TEXTS)
    assert not mask.any() and len(mask) == len(EV)
    assert _ids(Filters(classes=("unknown",))) == []


def test_missing_texts_and_empty_frames():
    partial = TEXTS[TEXTS["id"] != 10]  # an id without a stored text never matches by text
    assert _ids(Filters(search="good"), texts=partial) == [12, 14]
    empty = EV.iloc[:0]
    assert filter_mask(empty, NO_DECISIONS, Filters(search="good"), TEXTS).empty


def test_bad_tristate_is_refused():
    with pytest.raises(ValueError, match="flagged"):
        filter_mask(EV, NO_DECISIONS, Filters(flagged="maybe"))
    with pytest.raises(ValueError, match="decided"):
        filter_mask(EV, NO_DECISIONS, Filters(decided=True))  # type: ignore[arg-type]


def test_pair_keeps_rows_given_one_class_and_suggested_the_other():
    ev = pd.DataFrame(
        {
            "id": [1, 2, 3, 4, 5, 6],
            "label": ["cat", "dog", "cat", "dog", "bird", "cat"],
            "suggested_label": ["dog", "cat", "cat", "bird", "cat", "bird"],
        },
        index=[6, 5, 4, 3, 2, 1],
    )
    mask = filter_mask(ev, NO_DECISIONS, Filters(pair=("cat", "dog")))
    assert mask.index.equals(ev.index)
    assert ev.loc[mask, "id"].tolist() == [1, 2]  # not cat->cat, dog->bird, bird->cat
    assert filter_mask(ev, NO_DECISIONS, Filters(pair=("dog", "cat"))).equals(mask)  # unordered
    assert ev.loc[filter_mask(ev, NO_DECISIONS, Filters(pair=("bird", "cat"))), "id"].tolist() == [
        5,
        6,
    ]
    assert Filters(pair=("cat", "dog")).active and not Filters(pair=()).active
    with pytest.raises(ValueError, match="pair"):
        filter_mask(ev, NO_DECISIONS, Filters(pair=("cat",)))
