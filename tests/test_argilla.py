"""`winnow send --to argilla` and `winnow receive` on Argilla's exports, checked with the
`argilla` package's own classes (no Argilla server here).

Out: every line of the records file is a record `rg.Record.from_dict` builds, and the
settings file is what `rg.Settings.from_json` reads; the records pass the same ingestion
`dataset.records.log` runs before it sends them (fields, metadata, the suggestion checked
against the dataset's settings). Back: the answered records are written by Argilla's own
exporters (`JsonIO.to_json`, what `dataset.records.to_json` calls; and the flattened form of
`to_list(flatten=True)`), and `winnow receive` turns them into decisions.

The argilla client checks its server when it is made; here that check is skipped
(`_validate_connection`), so the settings and dataset objects are built offline and no
request is ever sent.
"""

from __future__ import annotations

import base64
import io
import json
import uuid
from pathlib import Path

import pytest
from PIL import Image

from scoring.__main__ import main
from scoring.read import decisions, labelling, suspects
from scoring.read.views import load_run
from tests.conftest import digits_run, run_cli, text_run

rg = pytest.importorskip("argilla")
from argilla.records._io import GenericIO, JsonIO  # noqa: E402

USERS = {name: uuid.UUID(int=k + 1) for k, name in enumerate(("ann", "bob", "cyd"))}


@pytest.fixture
def offline_client(monkeypatch):
    """An argilla client that never talks to a server (its connection check skipped)."""
    monkeypatch.setattr(rg.Argilla, "_validate_connection", lambda self: None)
    return rg.Argilla(api_url="http://argilla.invalid", api_key="offline")


def _send(run: Path, out: Path, *extra: str) -> list[dict]:
    assert main(["send", "--run", str(run), "--to", "argilla", "--out", str(out), *extra]) == 0
    text = out.read_text()
    return json.loads(text) if out.suffix == ".json" else [json.loads(x) for x in text.splitlines()]


def _dataset(settings_file: Path) -> rg.Dataset:
    return rg.Dataset(name="winnow-suspects", settings=rg.Settings.from_json(settings_file))


def test_records_are_argillas_records_with_the_suggestion_and_its_score(
    app_cache, tmp_path, offline_client
):
    run = digits_run(app_cache)
    lines = _send(run, tmp_path / "records.jsonl", "--top", "6")
    view = load_run(run)
    expected = suspects.suspects(view).head(6)
    dataset = _dataset(tmp_path / "records.settings.json")
    names = [str(n) for n in view.label_names]
    assert dataset.settings.questions["label"].labels == names
    assert [f.name for f in dataset.settings.fields] == ["image"]
    records = [rg.Record.from_dict(x) for x in lines]
    models = dataset.records._ingest_records(records, mapping=None, user_id=USERS["ann"])
    assert len(models) == 6  # what `dataset.records.log` would send, built without error
    for line, record, (_, row) in zip(lines, records, expected.iterrows(), strict=True):
        assert record.id == str(row["id"]) and record.metadata["winnow_id"] == row["id"]
        assert record.metadata["given_label"] == row["label"]
        assert record.metadata["suspect_score"] == pytest.approx(row["score"])
        assert record.metadata["detector"] == row["detector"]
        suggestion = record.suggestions["label"]
        assert suggestion.value == row["suggested_label"] and suggestion.value in names
        assert suggestion.score == pytest.approx(row["suggested_prob"])
        assert suggestion.agent == view.title()
        head, data = line["fields"]["image"].split(",", 1)
        assert head == "data:image/png;base64"
        sent = Image.open(io.BytesIO(base64.b64decode(data)))
        assert min(sent.size) >= 32
        assert record.fields["image"].size == sent.size  # argilla decoded the data URL


def test_a_json_out_is_the_list_dataset_records_from_json_reads(app_cache, tmp_path):
    run = digits_run(app_cache)
    lines = _send(run, tmp_path / "records.json", "--top", "3")
    assert (tmp_path / "records.settings.json").exists()
    read = JsonIO._records_from_json(tmp_path / "records.json")  # `records.from_json`'s reader
    assert [r.id for r in read] == [x["id"] for x in lines]
    assert [r.suggestions["label"].value for r in read] == [
        x["suggestions"]["label"]["value"] for x in lines
    ]


def test_a_text_runs_records_carry_the_texts_under_their_column_names(
    app_cache, tmp_path, offline_client
):
    run = text_run(app_cache)
    lines = _send(run, tmp_path / "r.jsonl", "--top", "4")
    dataset = _dataset(tmp_path / "r.settings.json")
    assert [f.name for f in dataset.settings.fields] == ["premise", "hypothesis"]
    texts = suspects.load_texts(load_run(run), [x["metadata"]["winnow_id"] for x in lines])
    assert [x["fields"]["premise"] for x in lines] == texts["premise"].tolist()
    assert [x["fields"]["hypothesis"] for x in lines] == texts["hypothesis"].tolist()
    records = [rg.Record.from_dict(x) for x in lines]
    assert len(dataset.records._ingest_records(records, mapping=None, user_id=USERS["ann"])) == 4


def _answered(lines: list[dict], answers: list[list[tuple[str, str | None, str]]]) -> list:
    """Argilla records with responses: (user, value, status) each."""
    records = [rg.Record.from_dict(x) for x in lines]
    for record, given in zip(records, answers, strict=False):
        for user, value, status in given:
            record.responses.add(rg.Response("label", value, USERS[user], status=status))
    return records


def _relabel_keep_tie_skip(run: Path, tmp_path: Path) -> tuple[list[dict], list[list], list[str]]:
    lines = _send(run, tmp_path / "records.jsonl", "--top", "5")
    names = [str(n) for n in load_run(run).label_names]
    given = [x["metadata"]["given_label"] for x in lines]
    other = [names[(names.index(g) + 1) % len(names)] for g in given]
    answers = [
        [("ann", other[0], "submitted"), ("bob", other[0], "submitted")],  # relabel
        [("ann", given[1], "submitted")],  # keep
        [("ann", other[2], "submitted"), ("bob", given[2], "submitted")],  # a tie
        [("ann", None, "discarded")],  # skipped: left alone
        [
            ("ann", other[4], "submitted"),
            ("cyd", other[4], "submitted"),
            ("bob", given[4], "submitted"),
        ],
    ]
    return lines, answers, other


def test_receive_reads_argillas_own_export_as_decisions(app_cache, tmp_path, capsys):
    run = digits_run(app_cache)
    lines, answers, other = _relabel_keep_tie_skip(run, tmp_path)
    names = [str(n) for n in load_run(run).label_names]
    export = tmp_path / "answers.json"
    JsonIO.to_json(_answered(lines, answers), export)  # what `dataset.records.to_json` writes
    capsys.readouterr()
    assert main(["receive", "--run", str(run), "--from", str(export)]) == 0
    err = capsys.readouterr().err
    assert "3 decision(s) from Argilla (1 keep, 2 relabel)" in err
    assert "1 record(s) without an answer left alone" in err
    ids = [x["metadata"]["winnow_id"] for x in lines]
    assert f"left undecided: ids {ids[2]}" in err
    got = {r["id"]: r for r in map(json.loads, decisions.path_of(run).read_text().splitlines())}
    assert set(got) == {ids[0], ids[1], ids[4]}
    assert got[ids[0]]["action"] == "relabel" and got[ids[0]]["new_label"] == names.index(other[0])
    assert got[ids[1]]["action"] == "keep"
    assert got[ids[4]]["new_label"] == names.index(other[4])
    assert got[ids[4]]["annotators"] == sorted([str(USERS["ann"]), str(USERS["cyd"])])
    assert (
        {r["tool"] for r in got.values()} == {"argilla"} == {r["bulk_kind"] for r in got.values()}
    )
    received = labelling.from_tools(run)
    assert received[["tool", "in_force"]].values.tolist() == [["Argilla", 3]]
    capsys.readouterr()
    assert main(["decide", "--run", str(run), "--list-bulk"]) == 0
    listed = capsys.readouterr().out
    assert "argilla" in listed and str(USERS["ann"]) in listed  # the tool and who answered
    assert received["annotators"][0] == sorted(str(u) for u in USERS.values())


def test_receive_reads_the_flat_form_with_its_statuses(app_cache, tmp_path):
    """`to_list(flatten=True)` keeps each response's status: a discarded answer is no vote,
    even when it carries a value."""
    run = digits_run(app_cache)
    lines, answers, _ = _relabel_keep_tie_skip(run, tmp_path)
    answers[1] = [("ann", answers[1][0][1], "discarded")]  # a value, but discarded
    flat = GenericIO.to_list(_answered(lines, answers), flatten=True)
    assert "label.responses.status" in flat[0]
    export = tmp_path / "answers.jsonl"
    export.write_text("".join(json.dumps(r) + "\n" for r in flat))
    out = run_cli("receive", "--run", str(run), "--from", str(export), cache=tmp_path)
    assert out.returncode == 0, out.stderr
    assert "2 decision(s) from Argilla (0 keep, 2 relabel)" in out.stderr
    assert "2 record(s) without an answer left alone" in out.stderr


def test_bad_argilla_exports_exit_2_with_one_line_and_write_nothing(app_cache, tmp_path):
    run = digits_run(app_cache)
    lines, answers, _ = _relabel_keep_tie_skip(run, tmp_path)
    good = GenericIO.to_list(_answered(lines, answers), flatten=False)
    for r in good:  # as JSON writes them (UUIDs as strings)
        r["responses"] = json.loads(json.dumps(r["responses"], default=str))
    outside = json.loads(json.dumps(good))
    outside[1]["responses"]["label"][0]["value"] = "not-a-class"
    unknown = json.loads(json.dumps(good))
    unknown[0]["metadata"]["winnow_id"] = 10**9
    cut = "".join(json.dumps(r) + "\n" for r in good)[:-30]
    cases = {
        "outside": (outside, f"record 2 (Argilla id {good[1]['id']}): the answer 'not-a-class'"),
        "unknown": (unknown, "id 1000000000 is not an example of this run"),
        "cut": (cut, "is not a whole JSON object"),
    }
    for name, (export, message) in cases.items():
        file = tmp_path / "bad.jsonl"
        file.write_text(export if isinstance(export, str) else json.dumps(export))
        out = run_cli("receive", "--run", str(run), "--from", str(file), cache=tmp_path)
        assert out.returncode == 2, (name, out.stderr)
        assert message in out.stderr and len(out.stderr.strip().splitlines()) == 1, name
        assert not decisions.path_of(run).exists(), name


def test_send_to_argilla_refuses_a_server_and_a_wrong_suffix(app_cache, tmp_path):
    run = digits_run(app_cache)
    for extra, message in [
        (["--out", str(tmp_path / "r.csv")], "--out must name a .jsonl or .json file"),
        (["--url", "http://127.0.0.1:9"], "--url and --api-key go with --to label-studio"),
        ([], "give --out RECORDS.jsonl"),
    ]:
        out = run_cli("send", "--run", str(run), "--to", "argilla", *extra, cache=tmp_path)
        assert out.returncode == 2 and message in out.stderr, (extra, out.stderr)
        assert len(out.stderr.strip().splitlines()) == 1
    assert not list(tmp_path.glob("r.*"))
