"""The user's keep / relabel / drop decisions, saved the moment they are made.

Decisions live in `<run>/decisions.jsonl`, one JSON object per line::

    {"id": 17, "action": "relabel", "new_label": 3, "time": "2025-01-01T12:00:00+00:00"}

A decision made in the Mislabeled page's *evaluation mode* (the injected noise's truth shown
on the cards) carries ``"evaluation": true``: it was made knowing which labels were flipped,
so a sweep that applies decisions refuses it unless asked (`refuse_evaluation`).

The file is append-only: a decision is never rewritten, a later line for the same id wins,
and the action `clear` (undo) withdraws the id's decision. Each line goes out in a single
`os.write` on a file opened with `O_APPEND`, followed by `fsync`, so a crash loses at most the
line being written and can never leave a half line glued to the next one (a partial tail is
first closed with a newline). The reader skips lines it cannot parse, so a truncated last line
costs that one decision, never the file. Because it is only a file, decisions survive app
restarts and are read by `export` the same way.

A *bulk action* (`winnow decide --from FILE.csv`, `--accept-suggestions`, the Mislabeled
page's bulk accept) writes all its lines in one write, each carrying the action's id and
kind::

    {"id": 17, "action": "relabel", "new_label": 3, "time": "...",
     "bulk": "20250101-120000-a1b2c3", "bulk_kind": "accept-suggestions"}

so it can be listed (`bulk_actions`) and undone (`undo_bulk`) in any later session. Undoing
appends, for each example whose latest line is still the bulk's, the decision that was in
force before it (`clear` when there was none), marked ``"undoes": "<bulk id>"``; an example
decided again since keeps that later decision. Single decisions carry none of these fields,
and files written before bulk ids existed read as they always did.
"""

from __future__ import annotations

import csv
import json
import os
import secrets
import warnings
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from scoring import store
from scoring.errors import InputError

ACTIONS = ("keep", "relabel", "drop")
CLEAR = "clear"  # undo: withdraws the id's current decision
COLUMNS = ["id", "action", "new_label", "time", "evaluation"]
# `history(with_bulk=True)` only: the bulk action's marks, and who answered in a labelling
# tool (`winnow receive`: "annotators", a tuple of names).
BULK_COLUMNS = ["bulk", "bulk_kind", "undoes", "annotators"]
# What wrote a bulk action, as `bulk_actions` and the pages name it.
BULK_KINDS = {
    "csv": "winnow decide --from FILE.csv",
    "accept-suggestions": "winnow decide --accept-suggestions",
    "mislabeled-accept": "the Mislabeled page's bulk accept",
    "label-studio": "winnow receive (Label Studio's answers)",
    "argilla": "winnow receive (Argilla's answers)",
}


def path_of(run: Path | str) -> Path:
    """Where a run's decisions are kept."""
    return store.RunDir(run).decisions_file


def append(
    run: Path | str,
    id: int,
    action: str,
    new_label: int | None = None,
    *,
    evaluation: bool = False,
) -> dict:
    """Validate one decision and append it to `<run>/decisions.jsonl` durably.

    Parameters
    ----------
    run : path of a finished run folder
    id : int
        The example's stable id (a value of the run's `id` column, not a row number): a
        training row, or a held-out row carved from the same source (`decidable_ids`).
    action : "keep" | "relabel" | "drop" | "clear"
        `clear` withdraws the current decision for `id`.
    new_label : int, required for "relabel" only
        Index into the run's label names.
    evaluation : bool
        Made while the injected noise's truth was shown (the Mislabeled page's evaluation
        mode): the record says so.

    Returns
    -------
    dict
        The record written (id, action, new_label, time).

    Raises
    ------
    InputError
        Unknown action, unknown id, missing or out-of-range `new_label`, or a folder that is
        not a run.
    """
    run = Path(run)
    if action not in (*ACTIONS, CLEAR):
        raise InputError(f"decision must be one of {', '.join((*ACTIONS, CLEAR))}, got {action!r}")
    rd = store.RunDir(run)
    _require_run(rd)
    record = _checked(rd, decidable_ids(run), id, action, new_label)
    if evaluation:  # only then: lines made without the truth stay as they always were
        record["evaluation"] = True
    _append_line(path_of(run), json.dumps(record) + "\n")
    return record


def decidable_ids(run: Path | str) -> pd.Index:
    """The ids a decision may name: the training rows, and the held-out rows when the
    held-out split was carved from the same source (then they are part of the user's data,
    reviewed and exported like the rest).

    Returns
    -------
    pandas Index of int64, unique
    """
    rd = store.RunDir(run)
    ids = rd.read_scores(columns=["id"])["id"].to_numpy(np.int64)
    if rd.read_config()["dataset"].get("test_origin") == "carved":
        held = rd.read_heldout()
        if held is not None:
            ids = np.concatenate([ids, held["id"].to_numpy(np.int64)])
    return pd.Index(ids)


def label_index(names: list[str], text: str | int) -> int:
    """The class index a user named: a label name, or a class index when unambiguous.

    Parameters
    ----------
    names : list of str
        The run's label names (index = class id).
    text : str or int
        A name (exact, then case-insensitive when that is unique), or an index in
        [0, n_classes) that is not also the name of another class.

    Raises
    ------
    InputError
        No such label, or a text that names one class and indexes another.
    """
    text = str(text).strip()
    by_name = [i for i, n in enumerate(names) if n == text]
    if not by_name:
        by_name = [i for i, n in enumerate(names) if n.lower() == text.lower()]
    by_index = int(text) if text.lstrip("-").isdigit() else None
    if by_index is not None and not 0 <= by_index < len(names):
        by_index = None
    if len(by_name) == 1 and (by_index is None or by_index == by_name[0]):
        return by_name[0]
    if len(by_name) > 1:
        raise InputError(f"label {text!r} matches several classes ignoring case; spell it exactly")
    if by_name and by_index is not None:
        raise InputError(
            f"label {text!r} is the name of class {by_name[0]} and the index of class "
            f"{names[by_index]!r}; give the name of the class you mean"
        )
    if by_index is not None:
        return by_index
    shown = ", ".join(names[:20]) + (" ..." if len(names) > 20 else "")
    raise InputError(f"unknown label {text!r}; this run's labels are: {shown}")


def read_bulk(run: Path | str, file: Path | str) -> list[dict]:
    """Validate every row of a bulk decisions CSV (columns id, action, label) before any write.

    `label` is needed for `relabel` only (a name, or a class index when unambiguous:
    `label_index`); `action` is keep, relabel, drop or clear.

    Returns
    -------
    list of dict (id, action, new_label)
        Ready for `append_many`.

    Raises
    ------
    InputError
        An unreadable file, missing columns, or any bad row (the first, with its line number):
        then nothing is written.
    """
    file = Path(file)
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise InputError(f"--from: no file {file}") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as err:
        raise InputError(f"--from: {file} is not a readable CSV file ({err})") from None
    # pandas renames a repeated header ("id" -> "id.1"): read the header as written.
    with file.open(encoding="utf-8", errors="replace", newline="") as f:
        header = [c.strip().lower() for c in next(csv.reader(f), [])]
    twice = sorted({c for c in header if header.count(c) > 1 and c})
    if twice:
        raise InputError(
            f"--from: {file} names column(s) {', '.join(twice)} more than once in its header; "
            "keep one of each (id, action, label)"
        )
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    missing = [c for c in ("id", "action") if c not in frame.columns]
    if missing:
        raise InputError(
            f"--from: {file} lacks column(s) {', '.join(missing)}; expected id, action, label"
        )
    rd = store.RunDir(run)
    _require_run(rd)
    names = rd.read_config()["dataset"]["label_names"]
    ids = decidable_ids(run)
    records = []
    for line, row in enumerate(frame.to_dict("records"), start=2):  # line 1 is the header
        try:
            text = row["id"].strip()
            if not text.lstrip("-").isdigit():
                raise InputError(f"id must be an integer, got {text!r}")
            action = row["action"].strip().lower()
            label = row.get("label", "").strip()
            new_label = label_index(names, label) if action == "relabel" and label else None
            if action != "relabel" and label:
                raise InputError(f"a label only goes with relabel, not with {action!r}")
            records.append(_checked(rd, ids, int(text), action, new_label))
        except InputError as err:
            raise InputError(f"--from {file}, line {line}: {err}; nothing was written") from None
    return records


def append_many(run: Path | str, records: list[dict]) -> int:
    """Append already validated decisions (`read_bulk`, `checked`) in order, as plain
    decisions; returns how many. A bulk action the user may undo goes through `append_bulk`."""
    lines = "".join(json.dumps(r) + "\n" for r in records)
    if lines:
        _append_line(path_of(run), lines)  # one write: the bulk lands whole or not at all
    return len(records)


def append_bulk(
    run: Path | str, records: list[dict], kind: str, *, evaluation: bool = False
) -> str | None:
    """Append already validated decisions (`read_bulk`, `checked`) as one bulk action.

    Every line carries the action's new id (``"bulk"``) and `kind` (``"bulk_kind"``), and
    all of them go out in one write, so the action lands whole or not at all.

    Parameters
    ----------
    run : path of a finished run folder
    records : list of dict (id, action, new_label, time)
        In order; a later record for the same id wins, as in the file.
    kind : one of `BULK_KINDS`
        What made the action.
    evaluation : bool
        Made in evaluation mode (see `append`): every line says so.

    Returns
    -------
    str or None
        The bulk id (for `undo_bulk`), or None when `records` is empty and nothing was written.
    """
    if kind not in BULK_KINDS:  # a programming error, not the user's: no InputError
        raise ValueError(f"bulk kind must be one of {', '.join(BULK_KINDS)}, got {kind!r}")
    if not records:
        return None
    # Seconds for reading, a random suffix so two actions in one second never share an id.
    bulk = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"
    marked = [{**r, "bulk": bulk, "bulk_kind": kind} for r in records]
    if evaluation:
        marked = [{**r, "evaluation": True} for r in marked]
    append_many(run, marked)
    return bulk


def bulk_actions(run: Path | str) -> pd.DataFrame:
    """Every bulk action in the run's decisions file, oldest first.

    Returns
    -------
    DataFrame, one row per bulk id, with columns
        bulk (str): the id `undo_bulk` takes; time (str, ISO 8601 UTC, its first line's);
        kind (str, a key of `BULK_KINDS`); actions (str, e.g. "relabel 37, drop 2");
        decisions (int): lines it wrote; in_force (int): examples whose latest line is still
        the action's, what an undo would change; undone (bool): `undo_bulk` wrote for it;
        annotators (list of str): who answered, for a labelling tool's answers (else empty).
    """
    frame = history(run, with_bulk=True)
    undone = set(frame["undoes"].dropna())
    wrote = frame[frame["bulk"].notna()]  # undo lines carry `undoes`, no bulk id
    in_force = frame.drop_duplicates("id", keep="last")["bulk"].value_counts()
    rows = []
    for bulk, lines in wrote.groupby("bulk", sort=False):  # first-appearance order: the log's
        counts = lines["action"].value_counts()
        rows.append(
            {
                "bulk": bulk,
                "time": lines["time"].iloc[0],
                "kind": lines["bulk_kind"].iloc[0],
                "actions": ", ".join(f"{a} {n}" for a, n in counts.items()),
                "decisions": len(lines),
                "in_force": int(in_force.get(bulk, 0)),
                "undone": bulk in undone,
                "annotators": sorted({a for names in lines["annotators"].dropna() for a in names}),
            }
        )
    columns = ["bulk", "time", "kind", "actions", "decisions", "in_force", "undone", "annotators"]
    return pd.DataFrame(rows, columns=columns).astype(
        {"decisions": "int64", "in_force": "int64", "undone": "bool"}
    )


def undo_bulk(run: Path | str, bulk: str) -> int:
    """Undo a bulk action: put back, for every example whose latest line is still the
    action's, the decision in force before it (`clear` when there was none).

    An example decided again after the action keeps that later decision; undoing twice
    writes nothing the second time. The lines go out in one write, each marked
    ``"undoes": bulk``.

    Parameters
    ----------
    run : path of a finished run folder
    bulk : str
        A bulk id, as `append_bulk` returned it and `bulk_actions` lists it.

    Returns
    -------
    int
        How many examples went back (0 when every one was decided again or already undone).

    Raises
    ------
    InputError
        No bulk action with that id in the run's decisions file (the message lists them).
    """
    rd = store.RunDir(run)
    _require_run(rd)
    frame = history(run, with_bulk=True)
    known = frame["bulk"].dropna().unique().tolist()  # undo lines carry no bulk id
    if bulk not in known:
        shown = ", ".join(known[-20:]) if known else "none"
        raise InputError(
            f"no bulk action {bulk!r} in {path_of(run)}; its bulk actions are: {shown} "
            "(`winnow decide --run RUN --list-bulk` lists them)"
        )
    last = frame.drop_duplicates("id", keep="last")
    targets = last[last["bulk"] == bulk]  # still the action's: an undo changes these only
    # One write holds all of an action's lines, so for each target id they are its last
    # ones: what came before them is the decision to put back.
    earlier = frame[frame["id"].isin(targets["id"]) & (frame["bulk"] != bulk)]
    prior = earlier.drop_duplicates("id", keep="last").set_index("id")
    now = datetime.now(UTC).isoformat(timespec="seconds")
    records = []
    for example, action in zip(targets["id"], targets["action"], strict=True):
        back = _restored(prior.loc[example] if example in prior.index else None, action)
        if back is not None:
            records.append({"id": int(example), **back, "time": now, "undoes": bulk})
    return append_many(run, records)


def _restored(prior: pd.Series | None, undone_action: str) -> dict | None:
    """The decision `undo_bulk` writes back: `prior`'s, `clear` when there was none, or None
    when the bulk's line was a clear over no decision (nothing to undo)."""
    if prior is None or prior["action"] == CLEAR:
        return None if undone_action == CLEAR else {"action": CLEAR, "new_label": None}
    record = {
        "action": prior["action"],
        "new_label": None if pd.isna(prior["new_label"]) else int(prior["new_label"]),
    }
    if prior["evaluation"]:
        record["evaluation"] = True
    return record


def checked(run: Path | str, rows: list[tuple[int, str, int | None]]) -> list[dict]:
    """Validate decisions (id, action, new_label) made by code, for `append_many`.

    Raises
    ------
    InputError
        The first bad one; nothing is written.
    """
    rd = store.RunDir(run)
    _require_run(rd)
    ids = decidable_ids(run)
    return [_checked(rd, ids, i, action, label) for i, action, label in rows]


def _require_run(rd: store.RunDir) -> None:
    if not rd.config_file.exists() or not rd.scores_file.exists():
        raise InputError(f"{rd.path} is not a finished Winnow run; decisions need its scores")


def _checked(rd: store.RunDir, ids: pd.Index, id: object, action: str, new_label: object) -> dict:
    """One validated decision record (id, action, new_label, time)."""
    if action not in (*ACTIONS, CLEAR):
        raise InputError(f"decision must be one of {', '.join((*ACTIONS, CLEAR))}, got {action!r}")
    example = _as_int(id, "id")
    if not ids.isin([example]).any():
        raise InputError(f"example id {example} is not in this run ({len(ids):,} examples)")
    if action == "relabel":
        if new_label is None:
            raise InputError("a relabel decision needs new_label (the index of the new class)")
        label = _as_int(new_label, "new_label")
        names = rd.read_config()["dataset"]["label_names"]
        if not 0 <= label < len(names):
            raise InputError(
                f"new_label must be a class index in [0, {len(names) - 1}], got {label}"
            )
    elif new_label is not None:
        raise InputError(f"new_label only goes with relabel, not with {action!r}")
    else:
        label = None
    return {
        "id": example,
        "action": action,
        "new_label": label,
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def history(run: Path | str, *, with_bulk: bool = False) -> pd.DataFrame:
    """Every readable decision line, oldest first (clears included).

    Parameters
    ----------
    run : path of a run folder
    with_bulk : bool
        Add the bulk columns (`BULK_COLUMNS`); off, the frame is what it always was.

    Returns
    -------
    DataFrame with columns id (int64), action (str), new_label (Int64, <NA> unless relabel),
    time (str, ISO 8601 UTC), evaluation (bool: made in evaluation mode), and with `with_bulk`
    bulk, bulk_kind, undoes (str, None on lines without them) and annotators (tuple of str,
    None on lines without them). Lines that do not parse (a
    line cut short by a crash, garbage) are skipped with a warning, and counted in
    ``frame.attrs["skipped_lines"]``.
    """
    file = path_of(run)
    records, skipped = [], 0
    if file.exists():
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            record = _parse(line)
            if record is not None:
                records.append(record)
            elif line.strip():
                skipped += 1
    if skipped:  # decisions are the user's work: say that some were unreadable, keep the rest
        warnings.warn(skipped_message(file, skipped), stacklevel=2)
    frame = pd.DataFrame(records, columns=COLUMNS + BULK_COLUMNS if with_bulk else COLUMNS)
    frame = frame.astype(
        {
            "id": "int64",
            "action": "object",
            "new_label": "Int64",
            "time": "object",
            "evaluation": "bool",
        }
        | dict.fromkeys(BULK_COLUMNS if with_bulk else [], "object")
    )
    frame.attrs["skipped_lines"] = skipped  # pages show `skipped_message` from it
    return frame


def skipped_message(file: Path, skipped: int) -> str:
    """What to tell the user about `skipped` unreadable lines in a decisions file."""
    return (
        f"{file}: skipped {skipped} unreadable line(s) (damaged or cut short); every other "
        "decision is kept, and new decisions are appended after them"
    )


def latest(run: Path | str) -> pd.DataFrame:
    """The current decision per example: the last line per id wins, `clear` removes it.

    Returns
    -------
    DataFrame with columns id, action, new_label, time, evaluation (as in `history`), one
    row per decided id, in the order the ids were last decided.
    """
    frame = history(run)
    skipped = frame.attrs.get("skipped_lines", 0)
    frame = frame.drop_duplicates("id", keep="last")
    frame = frame[frame["action"] != CLEAR].reset_index(drop=True)
    frame.attrs["skipped_lines"] = skipped
    return frame


def _as_int(value: object, name: str) -> int:
    """An integer, accepting numpy integers; refusing bools, floats and strings."""
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        raise InputError(f"{name} must be an integer, got {value!r}")
    return int(value)  # type: ignore[call-overload]


def _parse(line: str) -> dict | None:
    """One decision record, or None for a blank, cut-short or foreign line."""
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or record.get("action") not in (*ACTIONS, CLEAR):
        return None
    example, label = record.get("id"), record.get("new_label")
    if not isinstance(example, int) or isinstance(example, bool):
        return None
    if record["action"] == "relabel" and not isinstance(label, int):
        return None
    return {
        "id": example,
        "action": record["action"],
        "new_label": label if record["action"] == "relabel" else None,
        "time": record.get("time"),
        "evaluation": record.get("evaluation") is True,
        # Only strings: a hand-edited or foreign value reads as no bulk at all.
        **{k: record[k] if isinstance(record.get(k), str) else None for k in BULK_COLUMNS},
        "annotators": _names(record.get("annotators")),
    }


def _names(value: object) -> tuple[str, ...] | None:
    """A labelling tool's annotators as written by `winnow receive`; None otherwise."""
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return None
    return tuple(value)


def refuse_evaluation(latest: pd.DataFrame, allow: bool, flag: str) -> None:
    """Refuse decisions made in evaluation mode, unless the user allowed them.

    Parameters
    ----------
    latest : DataFrame
        As from `latest` (the decisions in force).
    allow : bool
        The user asked for them anyway (a sweep then measures a review that knew the truth).
    flag : str
        How the user allows them (a CLI flag or a page's checkbox), for the message.

    Raises
    ------
    InputError
        Some decision in force was made in evaluation mode and `allow` is False.
    """
    if allow or latest.empty or "evaluation" not in latest:
        return
    made = int(latest["evaluation"].sum())
    if made:
        raise InputError(
            f"{made} of the {len(latest)} decisions in force were made in evaluation mode "
            "(the injected noise's truth was on the cards), so a sweep applying them would "
            f"measure a review that knew the answers; redo them without it, or pass {flag}"
        )


def _append_line(file: Path, line: str) -> None:
    """Append `line` in one write, after closing any half line a crash left behind."""
    file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(file, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        size = os.fstat(fd).st_size
        if size and not _ends_with_newline(file, size):
            line = "\n" + line  # isolate the partial line so it cannot swallow this one
        data = line.encode("utf-8")
        written = os.write(fd, data)
        while written < len(data):  # regular files write fully; loop only to be safe
            written += os.write(fd, data[written:])
        os.fsync(fd)
    finally:
        os.close(fd)


def _ends_with_newline(file: Path, size: int) -> bool:
    with open(file, "rb") as f:
        f.seek(size - 1)
        return f.read(1) == b"\n"
