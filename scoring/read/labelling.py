"""Suspects out to a labelling tool (Label Studio, Argilla), annotators' answers back as
decisions.

Label Studio out (`label_studio_tasks`, `label_config`): one task per suspect, in Label
Studio's JSON import format. A task's ``data`` holds the row's Winnow ``id`` (so answers map
back without a lookup table), the given label (``given_label``) and the input: ``image``
(a PNG data URL of the stored display image) or ``text`` (and ``text_pair`` for sentence
pairs, named after the source's input columns in the task's ``data`` too). Its one
``predictions`` entry is Winnow's suggestion as a single choice, ``model_version`` the run's
title and ``score`` the detector's score oriented so that higher = more suspect, so Label
Studio can sort by it. The labelling config names its choices ``label``.

Argilla out (`argilla_records`, `argilla_settings`): one record per suspect in Argilla's own
record format (`rg.Record.from_dict` / `Record.to_dict`, what `dataset.records.from_json`
logs): ``id`` the Winnow id as a string, ``fields`` the image (PNG data URL) or text(s),
``metadata`` the Winnow id, the given label, the detector and its score (higher = more
suspect: sortable in Argilla), ``suggestions`` Winnow's suggested label for the ``label``
question, its ``score`` the model's probability of it (Argilla scores lie in [0, 1]) and its
``agent`` the run's title. `argilla_settings` is the dataset's settings in the format
`rg.Settings.from_json` reads.

Back (`read_answers`): Label Studio's JSON export (a list of tasks, each with its
``annotations``), or Argilla's exported records (`dataset.records.to_json`, nested; or the
flat form of `to_list(flatten=True)` / `to_datasets()`, as a JSON list or JSON lines); which
tool wrote the file is read from its content. Every completed answer is a vote for one class;
a skipped one (Label Studio's cancelled annotation, Argilla's discarded or draft response) is
no vote. Per example: the majority of the votes is the answer, a keep when it is the given
label, else a relabel; an example without votes is left alone; a tie is left undecided and
reported. The whole file is checked before anything is returned: an item without a Winnow
id, an id the run does not hold, a label outside the run's classes, or a file that is not
whole raises InputError naming it (so nothing is written).

Pure pandas / numpy / PIL over a `RunView` (no Streamlit, no torch, no server: talking to
a Label Studio server is `scoring.read.label_studio`'s, through the official SDK).
"""

from __future__ import annotations

import base64
import io
import json
import re
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

# The tools, as decisions.jsonl's ``tool`` and `decisions.BULK_KINDS` name them, and as shown.
TOOLS = {"label-studio": "Label Studio", "argilla": "Argilla"}
FROM_NAME = "label"  # the Choices control's name: answers are read from results naming it
IMAGE_KEY, TEXT_KEYS = "image", ("text", "text_pair")
IMAGE_SIDE = 64  # images are sent enlarged (nearest neighbour) to about this side
WINNOW_ID = "winnow_id"  # Argilla: the metadata property holding the row's Winnow id
# Argilla's server takes lower-case field names of letters, digits, "_" and "-".
ARGILLA_NAME = re.compile(r"^(?=.*[a-z0-9])[a-z0-9_-]+$")


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


def _text_fields(view: RunView, tool: str = "label-studio") -> list[str]:
    """The text keys: the source's input column names where the tool takes them as names."""
    names = [str(c) for c in view.config["dataset"].get("input_cols", [])]
    ok = names and len(names) <= 2 and len(set(names)) == len(names)
    if tool == "argilla":
        ok = ok and all(ARGILLA_NAME.match(n) for n in names)
    else:
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


def suspect_rows(view: RunView, ids: list[int]) -> pd.DataFrame:
    """The `suspects.suspects` rows of `ids` (training rows), in the order of `ids`: what a
    page sends for rows it picked itself (Duplicates: the groups whose labels disagree)."""
    frame = suspects.suspects(view, split="train").set_index("id")
    return frame.loc[[i for i in ids if i in frame.index]].reset_index()


def _name(label: object, names: list[str]) -> str:
    """A label as its class name: `suspects` gives names, the pages' evidence indices."""
    if isinstance(label, str):
        return label
    return names[int(label)]  # type: ignore[call-overload]


def _inputs(view: RunView, ids: np.ndarray, tool: str = "label-studio") -> list[dict[str, str]]:
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
    fields = _text_fields(view, tool)
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


# --- out: Argilla ---------------------------------------------------------------------------


def argilla_settings(view: RunView) -> dict[str, Any]:
    """The Argilla dataset's settings for the run, as `rg.Settings.from_json` reads them.

    One field per input (``image``, or the text column(s)), one single-label question named
    ``label`` over the run's classes in class order, and metadata visible to annotators: the
    given label, the Winnow id, the detector and its score, the split.
    """
    names = [str(n) for n in view.label_names]
    if view.modality == "image":
        fields = [_argilla_field(IMAGE_KEY, "Image", {"type": "image"})]
    else:
        titles = [str(c) for c in view.config["dataset"].get("input_cols", [])]  # as named
        fields = [
            _argilla_field(f, title, {"type": "text", "use_markdown": False})
            for f, title in zip(_text_fields(view, "argilla"), [*titles, *TEXT_KEYS], strict=False)
        ]
    question = {
        "name": FROM_NAME,
        "title": "Label",
        "description": "The right class. Winnow's suggestion is pre-selected; the given "
        "label is in the metadata.",
        "required": True,
        "settings": {
            "type": "label_selection",
            "options": [{"text": n, "value": n} for n in names],
            "visible_options": None,
        },
    }
    metadata = [
        _argilla_metadata("given_label", "Given label", {"type": "terms", "values": names}),
        _argilla_metadata(WINNOW_ID, "Winnow id", {"type": "integer", "min": None, "max": None}),
        _argilla_metadata("detector", "Detector", {"type": "terms", "values": None}),
        _argilla_metadata(
            "suspect_score", "Suspect score", {"type": "float", "min": None, "max": None}
        ),
        _argilla_metadata("split", "Split", {"type": "terms", "values": ["train", "heldout"]}),
    ]
    return {
        "guidelines": (
            f"Examples of {view.title()} that Winnow suspects of a wrong label. Choose the "
            "right class; discard a record you cannot tell. Answers go back with `winnow "
            "receive --run RUN --from EXPORT.json`."
        ),
        "questions": [question],
        "fields": fields,
        "vectors": [],
        "metadata": metadata,
        "allow_extra_metadata": False,
        "distribution": {"strategy": "overlap", "min_submitted": 1},
        "mapping": None,
    }


def _argilla_field(name: str, title: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "title": title, "required": True, "settings": settings}


def _argilla_metadata(name: str, title: str, settings: dict[str, Any]) -> dict[str, Any]:
    shown = {"visible_for_annotators": True}
    return {"name": name, "title": title, **shown, "settings": {**settings, **shown}}


def argilla_records(view: RunView, rows: pd.DataFrame) -> list[dict[str, Any]]:
    """Argilla records for suspects (rows of `suspects.suspects`), in their order.

    Parameters
    ----------
    view : RunView
    rows : DataFrame with id, label, suggested_label, score (and, when there, suggested_prob,
        detector, split)
        The suspects to send; labels as names or class indices.

    Returns
    -------
    list of dict
        Argilla's record format (`rg.Record.from_dict`): ``id``, ``fields``, ``metadata``,
        ``suggestions`` (``label``: value, score, agent).

    Raises
    ------
    InputError
        The run keeps no images or texts of these rows to show (an older or recorded run).
    """
    ids = rows["id"].to_numpy(np.int64)
    inputs = _inputs(view, ids, "argilla")
    title = view.title()
    names = [str(n) for n in view.label_names]
    records = []
    for (_, row), shown in zip(rows.iterrows(), inputs, strict=True):
        metadata: dict[str, Any] = {
            "given_label": _name(row["label"], names),
            WINNOW_ID: int(row["id"]),
        }
        for key, column in (("detector", "detector"), ("split", "split")):
            if isinstance(row.get(column), str):
                metadata[key] = row[column]
        if _finite(row.get("score")):
            metadata["suspect_score"] = float(row["score"])
        prob = row.get("suggested_prob")
        suggestion = {
            "value": _name(row["suggested_label"], names),
            # Argilla takes scores in [0, 1]: the model's probability of its suggestion.
            "score": float(prob) if _finite(prob) else None,
            "agent": title,
        }
        records.append(
            {
                "id": str(int(row["id"])),
                "fields": shown,
                "metadata": metadata,
                "suggestions": {FROM_NAME: suggestion},
            }
        )
    return records


def _finite(value: object) -> bool:
    return isinstance(value, int | float | np.number) and bool(np.isfinite(value))


def records_jsonl(records: list[dict[str, Any]]) -> str:
    """The records file's text: one record per line."""
    return "".join(json.dumps(r) + "\n" for r in records)


# --- back -----------------------------------------------------------------------------------


@dataclass
class Received:
    """What a tool's export says, checked against the run.

    `tool` is which tool wrote it (a key of `TOOLS`); `records` are decision records ready
    for `decisions.append_bulk` (each with ``tool`` and ``annotators``); `ties` the ids left
    undecided because the votes tied; `unanswered` the items without a completed answer
    (skipped, or not labelled yet).
    """

    tool: str = "label-studio"
    records: list[dict[str, Any]] = field(default_factory=list)
    ties: list[int] = field(default_factory=list)
    unanswered: int = 0
    keeps: int = 0
    relabels: int = 0

    @property
    def tool_name(self) -> str:
        """The tool as people name it: "Label Studio", "Argilla"."""
        return TOOLS[self.tool]


def read_answers(run: Path | str, file: Path | str, text: str | None = None) -> Received:
    """Check a labelling tool's export against the run; its answers as decisions.

    Parameters
    ----------
    run : path of a finished run folder
    file : path of the export: Label Studio's JSON export (Export → JSON) or Argilla's
        records (`dataset.records.to_json`, or flattened records as JSON or JSON lines);
        with `text`, only its name (an upload's), for the messages
    text : str, optional
        The export's content, when it is not read from `file` (the app's upload).

    Returns
    -------
    Received

    Raises
    ------
    InputError
        Not a readable, whole JSON list (or JSON lines) of tasks or records, or one of
        neither tool; an item without a Winnow id, or with one the run does not hold; an
        answer outside the run's classes or with several choices. The message names the
        item; nothing is returned then.
    """
    file = Path(file)
    items = _parse_export(file, text if text is not None else _read_export(file))
    tool = _tool_of(items[0], file)
    rd = store.RunDir(run)
    if not rd.config_file.exists() or not rd.scores_file.exists():
        raise InputError(f"{rd.path} is not a finished Winnow run; decisions need its scores")
    names = [str(n) for n in rd.read_config()["dataset"]["label_names"]]
    given = _given_labels(Path(run))
    read_item = _label_studio_item if tool == "label-studio" else _argilla_item
    out = Received(tool=tool)
    rows = []
    for n, item in enumerate(items, start=1):
        try:
            example, votes = read_item(item, given, names)
        except InputError as err:
            raise InputError(f"{_where(file, tool, n, item)}: {err}; nothing was written") from None
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
        {**record, "tool": tool, "annotators": who}
        for record, (*_, who) in zip(checked, rows, strict=True)
    ]
    return out


def _where(file: Path, tool: str, n: int, item: dict[str, Any]) -> str:
    """An item as the messages name it: its place in the file and the tool's own id."""
    if tool == "label-studio":
        return f"{file}, task {n}" + (f" (Label Studio id {item['id']})" if "id" in item else "")
    return f"{file}, record {n}" + (f" (Argilla id {item['id']})" if item.get("id") else "")


def _tool_of(item: dict[str, Any], file: Path) -> str:
    """Which tool wrote the export, from its first item's keys."""
    keys = set(item)
    if "annotations" in keys or ("data" in keys and "fields" not in keys):
        return "label-studio"
    argilla = {"fields", "responses", "suggestions", "metadata", WINNOW_ID}
    if keys & argilla or any(k.startswith(f"{FROM_NAME}.") for k in keys):
        return "argilla"
    raise InputError(
        f"{file} is neither a Label Studio JSON export (tasks with `data` and "
        "`annotations`) nor Argilla's records (with `fields`, `metadata` and `responses`); "
        "export again from the project `winnow send` made; nothing was written"
    )


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
    """The export's items: a JSON list, or JSON lines (one object per line)."""
    try:
        items = json.loads(text)
    except json.JSONDecodeError as err:
        items = _json_lines(file, text) if err.msg == "Extra data" else None
        if items is None:
            raise InputError(
                f"{file} is not a whole JSON file ({err.msg} at line {err.lineno}: cut "
                "short?); export again as JSON; nothing was written"
            ) from None
    if isinstance(items, dict):
        items = [items]  # JSON lines holding one record
    if not isinstance(items, list) or not all(isinstance(t, dict) for t in items):
        raise InputError(
            f"{file} is not a labelling tool's export (a list of tasks or records); use "
            "Label Studio's Export → JSON (not JSON-MIN or CSV) or Argilla's "
            "`dataset.records.to_json`; nothing was written"
        )
    if not items:
        raise InputError(f"{file} holds no tasks or records; nothing was written")
    return items


def _json_lines(file: Path, text: str) -> list[Any]:
    """JSON lines, each line whole; a line cut short is the file's fault, named."""
    items = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            items.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise InputError(
                f"{file}, line {n} is not a whole JSON object ({err.msg}: cut short?); "
                "export again; nothing was written"
            ) from None
    return items


def _given_labels(run: Path) -> dict[int, int]:
    """Every decidable id's given label (class index): training and carved held-out rows."""
    view_table = store.read_scores(run, ["id", "label"])
    given = dict(zip(view_table["id"].astype(int), view_table["label"].astype(int), strict=True))
    held = store.RunDir(run).read_heldout()
    if held is not None and "label" in held.columns:
        given.update(zip(held["id"].astype(int), held["label"].astype(int), strict=True))
    return given


def _checked_id(value: object, given: dict[int, int], where: str) -> int:
    """A Winnow id from an item, checked against the run's ids."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise InputError(f"its {where} has no Winnow `id` (was it sent with `winnow send`?)")
    try:
        example = int(value)
    except ValueError:
        raise InputError(f"its {where}'s id {value!r} is not an integer") from None
    if example not in given:
        raise InputError(f"id {example} is not an example of this run ({len(given):,} examples)")
    return example


def _vote(value: object, names: list[str]) -> int:
    """An answer's class index; refused when it is not one of the run's classes."""
    if str(value) not in names:
        shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
        raise InputError(f"the answer {value!r} is not a class of this run ({shown})")
    return names.index(str(value))


# Label Studio: a task's data names the id; each annotation's `label` choice is a vote.


def _label_studio_item(
    task: dict[str, Any], given: dict[int, int], names: list[str]
) -> tuple[int, list[tuple[str, int]]]:
    data = task.get("data")
    example = _checked_id(data.get("id") if isinstance(data, dict) else None, given, "data")
    return example, _label_studio_votes(task, names)


def _label_studio_votes(task: dict[str, Any], names: list[str]) -> list[tuple[str, int]]:
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
        votes.append((_annotator(a), _vote(choices[0], names)))
    return votes


def _annotator(annotation: dict[str, Any]) -> str:
    """Who answered: Label Studio's `completed_by` (an email, or a user id)."""
    who = annotation.get("completed_by")
    if isinstance(who, dict):
        who = who.get("email") or who.get("id")
    return str(who) if who is not None else "unknown"


# Argilla: the id is metadata's winnow_id (else the record's id); each submitted response to
# the `label` question is a vote. Nested records (`Record.to_dict`) keep no response status
# (Argilla drops it there): a response with a value counts; the flat form says the status.


def _argilla_item(
    record: dict[str, Any], given: dict[int, int], names: list[str]
) -> tuple[int, list[tuple[str, int]]]:
    metadata = record.get("metadata")
    value = metadata.get(WINNOW_ID) if isinstance(metadata, dict) else None
    value = record.get(WINNOW_ID, value)  # the flat form
    example = _checked_id(value if value is not None else record.get("id"), given, "metadata")
    return example, _argilla_votes(record, names)


def _argilla_votes(record: dict[str, Any], names: list[str]) -> list[tuple[str, int]]:
    """(annotator, class index) per submitted response to the `label` question."""
    responses = record.get("responses")
    if isinstance(responses, dict):  # nested: {"label": [{"value", "user_id", "status"?}]}
        answers = responses.get(FROM_NAME) or []
        if not isinstance(answers, list) or not all(isinstance(r, dict) for r in answers):
            raise InputError(f"its responses to `{FROM_NAME}` are not a list of responses")
        given = [(r.get("value"), r.get("user_id"), r.get("status")) for r in answers]
    else:  # flat: label.responses, label.responses.users, label.responses.status
        values = record.get(f"{FROM_NAME}.responses") or []
        users = record.get(f"{FROM_NAME}.responses.users") or [None] * len(values)
        status = record.get(f"{FROM_NAME}.responses.status") or [None] * len(values)
        if not (isinstance(values, list) and len(users) == len(values) == len(status)):
            raise InputError(f"its `{FROM_NAME}.responses` columns do not line up")
        given = list(zip(values, users, status, strict=True))
    votes = []
    for value, user, status in given:
        if value is None or status in ("discarded", "draft"):
            continue  # skipped, or not submitted: no answer
        if isinstance(value, list):
            raise InputError(f"a response chose {len(value)} labels ({value}); one only")
        votes.append((str(user) if user is not None else "unknown", _vote(value, names)))
    return votes


def from_tools(run: Path | str) -> pd.DataFrame:
    """The run's decisions that came from a labelling tool, one line per `winnow receive`.

    Returns
    -------
    DataFrame with columns tool (as people name it), bulk, time, actions (e.g. "relabel 6,
    keep 12"), in_force (int: still the examples' latest decision), annotators (list of
    str); oldest first, empty when no answers were received.
    """
    actions = decisions.bulk_actions(run)
    actions = actions[actions["kind"].isin(list(TOOLS))]
    return pd.DataFrame(
        {
            "tool": [TOOLS[k] for k in actions["kind"]],
            **{c: actions[c].tolist() for c in ("bulk", "time", "actions", "in_force")},
            "annotators": actions["annotators"].tolist(),
        },
        columns=["tool", "bulk", "time", "actions", "in_force", "annotators"],
    )


def tasks_json(tasks: list[dict[str, Any]]) -> str:
    """The tasks file's text (Label Studio imports a JSON list)."""
    return json.dumps(tasks, indent=1) + "\n"


__all__ = [
    "TOOLS",
    "Received",
    "argilla_records",
    "argilla_settings",
    "from_tools",
    "label_config",
    "label_studio_tasks",
    "read_answers",
    "records_jsonl",
    "suspect_rows",
    "tasks_json",
]
