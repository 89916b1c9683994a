"""The registry command line: keys, imports, checks and the audit, with their exit codes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from neutralize.cli import app
from neutralize.core.config import get_settings

DATA = Path(__file__).resolve().parents[1] / "data" / "registry"
runner = CliRunner()


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.setenv("NEUTRALIZE_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("NEUTRALIZE_SIGNING_KEY_DIR", str(tmp_path / "keys"))
    get_settings.cache_clear()
    assert runner.invoke(app, ["db", "upgrade"]).exit_code == 0
    yield tmp_path
    get_settings.cache_clear()


def admin_token() -> str:
    result = runner.invoke(app, ["keys", "create", "--role", "admin"])
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def test_demo_data_passes_the_check_and_the_audit(database: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    check = runner.invoke(app, ["registry", "check"])
    assert check.exit_code == 0, check.output
    assert json.loads(check.stdout)["ok"]
    assert runner.invoke(app, ["audit", "checkpoint"]).exit_code == 0
    audit = runner.invoke(app, ["audit", "verify"])
    assert audit.exit_code == 0 and json.loads(audit.stdout)["ok"]


def test_an_import_with_bad_rows_exits_2_and_lists_line_numbers(database: Path) -> None:
    token = admin_token()
    bad = runner.invoke(
        app,
        ["registry", "import", str(DATA / "verra_bad_rows.csv"), "--programme", "VCS", "--api-key", token],
    )
    assert bad.exit_code == 2
    assert '"invalid_import"' in bad.stderr and '"row": 3' in bad.stderr
    good = runner.invoke(
        app, ["registry", "import", str(DATA / "verra_export.csv"), "--programme", "VCS", "--api-key", token]
    )
    assert good.exit_code == 0, good.output
    assert json.loads(good.stdout)["blocks"] > 0


def test_commands_need_a_valid_key(database: Path) -> None:
    missing = runner.invoke(app, ["registry", "organisation", "Acme"], env={"NEUTRALIZE_API_KEY": ""})
    assert missing.exit_code == 2 and "unauthenticated" in missing.stderr
    wrong = runner.invoke(app, ["registry", "organisation", "Acme", "--api-key", "nz_k_00_bad"])
    assert wrong.exit_code == 2 and "unauthenticated" in wrong.stderr
    made = runner.invoke(app, ["registry", "organisation", "Acme", "--api-key", admin_token()])
    assert made.exit_code == 0 and json.loads(made.stdout)["name"] == "Acme"


def test_a_retirement_by_file_and_where_its_serial_went(database: Path) -> None:
    assert runner.invoke(app, ["demo"]).exit_code == 0
    export = runner.invoke(app, ["registry", "export", "units", "--format", "json"])
    units = json.loads(export.stdout)
    held = next(u for u in units if u["unitStatus"] == "Held" and u["projectId"] == "CDCER-CD-METRO")
    where = runner.invoke(app, ["registry", "where", held["serialNumberBlock"]])
    assert where.exit_code == 0 and json.loads(where.stdout)[0]["state"] == "held"
    assert runner.invoke(app, ["registry", "where", "NZ-NOPE"]).exit_code == 2
