"""The rule registry: a contract every registered rule meets, and one entry is all a rule takes.

The contract test is parametrized over `RULES` at collection time, so a rule added to the
registry is checked here with no edit to this file.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from app_pages._shared import UIState
from scoring.cli.common import selection_from_args
from scoring.cli.main import build_parser
from scoring.errors import InputError
from scoring.prune.plan import plan_selection
from scoring.prune.rules import PARAMETERS, RULES, Rule
from scoring.prune.select import SelectionConfig, check_config, select_indices
from scoring.prune.sweeps import SweepConfig, canonical, trial_key
from scoring.read.views import RunView
from tests.conftest import PAGES, digits_run

N = 60
RNG = np.random.default_rng(7)
VALUES = RNG.normal(size=N)  # (N,) distinct, so every ranking is strict
LABELS = RNG.integers(0, 3, size=N)  # (N,) three classes


def _config(rule: str, **kw) -> SelectionConfig:
    """A valid config of `rule` with every parameter set away from trivial values."""
    base = dict(fraction=0.3, offset=0.2, beta=0.1, bins=5, temperature=0.5, seed=3)
    score = "s" if RULES[rule].ranks else None
    return SelectionConfig(rule=rule, score=score, **{**base, **kw})


def _view(values: np.ndarray, labels: np.ndarray, higher_is_harder: bool = True) -> RunView:
    table = pd.DataFrame({"id": np.arange(100, 100 + len(labels)), "label": labels, "s": values})
    table["dup_group"] = -1  # no duplicates: a rule that dedups keeps every row in play
    summary = {"scores": {"s": {"higher_is_harder": higher_is_harder}}}
    return RunView(Path("run"), {}, summary, table)


# --- the contract, over every registered rule -------------------------------------------------


@pytest.mark.parametrize("rule", list(RULES))
def test_deterministic_per_seed(rule):
    config = _config(rule)
    kept = select_indices(VALUES, LABELS, config)
    assert np.array_equal(kept, select_indices(VALUES, LABELS, config))
    others = [select_indices(VALUES, LABELS, dataclasses.replace(config, seed=s)) for s in (4, 5)]
    if RULES[rule].seeded:
        assert any(not np.array_equal(kept, o) for o in others)
    else:
        assert all(np.array_equal(kept, o) for o in others)


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("fraction", [0.05, 0.3, 0.5])
def test_exact_size_distinct_sorted(rule, fraction):
    kept = select_indices(VALUES, LABELS, _config(rule, fraction=fraction))
    assert kept.shape == (round(fraction * N),) and kept.dtype == np.int64
    assert np.all(np.diff(kept) > 0) and kept.min() >= 0 and kept.max() < N


@pytest.mark.parametrize("rule", list(RULES))
def test_exact_size_per_class_when_class_balanced(rule):
    config = _config(rule, fraction=0.3, class_balanced=True)
    kept = select_indices(VALUES, LABELS, config)
    sizes = np.bincount(LABELS)  # (K,)
    quotas = [max(1, round(0.3 * n)) for n in sizes]
    assert np.bincount(LABELS[kept], minlength=3).tolist() == quotas


@pytest.mark.parametrize("rule", list(RULES))
def test_direction_aware(rule):
    # "lower = harder" on values is "higher = harder" on their negation, for every rule.
    for normalization in ("none", "class"):
        config = _config(rule, normalization=normalization)
        low = select_indices(VALUES, LABELS, config, higher_is_harder=False)
        assert np.array_equal(low, select_indices(-VALUES, LABELS, config))


def test_direction_flips_hardest_and_easiest():
    m = round(0.3 * N)
    by_value = np.argsort(VALUES)  # lowest first
    lowest, highest = np.sort(by_value[:m]), np.sort(by_value[-m:])
    hardest, easiest = _config("hardest"), _config("easiest")
    assert select_indices(VALUES, LABELS, hardest).tolist() == highest.tolist()
    assert select_indices(VALUES, LABELS, easiest).tolist() == lowest.tolist()
    assert select_indices(VALUES, LABELS, hardest, higher_is_harder=False).tolist() == (
        lowest.tolist()
    )
    assert select_indices(VALUES, LABELS, easiest, higher_is_harder=False).tolist() == (
        highest.tolist()
    )


def test_offset_random_samples_what_offset_keeps_from():
    """The offset window's baseline: random among the rows left after the same offset."""
    config = _config("offset_random", fraction=0.3, offset=0.2)
    pool = np.argsort(-VALUES)[round(0.2 * N) :]  # the 80% left after dropping the hardest 20%
    draws = [select_indices(VALUES, LABELS, dataclasses.replace(config, seed=s)) for s in range(40)]
    assert all(np.isin(kept, pool).all() for kept in draws)
    counts = np.bincount(np.concatenate(draws), minlength=N)
    assert (counts[pool] > 0).all()  # every row left is drawn some time: a uniform sample
    offset = select_indices(VALUES, LABELS, _config("offset", fraction=0.3, offset=0.2))
    assert np.isin(offset, pool).all() and not np.array_equal(draws[0], offset)


def test_baselines_are_rules_sharing_their_rule_parameters():
    assert {n: r.baseline for n, r in RULES.items() if r.baseline} == {"offset": "offset_random"}
    for rule in RULES.values():
        if rule.baseline:
            assert RULES[rule.baseline].uses <= rule.uses


@pytest.mark.parametrize("rule", list(RULES))
def test_decisions_applied_first(rule):
    view = _view(VALUES, LABELS)
    ids = view.table["id"].to_numpy()
    dropped = ids[:10]
    relabelled = ids[10:25][LABELS[10:25] != 2]  # to class 2: changes the class quotas
    made = pd.DataFrame(
        {
            "id": [*dropped, *relabelled],
            "action": ["drop"] * len(dropped) + ["relabel"] * len(relabelled),
            "new_label": pd.array([None] * len(dropped) + [2] * len(relabelled), "Int64"),
        }
    )
    fraction = 1.0 if RULES[rule].keeps_all else 0.3  # every row: the planner wants 1
    config = _config(rule, class_balanced=True, fraction=fraction)
    plan = plan_selection(view, config, made)
    kept_ids = ids[plan.positions]
    assert not set(dropped) & set(kept_ids)  # drops are never kept
    assert plan.rows.tolist() == list(range(10, N)) and plan.n_dropped == 10
    labels = LABELS[10:].copy()
    labels[np.isin(ids[10:], relabelled)] = 2
    assert plan.labels.tolist() == labels.tolist()  # relabels are what the rule sees
    # The same selection as the rule alone on the rows left, with the new labels.
    alone = select_indices(VALUES[10:], labels, config)
    assert plan.positions.tolist() == (10 + alone).tolist()
    quotas = [max(1, round(fraction * n)) for n in np.bincount(labels)]
    assert np.bincount(plan.labels[plan.kept], minlength=3).tolist() == quotas


@pytest.mark.parametrize("rule", list(RULES))
def test_an_empty_selection_is_refused(rule):
    config = _config(rule, fraction=0.005)  # round(0.005 * 60) = 0
    with pytest.raises(InputError, match="keeps none"):
        select_indices(VALUES, LABELS, config)
    with pytest.raises(InputError, match="no examples"):
        select_indices(VALUES[:0], LABELS[:0], _config(rule))


@pytest.mark.parametrize("rule", list(RULES))
def test_words_and_parameters_are_declared(rule):
    entry = RULES[rule]
    assert entry.label.strip() and entry.help.strip()
    assert set(entry.uses) <= set(PARAMETERS)
    if entry.ranks:
        with pytest.raises(InputError, match="ranks by a score"):
            check_config(dataclasses.replace(_config(rule), score=None))
    else:
        assert select_indices(None, LABELS, _config(rule)).shape == (round(0.3 * N),)


# --- the registry is the one place a rule is declared -------------------------------------------


def test_a_rule_without_help_cannot_be_declared():
    pick = RULES["hardest"].pick
    with pytest.raises(TypeError):
        Rule(pick, label="keep hardest", uses=frozenset())  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="help"):
        Rule(pick, label="keep hardest", help=" ", uses=frozenset())
    with pytest.raises(ValueError, match="unknown rule parameter"):
        Rule(pick, label="x", help="y", uses=frozenset({"gamma"}))


def _middle(h: np.ndarray, m: int, config: SelectionConfig, rng: np.random.Generator):
    """A throwaway rule: the m rows closest to the median hardness."""
    return np.argsort(np.abs(h - np.median(h)), kind="stable")[:m]


@pytest.fixture
def middle(monkeypatch: pytest.MonkeyPatch) -> str:
    """One registry entry, and nothing else, adds a rule."""
    monkeypatch.setitem(
        RULES,
        "middle",
        Rule(
            _middle,
            label="keep middle",
            help="the share closest to the median score",
            uses=frozenset({"score", "normalization", "temperature"}),
        ),
    )
    return "middle"


def test_a_new_rule_is_one_entry_cli_and_trial_keys(middle):
    parser = build_parser()
    args = parser.parse_args(
        ["export", "--run", "r", "--rule", middle, "--score", "s", "--fraction", "0.5"]
        + ["--format", "csv", "--out", "o.csv"]
    )
    sel = selection_from_args(args, fraction=0.5, seed=0)
    assert sel.rule == middle
    export = next(a for a in parser._actions if a.dest == "command").choices["export"]
    rule_flag = next(a for a in export._actions if a.dest == "rule")
    assert middle in rule_flag.metavar.strip("{}").split(",") and "keep middle" in rule_flag.help
    assert "middle" in next(a for a in export._actions if a.dest == "temperature").help

    # Its parameters enter trial keys; the ones it ignores are reset.
    config = SelectionConfig(middle, 0.5, score="s", temperature=3.0, offset=0.4, beta=0.3)
    assert canonical(config) == dataclasses.replace(config, offset=0.0, beta=0.1)
    sweep = SweepConfig(config, (0.5,), 1)
    hot = trial_key("run", canonical(config), sweep)
    cold = trial_key("run", canonical(dataclasses.replace(config, temperature=1.0)), sweep)
    assert hot != cold
    kept = select_indices(VALUES, LABELS, config)
    assert kept.tolist() == np.sort(_middle(VALUES, 30, config, None)).tolist()
    # The flags that reproduce it parse back to it.
    again = parser.parse_args(["sweep", *sweep.cli_args("r")])
    assert selection_from_args(again, fraction=0.5, seed=0) == canonical(config)


def test_a_new_rule_is_one_entry_widgets(middle, app_cache):
    at = AppTest.from_file(str(PAGES / "pruning.py"), default_timeout=60)
    at.session_state["ui"] = UIState(run=str(digits_run(app_cache)))
    at.run()
    rule = at.selectbox(key="w_prune_rule")
    assert "keep middle" in rule.options
    assert "w_prune_temperature" not in [n.key for n in at.number_input]
    rule.select(middle).run()
    assert not at.exception
    assert "Keep middle: the share closest to the median score." in [c.value for c in at.caption]
    temperature = at.number_input(key="w_prune_temperature")  # the parameter it uses shows
    assert temperature.label == "Temperature (softmax, middle)"
    assert any("Keeps **250** of 500" in m.value for m in at.markdown)


@pytest.mark.parametrize("rule", list(RULES))
def test_cli_args_parse_back_to_the_same_selection(rule):
    config = _config(rule, normalization="class", class_balanced=True)
    args = build_parser().parse_args(["sweep", *SweepConfig(config, (0.3,), 1).cli_args("r")])
    assert selection_from_args(args, fraction=0.3, seed=3) == canonical(config)


def test_every_rule_parameter_has_a_widget():
    from app_pages._selection import _NUMBERS

    assert set(_NUMBERS) | {"offset"} == set(PARAMETERS) - {"score", "normalization"}


@pytest.mark.parametrize("rule", [r for r in RULES if RULES[r].ranks])
def test_dataset_normalization_changes_only_scale_sensitive_rules(rule):
    """A dataset-wide z-score is one affine map: it changes a rule's pick exactly when
    `scale_sensitive` says so (softmax), so the pages offer it only there (issue 22)."""
    from scoring.prune.rules import scale_sensitive

    values = VALUES * 7.0 + 3.0  # far from z-scores already: softmax must feel the map
    picks = {
        norm: select_indices(values, LABELS, _config(rule, normalization=norm))
        for norm in ("none", "dataset")
    }
    same = np.array_equal(picks["none"], picks["dataset"])
    assert same == (not scale_sensitive(RULES[rule]))
