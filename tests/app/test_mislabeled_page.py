"""Mislabeled page: suspects with the detector's own out-of-sample evidence, held-out rows,
one-click decisions saved at once, bulk accept with undo, hide reviewed, the model warning."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
from streamlit.testing.v1 import AppTest

from scoring import store
from scoring.read import decisions, suspects
from scoring.read.views import load_run
from tests.app.pages import open_page, page_text, shown
from tests.conftest import digits_run, text_run

PAGE = "mislabeled.py"


def _shown_ids(at: AppTest) -> list[int]:
    return [int(b.key.split("_")[1]) for b in at.button if b.key.startswith("drop_")]


def _markdown(at: AppTest) -> list[str]:
    return [m.value for m in at.markdown]


def _card(at: AppTest, example: int) -> str:
    return next(m for m in _markdown(at) if m.startswith(f"**#{example}**"))


def _evidence(run: Path) -> pd.DataFrame:
    """Every row's out-of-sample evidence straight from the files: training rows from the
    out-of-fold columns of predictions.parquet, held-out rows from heldout.parquet."""
    scores = pd.read_parquet(run / "scores.parquet")
    preds = pd.read_parquet(run / "predictions.parquet")
    train = scores.merge(preds, on="id")
    held = pd.read_parquet(run / "heldout.parquet")
    return pd.concat(
        [
            pd.DataFrame(
                {
                    "id": train["id"],
                    "split": "train",
                    "label": train["label"],
                    "given_prob": train["oof_given_prob"],
                    "suggested": train["oof_suggested"].astype(int),
                    "suggested_prob": train["oof_suggested_prob"],
                    "flagged": train["cl_issue"] > 0.5,
                }
            ),
            pd.DataFrame(
                {
                    "id": held["id"],
                    "split": "heldout",
                    "label": held["label"],
                    "given_prob": held["given_prob"],
                    "suggested": held["suggested"].astype(int),
                    "suggested_prob": held["suggested_prob"],
                    "flagged": held["cl_issue"] > 0.5,
                }
            ),
        ]
    ).set_index("id")


def test_cards_show_the_detectors_own_out_of_sample_evidence(app_cache):
    run = digits_run(app_cache)
    summary = json.loads((run / "summary.json").read_text())
    aurocs = {k: v["noise_auroc"] for k, v in summary["scores"].items()}
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.title[0].value == "Mislabeled"
    assert "consensus" in aurocs  # the run scores "all"
    # The default is consensus, which never read the noise: not "optimistic", whatever the
    # best single score (picked by the mask) was.
    best = "consensus"
    assert at.selectbox(key="w_detector").value == best
    text = page_text(at)
    assert "Default detector: `consensus` combines AUM and confidence" in text
    assert f"AUROC {aurocs['consensus']:.3f} on this run's injected noise" in text
    assert "This choice is optimistic" not in text

    ev = _evidence(run)
    n_flagged = int(ev["flagged"].sum())
    assert 0 < n_flagged < 200
    assert (ev["split"] == "heldout").sum() == 125  # the carved 20% of 625 is reviewed too
    text = shown(page_text(at))
    accuracy = summary["test_accuracy_mean"]
    assert f"cleanlab flags {n_flagged:,}** of 625 examples" in text
    # ... and says which rows it covers: Pruning's count is the training rows' alone.
    train = ev["split"] == "train"
    n_train, n_held = int(ev["flagged"][train].sum()), int(ev["flagged"][~train].sum())
    assert f"{n_train:,} of the 500 training rows and {n_held:,} of the 125 held-out rows" in text
    assert f"held-out accuracy **{accuracy:.2f}**" in text
    assert "likely model errors" not in text  # accuracy above 0.85 on digits
    # The list starts at the flagged count.
    assert at.slider(key="mislabeled_top").value == n_flagged
    assert at.subheader[-1].value == f"Top {n_flagged} suspects by `{best}`"
    assert any("0 decisions saved to decisions.jsonl" in m for m in _markdown(at))

    # Each card: p(given), the suggested label and its p from the out-of-sample evidence.
    ids = _shown_ids(at)
    assert len(ids) == 10
    for example in ids:
        row = ev.loc[example]
        card = shown(_card(at, example))
        colour = "" if row["suggested"] == row["label"] else ":red["
        assert (
            f"given **{row['label']}** (p {row['given_prob']:.2f}) · suggested "
            f"{colour}**{row['suggested']}**"
        ) in card
        assert f"(p {row['suggested_prob']:.2f})" in card
        assert ("heldout" in card) == (row["split"] == "heldout")
        assert "label was" not in card  # the truth only in evaluation mode
        # One click relabels to the suggestion: offered exactly when it differs.
        accept = [b for b in at.button if b.key == f"accept_{example}"]
        assert bool(accept) == (row["suggested"] != row["label"])
    # Keep and Drop read apart: a plain button and the (red) primary one.
    assert at.button(key=f"keep_{ids[0]}").proto.type == "secondary"
    assert at.button(key=f"drop_{ids[0]}").proto.type == "primary"


def test_relabel_to_suggested_drop_keep_undo_saved_at_once(app_cache):
    run = digits_run(app_cache)
    ev = _evidence(run)
    at = open_page(PAGE, run)
    ids = _shown_ids(at)
    differs = [i for i in ids if ev.loc[i, "suggested"] != ev.loc[i, "label"]]
    first = differs[0]
    second = next(i for i in ids if i != first)
    at.button(key=f"accept_{first}").click().run()
    at.button(key=f"drop_{second}").click().run()
    assert not at.exception
    lines = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    assert [(r["id"], r["action"], r["new_label"]) for r in lines] == [
        (first, "relabel", int(ev.loc[first, "suggested"])),
        (second, "drop", None),
    ]
    assert any("2 decisions saved" in m for m in _markdown(at))
    assert at.button(key=f"accept_{first}").disabled  # already relabelled to it

    # An app restart: a fresh session on the same cache shows both decisions.
    fresh = open_page(PAGE, run)
    assert not fresh.exception
    assert "Decision: **drop**" in _markdown(fresh)
    assert fresh.selectbox(key=f"relabel_{first}").value == int(ev.loc[first, "suggested"])
    # Another label from the select, Keep, then Undo: each line appended, last one wins.
    other = next(
        c for c in range(10) if c not in (ev.loc[first, "label"], ev.loc[first, "suggested"])
    )
    fresh.selectbox(key=f"relabel_{first}").select(other).run()
    fresh.button(key=f"keep_{second}").click().run()
    fresh.button(key=f"clear_{first}").click().run()
    assert not fresh.exception and not fresh.warning
    assert decisions.latest(run)[["id", "action"]].values.tolist() == [[second, "keep"]]
    assert fresh.selectbox(key=f"relabel_{first}").value is None
    assert len((run / "decisions.jsonl").read_text().splitlines()) == 5  # append-only


def _confident_flags(run: Path) -> None:
    """Make every flagged training row whose suggestion differs from its label confident
    (p .97): the built run's out-of-fold suggestions are all below the safe threshold."""
    scores = pd.read_parquet(run / "scores.parquet", columns=["id", "label", "cl_issue"])
    preds = pd.read_parquet(run / "predictions.parquet")
    rows = preds.merge(scores, on="id")
    differ = (rows["cl_issue"] > 0.5) & (rows["oof_suggested"] != rows["label"])
    preds.loc[differ.to_numpy(), "oof_suggested_prob"] = 0.97
    preds.to_parquet(run / "predictions.parquet")


def test_bulk_accept_from_the_safe_threshold_confirm_and_undo(app_cache):
    run = digits_run(app_cache)
    _confident_flags(run)
    ev = _evidence(run)
    safe = suspects.safe_threshold(load_run(run))
    assert safe is not None  # the built run's models are confident and right on held-out rows
    differ = ev[ev["flagged"] & (ev["suggested"] != ev["label"]) & (ev["suggested_prob"] >= safe)]
    decisions.append(run, int(differ.index[0]), "keep")  # a decided row is never overridden
    at = open_page(PAGE, run, mislabeled_bulk_t=0.2)  # below the safe floor: raised to it
    want = differ.iloc[1:]
    assert len(want) > 0
    precision, n_held = suspects.relabel_precision(load_run(run), safe)
    text = page_text(at)
    assert f"{len(want):,} flagged suspect(s) without a decision" in text
    assert f"Estimated precision **{precision:.0%}**" in text and f"{n_held:,} held-out" in text
    assert f"about **{len(want) * (1 - precision):.1f}** correct label(s)" in text
    go = at.button(key="mislabeled_bulk_go")
    assert go.label == f"Relabel {len(want):,} to their suggestion"
    go.click().run()
    assert not at.exception
    assert len(decisions.latest(run)) == 1  # nothing written before the confirmation
    assert f"Relabel {len(want):,} example(s) to their suggestion?" in page_text(at)
    at.button(key="mislabeled_bulk_confirm").click().run()
    assert not at.exception
    latest = decisions.latest(run).set_index("id")
    bulk = latest[latest["action"] == "relabel"]
    assert sorted(bulk.index) == sorted(want.index)
    assert all(int(bulk.loc[i, "new_label"]) == want.loc[i, "suggested"] for i in want.index)
    assert latest.loc[differ.index[0], "action"] == "keep"
    # One bulk action in the file: every line of it carries its id.
    (action,) = decisions.bulk_actions(run).itertuples()
    lines = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    assert [r.get("bulk") for r in lines] == [None] + [action.bulk] * len(want)
    assert action.kind == "mislabeled-accept" and action.in_force == len(want)
    assert at.selectbox(key=f"mislabeled_bulk_pick_1_{action.bulk}").value == action.bulk


def test_bulk_undo_from_the_log_in_a_new_session(app_cache):
    """The undo outlives the session that made the bulk accept: a fresh one (a reload, another
    day) offers it from decisions.jsonl, and withdraws only what is still the bulk's."""
    run = digits_run(app_cache)
    _confident_flags(run)
    decided = int(_evidence(run).index[0])
    decisions.append(run, decided, "keep")  # before the bulk: it stays
    at = open_page(PAGE, run)
    assert not [b for b in at.button if b.key == "mislabeled_bulk_undo"]  # nothing to undo
    at.button(key="mislabeled_bulk_go").click().run()
    at.button(key="mislabeled_bulk_confirm").click().run()
    assert not at.exception
    wrote = decisions.latest(run).set_index("id")
    bulk_ids = wrote.index[wrote["action"] == "relabel"].tolist()
    assert len(bulk_ids) >= 2
    again = bulk_ids[0]
    decisions.append(run, again, "drop")  # decided again since: keeps that decision

    fresh = open_page(PAGE, run)  # a new session: nothing of the first one's state
    assert not fresh.exception
    (bulk,) = decisions.bulk_actions(run)["bulk"]
    pick = fresh.selectbox(key=f"mislabeled_bulk_pick_1_{bulk}")
    assert pick.value == bulk
    n = len(bulk_ids)
    assert "the Mislabeled page's bulk accept" in pick.format_func(bulk)
    assert f"({n - 1:,} of {n:,} still in force)" in pick.format_func(bulk)
    fresh.button(key="mislabeled_bulk_undo").click().run()
    assert not fresh.exception
    lines = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    undo = lines[-(n - 1) :]
    assert sorted(r["id"] for r in undo) == sorted(bulk_ids[1:])
    assert {(r["action"], r["undoes"]) for r in undo} == {("clear", bulk)}
    assert len(lines) == 1 + n + 1 + (n - 1)  # append-only
    assert decisions.latest(run)[["id", "action"]].values.tolist() == [
        [decided, "keep"],
        [again, "drop"],
    ]
    assert not [b for b in fresh.button if b.key == "mislabeled_bulk_undo"]  # nothing left


def test_bulk_accept_cancel_and_off_when_no_threshold_is_safe(app_cache):
    run = digits_run(app_cache)
    _confident_flags(run)
    at = open_page(PAGE, run)
    at.button(key="mislabeled_bulk_go").click().run()
    at.button(key="mislabeled_bulk_cancel").click().run()
    assert not at.exception and decisions.latest(run).empty
    assert not [b for b in at.button if b.key == "mislabeled_bulk_confirm"]
    held = pd.read_parquet(run / "heldout.parquet")  # the models now miss every held-out row
    held["suggested"] = (held["label"] + 1) % 10
    held.to_parquet(run / "heldout.parquet")
    at = open_page(PAGE, run)
    assert not at.exception
    assert at.button(key="mislabeled_bulk_go").disabled
    assert "Bulk relabelling is off for this run" in page_text(at)


def test_hide_reviewed_and_held_out_rows(app_cache):
    run = digits_run(app_cache)
    ev = _evidence(run)
    at = open_page(PAGE, run, mislabeled_split="heldout")
    ids = _shown_ids(at)
    assert ids and all(ev.loc[i, "split"] == "heldout" for i in ids)
    # Held-out rows rank by their own out-of-sample label quality, lowest first.
    held = pd.read_parquet(run / "heldout.parquet")
    assert ids == held.sort_values("cl_quality", kind="stable")["id"].head(len(ids)).tolist()
    assert all("heldout" in _card(at, i) for i in ids)
    at.button(key=f"drop_{ids[0]}").click().run()  # a held-out row takes decisions too
    assert decisions.latest(run)["id"].tolist() == [ids[0]]
    at.checkbox(key="mislabeled_hide").check().run()
    assert not at.exception
    assert ids[0] not in _shown_ids(at)
    assert _shown_ids(at)[:9] == ids[1:10]


def test_warning_when_flags_are_likely_model_errors(app_cache):
    run = digits_run(app_cache)
    summary = json.loads((run / "summary.json").read_text())
    summary["test_accuracy_mean"] = 0.79  # as the frozen MiniLM probe on SST-2
    (run / "summary.json").write_text(json.dumps(summary))
    # Flag 15% of the training rows (above the 10% the warning needs).
    scores = pd.read_parquet(run / "scores.parquet")
    scores["cl_issue"] = (np.arange(len(scores)) % 100 < 15).astype(scores["cl_issue"].dtype)
    scores.to_parquet(run / "scores.parquet")
    at = open_page(PAGE, run)
    assert not at.exception
    warning = shown(" ".join(w.value for w in at.warning))
    assert "likely model errors rather than label errors" in warning
    assert "finetune" in warning and "Recorder" in warning
    assert "Recipe" in warning and "--recipe" not in warning  # the app's words, not flags


def test_consensus_against_the_single_scores(app_cache):
    """With injected noise the page shows consensus, the best single score (label-free ones
    excluded) and cleanlab, with the summary's AUROCs; the text run (no noise) shows none."""
    from scoring.scores import REGISTRY

    run = digits_run(app_cache)
    summary = json.loads((run / "summary.json").read_text())
    aurocs = {k: v["noise_auroc"] for k, v in summary["scores"].items()}
    singles = {k: a for k, a in aurocs.items() if k != "consensus" and not REGISTRY[k].label_free}
    best = max(singles, key=singles.get)
    at = open_page(PAGE, run)
    assert not at.exception
    assert not any("Consensus against" in m for m in _markdown(at))  # evaluation mode is off
    at.toggle[0].set_value(True).run()
    assert "**Consensus against the single scores** (uniform noise)" in _markdown(at)
    (table,) = [d.value for d in at.dataframe if "detector" in d.value.columns]
    assert table["detector"].tolist() == [
        "consensus",
        f"best single: `{best}`",
        "cleanlab: `cl_quality`",
    ]
    expected = [aurocs["consensus"], aurocs[best], aurocs["cl_quality"]]
    np.testing.assert_allclose(table["auroc"].to_numpy(), expected)
    at = open_page(PAGE, text_run(app_cache))
    assert not any("Consensus against" in m for m in _markdown(at))


def test_evaluation_mode_shows_the_truth_and_marks_decisions(app_cache):
    """The injected noise's truth is off the cards until the user turns evaluation mode on;
    decisions saved meanwhile say so in decisions.jsonl and on the card, others do not."""
    run = digits_run(app_cache)
    frame = pd.read_parquet(run / "scores.parquet").set_index("id")
    at = open_page(PAGE, run)
    ids = _shown_ids(at)
    assert not any("label was" in _card(at, i) for i in ids)
    assert not any("Which detector finds" in h.value for h in at.subheader)
    assert "turn on **Evaluation mode**" in page_text(at)
    at.button(key=f"keep_{ids[0]}").click().run()  # decided without the truth
    (toggle,) = at.toggle
    assert toggle.value is False
    toggle.set_value(True).run()
    assert not at.exception
    train = [i for i in ids if i in frame.index]  # held-out rows carry no injected noise
    for example in train:
        flipped = bool(frame.loc[example, "noisy"])
        assert ("label was flipped" in _card(at, example)) == flipped
        assert ("label was not flipped" in _card(at, example)) == (not flipped)
    at.button(key=f"drop_{ids[1]}").click().run()  # decided knowing the truth
    lines = [json.loads(x) for x in (run / "decisions.jsonl").read_text().splitlines()]
    assert [(r["id"], r.get("evaluation", False)) for r in lines[-2:]] == [
        (ids[0], False),
        (ids[1], True),
    ]
    marked = [m for m in _markdown(at) if "made in evaluation mode" in m]
    assert marked == ["Decision: **drop** (made in evaluation mode)"]


def test_text_run_without_noise(app_cache):
    run = text_run(app_cache)
    at = open_page(PAGE, run, detector="forgetting")  # remembered, but this run has no forgetting
    assert not at.exception
    assert at.selectbox(key="w_detector").value == "cl_quality"  # preference, no noise
    assert "optimistic" not in page_text(at)
    assert not any("injected noise" in h.value for h in at.subheader)
    assert not any("flipped" in m for m in _markdown(at))
    assert any(m.startswith("*premise:*") and "*hypothesis:*" in m for m in _markdown(at))
    assert _shown_ids(at)


def test_empty_cache_shows_info(tmp_path, monkeypatch):
    monkeypatch.setenv("WINNOW_CACHE_DIR", str(tmp_path / "empty"))
    at = open_page(PAGE)
    assert not at.exception
    assert "No finished run yet" in at.info[0].value
    assert not at.button


def test_search_and_class_filter_come_before_the_cut(app_cache):
    """A search finds its matches however far down the ranking they are; the class filter
    keeps only that given label; both narrow what the slider counts."""
    run = text_run(app_cache)
    at = open_page(PAGE, run)
    ranked = suspects.suspects(load_run(run), detector=at.selectbox(key="w_detector").value)
    rd = store.RunDir(run)  # training texts, and the carved held-out rows' own file
    texts = pd.concat([pd.read_parquet(f) for f in (rd.texts_file, rd.heldout_texts_file)])
    texts = texts.set_index("id")
    # The lowest-ranked row: beyond any default cut, found by its id.
    last = int(ranked["id"].iloc[-1])
    at.text_input(key="mislabeled_filter_search").input(f"#{last}").run()
    assert not at.exception
    assert _shown_ids(at) == [last]
    # A word: every shown card holds it (any case), in the ranking's order.
    at.text_input(key="mislabeled_filter_search").input("NOBODY").run()
    holds = ranked["id"].map(lambda i: "nobody" in " ".join(str(v) for v in texts.loc[i]).lower())
    expected = ranked.loc[holds.to_numpy(), "id"].astype(int).tolist()
    assert 0 < len(expected) < len(ranked)
    assert _shown_ids(at) == expected[:10]
    # Class filter on top of the search: only that given label.
    at.text_input(key="mislabeled_filter_search").input("").run()
    name = load_run(run).label_names[1]
    at.multiselect(key="mislabeled_filter_classes").select(name).run()
    shown_ids = _shown_ids(at)
    labels = ranked.set_index("id")["label"]
    assert shown_ids and all(labels[i] == name for i in shown_ids)
    assert shown_ids == [int(i) for i in ranked["id"] if labels[i] == name][: len(shown_ids)]


def _flag_pair(run: Path, pair: tuple[int, int] | None) -> None:
    """Write `pair` (class indices) into the run's health.json as its one flagged overlapping
    pair; None: no flagged pair."""
    rd = store.RunDir(run)
    record = rd.read_health()
    record["overlapping_classes"]["pairs"] = (
        []
        if pair is None
        else [
            {
                "classes": sorted(pair),
                "n_overlapping": 9,
                "joint_probability": 0.02,
                "share": 0.09,
                "flagged": True,
            }
        ]
    )
    rd.write_health(record)


def test_overlapping_pair_filter_shows_the_rows_between_the_two_classes(app_cache):
    run = digits_run(app_cache)
    view = load_run(run)
    names = view.label_names
    ranked = suspects.suspects(view)
    moved = ranked[ranked["label"] != ranked["suggested_label"]]
    counts = moved.apply(lambda r: tuple(sorted((r["label"], r["suggested_label"]))), axis=1)
    a, b = counts.value_counts().index[0]  # the pair with the most disagreements
    _flag_pair(run, (names.index(a), names.index(b)))
    at = open_page(PAGE, run)
    assert not at.exception
    control = at.selectbox(key="mislabeled_filter_pair")
    assert control.value == () and control.options == ["any pair", f"{a} ↔ {b}"]
    control.select((a, b)).run()
    assert not at.exception
    between = ranked[
        ((ranked["label"] == a) & (ranked["suggested_label"] == b))
        | ((ranked["label"] == b) & (ranked["suggested_label"] == a))
    ]
    assert len(between) > 0
    assert _shown_ids(at) == [int(i) for i in between["id"]][:10]
    assert f"{len(between):,} of {len(ranked):,} rows match" in page_text(at)


def test_no_pair_control_without_a_flagged_pair(app_cache):
    run = digits_run(app_cache)
    _flag_pair(run, None)
    at = open_page(PAGE, run)
    assert not at.exception
    assert "mislabeled_filter_pair" not in [s.key for s in at.selectbox]
