"""`winnow report`: the health report as markdown and as JSON, one entry per issue type."""

from __future__ import annotations

import json

from scoring.__main__ import main
from tests.conftest import digits_run, run_cli, text_run
from tests.read.test_health import REQUIRED


def test_json_report_has_every_required_type_with_its_count(app_cache, capsys):
    for run in (digits_run(app_cache), text_run(app_cache)):
        assert main(["report", "--run", str(run), "--format", "json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["run"] == str(run) and isinstance(record["title"], str)
        issues = record["issues"]
        assert sorted(i["type"] for i in issues) == sorted(REQUIRED)
        for issue in issues:
            assert "count" in issue
            if issue["available"]:
                assert isinstance(issue["count"], int) and issue["severity"] in (
                    "high",
                    "medium",
                    "low",
                    "none",
                )
            else:
                assert issue["count"] is None and issue["reason"]


def test_markdown_report_is_the_default(app_cache, capsys):
    run = digits_run(app_cache)
    assert main(["report", "--run", str(run)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Health report: ")
    assert "| issue | count | rows affected | severity | review on | summary |" in out
    assert "| label | " in out and "| non_iid | " in out


def test_bad_format_and_bad_run_exit_2_with_one_line(app_cache, tmp_path, capsys):
    run = digits_run(app_cache)
    assert main(["report", "--run", str(run), "--format", "html"]) == 2
    assert "--format must be markdown or json" in capsys.readouterr().err
    assert main(["report", "--run", str(tmp_path / "nowhere")]) == 2
    assert "not a Winnow run folder" in capsys.readouterr().err


def test_the_report_command_runs_as_a_user_types_it(app_cache):
    out = run_cli("report", "--run", str(text_run(app_cache)), "--format", "json", cache=app_cache)
    assert out.returncode == 0, out.stderr
    assert {i["type"] for i in json.loads(out.stdout)["issues"]} == set(REQUIRED)
