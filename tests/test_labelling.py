"""`winnow send --to label-studio` and `winnow receive`: suspects out as Label Studio tasks,
an export's answers back as decisions (majority per task, skips left alone, ties reported),
and bad exports refused whole, with one line and nothing written.

The exports here are built as Label Studio writes them (Export → JSON: the imported task
with Label Studio's own `id`, and `annotations` with `completed_by`, `result`,
`was_cancelled`). The round trip through a real Label Studio server is
tests/test_label_studio_server.py (slow).
"""

from __future__ import annotations

import base64
import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from scoring.__main__ import main
from scoring.read import decisions, suspects
from scoring.read.views import load_run
from tests.conftest import digits_run, run_cli, text_run


def _send(run: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["send", "--run", str(run), "--to", "label-studio", "--out", str(out), *extra]) == 0
    return json.loads(out.read_text())


def _answer(task: dict, n: int, answers: list[tuple[str, str | None]]) -> dict:
    """`task` as Label Studio exports it once answered: (annotator email, choice), a choice
    of None being a skip."""
    annotations = [
        {
            "id": 100 * n + k,
            "completed_by": {"id": k + 1, "email": who},
            "was_cancelled": choice is None,
            "result": []
            if choice is None
            else [
                {
                    "from_name": "label",
                    "to_name": "image",
                    "type": "choices",
                    "value": {"choices": [choice]},
                }
            ],
        }
        for k, (who, choice) in enumerate(answers)
    ]
    return {**task, "id": 5000 + n, "annotations": annotations}


def test_send_writes_the_flagged_suspects_with_their_suggestion_and_the_config(app_cache, tmp_path):
    run = digits_run(app_cache)
    view = load_run(run)
    tasks = _send(run, tmp_path / "tasks.json")
    frame = suspects.suspects(view)
    flagged = int(frame["flagged"].sum())
    assert len(tasks) == flagged  # by default: the rows cleanlab flags, in suspect order
    head = frame.head(flagged)
    assert [t["data"]["id"] for t in tasks] == head["id"].tolist()
    assert [t["data"]["given_label"] for t in tasks] == head["label"].tolist()
    for task, (_, row) in zip(tasks, head.iterrows(), strict=True):
        (pred,) = task["predictions"]
        assert pred["result"][0]["value"]["choices"] == [row["suggested_label"]]
        assert pred["result"][0]["from_name"] == "label"
        assert pred["score"] == row["score"] and pred["model_version"] == view.title()
    # The image is the stored one, enlarged to 64 px: decode the first and compare.
    png = base64.b64decode(tasks[0]["data"]["image"].split(",", 1)[1])
    shown = np.asarray(Image.open(io.BytesIO(png)))
    want = suspects.load_example_images(view, [tasks[0]["data"]["id"]], size=64)[0]
    assert shown.shape == (64, 64) and (shown == want).all()
    config = ET.fromstring((tmp_path / "tasks.label_config.xml").read_text())
    choices = config.find("Choices")
    assert choices.get("name") == "label" and choices.get("toName") == "image"
    assert [c.get("value") for c in choices] == [str(n) for n in view.label_names]


def test_send_top_and_from_a_suspects_file(app_cache, tmp_path):
    run = digits_run(app_cache)
    assert len(_send(run, tmp_path / "top.json", "--top", "3")) == 3
    frame = suspects.suspects(load_run(run), split="heldout")
    ids = frame["id"].tolist()[5:1:-1]  # four held-out ids, in an order of our own
    lines = "".join(json.dumps({"id": i, "note": "mine"}) + "\n" for i in ids)
    (tmp_path / "mine.jsonl").write_text(lines)
    tasks = _send(run, tmp_path / "mine.json", "--from", str(tmp_path / "mine.jsonl"))
    assert [t["data"]["id"] for t in tasks] == ids


def test_a_text_runs_tasks_carry_the_texts_under_their_column_names(app_cache, tmp_path):
    run = text_run(app_cache)
    tasks = _send(run, tmp_path / "t.json", "--top", "4")
    view = load_run(run)
    texts = suspects.load_texts(view, [t["data"]["id"] for t in tasks])
    assert [t["data"]["premise"] for t in tasks] == texts["premise"].tolist()
    assert [t["data"]["hypothesis"] for t in tasks] == texts["hypothesis"].tolist()
    config = ET.fromstring((tmp_path / "t.label_config.xml").read_text())
    assert [e.get("name") for e in config.findall("Text")] == ["premise", "hypothesis"]
    assert config.find("Choices").get("toName") == "premise"


def test_receive_records_each_majority_with_its_annotators(app_cache, tmp_path, capsys):
    run = digits_run(app_cache)
    tasks = _send(run, tmp_path / "tasks.json", "--top", "6")
    names = [str(n) for n in load_run(run).label_names]
    given = [t["data"]["given_label"] for t in tasks]
    other = [names[(names.index(g) + 1) % len(names)] for g in given]
    export = [
        _answer(tasks[0], 0, [("ann@x.org", other[0])]),  # relabel
        _answer(tasks[1], 1, [("ann@x.org", given[1])]),  # keep
        _answer(tasks[2], 2, [("ann@x.org", None)]),  # skipped: left alone
        _answer(tasks[3], 3, [("a@x.org", other[3]), ("b@x.org", given[3])]),  # a tie
        _answer(tasks[4], 4, [("a@x.org", other[4]), ("b@x.org", other[4]), ("c@x.org", given[4])]),
        {**tasks[5], "id": 5005, "annotations": []},  # not labelled yet
    ]
    (tmp_path / "export.json").write_text(json.dumps(export))
    capsys.readouterr()
    assert main(["receive", "--run", str(run), "--from", str(tmp_path / "export.json")]) == 0
    err = capsys.readouterr().err
    assert "3 decision(s) from Label Studio (1 keep, 2 relabel)" in err
    assert "2 task(s) without an answer left alone" in err
    assert f"tied on 1 example(s), left undecided: ids {tasks[3]['data']['id']}" in err
    lines = [json.loads(x) for x in decisions.path_of(run).read_text().splitlines()]
    got = {r["id"]: r for r in lines}
    ids = [t["data"]["id"] for t in tasks]
    assert set(got) == {ids[0], ids[1], ids[4]}
    assert got[ids[0]]["action"] == "relabel" and got[ids[0]]["new_label"] == names.index(other[0])
    assert got[ids[1]]["action"] == "keep" and got[ids[1]]["annotators"] == ["ann@x.org"]
    assert got[ids[4]]["new_label"] == names.index(other[4])
    assert got[ids[4]]["annotators"] == ["a@x.org", "b@x.org"]  # the majority's
    assert {r["tool"] for r in lines} == {"label-studio"}
    assert {r["bulk_kind"] for r in lines} == {"label-studio"}  # one bulk action: undoable
    latest = decisions.latest(run).set_index("id")
    assert latest.loc[ids[0], "action"] == "relabel" and ids[2] not in latest.index


def _bad(run: Path, tmp_path: Path, export: object | str) -> tuple[int, str]:
    file = tmp_path / "bad.json"
    file.write_text(export if isinstance(export, str) else json.dumps(export))
    out = run_cli("receive", "--run", str(run), "--from", str(file), cache=tmp_path)
    return out.returncode, out.stderr


def test_bad_exports_exit_2_with_one_line_and_write_nothing(app_cache, tmp_path):
    run = digits_run(app_cache)
    tasks = _send(run, tmp_path / "tasks.json", "--top", "3")
    good = [_answer(t, n, [("a@x.org", t["data"]["given_label"])]) for n, t in enumerate(tasks)]
    unknown = [*good[:2], {**good[2], "data": {**good[2]["data"], "id": 10**9}}]
    outside = [*good[:2], _answer(tasks[2], 2, [("a@x.org", "not-a-class")])]
    truncated = json.dumps(good)[:-40]
    cases = {
        "unknown id": (unknown, "task 3 (Label Studio id 5002): id 1000000000 is not an example"),
        "outside": (outside, "the answer 'not-a-class' is not a class of this run"),
        "truncated": (truncated, "is not a whole JSON file"),
        "not tasks": ({"tasks": good}, "is neither a Label Studio JSON export"),
        "no id": ([{**good[0], "data": {"image": "x"}}], "its data has no Winnow `id`"),
    }
    for name, (export, message) in cases.items():
        code, err = _bad(run, tmp_path, export)
        assert code == 2, (name, err)
        assert message in err and len(err.strip().splitlines()) == 1, (name, err)
        assert not decisions.path_of(run).exists(), name  # nothing written


def test_send_refuses_bad_flags_with_one_line(app_cache, tmp_path):
    run = digits_run(app_cache)
    cases = {
        ("--to", "cvat", "--out", str(tmp_path / "t.json")): "--to must be one of label-studio",
        ("--to", "label-studio", "--out", str(tmp_path / "t.csv")): "--out must name a .json",
        ("--to", "label-studio", "--out", str(tmp_path / "no" / "t.json")): "no folder",
        ("--to", "label-studio", "--out", str(tmp_path / "t.json"), "--top", "0"): "--top must",
    }
    for flags, message in cases.items():
        out = run_cli("send", "--run", str(run), *flags, cache=tmp_path)
        assert out.returncode == 2 and message in out.stderr, (flags, out.stderr)
    assert not list(tmp_path.glob("t*.json"))
    frame = pd.DataFrame({"id": [10**9]})
    (tmp_path / "s.jsonl").write_text(frame.to_json(orient="records", lines=True))
    out = run_cli(
        "send", "--run", str(run), "--to", "label-studio", "--out", str(tmp_path / "t.json"),
        "--from", str(tmp_path / "s.jsonl"), cache=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2 and "id 1000000000 is not a suspect of this run" in out.stderr


def test_tasks_name_the_labels_when_the_rows_give_class_indices(app_cache):
    """The pages' evidence holds class indices, `suspects` names: the tasks say names."""
    from scoring.read import labelling

    view = load_run(text_run(app_cache))
    rows = suspects.suspects(view).head(4)
    names = list(view.label_names)
    indexed = rows.assign(
        label=[names.index(n) for n in rows["label"]],
        suggested_label=[names.index(n) for n in rows["suggested_label"]],
    )
    assert labelling.label_studio_tasks(view, indexed) == labelling.label_studio_tasks(view, rows)
    assert {t["data"]["given_label"] for t in labelling.label_studio_tasks(view, rows)} <= {
        "no",
        "yes",
    }


def test_a_server_that_cannot_be_reached_is_one_line_and_nothing_is_written(
    app_cache, tmp_path, monkeypatch
):
    for name in ("LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    run = digits_run(app_cache)
    flags = ("--url", "http://127.0.0.1:9", "--api-key", "k")  # port 9: nothing listens
    out = run_cli(
        "send", "--run", str(run), "--to", "label-studio", "--top", "2", *flags,
        "--out", str(tmp_path / "t.json"), cache=tmp_path,
    )  # fmt: skip
    assert out.returncode == 2 and "cannot reach Label Studio at http://127.0.0.1:9" in out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and not (tmp_path / "t.json").exists()
    got = run_cli("receive", "--run", str(run), "--project", "3", *flags, cache=tmp_path)
    assert got.returncode == 2 and "cannot reach Label Studio" in got.stderr
    alone = run_cli("receive", "--run", str(run), "--project", "3", cache=tmp_path)
    assert alone.returncode == 2 and "needs a URL and an API key" in alone.stderr
    assert not decisions.path_of(run).exists()
