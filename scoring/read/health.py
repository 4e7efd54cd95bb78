"""A run's health report: every issue type with its count, severity and the page that reviews it.

Gathered from what the run folder already holds, never recomputed: cleanlab's label flags
(`suspects.flagged_count`), the duplicate / leak / outlier / class counts the Duplicates page
shows (`neighbours.issue_counts`), the dataset-level issues of `health.json` (overlapping
classes, weak slices, non-IID order: `scoring.scores.health`), and the image properties and
spurious correlations `summary.json` holds. A type the run cannot give is listed with
`available: False` and the reason (a text run has no image properties; a run scored without
out-of-fold probabilities has no overlapping classes).

Severity is the share of rows an issue affects, out of the rows it judged (`severity`):
**high** at 5% or more, **medium** at 1% or more, **low** above 0, **none** at 0; a type
that affects no row but was found (a spurious correlation between an image property and
the labels) is **low**. The report lists the available types by rows affected, most first
(ties by count, then in `ISSUE_TYPES` order), then the absent ones.

Pure pandas/numpy over a `RunView` and its run folder (no Streamlit, no torch).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scoring import store
from scoring.read import neighbours, suspects
from scoring.read.views import RunView
from scoring.scores import image_properties
from scoring.scores.registry import IMAGE_ONLY_REASON

HIGH, MEDIUM = 0.05, 0.01  # severity by share of rows affected (module docstring)
SEVERITIES = ("high", "medium", "low", "none")
IMAGE_PROPERTIES = image_properties.PROPERTIES  # one row of the report each
# A run's key holds the scoring version, so the same command on a newer version scores anew.
RESCORE = "score the data again with this version of Winnow (`winnow score`, the same command)"


@dataclass(frozen=True)
class IssueType:
    """One issue type of the report: its key, its words and where it is reviewed.

    `page` is the app page file (under `app_pages/`) that reviews it, None when no page
    does (non-IID order: one line in the report); `page_title` is that page's title.
    """

    key: str
    title: str
    unit: str  # what `count` counts: "rows", "pairs", "slices", ...; "" for non-IID (0 or 1)
    page: str | None
    page_title: str | None
    gather: Callable[[_Sources], dict[str, Any]]


@dataclass
class _Sources:
    """What the gatherers read, each at most once per report."""

    view: RunView
    _counts: dict[str, Any] | None = None
    _health: dict[str, Any] | None = None
    _health_reason: str | None = None
    _read: bool = False

    @property
    def n(self) -> int:
        return len(self.view.table)

    @property
    def counts(self) -> dict[str, Any]:
        if self._counts is None:
            self._counts = neighbours.issue_counts(self.view)
        return self._counts

    def health(self, key: str) -> dict[str, Any]:
        """`health.json`'s entry `key`; `{"reason": ...}` when the run cannot give it."""
        if not self._read:
            self._read = True
            try:
                self._health = store.RunDir(self.view.path).read_health()
            except store.DamagedRun as err:
                self._health_reason = f"{err.file} {err.reason}"
            else:
                if self._health is None:
                    self._health_reason = _no_health_reason(self.view)
        if self._health is None:
            return {"reason": self._health_reason}
        entry = self._health.get(key)
        if not isinstance(entry, dict):
            return {"reason": f"health.json has no {key!r} entry; {RESCORE}"}
        if not entry.get("available") and entry.get("error"):
            return {"reason": f"the check failed when the run was scored ({entry['error']})"}
        if not entry.get("available"):
            return {"reason": _missing_reason(self.view, entry.get("missing") or [])}
        return entry


def _no_health_reason(view: RunView) -> str:
    source = store.run_source(view.config)
    if source != "scored":
        return (
            f"this run was {source} before the health report existed (no health.json): "
            "record or import it again with this version"
        )
    return f"this run was scored before the health report existed (no health.json); {RESCORE}"


def _missing_reason(view: RunView, missing: list[str]) -> str:
    """Why a `health.json` entry is absent, from the arrays it lacked."""
    source = store.run_source(view.config)
    scored = source == "scored"
    words = []
    if "oof_probs" in missing:
        words.append(
            "out-of-fold probabilities ("
            + (
                "scored without cl_quality, cl_issue or pvi; rescore with `--scores all`"
                if scored
                else f"{source} without them: log them with `Recorder.log_oof` or "
                "`winnow import --oof FILE`"
            )
            + ")"
        )
    if "features_free" in missing:
        words.append(
            "label-free embeddings ("
            + (
                "scored without near_dup, outlier, leakage or prototype; rescore with "
                "`--scores all`"
                if scored
                else f"{source} without them: pass `end_run(features=..., "
                "features_label_free=True)` or `winnow import --features FILE "
                "--features-label-free`"
            )
            + ")"
        )
    return "this run has no " + " and no ".join(words) if words else "not computed"


# --- the gatherers: each returns count, rows, of, summary (or a reason) --------------------


def _found(count: int, rows: int, of: int, summary: str, **extra: Any) -> dict[str, Any]:
    return {"count": int(count), "rows": int(rows), "of": int(of), "summary": summary, **extra}


def _pct(part: float, whole: float) -> str:
    return f"{part / max(whole, 1):.1%}"


def _label(src: _Sources) -> dict[str, Any]:
    view = src.view
    if "cl_issue" not in view.table.columns:
        source = store.run_source(view.config)
        why = (
            "it was scored without cl_issue; rescore with `--scores all`"
            if source == "scored"
            else f"it was {source} without out-of-fold probabilities (`Recorder.log_oof`)"
        )
        return {"reason": f"this run has no cleanlab label flags: {why}"}
    held = suspects.heldout_rows(view)
    of = src.n + (0 if held is None else len(held))
    n = suspects.flagged_count(view)
    return _found(n, n, of, f"cleanlab flags {n:,} of {of:,} labels ({_pct(n, of)})")


def _near_duplicate(src: _Sources) -> dict[str, Any]:
    reason = neighbours.missing_message(src.view, "dup_group")
    if reason is not None:
        return {"reason": reason}
    c = src.counts
    rows, groups = c["rows_in_groups"], c["duplicate_groups"]
    copies = "" if c["exact_copies"] is None else f", {c['exact_copies']:,} exact copies"
    held = "1 group holds" if groups == 1 else f"{groups:,} groups hold"
    summary = f"{held} {rows:,} rows; dedup would drop {c['redundant_rows']:,}{copies}"
    return _found(rows, rows, src.n, summary)


def _leakage(src: _Sources) -> dict[str, Any]:
    reason = neighbours.missing_message(src.view, "leak_of")
    if reason is not None:
        return {"reason": reason}
    n = src.counts["leaks"]
    copy = "training row copies" if n == 1 else "training rows copy"
    return _found(n, n, src.n, f"{n:,} {copy} a held-out/test row")


def _outlier(src: _Sources) -> dict[str, Any]:
    reason = neighbours.missing_message(src.view, "outlier")
    if reason is not None:
        return {"reason": reason}
    n = src.counts["outliers"]
    return _found(n, n, src.n, f"{n:,} rows far from their nearest neighbours (robust z ≥ 3)")


CLASS_IMBALANCE_SHARE = 0.1  # Datalab's class_imbalance threshold, times an even share 1/K


def _class_imbalance(src: _Sources) -> dict[str, Any]:
    """Rows of every class under 10% of an even share (Datalab flags only the rarest)."""
    counts = neighbours.class_counts(src.view)
    k = len(src.view.label_names)
    rare = counts[counts["share"] < CLASS_IMBALANCE_SHARE / max(k, 1)]
    ratio = src.counts["imbalance"]
    spread = [] if ratio is None else [f"largest/smallest class {ratio:.1f}"]
    if rare.empty:
        return _found(0, 0, src.n, "; ".join([*spread, "no class under 10% of an even share"]))
    names = ", ".join(f"{c} ({n:,})" for c, n in zip(rare["class"], rare["count"], strict=True))
    rows = int(rare["count"].sum())
    summary = "; ".join([*spread, f"under 10% of an even share: {names}"])
    return _found(len(rare), rows, src.n, summary)


def _overlapping_classes(src: _Sources) -> dict[str, Any]:
    entry = src.health("overlapping_classes")
    if "reason" in entry:
        return entry
    names = src.view.label_names
    pairs = [p for p in entry.get("pairs", []) if p.get("flagged")]
    rows = sum(int(p["n_overlapping"]) for p in pairs)
    if not pairs:
        closest = (entry.get("pairs") or [None])[0]
        near = (
            ""
            if closest is None
            else f"; closest {_pair_name(closest, names)} at {closest['share']:.1%}"
        )
        share = entry.get("min_share", 0.05)
        return _found(0, 0, src.n, f"no pair over {share:.0%} of its rows{near}")
    shown = "; ".join(
        f"{_pair_name(p, names)}: {p['share']:.0%} of their rows look like the other"
        for p in pairs[:3]
    )
    more = f"; {len(pairs) - 3} more" if len(pairs) > 3 else ""
    return _found(len(pairs), rows, src.n, shown + more)


def _pair_name(pair: dict[str, Any], names: list[str]) -> str:
    a, b = pair["classes"]
    return f"{names[a]}/{names[b]}"


def _underperforming_group(src: _Sources) -> dict[str, Any]:
    entry = src.health("underperforming_group")
    if "reason" in entry:
        return entry
    slices = entry.get("slices", [])
    rows = sum(int(s["size"]) for s in slices)
    if not slices:
        return _found(0, 0, src.n, f"no weak slice among {entry.get('n_clusters', 0):,} clusters")
    worst = slices[0]
    rest = worst.get("rest_accuracy")
    elsewhere = "" if rest is None else f" vs {rest:.0%} elsewhere"
    summary = (
        f"{len(slices):,} of {entry['n_clusters']:,} clusters; the worst: {worst['size']:,} rows "
        f"at {worst['accuracy']:.0%} out-of-fold accuracy{elsewhere}"
    )
    return _found(len(slices), rows, src.n, summary)


def _non_iid(src: _Sources) -> dict[str, Any]:
    entry = src.health("non_iid")
    if "reason" in entry:
        return entry
    p = entry.get("p_value")
    if p is None:
        return {"reason": "too few rows for the kNN permutation test"}
    said = "p < 0.001" if p < 0.001 else f"p = {p:.3f}"
    if entry.get("flagged"):
        summary = (
            f"the row order carries information ({said}): rows near each other in the "
            "embeddings sit near each other in the file; shuffle before splitting"
        )
        return _found(1, src.n, src.n, summary)
    return _found(0, 0, src.n, f"the row order looks random ({said})")


def _image_property(name: str) -> Callable[[_Sources], dict[str, Any]]:
    def gather(src: _Sources) -> dict[str, Any]:
        if src.view.modality == "text":
            return {"reason": IMAGE_ONLY_REASON}  # the registry's words
        if src.view.modality != "image":  # a recording without its inputs
            return {"reason": _no_inputs_reason(src.view)}
        props = src.view.summary.get("image_properties", {})
        entry = props.get(name) if isinstance(props, dict) else None
        if not isinstance(entry, dict) or not isinstance(entry.get("count"), int | float):
            return {"reason": _no_property_reason(src.view, name)}
        n = int(entry["count"])
        if entry.get("gray_dataset"):
            gray = int(entry.get("gray_images", 0))
            return _found(0, 0, src.n, f"a grayscale dataset ({gray:,} of {src.n:,} images "
                          "gray): only a gray image among colour ones is an issue")  # fmt: skip
        limit = entry.get("threshold")
        at = f" (score over {limit:.3g})" if isinstance(limit, int | float) else ""
        images = "image" if n == 1 else "images"
        return _found(n, n, src.n, f"{n:,} {name.replace('_', ' ')} {images}{at}")

    return gather


def _no_property_reason(view: RunView, names: str) -> str:
    """Why an image run lacks the image properties `names` ("dark", or several): not asked
    for, or a run from before they existed."""
    source = store.run_source(view.config)
    if source != "scored":
        return f"this run was {source}: image properties come from `winnow score` runs"
    return (
        f"this run has no image property {names}: it was scored without or before them; "
        f"rescore with `--scores all` (the default), or add {names} to --scores"
    )


def _no_inputs_reason(view: RunView) -> str:
    """Why a run without inputs (a recording of ids alone) has no image properties."""
    source = store.run_source(view.config)
    return (
        f"this run was {source} without its inputs: image properties need the images (link "
        "the dataset: `Recorder(..., dataset=...)` or `winnow import --dataset`)"
    )


def _spurious_correlation(src: _Sources) -> dict[str, Any]:
    """`summary.json`'s `spurious_correlation` (`image_properties.property_summary`): the
    image properties that alone predict the label. A dataset-level finding: no row counted."""
    if src.view.modality == "text":
        return {"reason": IMAGE_ONLY_REASON}  # the registry's words
    if src.view.modality != "image":
        return {"reason": _no_inputs_reason(src.view)}
    entry = src.view.summary.get("spurious_correlation")
    if not isinstance(entry, dict) or not isinstance(entry.get("flagged"), list):
        return {"reason": _no_property_reason(src.view, ",".join(IMAGE_PROPERTIES))}
    if entry.get("why") and not entry.get("scores"):
        return {"reason": f"the check could not run on this data ({entry['why']})"}
    flagged = [str(k) for k in entry["flagged"]]
    scores = entry.get("scores") or {}
    if not flagged:
        lowest = min(scores.items(), key=lambda kv: kv[1]) if scores else None
        closest = "" if lowest is None else f"; the closest, {lowest[0]}, scores {lowest[1]:.2f}"
        return _found(0, 0, src.n, f"no image property predicts the label{closest}")
    which = ", ".join(f"{k} ({scores[k]:.2f})" if k in scores else k for k in flagged)
    limit = entry.get("threshold", image_properties.SPURIOUS_THRESHOLD)
    summary = f"{len(flagged)} image properties predict the label (score under {limit}): {which}"
    return _found(len(flagged), 0, src.n, summary)


MISLABELED = ("mislabeled.py", "Mislabeled")
DUPLICATES = ("duplicates.py", "Duplicates & outliers")
EXAMPLES = ("examples.py", "Examples")
HOME = ("home.py", "Home")

# Every issue type of the report, in the order ties are listed.
ISSUE_TYPES: dict[str, IssueType] = {
    t.key: t
    for t in (
        IssueType("label", "Label issues", "rows", *MISLABELED, _label),
        IssueType("near_duplicate", "Near duplicates", "rows", *DUPLICATES, _near_duplicate),
        IssueType("leakage", "Train/test leaks", "rows", *DUPLICATES, _leakage),
        IssueType("outlier", "Outliers", "rows", *DUPLICATES, _outlier),
        IssueType("class_imbalance", "Class imbalance", "classes", *DUPLICATES, _class_imbalance),
        IssueType(
            "overlapping_classes", "Overlapping classes", "pairs", *MISLABELED, _overlapping_classes
        ),
        IssueType("underperforming_group", "Weak slices", "slices", *HOME, _underperforming_group),
        IssueType("non_iid", "Non-IID order", "", None, None, _non_iid),
        *(
            IssueType(p, p.replace("_", " ").capitalize(), "rows", *EXAMPLES, _image_property(p))
            for p in IMAGE_PROPERTIES
        ),
        IssueType(
            "spurious_correlation",
            "Spurious correlations",
            "properties",
            *EXAMPLES,
            _spurious_correlation,
        ),
    )
}


def severity(rows: int, of: int, count: int = 0) -> str:
    """ "high" (>= 5% of `of`), "medium" (>= 1%), "low" (> 0, or no row but `count` > 0), "none"."""
    share = rows / max(of, 1)
    if share >= HIGH:
        return "high"
    if share >= MEDIUM:
        return "medium"
    return "low" if rows > 0 or count > 0 else "none"


def health_report(view: RunView) -> list[dict[str, Any]]:
    """Every issue type of `ISSUE_TYPES` for the run, most rows affected first.

    Returns
    -------
    list of dict, one per issue type
        `type`, `title`, `available`; when available `count` (of `unit`s: rows, pairs,
        slices, classes, ...), `unit`, `rows_affected`, `of` (the rows judged), `share`,
        `severity` (see `severity`), `summary` (one line); when not, `reason` (and `count`
        None, `severity` "n/a"); always `page` (the app page file that reviews it, or
        None) and `page_title`. Available types first, by `rows_affected` then `count`
        (descending), then in `ISSUE_TYPES` order; the absent ones after, in that order.
    """
    src = _Sources(view)
    issues = []
    for t in ISSUE_TYPES.values():
        found = t.gather(src)
        issue: dict[str, Any] = {"type": t.key, "title": t.title}
        if "reason" in found:
            issue.update(available=False, count=None, severity="n/a", reason=found["reason"])
        else:
            rows, of = found["rows"], found["of"]
            issue.update(
                available=True,
                count=found["count"],
                unit=found.get("unit", t.unit),
                rows_affected=rows,
                of=of,
                share=rows / max(of, 1),
                severity=severity(rows, of, found["count"]),
                summary=found["summary"],
            )
        issue.update(page=t.page, page_title=t.page_title)
        issues.append(issue)
    order = {k: i for i, k in enumerate(ISSUE_TYPES)}
    return sorted(
        issues,
        key=lambda i: (
            not i["available"],
            -(i.get("rows_affected") or 0),
            -(i.get("count") or 0),
            order[i["type"]],
        ),
    )


def overlapping_pairs(view: RunView) -> list[tuple[str, str]]:
    """The flagged overlapping class pairs as (name, name), most overlapping first; [] when
    the run has none (or no health.json)."""
    entry = _Sources(view).health("overlapping_classes")
    names = view.label_names
    return [
        (str(names[p["classes"][0]]), str(names[p["classes"][1]]))
        for p in entry.get("pairs", [])
        if p.get("flagged")
    ]


def weak_slices(view: RunView) -> list[dict[str, Any]]:
    """The weak slices of `health.json`, worst first, each with the `ids` of its rows.

    Returns
    -------
    list of dict
        `size`, `accuracy`, `rest_accuracy`, `quality_ratio`, `rows` (ndarray of the rows'
        positions in `view.table`) and `ids` (their ids); [] when the run has none.
    """
    entry = _Sources(view).health("underperforming_group")
    ids = view.table["id"].to_numpy(np.int64)
    return [
        {
            "size": int(s["size"]),
            "accuracy": float(s["accuracy"]),
            "rest_accuracy": s.get("rest_accuracy"),
            "quality_ratio": float(s["quality_ratio"]),
            "rows": np.asarray(s["rows"], dtype=np.int64),
            "ids": ids[np.asarray(s["rows"], dtype=np.int64)],
        }
        for s in entry.get("slices", [])
    ]


def report_markdown(view: RunView, issues: list[dict[str, Any]]) -> str:
    """The report as markdown: a title line, one table row per issue type, then the absent
    types with their reasons (what `winnow report` prints)."""
    lines = [
        f"# Health report: {view.title()}",
        "",
        "| issue | count | rows affected | severity | review on | summary |",
        "|---|---:|---:|---|---|---|",
    ]
    for i in (i for i in issues if i["available"]):
        count = count_text(i)
        rows = f"{i['rows_affected']:,} ({i['share']:.1%})"
        page = i["page_title"] or "—"
        lines.append(
            f"| {i['type']} | {count} | {rows} | {i['severity']} | {page} | {_cell(i['summary'])} |"
        )
    absent = [i for i in issues if not i["available"]]
    if absent:
        lines += ["", "Not available for this run:", ""]
        lines += [f"- {i['type']}: {_cell(i['reason'])}" for i in absent]
    return "\n".join(lines) + "\n"


_SINGULAR = {"rows": "row", "pairs": "pair", "slices": "slice", "classes": "class",
             "properties": "property"}  # fmt: skip


def count_text(issue: dict[str, Any]) -> str:
    """An available issue's count with its unit: "12 rows", "1 pair", "1" (non-IID)."""
    unit = issue["unit"]
    if issue["count"] == 1:
        unit = _SINGULAR.get(unit, unit)
    return f"{issue['count']:,} {unit}".strip()


def _cell(text: str) -> str:
    """Text safe inside a markdown table cell (a label name may hold a pipe)."""
    return str(text).replace("|", "\\|").replace("\n", " ")
