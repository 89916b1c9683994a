"""The command line: JSON and table output, batch files, and exit code 2 on bad input."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
from typer.testing import CliRunner

from neutralize.cli import app

runner = CliRunner()
REQUEST = {
    "activities": [
        {"type": "car", "fuel": "diesel", "size": "average", "distance_km": 80},
        {"type": "meal", "diet": "vegetarian", "count": 3},
    ]
}


def test_footprint_from_a_file_prints_lines_and_total(tmp_path: Path) -> None:
    path = tmp_path / "request.json"
    path.write_text(json.dumps(REQUEST))
    result = runner.invoke(app, ["footprint", str(path)])
    assert result.exit_code == 0, result.output
    body = json.loads(result.stdout)
    assert [line["kg_co2e"] for line in body["lines"]] == ["13.843200", "3.810000"]
    assert body["total_kg_co2e"] == "17.653200"


def test_footprint_from_stdin_as_a_table() -> None:
    result = runner.invoke(app, ["footprint", "-", "--format", "table"], input=json.dumps(REQUEST))
    assert result.exit_code == 0, result.output
    assert "13.843200" in result.stdout and "25_301_3069_4_1" in result.stdout


def test_bad_input_exits_2_with_a_code() -> None:
    bad = {"activities": [{"type": "flight", "origin": "PEK", "destination": "XQX"}]}
    result = runner.invoke(app, ["footprint", "-"], input=json.dumps(bad))
    assert result.exit_code == 2
    assert '"unknown_airport"' in result.stderr
    assert "Traceback" not in result.output


def test_not_json_and_missing_file_exit_2() -> None:
    assert runner.invoke(app, ["footprint", "-"], input="{oops").exit_code == 2
    missing = runner.invoke(app, ["footprint", "/no/such/file.json"])
    assert missing.exit_code == 2 and "invalid_request" in missing.stderr


def test_batch_writes_parquet_and_keeps_bad_rows(tmp_path: Path) -> None:
    source = tmp_path / "in.csv"
    source.write_text("type,distance_km,mode\nbus,50,coach\nbus,abc,coach\nrail,120,national_rail\n")
    destination = tmp_path / "out.parquet"
    result = runner.invoke(app, ["footprint", "--batch", str(source), "--out", str(destination)])
    assert result.exit_code == 0, result.output
    table = pl.read_parquet(destination)
    assert table["error_code"].to_list() == [None, "wrong_type", None]
    assert str(table["kg_co2e"][0]) == "1.388000"
    assert "3 rows: 2 computed, 1 failed" in result.stderr


def test_batch_of_an_unsupported_format_exits_2(tmp_path: Path) -> None:
    source = tmp_path / "in.xlsx"
    source.write_bytes(b"PK")
    result = runner.invoke(app, ["footprint", "--batch", str(source), "--out", str(tmp_path / "o.parquet")])
    assert result.exit_code == 2 and "unsupported_format" in result.stderr


def test_factors_search_lists_matching_factors() -> None:
    result = runner.invoke(app, ["factors", "search", "hotel germany", "--set", "DESNZ-2025"])
    assert result.exit_code == 0, result.output
    assert "29_600_4017_13_1" in result.stdout and "13.2" in result.stdout
