"""The loop a user came for, through the CLI: score -> suspects -> decide -> export --rule all.

On data and column names no fixture uses: a CSV of `utterance` / `intent` with labels this
test flipped itself, scored with a name; the held-out 20% carved from it is scored, listed
among the suspects and exported with `split = heldout`.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from scoring import store
from tests.conftest import ROOT, run_cli

INTENTS = {
    "travel": ["book a flight to {}", "find me a train ticket to {}", "reserve a hotel in {}"],
    "music": ["play some {} songs", "put on the {} playlist", "I want to hear {} music"],
    "weather": ["will it rain in {} today", "what is the weather in {}", "is it cold in {}"],
}
FILLERS = ["paris", "jazz", "rome", "rock", "berlin", "folk", "tokyo", "blues", "madrid", "soul"]
N = 150
FLIPPED = [i for i in range(N) if i % 15 == 4]  # 10 rows, spread over train and held-out


def _write_csv(path: Path) -> dict[int, str]:
    """The CSV; returns the true intent of every flipped row (row index = Winnow's id)."""
    names = list(INTENTS)
    rows, truth = [], {}
    for i in range(N):
        intent = names[i % 3]
        text = INTENTS[intent][(i // 3) % 3].format(FILLERS[(i // 9) % len(FILLERS)])
        given = intent
        if i in FLIPPED:
            given = names[(i + 1) % 3]
            truth[i] = intent
        rows.append({"utterance": f"{text} please {i}", "intent": given})
    pd.DataFrame(rows).to_csv(path, index=False)
    return truth


@pytest.fixture(scope="module")
def scored(tmp_path_factory) -> tuple[Path, Path, dict[int, str]]:
    folder = tmp_path_factory.mktemp("intents")
    cache = folder / "cache"
    truth = _write_csv(folder / "intents.csv")
    args = ["--dataset", str(folder / "intents.csv"), "--input-col", "utterance"]
    args += ["--label-col", "intent", "--runs", "2", "--epochs", "30", "--cv-folds", "3"]
    args += ["--scores", "cl_quality,cl_issue,el2n", "--name", "intents v1", "--quiet"]
    out = run_cli("score", *args, cache=cache)
    assert out.returncode == 0, out.stderr
    run = Path(out.stdout.strip().splitlines()[-1])
    assert run.is_dir()
    # The summary on stderr: accuracy, flags, top suspects, the next command.
    assert "held-out accuracy" in out.stderr and "cleanlab flags" in out.stderr
    assert f"next: winnow suspects --run {run}" in out.stderr
    return cache, run, truth


def _suspects(run: Path, cache: Path, *args: str) -> pd.DataFrame:
    out = run_cli("suspects", "--run", str(run), "--format", "csv", *args, cache=cache)
    assert out.returncode == 0, out.stderr
    return pd.read_csv(io.StringIO(out.stdout))


def test_suspects_cover_every_row_with_evidence_and_find_the_flips(scored):
    cache, run, truth = scored
    frame = _suspects(run, cache)
    expected = ["id", "split", "label", "suggested_label", "given_prob", "suggested_prob"]
    assert list(frame.columns[:6]) == expected
    assert {"score", "detector", "flagged", "why"} <= set(frame.columns)
    assert len(frame) == N and sorted(frame["id"]) == list(range(N))  # every row accounted for
    assert set(frame["split"]) == {"train", "heldout"}
    assert set(frame["label"]) == set(INTENTS)  # names, not class ids
    # Evidence agrees with itself: the suggestion is the argmax, so p(suggested) >= p(given).
    assert (frame["suggested_prob"] >= frame["given_prob"] - 1e-9).all()
    # The flipped rows are found, held-out ones too (the bug: they were never scored).
    top = set(frame["id"].head(2 * len(FLIPPED)))
    assert len(top & set(FLIPPED)) >= 0.7 * len(FLIPPED), frame.head(20)
    held = frame[frame["split"] == "heldout"]
    held_flips = set(held["id"]) & set(FLIPPED)
    assert held_flips, "the carved held-out share should hold some flipped rows"
    assert set(held["id"].head(len(held_flips))) == held_flips
    for i in FLIPPED:  # the models' suggestion is the true intent
        row = frame[frame["id"] == i].iloc[0]
        assert row["suggested_label"] == truth[i], row.to_dict()
    only_held = _suspects(run, cache, "--split", "heldout", "--top", "3")
    assert len(only_held) == 3 and set(only_held["split"]) == {"heldout"}
    jsonl = run_cli("suspects", "--run", str(run), "--format", "jsonl", "--top", "2", cache=cache)
    assert [json.loads(line)["id"] for line in jsonl.stdout.splitlines()] == frame["id"][
        :2
    ].tolist()


def test_list_shows_the_name_with_a_header(scored):
    cache, run, _ = scored
    out = run_cli("list", cache=cache)
    header, line = out.stdout.splitlines()[:2]
    assert header.split()[:4] == ["created", "name", "state", "dataset"]
    assert "intents v1" in line and "2×30" in line and str(run) in line


def test_list_never_sends_a_names_control_characters_to_the_terminal(scored, tmp_path):
    cache, run, _ = scored
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (moved,) = [p for p in store.iter_run_dirs(copy) if p.name == run.name]
    store.RunDir(moved).write_meta(name="\x1b[31mred\nsecond line")
    out = run_cli("list", cache=copy)
    assert "\x1b" not in out.stdout and len(out.stdout.splitlines()) == 2  # header, one run
    assert "\\x1b[31mred\\nsecond line" in out.stdout  # shown escaped


def test_decide_then_export_the_cleaned_dataset(scored, tmp_path):
    cache, run, truth = scored
    flips = sorted(truth)
    dropped, single, bulk = flips[0], flips[1], flips[2:]
    decisions = run / "decisions.jsonl"
    decisions.unlink(missing_ok=True)

    def decide(*args: str) -> subprocess.CompletedProcess:
        return run_cli("decide", "--run", str(run), *args, cache=cache)

    assert decide("--id", str(dropped), "--drop").returncode == 0
    assert decide("--id", str(single), "--relabel", truth[single]).returncode == 0
    # Bad input: one line, exit 2, nothing written.
    before = decisions.read_text()
    bad_id = decide("--id", "100000", "--drop")
    assert bad_id.returncode == 2 and bad_id.stderr.startswith("error: example id 100000")
    bad_label = decide("--id", str(single), "--relabel", "cooking")
    assert bad_label.returncode == 2 and "unknown label 'cooking'" in bad_label.stderr
    bad_file = tmp_path / "bad.csv"
    rows = [f"{i},relabel,{truth[i]}" for i in bulk[:2]] + [f"{bulk[2]},relabel,cooking"]
    bad_file.write_text("id,action,label\n" + "\n".join(rows) + "\n")
    bad_bulk = decide("--from", str(bad_file))
    assert bad_bulk.returncode == 2 and "line 4" in bad_bulk.stderr
    assert "nothing was written" in bad_bulk.stderr
    twice = tmp_path / "twice.csv"  # pandas would read the second `id` as `id.1`, unseen
    twice.write_text("id,id,action\n" + "".join(f"{i},{i + 1},drop\n" for i in bulk[:2]))
    bad_header = decide("--from", str(twice))
    assert bad_header.returncode == 2 and "names column(s) id more than once" in bad_header.stderr
    assert decisions.read_text() == before
    good = tmp_path / "good.csv"
    good.write_text("id,action,label\n" + "\n".join(f"{i},relabel,{truth[i]}" for i in bulk) + "\n")
    assert decide("--from", str(good)).returncode == 0
    assert len(decisions.read_text().splitlines()) == 2 + len(bulk)

    out = tmp_path / "clean.csv"
    done = run_cli("export", "--run", str(run), "--rule", "all", "--format", "csv",
                   "--out", str(out), cache=cache)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip().splitlines()[-1]) == out
    clean = pd.read_csv(out)
    assert len(clean) == N - 1 and dropped not in set(clean["id"])  # every row but the drop
    assert set(clean["split"]) == {"train", "heldout"}
    by_id = clean.set_index("id")
    for i in [single, *bulk]:  # relabels applied, the given label kept beside them
        assert by_id.loc[i, "intent"] == truth[i]
        assert by_id.loc[i, "original_label"] != truth[i]
    untouched = by_id.drop(index=[single, *bulk])
    assert (untouched["intent"] == untouched["original_label"]).all()
    manifest = json.loads(Path(f"{out}.manifest.json").read_text())
    assert manifest["rows"] == N - 1 and manifest["decisions"]["relabelled"] == 1 + len(bulk)
    held = manifest["splits"]["heldout"]
    assert held == (clean["split"] == "heldout").sum() and held > 0

    raw = tmp_path / "raw.csv"
    done = run_cli("export", "--run", str(run), "--rule", "all", "--no-decisions",
                   "--format", "csv", "--out", str(raw), cache=cache)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert len(pd.read_csv(raw)) == N and "original_label" not in pd.read_csv(raw).columns


def test_argument_errors_come_before_heavy_imports():
    code = (
        "import sys, time\n"
        "t = time.perf_counter()\n"
        "from scoring.__main__ import main\n"
        "for argv in (['score', '--bogus'], ['score'], ['decide'], ['suspects']):\n"
        "    try:\n"
        "        main(argv)\n"
        "    except SystemExit as e:\n"
        "        assert e.code == 2, e.code\n"
        "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))\n"
    )
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    took = time.perf_counter() - t0
    assert out.stdout.strip() == "[]", out.stderr
    assert "--dataset is required" in out.stderr
    assert took < 3, took  # generous: about 0.25 s here


def test_export_rule_all_refuses_a_fraction_and_sweep_refuses_it(tmp_path):
    out = run_cli("export", "--run", str(tmp_path), "--rule", "all", "--fraction", "0.5",
                  "--format", "csv", "--out", str(tmp_path / "x.csv"), cache=tmp_path)  # fmt: skip
    assert out.returncode == 2 and "drop --fraction" in out.stderr
    out = run_cli("sweep", "--run", str(tmp_path), "--rule", "all", cache=tmp_path)
    assert out.returncode == 2 and "nothing to sweep" in out.stderr
    out = run_cli("export", "--run", str(tmp_path), "--rule", "random", "--format", "csv",
                  "--out", str(tmp_path / "x.csv"), cache=tmp_path)  # fmt: skip
    assert out.returncode == 2 and "--fraction is required" in out.stderr


def test_a_damaged_decisions_line_is_one_warning_line_on_the_command_line(scored, tmp_path):
    cache, run, _ = scored
    copy = tmp_path / "cache"
    shutil.copytree(cache, copy)
    (moved,) = [p for p in store.iter_run_dirs(copy) if p.name == run.name]
    (moved / "decisions.jsonl").write_text('{"id": 0, "action": "drop"}\n{"id": 3, "act')
    out = run_cli(
        "export", "--run", str(moved), "--rule", "all", "--format", "csv",
        "--out", str(tmp_path / "clean.csv"), cache=copy,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "UserWarning" not in out.stderr and "decisions.py" not in out.stderr
    warning = (
        f"warning: {moved / 'decisions.jsonl'}: skipped 1 unreadable line(s) (damaged or cut "
        "short); every other decision is kept, and new decisions are appended after them"
    )
    assert warning in out.stderr.splitlines()
