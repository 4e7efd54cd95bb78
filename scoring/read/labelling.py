"""Suspects out to Label Studio, annotators' answers back as decisions.

Out (`label_studio_tasks`, `label_config`): one Label Studio task per suspect, in Label
Studio's JSON import format. A task's ``data`` holds the row's Winnow ``id`` (so answers map
back without a lookup table), the given label (``given_label``) and the input: ``image``
(a PNG data URL of the stored display image) or ``text`` (and ``text_pair`` for sentence
pairs, named after the source's input columns in the task's ``data`` too). Its one
``predictions`` entry is Winnow's suggestion as a single choice, ``model_version`` the run's
title and ``score`` the detector's score oriented so that higher = more suspect, so Label
Studio can sort by it. The labelling config names its choices ``label``.

Back (`read_label_studio_export`): Label Studio's JSON export (a list of tasks, each with
its ``annotations``). Every completed annotation is a vote for one class; a cancelled
(skipped) one is no vote. Per task: the majority of the votes is the answer, a keep when it
is the given label, else a relabel; a task without votes is left alone; a tie is left
undecided and reported. The whole file is checked before anything is returned: a task
without a Winnow id, an id the run does not hold, a label outside the run's classes, or a
file that is not a whole JSON export raises InputError naming it (so nothing is written).

Pure pandas / numpy / PIL over a `RunView` (no Streamlit, no torch, no server: talking to
a Label Studio server is `scoring.cli.labelling`'s, through the official SDK).
"""

from __future__ import annotations

import base64
import io
import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from xml.sax.saxutils import quoteattr

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError
from scoring.read import decisions, suspects
from scoring.read.views import RunView

TOOL = "label-studio"
FROM_NAME = "label"  # the Choices control's name: answers are read from results naming it
IMAGE_KEY, TEXT_KEYS = "image", ("text", "text_pair")
IMAGE_SIDE = 64  # images are sent enlarged (nearest neighbour) to about this side


# --- out ------------------------------------------------------------------------------------


def label_config(view: RunView) -> str:
    """Label Studio's labelling config (XML) for the run: the input, the given label, and one
    single-choice control named ``label`` over the run's classes, in class order."""
    names = [str(n) for n in view.label_names]
    if view.modality == "image":
        shown = f'  <Image name="{IMAGE_KEY}" value="${IMAGE_KEY}"/>'
        to_name = IMAGE_KEY
    else:
        fields = _text_fields(view)
        shown = "\n".join(f'  <Text name="{f}" value="${f}"/>' for f in fields)
        to_name = fields[0]
    choices = "\n".join(f"    <Choice value={quoteattr(n)}/>" for n in names)
    return (
        "<View>\n"
        f"{shown}\n"
        '  <Header value="Given label: $given_label"/>\n'
        f'  <Choices name="{FROM_NAME}" toName="{to_name}" choice="single" showInline="true">\n'
        f"{choices}\n"
        "  </Choices>\n"
        "</View>\n"
    )


def _text_fields(view: RunView) -> list[str]:
    """The task's text keys: the source's input column names where they are safe keys."""
    names = [str(c) for c in view.config["dataset"].get("input_cols", [])]
    ok = names and len(names) <= 2 and len(set(names)) == len(names)
    ok = ok and all(n.isidentifier() and n not in ("id", "given_label") for n in names)
    return names if ok else list(TEXT_KEYS[: max(1, len(names))])


def label_studio_tasks(view: RunView, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Label Studio tasks for suspects (rows of `suspects.suspects`), in their order.

    Parameters
    ----------
    view : RunView
    rows : DataFrame with id, label, suggested_label, score
        The suspects to send (training or held-out rows); labels as names (`suspects`) or
        class indices (the pages' evidence).

    Returns
    -------
    list of dict
        Label Studio's JSON import format: ``data`` (``id``, ``given_label``, the input)
        and ``predictions`` (one: the suggestion as a choice, ``model_version``, ``score``).

    Raises
    ------
    InputError
        The run keeps no images or texts of these rows to show (an older or recorded run).
    """
    ids = rows["id"].to_numpy(np.int64)
    inputs = _inputs(view, ids)
    title = view.title()
    to_name = IMAGE_KEY if view.modality == "image" else _text_fields(view)[0]
    names = [str(n) for n in view.label_names]
    tasks = []
    for (_, row), shown in zip(rows.iterrows(), inputs, strict=True):
        data = {"id": int(row["id"]), "given_label": _name(row["label"], names), **shown}
        choice = {"choices": [_name(row["suggested_label"], names)]}
        result = [{"from_name": FROM_NAME, "to_name": to_name, "type": "choices", "value": choice}]
        prediction = {
            "model_version": title,
            "score": float(row["score"]) if np.isfinite(row["score"]) else 0.0,
            "result": result,
        }
        tasks.append({"data": data, "predictions": [prediction]})
    return tasks


def _name(label: object, names: list[str]) -> str:
    """A label as its class name: `suspects` gives names, the pages' evidence indices."""
    if isinstance(label, str):
        return label
    return names[int(label)]  # type: ignore[call-overload]


def _inputs(view: RunView, ids: np.ndarray) -> list[dict[str, str]]:
    """Each id's input as task data: a PNG data URL, or its text field(s)."""
    if view.modality == "image":
        # Upscaled by an integer factor to about 64 px (an 8x8 digit is unreadable at 8).
        images = suspects.load_example_images(view, ids, size=IMAGE_SIDE)  # (n, H, W[, C])
        if images is None:
            raise InputError(_no_inputs(view, "images"))
        return [{IMAGE_KEY: _data_url(im)} for im in images]
    texts = suspects.load_texts(view, ids)
    if texts is None or texts.drop(columns="id").isna().any(axis=None):
        raise InputError(_no_inputs(view, "texts"))
    fields = _text_fields(view)
    columns = [c for c in texts.columns if c != "id"]
    return [
        {f: str(row[c]) for f, c in zip(fields, columns, strict=False)}
        for row in texts.to_dict("records")
    ]


def _no_inputs(view: RunView, what: str) -> str:
    return (
        f"{view.path} keeps no {what} of these rows to show an annotator (a recorded run, or "
        "one scored before examples were stored); score the data with `winnow score`"
    )


def _data_url(image: np.ndarray) -> str:
    """A PNG data URL of one uint8 image (H, W) or (H, W, C)."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


# --- back -----------------------------------------------------------------------------------


@dataclass
class Received:
    """What a Label Studio export says, checked against the run.

    `records` are decision records ready for `decisions.append_bulk` (each with ``tool`` and
    ``annotators``); `ties` the ids left undecided because the votes tied; `unanswered` the
    tasks without a completed annotation (skipped, or not labelled yet).
    """

    records: list[dict[str, Any]] = field(default_factory=list)
    ties: list[int] = field(default_factory=list)
    unanswered: int = 0
    keeps: int = 0
    relabels: int = 0


def read_label_studio_export(
    run: Path | str, file: Path | str, text: str | None = None
) -> Received:
    """Check a Label Studio JSON export against the run; its answers as decisions.

    Parameters
    ----------
    run : path of a finished run folder
    file : path of Label Studio's JSON export (Export → JSON); with `text`, only its name
        (an upload's), for the messages
    text : str, optional
        The export's content, when it is not read from `file` (the app's upload).

    Returns
    -------
    Received

    Raises
    ------
    InputError
        Not a readable, whole JSON list of tasks; a task without a Winnow ``id`` in its
        data, or with one the run does not hold; an answer outside the run's classes or with
        several choices. The message names the task; nothing is returned then.
    """
    file = Path(file)
    tasks = _parse_export(file, text if text is not None else _read_export(file))
    rd = store.RunDir(run)
    if not rd.config_file.exists() or not rd.scores_file.exists():
        raise InputError(f"{rd.path} is not a finished Winnow run; decisions need its scores")
    names = [str(n) for n in rd.read_config()["dataset"]["label_names"]]
    given = _given_labels(Path(run))
    out = Received()
    rows = []
    for n, task in enumerate(tasks, start=1):
        where = f"{file}, task {n}" + (f" (Label Studio id {task['id']})" if "id" in task else "")
        try:
            example = _winnow_id(task, given)
            votes = _votes(task, names)
        except InputError as err:
            raise InputError(f"{where}: {err}; nothing was written") from None
        if not votes:
            out.unanswered += 1
            continue
        majority = _majority(votes)
        if majority is None:
            out.ties.append(example)
            continue
        answer, who = majority
        if answer == given[example]:
            rows.append((example, "keep", None, who))
            out.keeps += 1
        else:
            rows.append((example, "relabel", answer, who))
            out.relabels += 1
    checked = decisions.checked(run, [(i, action, label) for i, action, label, _ in rows])
    out.records = [
        {**record, "tool": TOOL, "annotators": who}
        for record, (*_, who) in zip(checked, rows, strict=True)
    ]
    return out


def _majority(votes: list[tuple[str, int]]) -> tuple[int, list[str]] | None:
    """The class most votes chose and who chose it; None when the top two tie."""
    counts = Counter(label for _, label in votes).most_common()
    if len(counts) > 1 and counts[0][1] == counts[1][1]:
        return None
    answer = counts[0][0]
    return answer, sorted({a for a, label in votes if label == answer})


def _read_export(file: Path) -> str:
    try:
        return file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"--from: no file {file}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"--from: cannot read {file} ({err})") from None


def _parse_export(file: Path, text: str) -> list[dict[str, Any]]:
    try:
        tasks = json.loads(text)
    except json.JSONDecodeError as err:
        raise InputError(
            f"{file} is not a whole JSON file ({err.msg} at line {err.lineno}: cut "
            "short?); export the project again as JSON; nothing was written"
        ) from None
    if not isinstance(tasks, list) or not all(isinstance(t, dict) for t in tasks):
        raise InputError(
            f"{file} is not a Label Studio JSON export (a list of tasks); use Export "
            "→ JSON (not JSON-MIN or CSV); nothing was written"
        )
    return tasks


def _given_labels(run: Path) -> dict[int, int]:
    """Every decidable id's given label (class index): training and carved held-out rows."""
    view_table = store.read_scores(run, ["id", "label"])
    given = dict(zip(view_table["id"].astype(int), view_table["label"].astype(int), strict=True))
    held = store.RunDir(run).read_heldout()
    if held is not None and "label" in held.columns:
        given.update(zip(held["id"].astype(int), held["label"].astype(int), strict=True))
    return given


def _winnow_id(task: dict[str, Any], given: dict[int, int]) -> int:
    data = task.get("data")
    value = data.get("id") if isinstance(data, dict) else None
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError("its data has no Winnow `id` (was it sent with `winnow send`?)")
    try:
        example = int(value)
    except ValueError:
        raise InputError(f"its data's id {value!r} is not an integer") from None
    if example not in given:
        raise InputError(f"id {example} is not an example of this run ({len(given):,} examples)")
    return example


def _votes(task: dict[str, Any], names: list[str]) -> list[tuple[str, int]]:
    """(annotator, class index) per completed annotation; cancelled ones are no vote."""
    annotations = task.get("annotations", [])
    if not isinstance(annotations, list):
        raise InputError("its `annotations` is not a list")
    votes = []
    for a in annotations:
        if not isinstance(a, dict) or a.get("was_cancelled"):
            continue  # skipped by the annotator: no answer
        choices = [
            c
            for r in a.get("result") or []
            if isinstance(r, dict) and r.get("from_name") == FROM_NAME
            for c in (r.get("value") or {}).get("choices") or []
        ]
        if not choices:
            continue  # submitted without a choice: no answer either
        if len(choices) > 1:
            raise InputError(f"an annotation chose {len(choices)} labels ({choices}); one only")
        if str(choices[0]) not in names:
            shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
            raise InputError(f"the answer {choices[0]!r} is not a class of this run ({shown})")
        votes.append((_annotator(a), names.index(str(choices[0]))))
    return votes


def _annotator(annotation: dict[str, Any]) -> str:
    """Who answered: Label Studio's `completed_by` (an email, or a user id)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return str(who) if who is not None else "unknown"


def tasks_json(tasks: list[dict[str, Any]]) -> str:
    """The tasks file's text (Label Studio imports a JSON list)."""
    return json.dumps(tasks, indent=1) + "\n"


__all__ = [
    "Received",
    "label_config",
    "label_studio_tasks",
    "read_label_studio_export",
    "tasks_json",
]
