"""Which definition each score of a recorded run used, and why a label-free score is absent.

A built-in run always scores EL2N at fixed weights and embeds with a label-free encoder; a
recording has what the user logged. EL2N (and EL2N, label-free) read the eval pass after
EL2N's epoch when one was logged (`log_eval`: Data Diet's fixed weights), else that epoch's
training pass, a different quantity: `el2n_definitions` says which, per run. The
label-free scores (prototype and the neighbourhood scores) read only embeddings the user
stated label-free (`end_run(features_label_free=True)`); penultimate features of the
trained model have seen the labels, so without that statement those scores are absent and
`label_free_reasons` says why. Both land in `summary.json` (``definitions``,
``absent_scores``), which the Scores page shows beside the score.
"""

from __future__ import annotations

from collections.abc import Iterable

from scoring.scores import REGISTRY

EVAL_PASS = "eval pass"
TRAINING_PASS = "training pass"

# What `config.json` and `summary.json` say the label-free embeddings were (when given).
FREE_FEATURES_NOTE = (
    "run 1's end_run(features=...), stated label-free by the user "
    "(features_label_free=True): Winnow cannot check that their model never saw the labels"
)


def probs_early_source(eval_covered: int | None, n: int, early: int) -> dict[str, str]:
    """Where one run's EL2N probabilities came from, and why when not an eval pass.

    Parameters
    ----------
    eval_covered : int or None
        Ids the eval pass after epoch `early` covered, over the ranks; None: none logged.
    n : int
        N, the number of examples.
    early : int
        EL2N's epoch (1-based).

    Returns
    -------
    dict of str to str
        ``source``: `EVAL_PASS` or `TRAINING_PASS`; with the latter, ``why``.
    """
    if eval_covered == n:
        return {"source": EVAL_PASS}
    why = (
        f"no eval pass was logged after epoch {early}"
        if eval_covered is None
        else f"the eval pass after epoch {early} covered {eval_covered:,} of {n:,} ids"
    )
    return {"source": TRAINING_PASS, "why": why}


def el2n_definitions(runs: list[dict[str, str]], early: int) -> dict[str, str]:
    """The definition `el2n` and `el2n_free` used, from each run's `probs_early_source`.

    Returns
    -------
    dict of str to str
        One markdown-free line per key (``el2n``, ``el2n_free``).
    """
    fixed = f"an eval pass at fixed weights after epoch {early} (log_eval), as Data Diet defines it"
    trained = (
        f"the training pass of epoch {early}, NOT Data Diet's fixed-weight EL2N: the weights "
        "moved within the epoch, so an example's place in the epoch's order enters its score; "
        f"call log_eval(ids, logits) after end_epoch() of epoch {early} for the fixed-weight one"
    )
    eval_runs = [i + 1 for i, r in enumerate(runs) if r["source"] == EVAL_PASS]
    if len(eval_runs) == len(runs):
        text = f"from {fixed}"
    else:
        whys = sorted({r["why"] for r in runs if r["source"] == TRAINING_PASS})
        text = f"from {trained} ({'; '.join(whys)})"
        if eval_runs:
            text = f"mixed over runs: runs {_listed(eval_runs)} from {fixed}; the others {text}"
    return {"el2n": f"EL2N {text}", "el2n_free": f"EL2N, label-free, {text}"}


def features_free_definitions(keys: Iterable[str]) -> dict[str, str]:
    """The definition each score on the label-free embeddings used (they were given)."""
    return {
        k: f"on label-free embeddings: {FREE_FEATURES_NOTE}"
        for k in keys
        if "features_free" in REGISTRY[k].needs
    }


def label_free_reasons(features_given: bool, test_features_given: bool) -> dict[str, str]:
    """Why the embedding needs (``features_free``, ``features_free_test``) are missing.

    Parameters
    ----------
    features_given : bool
        Run 1 gave penultimate features, but did not state them label-free.
    test_features_given : bool
        Run 1 gave the held-out rows' features.

    Returns
    -------
    dict of str to str
        Per missing need, the line `absent_scores` gives after it.
    """
    how = (
        "end_run(features=..., features_label_free=True) with embeddings of a model that "
        "never saw the labels (e.g. a frozen pretrained encoder)"
    )
    free = (
        "label-free embeddings: end_run's features are the trained model's, which saw the "
        f"labels, so they are not used; give {how}"
        if features_given
        else f"label-free embeddings: give {how}"
    )
    test = (
        "the held-out rows' label-free embeddings: end_run(test_features=...) by the same model"
        if not test_features_given
        else "label-free embeddings of the held-out rows (see features_free)"
    )
    return {"features_free": free, "features_free_test": test}


def _listed(runs: list[int]) -> str:
    """1-based run numbers as "1, 3"."""
    return ", ".join(str(r) for r in runs)
